"""Composable estimators: percentile -> trend -> headroom -> confidence -> floors -> clamp -> step.

Each stage takes an ``Estimate`` and the facts about one container's resource and returns
a new ``Estimate``, adding a reason whenever it moves the value. ``build_estimator`` stacks
the stages a policy asks for, in the VPA recommender's spirit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from rightsizer.core.model import Frozen, Resource, ResourceStats
from rightsizer.core.policy import DAY, RecommendationPolicy, duration_seconds
from rightsizer.core.units import human, parse_quantity


@dataclass(frozen=True, slots=True)
class Estimate:
    """A value on its way through the stages, with a reason for each move (plain data: an
    estimate lives only while the stages run)."""

    value: float
    reasons: tuple[str, ...] = ()

    def moved(self, value: float, reason: str) -> Estimate:
        if abs(value - self.value) <= 1e-12 * max(1.0, abs(self.value)):
            return self
        return Estimate(value=value, reasons=(*self.reasons, reason))


class EstimationFacts(Frozen):
    """What the stages may read about one container's use of one resource."""

    resource: Resource
    stats: ResourceStats
    current_request: float | None = None
    current_limit: float | None = None
    oom_kills: int = 0
    oom_memory: float | None = None
    throttled_ratio: float | None = None
    ceiling: float | None = None  # the largest value the cluster admits (LimitRange, node)


class Stage(Protocol):
    def __call__(self, estimate: Estimate, facts: EstimationFacts) -> Estimate: ...


@dataclass(frozen=True)
class Trend:
    """Memory that grows: project the daily peaks' linear trend over ``horizon_days``."""

    horizon_days: float

    def __call__(self, estimate: Estimate, facts: EstimationFacts) -> Estimate:
        peaks = facts.stats.daily_peaks
        slope = least_squares_slope(peaks)
        if slope is None or slope <= 0:
            return estimate
        projected = peaks[-1] + slope * self.horizon_days
        if projected <= estimate.value:
            return estimate
        return estimate.moved(
            projected,
            f"daily peaks grow {human(facts.resource, slope)}/day: "
            f"{human(facts.resource, projected)} expected within {self.horizon_days:g}d",
        )


@dataclass(frozen=True)
class Headroom:
    fraction: float

    def __call__(self, estimate: Estimate, facts: EstimationFacts) -> Estimate:
        return estimate.moved(
            estimate.value * (1 + self.fraction), f"+{self.fraction:.0%} headroom"
        )


@dataclass(frozen=True)
class Confidence:
    """Widen the target on short history: x (1 + scale / history days), as VPA does."""

    scale: float

    def __call__(self, estimate: Estimate, facts: EstimationFacts) -> Estimate:
        days = max(facts.stats.history_days, 1.0)
        factor = 1 + self.scale / days
        return estimate.moved(
            estimate.value * factor, f"x{factor:.2f} for {days:.0f} days of history"
        )


@dataclass(frozen=True)
class OomFloor:
    """Never below the memory a container was OOM-killed at, times ``bump``: the limit the
    killed pod had, when the data says (not the limit it has now: a container already raised
    since would be raised again for the same kill), else its current limit."""

    bump: float

    def __call__(self, estimate: Estimate, facts: EstimationFacts) -> Estimate:
        if facts.resource != "memory" or facts.oom_kills <= 0:
            return estimate
        peak = facts.stats.stat("max") or 0.0
        died_at = max(peak, facts.oom_memory or facts.current_limit or 0.0)
        floor = died_at * self.bump
        if floor <= estimate.value:
            return estimate
        return estimate.moved(
            floor,
            f"OOM-killed {facts.oom_kills}x at {human('memory', died_at)}: at least x{self.bump:g}",
        )


@dataclass(frozen=True)
class ThrottleFloor:
    """A throttled container's CPU is never lowered."""

    threshold: float

    def __call__(self, estimate: Estimate, facts: EstimationFacts) -> Estimate:
        ratio = facts.throttled_ratio
        if facts.resource != "cpu" or ratio is None or ratio <= self.threshold:
            return estimate
        floor = facts.current_request or 0.0
        if floor <= estimate.value:
            return estimate
        return estimate.moved(floor, f"cpu throttled in {ratio:.0%} of periods: not lowered")


@dataclass(frozen=True)
class Clamp:
    minimum: float
    maximum: float

    def __call__(self, estimate: Estimate, facts: EstimationFacts) -> Estimate:
        ceiling = min(self.maximum, facts.ceiling) if facts.ceiling else self.maximum
        bounded = min(max(estimate.value, self.minimum), ceiling)
        if bounded == estimate.value:
            return estimate
        if bounded > estimate.value:
            return estimate.moved(
                bounded, f"raised to the minimum {human(facts.resource, bounded)}"
            )
        return estimate.moved(bounded, f"capped at the maximum {human(facts.resource, bounded)}")


@dataclass(frozen=True)
class StepLimit:
    """At most ``down`` (a fraction) lower or ``up`` higher than the current request."""

    down: float
    up: float

    def __call__(self, estimate: Estimate, facts: EstimationFacts) -> Estimate:
        current = facts.current_request
        if not current:
            return estimate
        low, high = current * (1 - self.down), current * (1 + self.up)
        if estimate.value < low:
            return estimate.moved(low, f"step limited to -{self.down:.0%} per change")
        if estimate.value > high:
            return estimate.moved(high, f"step limited to +{self.up:.0%} per change")
        return estimate


@dataclass(frozen=True)
class MinChange:
    """Hysteresis: a change smaller than ``fraction`` of the current request is not worth it."""

    fraction: float

    def __call__(self, estimate: Estimate, facts: EstimationFacts) -> Estimate:
        current = facts.current_request
        if not current or abs(estimate.value - current) >= self.fraction * current:
            return estimate
        return estimate.moved(current, f"within {self.fraction:.0%} of the current request: kept")


@dataclass(frozen=True)
class Estimator:
    """A starting statistic and the stages applied to it, in order."""

    stat: str
    stages: tuple[Stage, ...]

    def estimate(self, facts: EstimationFacts) -> Estimate | None:
        base = facts.stats.stat(self.stat)
        if base is None:
            return None
        estimate = Estimate(
            value=base, reasons=(f"{facts.resource} {self.stat} {human(facts.resource, base)}",)
        )
        for stage in self.stages:
            estimate = stage(estimate, facts)
        return estimate


@lru_cache(maxsize=256)
def build_estimator(policy: RecommendationPolicy, resource: Resource) -> Estimator:
    """The stack a policy asks for, for ``resource`` ("cpu" or "memory"). A pure function of
    a frozen policy: built once per policy and resource, then shared (it is immutable)."""
    settings = policy.for_resource(resource)
    stages: list[Stage] = []
    if settings.trend:
        stages.append(Trend(horizon_days=duration_seconds(policy.trend_horizon) / DAY))
    stages.append(Headroom(settings.headroom))
    if policy.confidence > 0:
        stages.append(Confidence(policy.confidence))
    stages += [
        OomFloor(policy.oom_bump),
        ThrottleFloor(policy.throttled_floor),
        Clamp(parse_quantity(settings.min), parse_quantity(settings.max)),
        StepLimit(down=policy.max_step_down, up=policy.max_step_up),
        MinChange(policy.min_change),
    ]
    return Estimator(stat=settings.stat, stages=tuple(stages))


def least_squares_slope(values: Sequence[float]) -> float | None:
    """Slope per step of the least-squares line through ``values`` (None under 3 points)."""
    n = len(values)
    if n < 3:
        return None
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    numerator = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    return numerator / _squared_deviations(n)


@lru_cache(maxsize=64)
def _squared_deviations(n: int) -> float:
    """The sum of (x - mean x)^2 over 0..n-1: the same for every series of ``n`` points."""
    mean_x = (n - 1) / 2
    return sum((x - mean_x) ** 2 for x in range(n))
