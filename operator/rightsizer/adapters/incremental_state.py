"""Query rows -> sketches (seed and fold), and sketches -> the figures the full path's queries
would have returned (so ``assemble`` and the core run unchanged)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from rightsizer.adapters.assemble import BatchSeries, Labels, Ranged
from rightsizer.adapters.promql import PART, quantile_of
from rightsizer.adapters.statecodec import AgencyState, ContainerKey
from rightsizer.core.columns import Days, Floats, Ints, Steps, day_of, floats, ints
from rightsizer.core.sketch import DAY_SECONDS, Sketch, fold, forget
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
    points: dict[str, _Points] = defaultdict(_Points)
    for labels, found in rows:
        if found:
            points[labels.get(PART, "")].add(index(_key(labels)), found)
    cpu = points["d_cpu"]
    series, t, (peak, total, count) = _joined(
        [points["d_mem_max"], points["d_mem_sum"], points["d_mem_count"]], (math.nan, 0.0, 0.0)
    )
    memory = _counted(series, t, peak, total, count, keep=~np.isnan(peak))
    # throttled and all CFS periods: the step's sum and count (no peak)
    series, t, (total, count) = _joined([points["d_thr"], points["d_per"]], (0.0, 0.0))
    periods = _counted(series, t, np.zeros(len(t)), total, count)
    for resource, steps in (
        ("cpu", Steps.of(cpu.series, cpu.t, cpu.value, cpu.value, np.ones(len(cpu.t))).ordered()),
        ("memory", memory),
        ("throttling", periods),
    ):
        if len(steps):
            chosen = levels.of(resource)
            sketch = state.sketches.get(resource) or Sketch.empty(chosen)
            state.sketches[resource] = fold(sketch, steps, levels=chosen, until=until)


@dataclass
class _Points:
    """One part's points: series number, time and value of each."""

    series: list[int] = field(default_factory=list)
    t: list[float] = field(default_factory=list)
    value: list[float] = field(default_factory=list)

    def add(self, number: int, points: list[tuple[float, float]]) -> None:
        times, values = zip(*points, strict=True)
        self.series.extend([number] * len(points))
        self.t.extend(times)
        self.value.extend(values)


def _joined(parts: list[_Points], missing: tuple[float, ...]) -> tuple[Ints, Floats, list[Floats]]:
    """The parts' values side by side per (series, time), ordered by series then time; a
    part without a point there has its ``missing`` value."""
    series = ints([n for part in parts for n in part.series])
    t = floats([time for part in parts for time in part.t])
    if not len(series):
        return series, t, [floats([]) for _ in parts]
    order = np.lexsort((t, series))
    first = np.ones(len(order), dtype=np.bool_)
    first[1:] = (np.diff(series[order]) != 0) | (np.diff(t[order]) != 0)
    slot = np.empty(len(order), dtype=np.int64)
    slot[order] = np.cumsum(first) - 1  # each point's (series, time) row
    rows = np.flatnonzero(first)
    columns = []
    offset = 0
    for part, value in zip(parts, missing, strict=True):
        column = np.full(len(rows), value)
        column[slot[offset : offset + len(part.t)]] = part.value
        offset += len(part.t)
        columns.append(column)
    return series[order][rows], t[order][rows], columns


def _counted(
    series: Ints,
    t: Floats,
    peak: Floats,
    total: Floats,
    count: Floats,
    *,
    keep: npt.NDArray[np.bool_] | bool = True,
) -> Steps:
    """Steps with a count (and what ``keep`` keeps), ordered by series then time."""
    kept = (count > 0) & keep
    return Steps.of(series[kept], t[kept], peak[kept], total[kept], count[kept])


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
    """Add to ``series`` what the full path's usage queries would have returned, keyed by
    container (``BatchSeries.keyed``): a whole resource's figures at a time, no labels."""
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
        measured = np.flatnonzero(figures.count > 0)
        keys = [state.keys[number] for number in measured.tolist()]
        count, total = figures.count[measured], figures.total[measured]
        if resource == "throttling":
            # throttled CFS periods (kept as the sum) over all CFS periods (kept as the
            # count), as the full path's ``increase`` ratio
            _put(series, "throttled", keys, total / count)
            continue
        if resource == "cpu":
            prefix, day_part = "cpustat", "cpu_day_seconds"
            _put(series, "cpu_seconds", keys, total * window.step)
            _put(series, "cpu_samples", keys, count * window.step / window.interval)
        else:
            prefix, day_part = "memstat", "mem_day_peak"
            _put(series, "mem_samples", keys, count)
            _put(series, "memstat_avg", keys, total / count)
        for stat, level in wanted.items():
            if stat == "max":
                _put(series, f"{prefix}_max", keys, figures.peak[measured])
            elif level is not None and level in figures.quantiles:
                values = figures.quantiles[level][measured]
                known = ~np.isnan(values)  # NaN: no quantile for this series
                chosen = [key for key, ok in zip(keys, known.tolist(), strict=True) if ok]
                _put(series, f"{prefix}_{stat}", chosen, values[known])
        series.keyed_daily[day_part].update(
            _daily(figures.days, window, keys=state.keys, measured=measured, cpu=resource == "cpu")
        )


def _put(series: BatchSeries, part: str, keys: list[ContainerKey], values: Floats) -> None:
    series.keyed[part].update(zip(keys, values.tolist(), strict=True))


def _daily(
    days: Days, window: Window, *, keys: list[ContainerKey], measured: Ints, cpu: bool
) -> dict[ContainerKey, dict[int, float]]:
    """The measured series' value per day, by day index (0 = the window's oldest), placed so
    that the newest UTC day is the window's last day."""
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
    kept = (position >= 0) & np.isin(days.series, measured)
    found: dict[ContainerKey, dict[int, float]] = defaultdict(dict)
    for number, day, amount in zip(
        days.series[kept].tolist(), position[kept].tolist(), value[kept].tolist(), strict=True
    ):
        found[keys[number]][day] = amount
    return found
