"""The incremental state: day sketches, window summaries, the binary codec, the file store."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from rightsizer.adapters.statecodec import AgencyState, StateCorrupt, decode, encode
from rightsizer.adapters.statestore import FileStateStore, safe_name
from rightsizer.core.sketch import (
    DAY_SECONDS,
    Point,
    SeriesSketch,
    day_of,
    fold,
    quantile,
    window_summary,
)

LEVELS = (0.5, 0.75, 0.9, 0.95, 0.98, 0.99)
STEP = 600
MIDNIGHT = 20_000 * DAY_SECONDS


def cpu_points(values: list[float], start: float = MIDNIGHT) -> list[Point]:
    return [Point(start + STEP * (i + 1), v, v, 1.0) for i, v in enumerate(values)]


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


def test_folding_closes_a_day_when_the_next_begins() -> None:
    sketch = SeriesSketch()
    fold(sketch, cpu_points([1.0] * 144 + [2.0] * 10), levels=LEVELS)
    assert len(sketch.days) == 1 and sketch.days[0].count == 144
    assert sketch.days[0].knots == (1.0,) * 8
    assert len(sketch.points) == 10


def test_window_quantiles_of_identical_days_are_their_knots() -> None:
    rng = random.Random(3)
    day = [rng.uniform(0.1, 2.0) for _ in range(144)]
    sketch = SeriesSketch()
    for d in range(7):
        fold(sketch, cpu_points(day, MIDNIGHT + d * DAY_SECONDS), levels=LEVELS)
    end = MIDNIGHT + 7 * DAY_SECONDS
    summary = window_summary(sketch, start=MIDNIGHT, end=end, levels=LEVELS, wanted=[0.95, 0.5])
    assert summary is not None
    assert summary.quantiles[0.95] == pytest.approx(quantile(sorted(day), 0.95), rel=1e-9)
    assert summary.quantiles[0.5] == pytest.approx(quantile(sorted(day), 0.5), rel=1e-9)
    assert summary.count == 7 * 144
    assert summary.peak == max(day)


def test_window_quantile_of_different_days_is_close_to_the_exact_one() -> None:
    rng = random.Random(5)
    days = [[rng.lognormvariate(-1 + d % 3, 0.5) for _ in range(144)] for d in range(14)]
    sketch = SeriesSketch()
    for d, values in enumerate(days):
        fold(sketch, cpu_points(values, MIDNIGHT + d * DAY_SECONDS), levels=LEVELS)
    end = MIDNIGHT + 14 * DAY_SECONDS
    summary = window_summary(sketch, start=MIDNIGHT, end=end, levels=LEVELS, wanted=[0.95])
    exact = quantile(sorted(v for values in days for v in values), 0.95)
    assert summary is not None
    assert summary.quantiles[0.95] == pytest.approx(exact, rel=0.06)  # days 7x apart


def test_the_oldest_day_counts_by_its_overlap_with_the_window() -> None:
    sketch = SeriesSketch()
    fold(sketch, cpu_points([1.0] * 144 + [3.0] * 144), levels=LEVELS)
    start = MIDNIGHT + DAY_SECONDS * 0.75  # a quarter of the first day is in the window
    summary = window_summary(sketch, start=start, end=MIDNIGHT + 2 * DAY_SECONDS, levels=LEVELS)
    assert summary is not None
    assert summary.count == pytest.approx(144 + 144 * 0.25, rel=0.02)
    assert window_summary(sketch, start=MIDNIGHT + 3 * DAY_SECONDS, end=1e12, levels=LEVELS) is None


def test_memory_without_quantiles_keeps_an_aggregate_of_the_open_day() -> None:
    sketch = SeriesSketch()
    points = [Point(MIDNIGHT + STEP * (i + 1), 10.0 + i, 2 * (10.0 + i), 2.0) for i in range(50)]
    fold(sketch, points, levels=None)
    assert len(sketch.points) == 2
    summary = window_summary(sketch, start=MIDNIGHT, end=MIDNIGHT + DAY_SECONDS, levels=None)
    assert summary is not None
    assert (summary.count, summary.peak) == (100.0, 59.0)
    assert summary.total / summary.count == pytest.approx(34.5)


def state() -> AgencyState:
    cpu, memory = SeriesSketch(), SeriesSketch()
    fold(cpu, cpu_points([0.5, 0.25] * 100), levels=LEVELS)
    fold(memory, [Point(MIDNIGHT + 600, 5e8, 1e9, 2.0)], levels=None)
    found = AgencyState(fingerprint="f" * 32, end=MIDNIGHT + 200 * STEP)
    found.series[("ns", "pod-1", "app")] = {"cpu": cpu, "memory": memory}
    return found


def test_the_codec_round_trips() -> None:
    original = state()
    again = decode(encode(original))
    assert again.fingerprint == original.fingerprint and again.end == original.end
    sketches = again.series[("ns", "pod-1", "app")]
    assert sketches["cpu"].days == original.series[("ns", "pod-1", "app")]["cpu"].days
    assert [p.total for p in sketches["cpu"].points] == [0.5, 0.25] * 28
    assert sketches["memory"].points[0].count == 2.0


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
