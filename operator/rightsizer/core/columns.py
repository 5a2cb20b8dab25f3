"""Usage state as columns (pure): one row per series and step, or per series and UTC day.

A state holds the steps and days of every series of an agency (15,000 containers hold
millions of steps): kept and computed as numpy columns, a cycle costs a few array operations
per agency instead of Python work per step. A series is an index into the agency's list of
containers; rows are kept grouped by series, oldest first within a series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Self

import numpy as np
import numpy.typing as npt

DAY_SECONDS = 86400

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


def day_of(t: float) -> int:
    """The UTC day a point belongs to: a point at midnight ends the day before."""
    return math.ceil(t / DAY_SECONDS) - 1


def days_of(t: Floats) -> Ints:
    return (np.ceil(t / DAY_SECONDS) - 1).astype(np.int64)


def floats(values: npt.ArrayLike) -> Floats:
    return np.asarray(values, dtype=np.float64)


def ints(values: npt.ArrayLike) -> Ints:
    return np.asarray(values, dtype=np.int64)


class _Table:
    """Columns of one length; ``where``, ``take`` and ``then`` keep them together."""

    def where(self, mask: Mask | Ints) -> Self:
        return type(self)(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})  # type: ignore[arg-type]

    def then(self, other: Self) -> Self:
        if not len(self):
            return other
        if not len(other):
            return self
        joined = {
            f.name: np.concatenate((getattr(self, f.name), getattr(other, f.name)))
            for f in fields(self)  # type: ignore[arg-type]
        }
        return type(self)(**joined)

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Steps(_Table):
    """One row per series and step: the step's end ``t``, peak, sum and count of samples
    (a CPU step is one rate value: peak = total, count = 1)."""

    series: Ints
    t: Floats
    peak: Floats
    total: Floats
    count: Floats

    @classmethod
    def empty(cls) -> Steps:
        return cls.of([], [], [], [], [])

    @classmethod
    def of(
        cls,
        series: npt.ArrayLike,
        t: npt.ArrayLike,
        peak: npt.ArrayLike,
        total: npt.ArrayLike,
        count: npt.ArrayLike,
    ) -> Steps:
        return cls(ints(series), floats(t), floats(peak), floats(total), floats(count))

    def ordered(self) -> Steps:
        return self.where(np.lexsort((self.t, self.series)))


@dataclass(frozen=True)
class Days(_Table):
    """One row per series and UTC day: points, sum, peak, first and last point, and the
    day's quantile knots (values at 0, *levels, 1; zero columns when none are kept)."""

    series: Ints
    day: Ints
    count: Floats
    total: Floats
    peak: Floats
    first: Floats
    last: Floats
    knots: Floats  # rows x (levels + 2), or rows x 0

    @classmethod
    def empty(cls, width: int = 0) -> Days:
        none = floats([])
        return cls(ints([]), ints([]), none, none, none, none, none, np.zeros((0, width)))

    def ordered(self) -> Days:
        return self.where(np.lexsort((self.day, self.series)))


def group_starts(*keys: Ints) -> Ints:
    """Where each run of equal keys begins, in rows sorted by those keys."""
    if not len(keys[0]):
        return ints([])
    change = np.zeros(len(keys[0]), dtype=np.bool_)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change)


def summarise(steps: Steps, *, levels: Sequence[float] | None) -> Days:
    """Each series' days from its steps (any order); knots from the steps' means when
    ``levels`` is given (linear between ranks, as Prometheus' ``quantile_over_time``)."""
    if not len(steps):
        return Days.empty(0 if levels is None else len(levels) + 2)
    day = days_of(steps.t)
    means = np.divide(steps.total, steps.count, out=np.zeros(len(steps)), where=steps.count > 0)
    order = np.lexsort((means, day, steps.series))
    rows, day, means = steps.where(order), day[order], means[order]
    starts = group_starts(rows.series, day)
    knots = np.zeros((len(starts), 0))
    if levels is not None:
        sizes = np.diff(np.append(starts, len(rows)))
        knots = group_quantiles(means, starts, sizes, (0.0, *levels, 1.0))
    return Days(
        series=rows.series[starts],
        day=day[starts],
        count=np.add.reduceat(rows.count, starts),
        total=np.add.reduceat(rows.total, starts),
        peak=np.maximum.reduceat(rows.peak, starts),
        first=np.minimum.reduceat(rows.t, starts),
        last=np.maximum.reduceat(rows.t, starts),
        knots=knots,
    )


def group_quantiles(values: Floats, starts: Ints, sizes: Ints, levels: Sequence[float]) -> Floats:
    """Quantiles of each group of sorted ``values`` (groups x levels)."""
    rank = np.outer(sizes - 1, levels)
    lower = np.floor(rank).astype(np.int64)
    upper = np.minimum(lower + 1, (sizes - 1)[:, None])
    weight = rank - lower
    base = starts[:, None]
    return floats(values[base + lower] * (1 - weight) + values[base + upper] * weight)


def merge_days(days: Days, fresh: Days) -> Days:
    """Rows of the same series and day combined (counts and sums added, peaks and spans
    widened); only for days without knots (they cannot be merged)."""
    joined = days.then(fresh).ordered()
    starts = group_starts(joined.series, joined.day)
    if len(starts) == len(joined):
        return joined
    return Days(
        series=joined.series[starts],
        day=joined.day[starts],
        count=np.add.reduceat(joined.count, starts),
        total=np.add.reduceat(joined.total, starts),
        peak=np.maximum.reduceat(joined.peak, starts),
        first=np.minimum.reduceat(joined.first, starts),
        last=np.maximum.reduceat(joined.last, starts),
        knots=joined.knots[starts],
    )
