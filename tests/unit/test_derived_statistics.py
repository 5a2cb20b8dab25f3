"""The query plan: which statistics are read by their own scan and which are derived."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rightsizer.adapters import promql
from rightsizer.adapters.assemble import BatchSeries, _context, _Indexes
from rightsizer.ports import CollectionRequest

NS = promql.namespace_matcher(["a"])
END = datetime(2026, 11, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "tiled"),
    [("14d", True), ("1d", True), ("90d", True), ("36h", False), ("1h", False), ("336h", True)],
)
def test_only_whole_days_are_added_up_from_the_daily_query(window: str, tiled: bool) -> None:
    assert promql.whole_days(window) is tiled


def test_cpu_seconds_are_left_out_when_the_days_give_them() -> None:
    assert "cpu_seconds" in promql.cpu_counters_query(NS, window="36h")
    assert "cpu_seconds" not in promql.cpu_counters_query(NS, window="14d", seconds=False)


def test_cpu_statistics_are_taken_per_series_outside_the_subquery() -> None:
    """An aggregation inside the subquery would run at each of its steps."""
    query = promql.cpu_stat_query(NS, stat="p95", window="14d", resolution=promql.Resolution())
    assert query.startswith(f"max by ({promql.POD_KEYS}) (quantile_over_time(0.95, rate(")
    assert "sum by" not in query


def _series(**instant: dict[str, float]) -> BatchSeries:
    series = BatchSeries()
    labels = {"namespace": "a", "pod": "p", "container": "c"}
    day = 86_400.0
    start = END.timestamp() - 2 * day
    series.daily["cpu_day_seconds"].append(
        (labels, [(start + day, 100.0), (start + 2 * day, 50.0)])
    )
    series.daily["mem_day_peak"].append((labels, [(start + day, 7.0), (start + 2 * day, 9.0)]))
    for part, value in instant.items():
        series.instant[part].append((labels, value["v"]))
    return series


@pytest.mark.parametrize(
    ("queried", "seconds", "peak"),
    [
        ({}, 150.0, 9.0),  # whole days: the days' sum and largest
        ({"cpu_seconds": {"v": 149.0}, "memstat_max": {"v": 9.5}}, 149.0, 9.5),  # queried wins
    ],
)
def test_window_totals_come_from_the_days_unless_queried(
    queried: dict[str, dict[str, float]], seconds: float, peak: float
) -> None:
    request = CollectionRequest(
        key="a",
        namespaces=("a",),
        window="2d",
        stale_after="1h",
        project_label="app",
        stats={"cpu": frozenset({"p95"}), "memory": frozenset({"max"})},
    )
    series = _series(**queried)
    indexes = _Indexes.build(series, _context(series, request, end=END))
    assert indexes.values("cpu_seconds") == {("a", "p", "c"): seconds}
    assert indexes.values("memstat_max") == {("a", "p", "c"): peak}
