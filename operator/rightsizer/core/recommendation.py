"""Recommendations: per container and resource, a target and the request and limit to propose.

The estimator gives the target; the rules that hold give the direction a change may take
(a downsize rule never raises, an upsize rule never lowers); the policy's limits rule makes
the limit follow the request, and a request is never proposed above its limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from rightsizer.core.estimators import EstimationFacts, build_estimator
from rightsizer.core.model import (
    ContainerResources,
    ContainerUsage,
    Frozen,
    Resource,
    trusted,
)
from rightsizer.core.policy import RecommendationPolicy
from rightsizer.core.rules import RuleMatch
from rightsizer.core.units import human, round_up_quantity

Change = Literal["down", "up", "none"]
RESIZABLE: tuple[Resource, ...] = ("cpu", "memory")


class ResourceRecommendation(Frozen):
    """What to do with one container's request (and limit) of one resource, and why."""

    resource: Resource
    current_request: float | None
    current_limit: float | None
    target: float
    lower: float
    upper: float
    request: float | None  # proposed request (the current one when no change)
    limit: float | None  # proposed limit
    change: Change
    reasons: tuple[str, ...]

    @property
    def delta(self) -> float:
        """Request released (positive) or added (negative) per replica."""
        if self.change == "none" or self.current_request is None or self.request is None:
            return 0.0
        return self.current_request - self.request


class ContainerRecommendation(Frozen):
    container: str
    resources: dict[Resource, ResourceRecommendation]

    @property
    def changes(self) -> list[ResourceRecommendation]:
        return [rec for rec in self.resources.values() if rec.change != "none"]


def allowed_changes(matches: Sequence[RuleMatch], resource: Resource) -> tuple[Change, str | None]:
    """The direction the rules allow for ``resource``: upsize wins over downsize."""
    for action, change in (("upsize", "up"), ("downsize", "down")):
        for match in matches:
            if match.action == action and resource in match.resources:
                return change, match.rule  # type: ignore[return-value]
    return "none", None


def recommend_resource(
    container: ContainerResources,
    measured: ContainerUsage,
    resource: Resource,
    policy: RecommendationPolicy,
    *,
    matches: Sequence[RuleMatch],
    ceiling: float | None = None,
) -> ResourceRecommendation | None:
    stats = measured.resources.get(resource)
    if stats is None:
        return None
    facts = EstimationFacts(
        resource=resource,
        stats=stats,
        current_request=container.requests.get(resource),
        current_limit=container.limits.get(resource),
        oom_kills=measured.oom_kills,
        oom_memory=measured.oom_memory,
        throttled_ratio=measured.throttled_ratio,
        ceiling=ceiling,
    )
    estimate = build_estimator(policy, resource).estimate(facts)
    if estimate is None:
        return None
    unchanged = facts.current_request is not None and estimate.value == facts.current_request
    target = estimate.value if unchanged else round_up_quantity(resource, estimate.value)
    settings = policy.for_resource(resource)
    lower = stats.stat(settings.stat) or target
    upper = max(target, (stats.stat("max") or target) * (1 + settings.headroom))
    change, reasons = _direction(facts, target, matches, resource, estimate.reasons)
    request = target if change != "none" else facts.current_request
    limit = (
        follow_limit(
            policy,
            resource,
            current_request=facts.current_request,
            current_limit=facts.current_limit,
            request=request,
        )
        if change != "none"
        else facts.current_limit
    )
    return trusted(
        ResourceRecommendation,
        resource=resource,
        current_request=facts.current_request,
        current_limit=facts.current_limit,
        target=target,
        lower=lower,
        upper=upper,
        request=request,
        limit=limit,
        change=change,
        reasons=reasons,
    )


def _direction(
    facts: EstimationFacts,
    target: float,
    matches: Sequence[RuleMatch],
    resource: Resource,
    reasons: tuple[str, ...],
) -> tuple[Change, tuple[str, ...]]:
    current = facts.current_request
    if current is None:
        return "none", (*reasons, f"no {resource} request: recommendation only, QoS class kept")
    wanted: Change = "down" if target < current else "up" if target > current else "none"
    allowed, rule = allowed_changes(matches, resource)
    if wanted == "none":
        return "none", (*reasons, "no change worth making")
    if allowed == "none":
        return "none", (*reasons, "no rule asks for a change")
    if wanted != allowed:
        return "none", (*reasons, f"rule {rule} allows {allowed} only; the target is {wanted}")
    verb = "lower" if wanted == "down" else "raise"
    return wanted, (
        *reasons,
        f"rule {rule}: {verb} {human(resource, current)} -> {human(resource, target)}",
    )


def follow_limit(
    policy: RecommendationPolicy,
    resource: Resource,
    *,
    current_request: float | None,
    current_limit: float | None,
    request: float | None,
) -> float | None:
    """The limit that goes with a new request, per the policy; never below the request."""
    if request is None or current_limit is None:
        return current_limit
    if policy.limits == "unset":
        return None
    if policy.limits == "equalRequests":
        return request
    ratio = current_limit / current_request if current_request else 1.0
    return round_up_quantity(resource, max(request, request * ratio))


def recommend_container(
    container: ContainerResources,
    measured: ContainerUsage | None,
    policy: RecommendationPolicy,
    *,
    matches: Sequence[RuleMatch],
    resources: Sequence[Resource] = RESIZABLE,
) -> ContainerRecommendation:
    recommendations: dict[Resource, ResourceRecommendation] = {}
    if measured is not None:
        for resource in resources:
            if resource not in RESIZABLE:
                continue
            rec = recommend_resource(container, measured, resource, policy, matches=matches)
            if rec is not None:
                recommendations[resource] = rec
    return trusted(ContainerRecommendation, container=container.name, resources=recommendations)
