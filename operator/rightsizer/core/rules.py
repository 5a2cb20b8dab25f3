"""Rules: conditions over a container's utilisation and signals that propose an action."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

from rightsizer.core.indicators import describe_utilisation, utilisation
from rightsizer.core.model import (
    ContainerResources,
    ContainerUsage,
    Frozen,
    Resource,
    trusted,
)
from rightsizer.core.policy import DAY, Action, Condition, Rule, duration_seconds

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class ConditionResult(Frozen):
    holds: bool | None  # None: could not be evaluated (no data, no request)
    reason: str


class RuleMatch(Frozen):
    """A rule that holds for one container, and the resources its action adjusts."""

    rule: str
    action: Action
    container: str
    resources: tuple[Resource, ...]
    reasons: tuple[str, ...]

    def describe(self) -> str:
        return f"rule {self.rule} ({self.action}): " + ", ".join(self.reasons)


def evaluate_condition(
    condition: Condition, container: ContainerResources, measured: ContainerUsage | None
) -> ConditionResult:
    """Whether the condition holds, and the reason it does or does not."""
    return ConditionResult(
        holds=condition_holds(condition, container, measured),
        reason=_reason(condition, container, measured),
    )


def condition_holds(
    condition: Condition, container: ContainerResources, measured: ContainerUsage | None
) -> bool | None:
    """Whether the condition holds; None when it cannot be evaluated (no data, no request)."""
    if condition.signal is not None:
        return _signal_holds(condition, container, measured)
    if not (condition.resource and condition.stat and condition.op) or condition.value is None:
        return None
    found = utilisation(container, measured, condition.resource, condition.stat)
    return None if found is None else _OPS[condition.op](found[0], condition.value)


def _signal_holds(
    condition: Condition, container: ContainerResources, measured: ContainerUsage | None
) -> bool | None:
    if measured is None:
        return None
    if condition.signal == "oomKilled":
        return measured.oom_kills > 0
    threshold = condition.value or 0.0
    if condition.signal == "cpuThrottled":
        ratio = measured.throttled_ratio
        return None if ratio is None else ratio > threshold
    busiest, _, _ = _busiest_day(condition, container, measured)
    return None if busiest is None else busiest < threshold


def _busiest_day(
    condition: Condition, container: ContainerResources, measured: ContainerUsage
) -> tuple[float | None, int, str]:
    """idleFor: the busiest day's cpu utilisation over the trailing days (None without enough
    daily data), the number of days and what utilisation is measured against."""
    days = math.ceil(duration_seconds(condition.duration or "1d") / DAY)
    reference, basis = container.reference("cpu")
    stats = measured.resources.get("cpu")
    means = stats.daily_means if stats else ()
    if reference is None or len(means) < days:
        return None, days, basis
    return max(means[-days:]) / reference, days, basis


def _reason(
    condition: Condition, container: ContainerResources, measured: ContainerUsage | None
) -> str:
    if condition.signal is not None:
        return _signal_reason(condition, container, measured)
    if not (condition.resource and condition.stat and condition.op) or condition.value is None:
        return "incomplete utilisation condition"
    found = utilisation(container, measured, condition.resource, condition.stat)
    wanted = f"{condition.resource} {condition.stat} {condition.op} {condition.value:.0%}"
    if found is None:
        return f"{wanted}: not measurable"
    used = describe_utilisation(condition.resource, condition.stat, *found)
    return f"{used} ({wanted})"


def _signal_reason(
    condition: Condition, container: ContainerResources, measured: ContainerUsage | None
) -> str:
    if measured is None:
        return f"{condition.signal}: no metrics"
    if condition.signal == "oomKilled":
        return f"{measured.oom_kills} OOM kill(s) in the window"
    threshold = condition.value or 0.0
    if condition.signal == "cpuThrottled":
        ratio = measured.throttled_ratio
        if ratio is None:
            return "cpu throttling not measured (no cpu limit)"
        return f"cpu throttled in {ratio:.0%} of periods (> {threshold:.0%})"
    busiest, days, basis = _busiest_day(condition, container, measured)
    if busiest is None:
        return f"idle for {days}d: not enough daily data"
    return f"busiest of the last {days} days used {busiest:.1%} of cpu {basis}"


def evaluate_rule(
    rule: Rule, container: ContainerResources, measured: ContainerUsage | None
) -> RuleMatch | None:
    """The match when all of ``all`` and (if given) one of ``any`` hold; else None.
    Reasons are written only for a rule that holds."""
    for condition in rule.all:
        if not condition_holds(condition, container, measured):
            return None
    held_any = [c for c in rule.any if condition_holds(c, container, measured)]
    if rule.any and not held_any:
        return None
    return trusted(
        RuleMatch,
        rule=rule.name,
        action=rule.action,
        container=container.name,
        resources=rule.target_resources(),
        reasons=tuple(_reason(c, container, measured) for c in [*rule.all, *held_any]),
    )


def evaluate_rules(
    rules: list[Rule], container: ContainerResources, measured: ContainerUsage | None
) -> list[RuleMatch]:
    return [match for rule in rules if (match := evaluate_rule(rule, container, measured))]
