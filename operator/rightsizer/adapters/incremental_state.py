"""Query rows -> sketches (seed and fold), and sketches -> the rows the full path's queries
would have returned (so ``assemble`` and the core run unchanged)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from rightsizer.adapters.assemble import BatchSeries, Labels, Ranged
from rightsizer.adapters.promql import PART, quantile_of
from rightsizer.adapters.statecodec import AgencyState, ContainerKey
from rightsizer.core.columns import Days, Steps, day_of, floats, ints
from rightsizer.core.sketch import DAY_SECONDS, Sketch, WindowFigures, fold, forget
from rightsizer.core.sketch import window as window_figures


@dataclass(frozen=True)
class Levels:
    """The quantile levels kept per day: CPU always, memory only when a policy reads them."""

    cpu: tuple[float, ...]
    memory: tuple[float, ...] | None

    def of(self, resource: str) -> tuple[float, ...] | None:
        return self.cpu if resource == "cpu" else self.memory


def _key(labels: Labels) -> ContainerKey:
    return labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", "")


class _Index:
    """Series numbers of an agency's containers (new ones appended to ``keys``)."""

    def __init__(self, keys: list[ContainerKey]) -> None:
        self.keys = keys
        self.numbers = {key: number for number, key in enumerate(keys)}

    def __call__(self, key: ContainerKey) -> int:
        number = self.numbers.get(key)
        if number is None:
            number = self.numbers[key] = len(self.keys)
            self.keys.append(key)
        return number


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


def seed_state(
    state: AgencyState, cpu_rows: Ranged, memory_rows: Ranged, *, levels: Levels, step: float
) -> None:
    """Closed days from the seed queries (one point per midnight, ending its day)."""
    index = _Index(state.keys)
    spans: dict[tuple[ContainerKey, float], tuple[float, float]] = {}
    cpu = _DayRows(len(levels.cpu) + 2)
    for key, days in by_key(cpu_rows).items():
        for midnight, parts in sorted(days.items()):
            count = parts.get("s_cpu_count", 0.0)
            if count > 0:
                spans[(key, midnight)] = (midnight - count * step, midnight)
                quantiles = [parts.get(f"s_cpu_q{i}", 0.0) for i in range(len(levels.cpu))]
                cpu.add(
                    index(key),
                    midnight,
                    parts,
                    prefix="s_cpu",
                    quantiles=quantiles,
                    span=spans[(key, midnight)],
                )
    memory = _DayRows(0 if levels.memory is None else len(levels.memory) + 2)
    throttling = _DayRows(0)
    for key, days in by_key(memory_rows).items():
        for midnight, parts in sorted(days.items()):
            span = spans.get((key, midnight), (midnight - DAY_SECONDS + step, midnight))
            if parts.get("s_mem_count", 0.0) > 0:
                kept = (
                    [parts.get(f"s_mem_q{i}", 0.0) for i in range(len(levels.memory))]
                    if levels.memory is not None
                    else None
                )
                memory.add(index(key), midnight, parts, prefix="s_mem", quantiles=kept, span=span)
            if parts.get("s_per", 0.0) > 0:
                periods = {"cfs_count": parts["s_per"], "cfs_sum": parts.get("s_thr", 0.0)}
                throttling.add(
                    index(key), midnight, periods, prefix="cfs", quantiles=None, span=span
                )
    for resource, rows in (("cpu", cpu), ("memory", memory), ("throttling", throttling)):
        if rows.series:
            state.sketches[resource] = Sketch(rows.days(), Steps.empty())


class _DayRows:
    """Seeded day rows, gathered as lists and turned into columns once."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.series: list[int] = []
        self.columns: list[tuple[float, float, float, float, float, float]] = []
        self.knots: list[Sequence[float]] = []

    def add(
        self,
        series: int,
        midnight: float,
        parts: dict[str, float],
        *,
        prefix: str,
        quantiles: Sequence[float] | None,
        span: tuple[float, float],
    ) -> None:
        peak = parts.get(f"{prefix}_max", 0.0)
        self.series.append(series)
        self.columns.append(
            (
                day_of(midnight),
                parts.get(f"{prefix}_count", 0.0),
                parts.get(f"{prefix}_sum", 0.0),
                peak,
                *span,
            )
        )
        self.knots.append(() if quantiles is None else (0.0, *quantiles, peak))

    def days(self) -> Days:
        day, count, total, peak, first, last = (floats(c) for c in zip(*self.columns, strict=True))
        return Days(
            ints(self.series),
            day.astype(np.int64),
            count,
            total,
            peak,
            first,
            last,
            floats(self.knots).reshape(len(self.series), self.width),
        ).ordered()


def fold_delta(state: AgencyState, rows: Ranged, *, levels: Levels, until: float) -> None:
    """Fold the steps since the last cycle into the state's sketches."""
    index = _Index(state.keys)
    cpu: tuple[list[int], list[float], list[float]] = ([], [], [])
    memory: dict[tuple[int, float], list[float]] = {}
    periods: dict[tuple[int, float], list[float]] = {}
    slot = {"d_mem_max": 0, "d_mem_sum": 1, "d_mem_count": 2}
    for labels, points in rows:
        part, number = labels.get(PART, ""), index(_key(labels))
        if part == "d_cpu":
            for t, value in points:
                cpu[0].append(number)
                cpu[1].append(t)
                cpu[2].append(value)
        elif part in slot:
            for t, value in points:
                memory.setdefault((number, t), [math.nan, 0.0, 0.0])[slot[part]] = value
        elif part in ("d_thr", "d_per"):  # throttled and all CFS periods: sum and count
            for t, value in points:
                periods.setdefault((number, t), [0.0, 0.0, 0.0])[1 + (part == "d_per")] = value
    kept = [(n, t, *v) for (n, t), v in sorted(memory.items()) if v[2] > 0 and not math.isnan(v[0])]
    memory_steps = Steps.of(*zip(*kept, strict=True)) if kept else Steps.empty()
    cpu_steps = Steps.of(cpu[0], cpu[1], cpu[2], cpu[2], np.ones(len(cpu[0])))
    for resource, steps in (
        ("cpu", cpu_steps.ordered()),
        ("memory", memory_steps),
        ("throttling", _steps(periods)),
    ):
        if len(steps):
            chosen = levels.of(resource)
            sketch = state.sketches.get(resource) or Sketch.empty(chosen)
            state.sketches[resource] = fold(sketch, steps, levels=chosen, until=until)


def _steps(found: dict[tuple[int, float], list[float]]) -> Steps:
    """Steps from (series, t) -> [peak, sum, count], ordered; those without a count left out."""
    kept = [(n, t, *v) for (n, t), v in sorted(found.items()) if v[2] > 0]
    return Steps.of(*zip(*kept, strict=True)) if kept else Steps.empty()


def forget_before(state: AgencyState, start: float) -> None:
    """Drop days (and containers) that no longer touch a window starting at ``start``."""
    sketches = {r: forget(s, start=start) for r, s in state.sketches.items()}
    sketches = {r: s for r, s in sketches.items() if len(s.days) or len(s.steps)}
    used = np.unique(np.concatenate([s.series() for s in sketches.values()] or [ints([])]))
    if len(used) < len(state.keys):
        number = np.full(len(state.keys), -1)
        number[used] = np.arange(len(used))
        state.keys = [state.keys[i] for i in used.tolist()]
        sketches = {
            r: Sketch(
                replace(s.days, series=number[s.days.series]),
                replace(s.steps, series=number[s.steps.series]),
            )
            for r, s in sketches.items()
        }
    state.sketches = sketches


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
    for resource, sketch in state.sketches.items():
        wanted = {s: quantile_of(s) for s in stats.get(resource, ())}
        figures = window_figures(
            sketch,
            start=window.start,
            end=window.end,
            levels=levels.of(resource),
            size=len(state.keys),
            wanted=[q for q in wanted.values() if q is not None],
        )
        rows = _Rows(state.keys, figures, wanted)
        measured = np.flatnonzero(figures.count > 0).tolist()
        if resource == "throttling":
            rows.throttling(series, measured)
            continue
        daily = _daily(figures.days, window, cpu=resource == "cpu")
        for number in measured:
            if resource == "cpu":
                rows.cpu(series, number, window)
            else:
                rows.memory(series, number)
            points = daily.get(number)
            if points:
                part = "cpu_day_seconds" if resource == "cpu" else "mem_day_peak"
                series.daily[part].append((rows.labels(number), points))


class _Rows:
    """One resource's window figures as plain numbers, turned into the full path's rows."""

    def __init__(
        self, keys: list[ContainerKey], figures: WindowFigures, wanted: dict[str, float | None]
    ) -> None:
        self.keys, self.wanted = keys, wanted
        self.count, self.total = figures.count.tolist(), figures.total.tolist()
        self.peak = figures.peak.tolist()
        self.quantiles = {q: v.tolist() for q, v in figures.quantiles.items()}

    def labels(self, number: int) -> Labels:
        namespace, pod, container = self.keys[number]
        return {"namespace": namespace, "pod": pod, "container": container}

    def cpu(self, series: BatchSeries, number: int, window: Window) -> None:
        labels, count = self.labels(number), self.count[number]
        series.instant["cpu_seconds"].append((labels, self.total[number] * window.step))
        series.instant["cpu_samples"].append((labels, count * window.step / window.interval))
        self._stats(series, "cpustat", labels, number)

    def memory(self, series: BatchSeries, number: int) -> None:
        labels = self.labels(number)
        series.instant["mem_samples"].append((labels, self.count[number]))
        average = self.total[number] / self.count[number]
        series.instant["memstat_avg"].append((labels, average))
        self._stats(series, "memstat", labels, number)

    def throttling(self, series: BatchSeries, measured: list[int]) -> None:
        """The window's throttled ratio: throttled CFS periods (kept as the sum) over all
        CFS periods (kept as the count), as the full path's ``increase`` ratio."""
        for number in measured:
            ratio = self.total[number] / self.count[number]
            series.instant["throttled"].append((self.labels(number), ratio))

    def _stats(self, series: BatchSeries, prefix: str, labels: Labels, number: int) -> None:
        for stat, level in self.wanted.items():
            if stat == "max":
                series.instant[f"{prefix}_max"].append((labels, self.peak[number]))
            elif level is not None and level in self.quantiles:
                value = self.quantiles[level][number]
                if not math.isnan(value):  # NaN: no quantile for this series
                    series.instant[f"{prefix}_{stat}"].append((labels, value))


def _daily(days: Days, window: Window, *, cpu: bool) -> dict[int, list[tuple[float, float]]]:
    """One value per day and series, placed so that the newest UTC day is the window's
    last day."""
    newest = day_of(window.end)
    position = window.days - 1 - (newest - days.day)
    if cpu:
        value = np.where(
            days.day == newest,
            days.total / np.maximum(days.count, 1.0) * DAY_SECONDS,
            days.total * window.step,
        )
    else:
        value = days.peak
    kept = position >= 0
    series = days.series[kept].tolist()
    stamps = (window.start + (position[kept] + 1) * DAY_SECONDS).tolist()
    found: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for number, stamp, amount in zip(series, stamps, value[kept].tolist(), strict=True):
        found[number].append((stamp, amount))
    return found
