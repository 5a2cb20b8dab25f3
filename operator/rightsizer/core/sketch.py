"""Compact usage state per series, for incremental evaluation (pure).

A series is one pod's container's use of one resource, read at a fixed step (the CPU
resolution step: one ``rate`` point per step; for memory each step holds the step's peak,
sum and count of raw samples). A ``SeriesSketch`` keeps one ``DaySummary`` per closed UTC
day (points, sum, peak, first and last point, and quantile *knots*: the day's values at
fixed levels, from 0 (the minimum) to 1 (the maximum)) plus the open day's points. Folding
new points closes days as they end; ``window_summary`` answers for a window ending at
``end`` what the full path computes from the raw series: count, sum, peak, quantiles and
per-day figures.

Quantiles over the window come from the mixture of the days' distributions, each day
piecewise linear between its knots, weighted by its points (the oldest day by its overlap
with the window). They are exact at a knot level when every day has the same shape, and
otherwise interpolated: see ``adapters/incremental.py`` for the measured tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

DAY_SECONDS = 86400


@dataclass(slots=True)
class Point:
    """One step's reading, at the step's end ``t`` (epoch seconds). Not frozen, though never
    changed: a state holds millions, built in a quarter of a frozen dataclass' time."""

    t: float
    peak: float
    total: float
    count: float


@dataclass(slots=True)
class DaySummary:
    """One closed UTC day (``day`` = epoch seconds // 86400) of one series (not frozen for
    the same reason as ``Point``)."""

    day: int
    count: float
    total: float
    peak: float
    first: float
    last: float
    knots: tuple[float, ...] = ()  # values at (0, *levels, 1); empty: no quantiles kept


@dataclass(slots=True)
class SeriesSketch:
    days: list[DaySummary] = field(default_factory=list)  # closed days, oldest first
    points: list[Point] = field(default_factory=list)  # the open day's, oldest first


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """What the window holds for one series: totals, quantiles and per-day figures."""

    count: float
    total: float
    peak: float
    quantiles: dict[float, float]
    days: tuple[DaySummary, ...]  # every day touching the window, oldest first (open day last)


def day_of(t: float) -> int:
    """The UTC day a point belongs to: a point at midnight ends the day before."""
    return math.ceil(t / DAY_SECONDS) - 1


def quantile(sorted_values: Sequence[float], level: float) -> float:
    """Prometheus' ``quantile_over_time``: linear between the two nearest ranks."""
    if not sorted_values:
        return math.nan
    rank = level * (len(sorted_values) - 1)
    lower = math.floor(rank)
    upper = min(lower + 1, len(sorted_values) - 1)
    weight = rank - lower
    return sorted_values[lower] * (1 - weight) + sorted_values[upper] * weight


def summarise_day(
    day: int, points: Sequence[Point], *, levels: Sequence[float] | None
) -> DaySummary:
    """A day from its points; knots from the points' means when ``levels`` is given."""
    knots: tuple[float, ...] = ()
    if levels is not None:
        values = sorted(p.total / p.count for p in points if p.count > 0)
        knots = tuple(quantile(values, level) for level in (0.0, *levels, 1.0))
    return DaySummary(
        day=day,
        count=sum(p.count for p in points),
        total=sum(p.total for p in points),
        peak=max(p.peak for p in points),
        first=points[0].t,
        last=points[-1].t,
        knots=knots,
    )


def fold(sketch: SeriesSketch, points: Iterable[Point], *, levels: Sequence[float] | None) -> None:
    """Add points (newer than anything folded, oldest first), closing days as they end."""
    for point in points:
        if sketch.points and day_of(point.t) != day_of(sketch.points[0].t):
            close_day(sketch, levels=levels)
        if levels is None and len(sketch.points) >= 2:
            # no quantiles kept: the open day is its first point and a running aggregate
            last = sketch.points[-1]
            sketch.points[-1] = Point(
                point.t,
                max(last.peak, point.peak),
                last.total + point.total,
                last.count + point.count,
            )
        else:
            sketch.points.append(point)


def close_day(sketch: SeriesSketch, *, levels: Sequence[float] | None) -> None:
    if sketch.points:
        day = day_of(sketch.points[0].t)
        sketch.days.append(summarise_day(day, sketch.points, levels=levels))
        sketch.points = []


def trim(sketch: SeriesSketch, *, start: float) -> None:
    """Forget the days that end before ``start`` (the window's start)."""
    sketch.days = [d for d in sketch.days if (d.day + 1) * DAY_SECONDS > start]


def window_summary(
    sketch: SeriesSketch,
    *,
    start: float,
    end: float,
    levels: Sequence[float] | None,
    wanted: Sequence[float] = (),
) -> WindowSummary | None:
    """The window (start, end]'s figures; None when the series has no point in it."""
    open_points = [p for p in sketch.points if start < p.t <= end]
    days = [d for d in sketch.days if d.last > start and d.first <= end]
    if open_points:
        days.append(summarise_day(day_of(open_points[0].t), open_points, levels=levels))
    if not days:
        return None
    weights = [_overlap(d, start) for d in days]
    count = sum(d.count * w for d, w in zip(days, weights, strict=True))
    total = sum(d.total * w for d, w in zip(days, weights, strict=True))
    peaks = [d.peak for d, w in zip(days, weights, strict=True) if w >= 0.5]
    found: dict[float, float] = {}
    if wanted and levels is not None:
        found = mixture_quantiles(days, weights, levels=levels, wanted=wanted)
    return WindowSummary(
        count=count,
        total=total,
        peak=max(peaks or [days[-1].peak]),
        quantiles=found,
        days=tuple(days),
    )


def _overlap(day: DaySummary, start: float) -> float:
    """The share of a day's points after ``start`` (1 unless the window starts inside it)."""
    if day.first > start:
        return 1.0
    span = day.last - day.first
    return 0.0 if span <= 0 else min(1.0, (day.last - start) / span)


def mixture_quantiles(
    days: Sequence[DaySummary],
    weights: Sequence[float],
    *,
    levels: Sequence[float],
    wanted: Sequence[float],
) -> dict[float, float]:
    """Quantiles of the mixture of the days' piecewise-linear distributions (one sweep)."""
    grid = (0.0, *levels, 1.0)
    events: list[tuple[float, float, float]] = []  # (x, slope change, point mass)
    total = 0.0
    for day, weight in zip(days, weights, strict=True):
        mass = day.count * weight
        if mass <= 0 or len(day.knots) != len(grid):
            continue
        total += mass
        knots = list(zip(grid, day.knots, strict=True))
        for (q0, x0), (q1, x1) in pairwise(knots):
            share = (q1 - q0) * mass
            if x1 > x0:
                events.append((x0, share / (x1 - x0), 0.0))
                events.append((x1, -share / (x1 - x0), 0.0))
            else:
                events.append((x0, 0.0, share))
    if total <= 0:
        return {}
    events.sort()
    return _sweep(events, [(q, q * total) for q in sorted(wanted)])


def _sweep(
    events: list[tuple[float, float, float]], targets: list[tuple[float, float]]
) -> dict[float, float]:
    found: dict[float, float] = {}
    cumulative, slope, x = 0.0, 0.0, events[0][0]
    pending = iter(targets)
    target = next(pending, None)
    for ex, dslope, mass in events:
        while target is not None and slope > 0 and cumulative + slope * (ex - x) >= target[1]:
            found[target[0]] = x + (target[1] - cumulative) / slope
            target = next(pending, None)
        cumulative += slope * (ex - x)
        x = ex
        slope = max(0.0, slope + dslope)
        cumulative += mass
        while target is not None and cumulative >= target[1] - 1e-9 * abs(target[1]):
            found[target[0]] = x
            target = next(pending, None)
    while target is not None:
        found[target[0]] = x
        target = next(pending, None)
    return found
