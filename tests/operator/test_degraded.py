"""What the operator does when it must not act: an invalid policy, Prometheus down."""

from __future__ import annotations

from typing import Any

import pytest
from harness import Cluster, condition, running_operator, settle, wait_for
from manifests import policy_object

from rightsizer.localprom import free_port

pytestmark = [pytest.mark.operator, pytest.mark.asyncio]

POLICY = "agency-001-broken"
HALF_THE_WEIGHT = [
    {
        "name": "cpu-average",
        "resource": "cpu",
        "stat": "avg",
        "weight": 50,
        "bands": [{"min": 0, "score": 0}, {"min": 0.5, "score": 100}],
    }
]


def involving(cluster: Cluster, reason: str) -> list[dict[str, Any]]:
    return [
        e
        for e in cluster.events(reason)
        if e["involvedObject"]["kind"] == "EfficiencyPolicy"
        and e["involvedObject"]["name"] == POLICY
    ]


def untouched(cluster: Cluster) -> None:
    """No workload was written, and no report either."""
    assert cluster.workload_writes() == []
    for key, created in cluster.created.items():
        assert cluster.workload(key) == created, key
    assert cluster.reports() == {}


@pytest.mark.parametrize(
    ("spec", "path", "problem"),
    [
        ({"window": "2 weeks"}, "spec.window", "is not a duration"),
        ({"indicators": HALF_THE_WEIGHT}, "spec", "indicators: weights must add up to 100"),
    ],
    ids=["window", "weights"],
)
async def test_an_invalid_policy_is_degraded_with_the_field_path_and_touches_nothing(
    cluster: Cluster, spec: dict[str, Any], path: str, problem: str
) -> None:
    cluster.load()
    agency = cluster.truth["agencies"][0]["agency"]
    async with running_operator():
        await cluster.create_policy(policy_object(POLICY, agency, mode="apply", **spec))
        await wait_for(lambda: cluster.status(POLICY).get("conditions"), what="a status")
        await settle()  # timer ticks: still nothing may happen

    status = cluster.status(POLICY)
    ready, degraded = condition(status, "Ready"), condition(status, "Degraded")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidPolicy")
    assert (degraded["status"], degraded["reason"]) == ("True", "InvalidPolicy")
    assert degraded["message"].startswith(f"{path}: ") and problem in degraded["message"]
    assert status.get("workloads", 0) == 0 and not status.get("byGrade")
    [event] = involving(cluster, "InvalidPolicy")
    assert event["type"] == "Warning" and problem in event["message"]
    # not a single request about workloads: not even a list
    assert not [r for r in cluster.server if r.resource and r.resource.group in ("apps", "batch")]
    untouched(cluster)


async def test_prometheus_down_degrades_the_policy_and_changes_nothing(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIGHTSIZER_PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("RIGHTSIZER_APPLY_ENABLED", "true")
    cluster.load()
    agency = cluster.truth["agencies"][0]["agency"]
    async with running_operator():
        await cluster.create_policy(
            policy_object(POLICY, agency, mode="apply", safety={"noticeEvaluations": 1})
        )
        await wait_for(lambda: cluster.evaluated(POLICY), what="an evaluation")
        await settle()

    status = cluster.status(POLICY)
    ready, degraded = condition(status, "Ready"), condition(status, "Degraded")
    assert (ready["status"], ready["reason"]) == ("False", "PrometheusUnavailable")
    assert (degraded["status"], degraded["reason"]) == ("True", "PrometheusUnavailable")
    assert ready["message"]
    assert status.get("workloads", 0) == 0 and status.get("changesApplied", 0) == 0
    events = involving(cluster, "PrometheusUnavailable")
    assert events and all(e["type"] == "Warning" for e in events)
    assert not cluster.events("Evaluated")
    untouched(cluster)
