"""Compact usage state per resource of an agency, for incremental evaluation (pure).

A series is one pod's container's use of one resource, read at a fixed step (the CPU
resolution step: one ``rate`` point per step; for memory each step holds the step's peak,
sum and count of raw samples). A ``Sketch`` keeps, for every series of an agency, one row per
complete UTC day (points, sum, peak, first and last point, and quantile *knots*: the day's
values at fixed levels, from 0 (the minimum) to 1 (the maximum)) plus the steps of the day
not yet complete; without quantile levels the open day is a row too, merged as steps come.
``fold`` adds new steps and closes the days that ended; ``window`` answers for a window
ending at ``end`` what the full path computes from the raw series: count, sum, peak,
quantiles and per-day figures, for every series at once (``core.columns``).

Quantiles over the window come from the mixture of the days' distributions, each day
piecewise linear between its knots, weighted by its points (the oldest day by its overlap
with the window). They are exact at a knot level when every day has the same shape, and
otherwise interpolated: see ``adapters/incremental.py`` for the measured tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rightsizer.core.columns import (
    DAY_SECONDS,
    Days,
    Floats,
    Ints,
    Steps,
    days_of,
    floats,
    group_starts,
    merge_days,
    summarise,
)

__all__ = ["DAY_SECONDS", "Sketch", "WindowFigures", "fold", "forget", "quantile", "window"]


@dataclass(frozen=True)
class Sketch:
    """One resource of every series of an agency (rows grouped by series)."""

    days: Days
    steps: Steps

    @classmethod
    def empty(cls, levels: Sequence[float] | None) -> Sketch:
        return cls(Days.empty(0 if levels is None else len(levels) + 2), Steps.empty())

    def series(self) -> Ints:
        return np.union1d(self.days.series, self.steps.series)


@dataclass(frozen=True)
class WindowFigures:
    """What the window holds for each series (arrays indexed by series; a series without
    points in the window has count 0): totals, quantiles (NaN where none) and its days."""

    count: Floats
    total: Floats
    peak: Floats
    quantiles: dict[float, Floats]
    days: Days  # every day touching the window (the open one too), by series, oldest first


def quantile(sorted_values: Sequence[float], level: float) -> float:
    """Prometheus' ``quantile_over_time``: linear between the two nearest ranks."""
    if not sorted_values:
        return math.nan
    rank = level * (len(sorted_values) - 1)
    lower = math.floor(rank)
    upper = min(lower + 1, len(sorted_values) - 1)
    weight = rank - lower
    return sorted_values[lower] * (1 - weight) + sorted_values[upper] * weight


def fold(sketch: Sketch, steps: Steps, *, levels: Sequence[float] | None, until: float) -> Sketch:
    """Add the steps newer than what each series holds, then close every day complete by
    ``until`` (no later step can fall into it). Without quantile levels every day is a row
    at once, merged with the steps that follow."""
    fresh = steps.where(steps.t > _newest(sketch, steps.series))
    fresh = fresh.where(fresh.count > 0)
    if levels is None:
        return Sketch(merge_days(sketch.days, summarise(fresh, levels=None)), Steps.empty())
    pending = sketch.steps.then(fresh)
    done = days_of(pending.t) < math.floor(until / DAY_SECONDS)
    closed = summarise(pending.where(done), levels=levels)
    return Sketch(sketch.days.then(closed).ordered(), pending.where(~done).ordered())


def _newest(sketch: Sketch, series: Ints) -> Floats:
    """Each of ``series``' newest time already held (-inf when none)."""
    size = int(max(series.max(initial=-1), sketch.series().max(initial=-1))) + 1
    newest = np.full(size, -np.inf)
    np.maximum.at(newest, sketch.days.series, sketch.days.last)
    np.maximum.at(newest, sketch.steps.series, sketch.steps.t)
    return newest[series]


def forget(sketch: Sketch, *, start: float) -> Sketch:
    """Drop the days that end, and the steps that lie, before ``start`` (a window's start)."""
    days = sketch.days
    return Sketch(
        days.where((days.day + 1) * DAY_SECONDS > start),
        sketch.steps.where(sketch.steps.t > start),
    )


def window(
    sketch: Sketch,
    *,
    start: float,
    end: float,
    levels: Sequence[float] | None,
    size: int,
    wanted: Sequence[float] = (),
) -> WindowFigures:
    """The window (start, end]'s figures for series 0..size-1."""
    t = sketch.steps.t
    open_days = summarise(sketch.steps.where((t > start) & (t <= end)), levels=levels)
    days = sketch.days.where((sketch.days.last > start) & (sketch.days.first <= end))
    rows = days.then(open_days).ordered()
    weight = _overlap(rows, start)
    count = floats(np.bincount(rows.series, weights=rows.count * weight, minlength=size))
    total = floats(np.bincount(rows.series, weights=rows.total * weight, minlength=size))
    found = {}
    if wanted and levels is not None:
        found = mixture_quantiles(rows, weight, levels=levels, wanted=wanted, size=size)
    return WindowFigures(count, total, _peaks(rows, weight, size), found, rows)


def _overlap(days: Days, start: float) -> Floats:
    """The share of each day's points after ``start`` (1 unless the window starts inside)."""
    span = days.last - days.first
    inside = np.divide(days.last - start, span, out=np.zeros(len(days)), where=span > 0)
    return np.where(days.first > start, 1.0, np.minimum(1.0, inside))


def _peaks(rows: Days, weight: Floats, size: int) -> Floats:
    """Each series' largest peak of the days mostly in the window (else its newest day's)."""
    peaks = np.full(size, -np.inf)
    mostly = weight >= 0.5
    np.maximum.at(peaks, rows.series[mostly], rows.peak[mostly])
    newest = np.zeros(size)
    if len(rows):
        ends = np.append(group_starts(rows.series)[1:], len(rows)) - 1
        newest[rows.series[ends]] = rows.peak[ends]
    return np.where(np.isfinite(peaks), peaks, newest)


def mixture_quantiles(
    rows: Days,
    weight: Floats,
    *,
    levels: Sequence[float],
    wanted: Sequence[float],
    size: int,
) -> dict[float, Floats]:
    """Quantiles of each series' mixture of its days' piecewise-linear distributions."""
    grid = np.array((0.0, *levels, 1.0))
    mass = rows.count * weight
    usable = mass > 0
    if rows.knots.shape[1] == len(grid):
        usable &= ~np.isnan(rows.knots).any(axis=1)
    else:
        usable[:] = False
    events = _events(rows.where(usable), mass[usable], grid)
    totals = np.bincount(rows.series[usable], weights=mass[usable], minlength=size)
    return {q: _sweep(events, floats(q * totals)) for q in wanted}


@dataclass(frozen=True)
class _Events:
    """A mixture's breakpoints sorted per series: where the density's slope changes, the
    cumulative mass reached there, and the slope after each."""

    series: Ints
    x: Floats
    mass: Floats  # point mass at the event
    slope: Floats  # after the event
    reached: Floats  # cumulative mass after the event (its point mass included)
    starts: Ints  # each series' first event


def _events(rows: Days, mass: Floats, grid: Floats) -> _Events:
    x0, x1 = rows.knots[:, :-1], rows.knots[:, 1:]
    share = np.diff(grid)[None, :] * mass[:, None]
    series = np.broadcast_to(rows.series[:, None], x0.shape)
    rising = x1 > x0
    slope = np.divide(share, x1 - x0, out=np.zeros_like(share), where=rising)
    flat = ~rising
    nothing = np.zeros(int(rising.sum()))
    s = np.concatenate((series[rising], series[rising], series[flat]))
    x = np.concatenate((x0[rising], x1[rising], x0[flat]))
    change = np.concatenate((slope[rising], -slope[rising], np.zeros(int(flat.sum()))))
    point = np.concatenate((nothing, nothing, share[flat]))
    order = np.lexsort((point, change, x, s))
    s, x, change, point = s[order], x[order], change[order], point[order]
    starts = group_starts(s)
    first = np.zeros(len(s), dtype=np.bool_)
    first[starts] = True
    slope_after = np.maximum(0.0, _group_cumsum(change, starts))
    gained = np.zeros(len(s))
    gained[1:] = slope_after[:-1] * np.diff(x)
    gained[first] = 0.0
    return _Events(s, x, point, slope_after, _group_cumsum(gained + point, starts), starts)


def _group_cumsum(values: Floats, starts: Ints) -> Floats:
    """Running sums restarting at each group's start."""
    running = np.cumsum(values)
    if not len(starts):
        return running
    before = running[starts] - values[starts]
    sizes = np.diff(np.append(starts, len(values)))
    return running - np.repeat(before, sizes)


def _sweep(events: _Events, targets: Floats) -> Floats:
    """Each series' first point where the mixture reaches its target (NaN: no mass)."""
    found = np.full(len(targets), np.nan)
    if not len(events.starts):
        return found
    groups = events.series[events.starts]
    goal = targets[groups]
    ends = np.append(events.starts[1:], len(events.x))
    index = _first_reaching(events.reached, events.starts, ends, goal - 1e-9 * np.abs(goal))
    missed = index >= ends
    index = np.where(missed, ends - 1, index)
    x = events.x[index]
    previous = np.maximum(index - 1, events.starts)
    slope = events.slope[previous]
    continuous = (
        ~missed
        & (index > events.starts)
        & (events.reached[index] - events.mass[index] >= goal)
        & (slope > 0)
    )
    between = events.x[previous] + np.divide(
        goal - events.reached[previous], slope, out=np.zeros(len(goal)), where=slope > 0
    )
    found[groups] = np.where(continuous, between, x)
    return found


def _first_reaching(values: Floats, lo: Ints, hi: Ints, goal: Floats) -> Ints:
    """Per group [lo, hi) of non-decreasing ``values``: the first index reaching ``goal``
    (``hi`` when none does), by a binary search run for all groups at once."""
    lo, hi = lo.copy(), hi.copy()
    last = len(values) - 1
    while (open_ := lo < hi).any():
        middle = (lo + hi) // 2
        reached = values[np.minimum(middle, last)] >= goal
        hi = np.where(open_ & reached, middle, hi)
        lo = np.where(open_ & ~reached, middle + 1, lo)
    return lo
