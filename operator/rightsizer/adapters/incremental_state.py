"""Query rows -> sketches (seed and fold), and sketches -> the rows the full path's queries
would have returned (so ``assemble`` and the core run unchanged)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from rightsizer.adapters.assemble import BatchSeries, Labels, Ranged
from rightsizer.adapters.promql import PART, quantile_of
from rightsizer.adapters.statecodec import AgencyState, ContainerKey
from rightsizer.core.sketch import (
    DAY_SECONDS,
    DaySummary,
    Point,
    SeriesSketch,
    WindowSummary,
    day_of,
    fold,
    trim,
    window_summary,
)


@dataclass(frozen=True)
class Levels:
    """The quantile levels kept per day: CPU always, memory only when a policy reads them."""

    cpu: tuple[float, ...]
    memory: tuple[float, ...] | None

    def of(self, resource: str) -> tuple[float, ...] | None:
        return self.cpu if resource == "cpu" else self.memory


def _key(labels: Labels) -> ContainerKey:
    return labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", "")


def by_key(rows: Ranged) -> dict[ContainerKey, dict[float, dict[str, float]]]:
    """Range rows of a tagged query: container -> timestamp -> part -> value."""
    found: dict[ContainerKey, dict[float, dict[str, float]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for labels, points in rows:
        part = labels.get(PART, "")
        for t, value in points:
            found[_key(labels)][t][part] = value
    return found


def seed_days(
    cpu_rows: Ranged, memory_rows: Ranged, *, levels: Levels, step: float
) -> dict[ContainerKey, dict[str, SeriesSketch]]:
    """Closed days from the seed queries (one point per midnight, ending its day)."""
    series: dict[ContainerKey, dict[str, SeriesSketch]] = defaultdict(dict)
    spans: dict[tuple[ContainerKey, float], tuple[float, float]] = {}
    for key, days in by_key(cpu_rows).items():
        sketch = series[key].setdefault("cpu", SeriesSketch())
        for midnight, parts in sorted(days.items()):
            count = parts.get("s_cpu_count", 0.0)
            if count <= 0:
                continue
            spans[(key, midnight)] = (midnight - count * step, midnight)
            quantiles = [parts.get(f"s_cpu_q{i}", 0.0) for i in range(len(levels.cpu))]
            peak = parts.get("s_cpu_max", 0.0)
            sketch.days.append(
                _seeded_day(
                    midnight,
                    count,
                    parts.get("s_cpu_sum", 0.0),
                    peak,
                    quantiles=quantiles,
                    span=spans[(key, midnight)],
                )
            )
    for key, days in by_key(memory_rows).items():
        sketch = series[key].setdefault("memory", SeriesSketch())
        for midnight, parts in sorted(days.items()):
            count = parts.get("s_mem_count", 0.0)
            if count <= 0:
                continue
            peak = parts.get("s_mem_max", 0.0)
            kept = (
                [parts.get(f"s_mem_q{i}", 0.0) for i in range(len(levels.memory))]
                if levels.memory is not None
                else None
            )
            spans.setdefault((key, midnight), (midnight - DAY_SECONDS + step, midnight))
            sketch.days.append(
                _seeded_day(
                    midnight,
                    count,
                    parts.get("s_mem_sum", 0.0),
                    peak,
                    quantiles=kept,
                    span=spans[(key, midnight)],
                )
            )
    return series


def _seeded_day(
    midnight: float,
    count: float,
    total: float,
    peak: float,
    *,
    quantiles: Sequence[float] | None,
    span: tuple[float, float],
) -> DaySummary:
    knots = () if quantiles is None else (0.0, *quantiles, peak)
    return DaySummary(day_of(midnight), count, total, peak, span[0], span[1], knots)


def fold_delta(state: AgencyState, rows: Ranged, *, levels: Levels) -> None:
    """Fold the steps since the last cycle into the state's sketches."""
    for key, steps in by_key(rows).items():
        resources = state.series.setdefault(key, {})
        cpu = [
            Point(t, p["d_cpu"], p["d_cpu"], 1.0) for t, p in sorted(steps.items()) if "d_cpu" in p
        ]
        memory = [
            Point(t, p["d_mem_max"], p.get("d_mem_sum", 0.0), p["d_mem_count"])
            for t, p in sorted(steps.items())
            if p.get("d_mem_count", 0.0) > 0 and "d_mem_max" in p
        ]
        for resource, points in (("cpu", cpu), ("memory", memory)):
            if points:
                sketch = resources.setdefault(resource, SeriesSketch())
                fresh = [p for p in points if p.t > (sketch.points[-1].t if sketch.points else 0)]
                fold(sketch, fresh, levels=levels.of(resource))


def forget_before(state: AgencyState, start: float) -> None:
    """Drop days (and series) that no longer touch a window starting at ``start``."""
    for key in list(state.series):
        resources = state.series[key]
        for resource in list(resources):
            sketch = resources[resource]
            trim(sketch, start=start)
            if not sketch.days and not [p for p in sketch.points if p.t > start]:
                del resources[resource]
        if not resources:
            del state.series[key]


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    days: int  # the window's length in days (the full path's number of daily points)
    step: float
    interval: float  # the sample interval, for the CPU sample count


def synthesise(
    state: AgencyState,
    series: BatchSeries,
    *,
    window: Window,
    levels: Levels,
    stats: dict[str, frozenset[str]],
) -> None:
    """Add to ``series`` what the full path's usage queries would have returned."""
    wanted = {
        resource: {s: quantile_of(s) for s in stats.get(resource, ())}
        for resource in ("cpu", "memory")
    }
    for key, resources in state.series.items():
        labels = {"namespace": key[0], "pod": key[1], "container": key[2]}
        for resource, sketch in resources.items():
            asked = [q for q in wanted[resource].values() if q is not None]
            summary = window_summary(
                sketch,
                start=window.start,
                end=window.end,
                levels=levels.of(resource),
                wanted=asked,
            )
            if summary is None or summary.count <= 0:
                continue
            if resource == "cpu":
                _cpu_rows(series, labels, summary, window, wanted["cpu"])
            else:
                _memory_rows(series, labels, summary, wanted["memory"])
            _daily_rows(series, labels, summary, window, cpu=resource == "cpu")


def _cpu_rows(
    series: BatchSeries,
    labels: Labels,
    summary: WindowSummary,
    window: Window,
    wanted: dict[str, float | None],
) -> None:
    series.instant["cpu_seconds"].append((labels, summary.total * window.step))
    series.instant["cpu_samples"].append((labels, summary.count * window.step / window.interval))
    for stat, level in wanted.items():
        if stat == "max":
            series.instant["cpustat_max"].append((labels, summary.peak))
        elif level is not None and level in summary.quantiles:
            series.instant[f"cpustat_{stat}"].append((labels, summary.quantiles[level]))


def _memory_rows(
    series: BatchSeries, labels: Labels, summary: WindowSummary, wanted: dict[str, float | None]
) -> None:
    series.instant["mem_samples"].append((labels, summary.count))
    series.instant["memstat_avg"].append((labels, summary.total / summary.count))
    for stat, level in wanted.items():
        if stat == "max":
            series.instant["memstat_max"].append((labels, summary.peak))
        elif level is not None and level in summary.quantiles:
            series.instant[f"memstat_{stat}"].append((labels, summary.quantiles[level]))


def _daily_rows(
    series: BatchSeries, labels: Labels, summary: WindowSummary, window: Window, *, cpu: bool
) -> None:
    """One value per day, placed so that the newest UTC day is the window's last day."""
    newest = day_of(window.end)
    points = []
    for day in summary.days:
        index = window.days - 1 - (newest - day.day)
        if index < 0:
            continue
        timestamp = window.start + (index + 1) * DAY_SECONDS
        if not cpu:
            points.append((timestamp, day.peak))
        elif day.day == newest:
            points.append((timestamp, day.total / max(day.count, 1.0) * DAY_SECONDS))
        else:
            points.append((timestamp, day.total * window.step))
    part = "cpu_day_seconds" if cpu else "mem_day_peak"
    if points:
        series.daily[part].append((labels, points))
