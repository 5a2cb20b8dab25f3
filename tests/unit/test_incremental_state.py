"""Query rows into an agency's state and back into the full path's rows: seeding, folding,
forgetting, and the throttled ratio kept as summed CFS periods."""

from __future__ import annotations

import pytest

from rightsizer.adapters.assemble import BatchSeries
from rightsizer.adapters.incremental_state import (
    Levels,
    Window,
    fold_delta,
    forget_before,
    seed_state,
    synthesise,
)
from rightsizer.adapters.statecodec import AgencyState, decode, encode
from rightsizer.core.sketch import DAY_SECONDS

LEVELS = Levels(cpu=(0.5, 0.95), memory=None)
STEP = 600
MIDNIGHT = 20_000 * DAY_SECONDS
POD = {"namespace": "fin", "pod": "ledger-1", "container": "app"}
OTHER = {"namespace": "fin", "pod": "ledger-2", "container": "app"}


Row = tuple[dict[str, str], list[tuple[float, float]]]


def delta(labels: dict[str, str], part: str, values: list[float], first: float) -> Row:
    return ({**labels, "rs_part": part}, [(first + STEP * i, v) for i, v in enumerate(values)])


def cycles(*folds: list[Row]) -> AgencyState:
    state = AgencyState("f" * 32, MIDNIGHT)
    for rows in folds:
        end = max(t for _, points in rows for t, _ in points)
        fold_delta(state, rows, levels=LEVELS, until=end)
        state = decode(encode(state))  # each cycle reads what the last one stored
    return state


def throttled(state: AgencyState, *, start: float, end: float) -> dict[str, float]:
    series = BatchSeries()
    window = Window(start=start, end=end, days=14, step=STEP, interval=300)
    synthesise(state, series, window=window, levels=LEVELS, stats={"cpu": frozenset({"p95"})})
    return {pod: value for (_, pod, _), value in series.keyed["throttled"].items()}


@pytest.mark.parametrize(
    ("throttled_periods", "all_periods", "expected"),
    [
        ([10.0, 20.0, 30.0], [100.0, 100.0, 100.0], 0.2),
        ([0.0, 0.0, 0.0], [50.0, 50.0, 50.0], 0.0),
        ([5.0, 5.0, 5.0], [0.0, 10.0, 20.0], 10 / 30),  # a step without periods is left out
    ],
)
def test_the_throttled_ratio_is_throttled_over_all_periods(
    throttled_periods: list[float], all_periods: list[float], expected: float
) -> None:
    first = MIDNIGHT - STEP  # the steps straddle midnight: two days, one ratio
    state = cycles(
        [delta(POD, "d_thr", throttled_periods, first), delta(POD, "d_per", all_periods, first)]
    )
    found = throttled(state, start=MIDNIGHT - DAY_SECONDS, end=MIDNIGHT + DAY_SECONDS)
    assert found["ledger-1"] == pytest.approx(expected)


def test_a_container_without_cfs_periods_has_no_throttled_ratio() -> None:
    state = cycles([delta(POD, "d_cpu", [0.5, 0.5], MIDNIGHT + STEP)])
    assert throttled(state, start=MIDNIGHT, end=MIDNIGHT + DAY_SECONDS) == {}


def test_seeded_days_and_folded_steps_add_up() -> None:
    seed: list[Row] = [
        ({**POD, "rs_part": "s_thr"}, [(MIDNIGHT, 30.0)]),
        ({**POD, "rs_part": "s_per"}, [(MIDNIGHT, 300.0)]),
        ({**POD, "rs_part": "s_mem_count"}, [(MIDNIGHT, 288.0)]),
        ({**POD, "rs_part": "s_mem_sum"}, [(MIDNIGHT, 288.0 * 5e8)]),
        ({**POD, "rs_part": "s_mem_max"}, [(MIDNIGHT, 6e8)]),
    ]
    state = AgencyState("f" * 32, MIDNIGHT)
    seed_state(state, [], seed, levels=LEVELS, step=STEP)
    fold_delta(
        state,
        [
            delta(POD, "d_thr", [70.0], MIDNIGHT + STEP),
            delta(POD, "d_per", [100.0], MIDNIGHT + STEP),
        ],
        levels=LEVELS,
        until=MIDNIGHT + STEP,
    )
    found = throttled(state, start=MIDNIGHT - DAY_SECONDS, end=MIDNIGHT + STEP)
    assert found["ledger-1"] == pytest.approx(100 / 400)


def test_containers_that_left_the_window_are_forgotten() -> None:
    state = cycles(
        [delta(POD, "d_cpu", [0.5] * 3, MIDNIGHT + STEP)],
        [delta(OTHER, "d_cpu", [0.5] * 3, MIDNIGHT + 3 * DAY_SECONDS)],
    )
    assert [key[1] for key in state.keys] == ["ledger-1", "ledger-2"]
    forget_before(state, MIDNIGHT + 2 * DAY_SECONDS)
    assert [key[1] for key in state.keys] == ["ledger-2"]
    series = BatchSeries()
    window = Window(
        start=MIDNIGHT + 2 * DAY_SECONDS,
        end=MIDNIGHT + 4 * DAY_SECONDS,
        days=2,
        step=STEP,
        interval=300,
    )
    synthesise(state, series, window=window, levels=LEVELS, stats={"cpu": frozenset({"p95"})})
    assert list(series.keyed["cpustat_p95"]) == [("fin", "ledger-2", "app")]
    assert series.keyed["cpustat_p95"]["fin", "ledger-2", "app"] == pytest.approx(0.5, rel=1e-3)


def memory_figures(rows: list[Row]) -> dict[str, float]:
    state = cycles(rows)
    series = BatchSeries()
    window = Window(start=MIDNIGHT, end=MIDNIGHT + DAY_SECONDS, days=1, step=STEP, interval=300)
    synthesise(state, series, window=window, levels=LEVELS, stats={"memory": frozenset({"max"})})
    key = ("fin", "ledger-1", "app")
    return {p: v[key] for p, v in series.keyed.items() if p.startswith("mem") and key in v}


@pytest.mark.parametrize(
    ("peaks", "sums", "counts", "expected"),
    [
        # every part at both steps: both folded
        ([4.0, 6.0], [8.0, 10.0], [2.0, 2.0], {"samples": 4.0, "avg": 4.5, "max": 6.0}),
        # no count at the second step: it is left out
        ([4.0, 6.0], [8.0, 10.0], [2.0], {"samples": 2.0, "avg": 4.0, "max": 4.0}),
        # no peak at the first step: it is left out
        ([6.0], [8.0, 10.0], [2.0, 2.0], {"samples": 2.0, "avg": 5.0, "max": 6.0}),
    ],
)
def test_memory_steps_are_the_steps_every_part_answered(
    peaks: list[float], sums: list[float], counts: list[float], expected: dict[str, float]
) -> None:
    first = MIDNIGHT + STEP
    late = first + STEP * (2 - len(peaks))  # a single peak belongs to the second step
    rows = [
        delta(POD, "d_mem_max", peaks, late),
        delta(POD, "d_mem_sum", sums, first),
        delta(POD, "d_mem_count", counts, first),
    ]
    found = memory_figures(rows)
    assert found == {
        "mem_samples": pytest.approx(expected["samples"]),
        "memstat_avg": pytest.approx(expected["avg"]),
        "memstat_max": pytest.approx(expected["max"]),
    }
