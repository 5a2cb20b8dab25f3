"""The incremental state: day sketches, window summaries, the binary codec, the file store."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from rightsizer.adapters.statecodec import AgencyState, StateCorrupt, decode, encode
from rightsizer.adapters.statestore import FileStateStore, safe_name
from rightsizer.core.columns import Steps, day_of
from rightsizer.core.sketch import (
    DAY_SECONDS,
    Sketch,
    WindowFigures,
    fold,
    forget,
    quantile,
    window,
)

LEVELS = (0.5, 0.75, 0.9, 0.95, 0.98, 0.99)
STEP = 600
MIDNIGHT = 20_000 * DAY_SECONDS


def cpu_steps(values: list[float], start: float = MIDNIGHT, *, series: int = 0) -> Steps:
    t = [start + STEP * (i + 1) for i in range(len(values))]
    return Steps.of([series] * len(values), t, values, values, [1.0] * len(values))


def folded(*blocks: Steps, levels: tuple[float, ...] | None = LEVELS) -> Sketch:
    sketch = Sketch.empty(levels)
    for steps in blocks:
        sketch = fold(sketch, steps, levels=levels, until=float(steps.t.max()))
    return sketch


def figures(sketch: Sketch, *, start: float, end: float, size: int = 1) -> WindowFigures:
    return window(sketch, start=start, end=end, levels=LEVELS, size=size, wanted=[0.95, 0.5])


@pytest.mark.parametrize(
    ("values", "level", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0, 5.0], 0.5, 3.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 0.95, 4.8),  # as Prometheus: linear between ranks
        ([1.0, 2.0], 0.0, 1.0),
        ([1.0, 2.0], 1.0, 2.0),
        ([7.0], 0.99, 7.0),
    ],
)
def test_quantile_interpolates_as_prometheus(
    values: list[float], level: float, expected: float
) -> None:
    assert quantile(values, level) == pytest.approx(expected)


def test_a_point_at_midnight_ends_the_day_before() -> None:
    assert day_of(MIDNIGHT) == day_of(MIDNIGHT - 1) == day_of(MIDNIGHT + 1) - 1


def test_folding_closes_a_day_once_it_is_complete() -> None:
    sketch = folded(cpu_steps([1.0] * 144 + [2.0] * 10))
    assert len(sketch.days) == 1 and sketch.days.count.tolist() == [144.0]
    assert sketch.days.knots.tolist() == [[1.0] * 8]
    assert len(sketch.steps) == 10
    incomplete = fold(Sketch.empty(LEVELS), cpu_steps([1.0] * 144), levels=LEVELS, until=MIDNIGHT)
    assert len(incomplete.days) == 0 and len(incomplete.steps) == 144


@pytest.mark.parametrize("levels", [LEVELS, None])
def test_folding_a_block_equals_folding_it_step_by_step(levels: tuple[float, ...] | None) -> None:
    rng = random.Random(11)
    steps = cpu_steps([rng.uniform(0.1, 2.0) for _ in range(144 * 3 + 40)], MIDNIGHT + 600 * 7)
    whole = folded(steps, levels=levels)
    single = folded(*(steps.where(np.array([i])) for i in range(len(steps))), levels=levels)
    assert len(whole.days) == (3 if levels else 4)  # without levels the open day is a row
    for name in ("day", "count", "total", "peak", "first", "last", "knots"):
        assert getattr(whole.days, name) == pytest.approx(getattr(single.days, name), rel=1e-12)
    assert whole.steps.t.tolist() == single.steps.t.tolist()


def test_steps_already_held_are_not_folded_twice() -> None:
    once = folded(cpu_steps([1.0] * 30))
    twice = fold(once, cpu_steps([1.0] * 40), levels=LEVELS, until=MIDNIGHT + 40 * STEP)
    assert len(twice.steps) == 40 and twice.steps.t.tolist() == sorted(set(twice.steps.t))


def test_window_quantiles_of_identical_days_are_their_knots() -> None:
    rng = random.Random(3)
    day = [rng.uniform(0.1, 2.0) for _ in range(144)]
    sketch = folded(*(cpu_steps(day, MIDNIGHT + d * DAY_SECONDS) for d in range(7)))
    found = figures(sketch, start=MIDNIGHT, end=MIDNIGHT + 7 * DAY_SECONDS)
    assert found.quantiles[0.95][0] == pytest.approx(quantile(sorted(day), 0.95), rel=1e-9)
    assert found.quantiles[0.5][0] == pytest.approx(quantile(sorted(day), 0.5), rel=1e-9)
    assert found.count[0] == 7 * 144
    assert found.peak[0] == max(day)


def test_window_quantile_of_different_days_is_close_to_the_exact_one() -> None:
    rng = random.Random(5)
    days = [[rng.lognormvariate(-1 + d % 3, 0.5) for _ in range(144)] for d in range(14)]
    sketch = folded(*(cpu_steps(v, MIDNIGHT + d * DAY_SECONDS) for d, v in enumerate(days)))
    found = figures(sketch, start=MIDNIGHT, end=MIDNIGHT + 14 * DAY_SECONDS)
    exact = quantile(sorted(v for values in days for v in values), 0.95)
    assert found.quantiles[0.95][0] == pytest.approx(exact, rel=0.06)  # days 7x apart


def mixture_cdf(sketch: Sketch, x: float) -> float:
    """The share of the days' piecewise-linear distributions at or below ``x``."""
    grid = (0.0, *LEVELS, 1.0)
    below = [np.interp(x, k, grid, left=0.0, right=1.0) for k in sketch.days.knots]
    return float(np.average(below, weights=sketch.days.count))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("level", [0.5, 0.9, 0.95, 0.99])
def test_window_quantile_is_where_the_mixture_reaches_the_level(seed: int, level: float) -> None:
    rng = random.Random(seed)
    days = [[rng.lognormvariate(rng.uniform(-2, 1), 0.7) for _ in range(144)] for _ in range(9)]
    sketch = folded(*(cpu_steps(v, MIDNIGHT + d * DAY_SECONDS) for d, v in enumerate(days)))
    found = window(
        sketch,
        start=MIDNIGHT,
        end=MIDNIGHT + 9 * DAY_SECONDS,
        levels=LEVELS,
        size=1,
        wanted=[level],
    )
    assert mixture_cdf(sketch, float(found.quantiles[level][0])) == pytest.approx(level, abs=1e-9)


def test_every_series_is_answered_as_if_alone() -> None:
    rng = random.Random(8)
    blocks = [
        cpu_steps([rng.uniform(0.1, s + 1.0) for _ in range(144 * 4)], MIDNIGHT, series=s)
        for s in range(5)
    ]
    shuffled = Steps.empty()
    for s in (0, 3, 1, 4, 2):
        shuffled = shuffled.then(blocks[s])
    end = MIDNIGHT + 5 * DAY_SECONDS
    together = figures(folded(shuffled.ordered()), start=MIDNIGHT, end=end, size=6)
    for s, block in enumerate(blocks):
        alone = figures(
            folded(Steps.of(np.zeros(len(block)), block.t, block.peak, block.total, block.count)),
            start=MIDNIGHT,
            end=end,
        )
        assert together.count[s] == alone.count[0] and together.peak[s] == alone.peak[0]
        for level in (0.5, 0.95):
            assert together.quantiles[level][s] == pytest.approx(alone.quantiles[level][0])
    assert together.count[5] == 0 and np.isnan(together.quantiles[0.95][5])


def test_the_oldest_day_counts_by_its_overlap_with_the_window() -> None:
    sketch = folded(cpu_steps([1.0] * 144 + [3.0] * 144))
    start = MIDNIGHT + DAY_SECONDS * 0.75  # a quarter of the first day is in the window
    found = figures(sketch, start=start, end=MIDNIGHT + 2 * DAY_SECONDS)
    assert found.count[0] == pytest.approx(144 + 144 * 0.25, rel=0.02)
    later = figures(sketch, start=MIDNIGHT + 3 * DAY_SECONDS, end=1e12)
    assert later.count[0] == 0


def test_memory_without_quantiles_keeps_one_row_per_day() -> None:
    t = [MIDNIGHT + STEP * (i + 1) for i in range(50)]
    peaks = [10.0 + i for i in range(50)]
    steps = Steps.of([0] * 50, t, peaks, [2 * p for p in peaks], [2.0] * 50)
    sketch = fold(Sketch.empty(None), steps, levels=None, until=t[-1])
    assert len(sketch.days) == 1 and len(sketch.steps) == 0
    found = window(sketch, start=MIDNIGHT, end=MIDNIGHT + DAY_SECONDS, levels=None, size=1)
    assert (found.count[0], found.peak[0]) == (100.0, 59.0)
    assert found.total[0] / found.count[0] == pytest.approx(34.5)


def test_forgetting_drops_what_ended_before_the_window() -> None:
    sketch = folded(cpu_steps([1.0] * 144 * 3 + [2.0] * 5))
    kept = forget(sketch, start=MIDNIGHT + DAY_SECONDS + 1)
    assert kept.days.day.tolist() == [day_of(MIDNIGHT) + 2, day_of(MIDNIGHT) + 3]
    assert len(kept.steps) == 5


def state() -> AgencyState:
    cpu = folded(cpu_steps([0.5, 0.25] * 100))
    memory = fold(
        Sketch.empty(None),
        Steps.of([1], [MIDNIGHT + 600], [5e8], [1e9], [2.0]),
        levels=None,
        until=MIDNIGHT + 600,
    )
    found = AgencyState(fingerprint="f" * 32, end=MIDNIGHT + 200 * STEP)
    found.keys = [("ns", "pod-1", "app"), ("ns", "pod-2", "app")]
    found.sketches = {"cpu": cpu, "memory": memory}
    return found


def test_the_codec_round_trips() -> None:
    original = state()
    again = decode(encode(original))
    assert (again.fingerprint, again.end, again.keys) == (
        original.fingerprint,
        original.end,
        original.keys,
    )
    cpu, memory = again.sketches["cpu"], again.sketches["memory"]
    assert cpu.days.count.tolist() == original.sketches["cpu"].days.count.tolist()
    assert cpu.days.knots == pytest.approx(original.sketches["cpu"].days.knots)
    assert cpu.steps.total.tolist() == [0.5, 0.25] * 28
    assert memory.days.series.tolist() == [1] and memory.days.count.tolist() == [2.0]


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-7],  # truncated
        lambda b: b[:30] + bytes([b[30] ^ 0xFF]) + b[31:],  # a flipped byte
        lambda b: b"XYZ" + b[3:],  # not ours
        lambda b: b[:3] + b"\x63\x00" + b[5:],  # another schema version
        lambda b: b"",
    ],
)
def test_damaged_state_is_detected(damage: object) -> None:
    blob = encode(state())
    with pytest.raises(StateCorrupt):
        decode(damage(blob))  # type: ignore[operator]


def test_file_store_round_trips_and_misses(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state")
    assert store.load("default-agency-001") is None
    store.save("default-agency-001", b"abc")
    store.save("default-agency-001", b"abcd")
    assert store.load("default-agency-001") == b"abcd"
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["default-agency-001.state"]


@pytest.mark.parametrize(
    ("key", "pattern"),
    [
        ("finance", r"^finance$"),
        ("Fin/Ance", r"^fin-ance-[0-9a-f]{10}$"),
        ("x" * 300, r"^x+-[0-9a-f]{10}$"),
    ],
)
def test_names_are_dns_labels(key: str, pattern: str) -> None:
    import re

    name = safe_name(key)
    assert re.match(pattern, name) and len(name) <= 200
