"""Rules: conditions over a container's utilisation and signals that propose an action."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

from rightsizer.core.indicators import container_utilisation
from rightsizer.core.model import ContainerResources, ContainerUsage, Frozen, Resource
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
    if condition.signal is not None:
        return _evaluate_signal(condition, container, measured)
    if not (condition.resource and condition.stat and condition.op) or condition.value is None:
        return ConditionResult(holds=None, reason="incomplete utilisation condition")
    found = container_utilisation(container, measured, condition.resource, condition.stat)
    wanted = f"{condition.resource} {condition.stat} {condition.op} {condition.value:.0%}"
    if found is None:
        return ConditionResult(holds=None, reason=f"{wanted}: not measurable")
    holds = _OPS[condition.op](found.utilisation, condition.value)
    return ConditionResult(holds=holds, reason=f"{found.describe()} ({wanted})")


def _evaluate_signal(
    condition: Condition, container: ContainerResources, measured: ContainerUsage | None
) -> ConditionResult:
    if measured is None:
        return ConditionResult(holds=None, reason=f"{condition.signal}: no metrics")
    if condition.signal == "oomKilled":
        kills = measured.oom_kills
        return ConditionResult(holds=kills > 0, reason=f"{kills} OOM kill(s) in the window")
    threshold = condition.value or 0.0
    if condition.signal == "cpuThrottled":
        ratio = measured.throttled_ratio
        if ratio is None:
            return ConditionResult(holds=None, reason="cpu throttling not measured (no cpu limit)")
        return ConditionResult(
            holds=ratio > threshold,
            reason=f"cpu throttled in {ratio:.0%} of periods (> {threshold:.0%})",
        )
    return _evaluate_idle(condition, container, measured)


def _evaluate_idle(
    condition: Condition, container: ContainerResources, measured: ContainerUsage
) -> ConditionResult:
    days = math.ceil(duration_seconds(condition.duration or "1d") / DAY)
    reference, basis = container.reference("cpu")
    stats = measured.resources.get("cpu")
    means = stats.daily_means if stats else ()
    if reference is None or len(means) < days:
        return ConditionResult(holds=None, reason=f"idle for {days}d: not enough daily data")
    threshold = condition.value or 0.0
    busiest = max(means[-days:]) / reference
    return ConditionResult(
        holds=busiest < threshold,
        reason=f"busiest of the last {days} days used {busiest:.1%} of cpu {basis}",
    )


def evaluate_rule(
    rule: Rule, container: ContainerResources, measured: ContainerUsage | None
) -> RuleMatch | None:
    """The match when all of ``all`` and (if given) one of ``any`` hold; else None."""
    all_results = [evaluate_condition(c, container, measured) for c in rule.all]
    if not all(result.holds for result in all_results):
        return None
    any_results = [evaluate_condition(c, container, measured) for c in rule.any]
    held_any = [result for result in any_results if result.holds]
    if rule.any and not held_any:
        return None
    reasons = tuple(result.reason for result in [*all_results, *held_any])
    return RuleMatch(
        rule=rule.name,
        action=rule.action,
        container=container.name,
        resources=rule.target_resources(),
        reasons=reasons,
    )


def evaluate_rules(
    rules: list[Rule], container: ContainerResources, measured: ContainerUsage | None
) -> list[RuleMatch]:
    return [match for rule in rules if (match := evaluate_rule(rule, container, measured))]
