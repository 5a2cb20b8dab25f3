"""Rule conditions and signals, per container."""

from typing import Any

import pytest
from core_factories import GIB, container, stats, usage_of

from rightsizer.core.model import ResourceStats
from rightsizer.core.policy import Condition, Rule
from rightsizer.core.rules import evaluate_condition, evaluate_rule

APP = container(cpu=1.0, memory=GIB, cpu_limit=2.0)
USAGE = usage_of(
    cpu=stats(avg=0.15, p95=0.4, max=0.6),
    memory=stats(avg=0.18 * GIB, max=0.3 * GIB),
    oom_kills=0,
    throttled=0.3,
)


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ({"resource": "cpu", "stat": "avg", "op": "<", "value": 0.2}, True),
        ({"resource": "cpu", "stat": "avg", "op": "<", "value": 0.15}, False),
        ({"resource": "cpu", "stat": "avg", "op": "<=", "value": 0.15}, True),
        ({"resource": "cpu", "stat": "p95", "op": ">", "value": 0.39}, True),
        ({"resource": "memory", "stat": "max", "op": ">=", "value": 0.3}, True),
        ({"resource": "memory", "stat": "p99", "op": ">", "value": 0.1}, None),  # not measured
        ({"resource": "gpu", "stat": "avg", "op": "<", "value": 0.1}, None),  # no request
        ({"signal": "oomKilled"}, False),
        ({"signal": "cpuThrottled", "value": 0.25}, True),
        ({"signal": "cpuThrottled", "value": 0.5}, False),
    ],
)
def test_conditions(condition: dict[str, Any], holds: bool | None) -> None:
    result = evaluate_condition(Condition.model_validate(condition), APP, USAGE)
    assert result.holds is holds, result.reason
    assert result.reason


def test_idle_for_needs_every_trailing_day_below_the_threshold() -> None:
    quiet = ResourceStats(values={"avg": 0.001}, daily_means=(0.5, *([0.001] * 14)))
    busy_yesterday = ResourceStats(values={"avg": 0.001}, daily_means=(*([0.001] * 13), 0.5))
    condition = Condition(signal="idleFor", duration="14d", value=0.02)
    assert evaluate_condition(condition, APP, usage_of(cpu=quiet)).holds is True
    assert evaluate_condition(condition, APP, usage_of(cpu=busy_yesterday)).holds is False
    short = ResourceStats(values={"avg": 0.0}, daily_means=(0.0,) * 3)
    assert evaluate_condition(condition, APP, usage_of(cpu=short)).holds is None


def test_all_and_any_combine() -> None:
    rule = Rule.model_validate(
        {
            "name": "r",
            "action": "downsize",
            "all": [{"resource": "cpu", "stat": "avg", "op": "<", "value": 0.2}],
            "any": [
                {"signal": "oomKilled"},
                {"resource": "memory", "stat": "avg", "op": "<", "value": 0.2},
            ],
        }
    )
    match = evaluate_rule(rule, APP, USAGE)
    assert match is not None
    assert match.resources == ("cpu", "memory")
    assert "cpu avg 15% of request" in match.describe()
    strict = rule.model_copy(update={"any": [Condition(signal="oomKilled")]})
    assert evaluate_rule(strict, APP, USAGE) is None


def test_a_condition_that_cannot_be_measured_never_holds() -> None:
    rule = Rule.model_validate(
        {
            "name": "r",
            "action": "downsize",
            "all": [{"resource": "cpu", "stat": "avg", "op": "<", "value": 0.9}],
        }
    )
    assert evaluate_rule(rule, APP, usage_of(memory=stats(avg=GIB))) is None


@pytest.mark.parametrize(
    ("conditions", "explicit", "resources"),
    [
        ([{"signal": "oomKilled"}], [], ("memory",)),
        ([{"signal": "cpuThrottled", "value": 0.1}], [], ("cpu",)),
        ([{"resource": "cpu", "stat": "avg", "op": "<", "value": 0.1}], [], ("cpu",)),
        (
            [{"resource": "cpu", "stat": "avg", "op": "<", "value": 0.1}],
            ["cpu", "memory"],
            ("cpu", "memory"),
        ),
        ([{"signal": "idleFor", "duration": "7d", "value": 0.01}], [], ("cpu", "memory")),
    ],
)
def test_a_rule_adjusts_the_resources_its_conditions_name(
    conditions: list[dict[str, Any]], explicit: list[str], resources: tuple[str, ...]
) -> None:
    rule = Rule.model_validate(
        {"name": "r", "action": "upsize", "any": conditions, "resources": explicit}
    )
    assert rule.target_resources() == resources
