"""What the cluster admits: a namespace's LimitRanges and the largest node's allocatable.

The adapter reads LimitRanges (type Container) and the nodes as plain data; ``bound_change``
keeps one decided change within them, after the estimator stack (the policy's min/max and
max step) has had its say. A value that crosses a bound is clamped and the reason says
which bound ("clamped to LimitRange max 2 CPU in namespace x"); a change that cannot honour
every bound at once (the policy's min above the LimitRange max, a clamp that would exceed
the max step or reverse the direction) is not made at all, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field

from rightsizer.core.model import Frozen, Resource
from rightsizer.core.policy import PolicySpec
from rightsizer.core.units import human, parse_quantity, round_up_quantity

if TYPE_CHECKING:  # decision.py calls bound_change: no import cycle at run time
    from rightsizer.core.decision import ResourceChange

BOUNDS_SKIP = "bounds"  # the skip reason code of a change no bound admits


class NamespaceBounds(Frozen):
    """The LimitRanges of one namespace (type Container), combined: the API server enforces
    each of them, so the largest min, the smallest max and the smallest ratio hold."""

    namespace: str
    min: dict[Resource, float] = Field(default_factory=dict)
    max: dict[Resource, float] = Field(default_factory=dict)
    max_ratio: dict[Resource, float] = Field(default_factory=dict)  # maxLimitRequestRatio

    def merged(self, other: NamespaceBounds) -> NamespaceBounds:
        return NamespaceBounds(
            namespace=self.namespace,
            min=_combine(self.min, other.min, max),
            max=_combine(self.max, other.max, min),
            max_ratio=_combine(self.max_ratio, other.max_ratio, min),
        )


class ClusterBounds(Frozen):
    """The largest node's allocatable, per resource (a pod asking more fits on no node)."""

    allocatable: dict[Resource, float] = Field(default_factory=dict)


class Bounds(Frozen):
    """Everything that bounds one workload's values besides its policy."""

    namespace: NamespaceBounds | None = None
    cluster: ClusterBounds | None = None


def _combine(
    a: dict[Resource, float], b: dict[Resource, float], pick: Callable[[float, float], float]
) -> dict[Resource, float]:
    merged = dict(a)
    for resource, value in b.items():
        merged[resource] = pick(merged[resource], value) if resource in merged else value
    return merged


@dataclass(frozen=True)
class Bounded:
    """A change within every bound (``change``), or None with the reason it is not made."""

    change: ResourceChange | None
    reasons: tuple[str, ...] = ()


def bound_change(change: ResourceChange, *, policy: PolicySpec, bounds: Bounds) -> Bounded:
    """``change`` kept within the namespace's LimitRange and the largest node."""
    resource, namespace, cluster = change.resource, bounds.namespace, bounds.cluster
    where = f"in namespace {namespace.namespace}" if namespace else ""
    lr_min = namespace.min.get(resource) if namespace else None
    lr_max = namespace.max.get(resource) if namespace else None
    node_max = cluster.allocatable.get(resource) if cluster else None
    settings = policy.recommendation.for_resource(resource)
    policy_min = parse_quantity(settings.min)
    if lr_max is not None and policy_min > lr_max:
        return Bounded(
            None,
            (
                f"the policy's min {human(resource, policy_min)} exceeds the LimitRange max "
                f"{human(resource, lr_max)} {where}: not applied",
            ),
        )
    ceilings: list[tuple[float, str]] = []
    if lr_max:
        ceilings.append((lr_max, f"LimitRange max {human(resource, lr_max)} {where}"))
    if node_max:
        ceilings.append((node_max, f"the largest node's allocatable {human(resource, node_max)}"))
    ceiling = min(ceilings, default=None, key=lambda pair: pair[0])
    if ceiling is not None:
        ceiling = (round_down_quantity(resource, ceiling[0]), ceiling[1])
    reasons: list[str] = []
    request, limit = change.request_to, change.limit_to
    if ceiling is not None and request > ceiling[0]:
        request = ceiling[0]
        reasons.append(f"request clamped to {ceiling[1]}")
    if lr_min is not None and request < lr_min:
        request = round_up_quantity(resource, lr_min)
        reasons.append(f"request raised to LimitRange min {human(resource, lr_min)} {where}")
    if limit is not None and ceiling is not None and limit > ceiling[0]:
        limit = ceiling[0]
        reasons.append(f"limit clamped to {ceiling[1]}")
    if limit is not None and limit < request:
        limit = request
    ratio = namespace.max_ratio.get(resource) if namespace else None
    if limit is not None and ratio and limit > request * ratio * (1 + 1e-9):
        request = round_up_quantity(resource, limit / ratio)
        reasons.append(f"request raised to keep the LimitRange maxLimitRequestRatio {ratio:g}")
    problem = _violation(change, request, limit, policy=policy, ceiling=ceiling, lr_min=lr_min)
    if problem is not None:
        return Bounded(None, (*reasons, problem))
    bounded = change.model_copy(update={"request_to": request, "limit_to": limit})
    return Bounded(bounded, tuple(reasons))


def _violation(
    change: ResourceChange,
    request: float,
    limit: float | None,
    *,
    policy: PolicySpec,
    ceiling: tuple[float, str] | None,
    lr_min: float | None,
) -> str | None:
    """Why the bounded values cannot be applied, or None: every bound must hold at once."""
    resource, before = change.resource, change.request_from
    wanted_up = change.request_to > before
    if (request > before) != wanted_up or abs(request - before) <= 1e-9 * max(1.0, before):
        direction = "increase" if wanted_up else "decrease"
        return f"no {direction} is possible within the bounds: not applied"
    if ceiling is not None and (request > ceiling[0] or (limit or 0.0) > ceiling[0]):
        return f"above {ceiling[1]} even at its smallest: not applied"
    if lr_min is not None and request < lr_min:
        return f"below the LimitRange min {human(resource, lr_min)}: not applied"
    step = policy.recommendation
    low, high = before * (1 - step.max_step_down), before * (1 + step.max_step_up)
    if not low * (1 - 1e-9) <= request <= high * (1 + 1e-9):
        return (
            f"{human(resource, request)} would exceed the max step from "
            f"{human(resource, before)}: not applied"
        )
    return None


def round_down_quantity(resource: Resource, amount: float) -> float:
    """The largest quantity rightsizer writes (millicores, MiB) that is not above ``amount``."""
    if resource == "cpu":
        return math.floor(amount * 1000 + 1e-6) / 1000
    if resource == "memory":
        return float(math.floor(amount / 2**20 + 1e-9) * 2**20)
    return float(math.floor(amount))
