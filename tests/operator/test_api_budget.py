"""The operator's API calls per cycle are bounded: one list per kind for every policy (not per
policy and namespace), and events within the operator-wide budget, the rest summed up in one
summary event per policy evaluation. Counted from the requests the API server received."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import kmock
import pytest
from harness import Cluster, running_operator, settle, wait_for
from manifests import (
    HPAS,
    NAMESPACES,
    POLICIES,
    REPORTS,
    VPAS,
    WORKLOAD_RESOURCES,
    policy_object,
)

pytestmark = [pytest.mark.operator, pytest.mark.asyncio]

# what one evaluation reads about its agency's workloads
LISTED = {kmock.resource(r) for r in (*WORKLOAD_RESOURCES.values(), HPAS, VPAS, NAMESPACES)}
POLICIES_RESOURCE = kmock.resource(POLICIES)
REPORTS_RESOURCE = kmock.resource(REPORTS)
EVENTS_PER_MINUTE = 3
WORKLOAD_KINDS = set(WORKLOAD_RESOURCES)


def lists(cluster: Cluster) -> Counter[str]:
    """List requests for what evaluations read, by resource."""
    found: Counter[str] = Counter()
    for request in list(cluster.server):
        if request.resource in LISTED and request.action == kmock.action.LIST:
            found[str(request.resource.plural)] += 1
    return found


def status_writes(cluster: Cluster) -> Counter[str]:
    """Status patches by policy: one per evaluation (an upper bound on them)."""
    found: Counter[str] = Counter()
    for request in list(cluster.server):
        if request.resource == POLICIES_RESOURCE and request.subresource == "status":
            found[str(request.name)] += 1
    return found


def suppressed(event: dict[str, Any]) -> int:
    match = re.match(r"(\d+) more events", event["message"])
    assert match, event["message"]
    return int(match.group(1))


@pytest.mark.parametrize("policies", [2, 6])
async def test_a_cycle_lists_each_kind_once_and_keeps_events_within_the_budget(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, policies: int
) -> None:
    monkeypatch.setenv("RIGHTSIZER_CACHE_SECONDS", "3600")  # one cycle: one listing
    monkeypatch.setenv("RIGHTSIZER_EVENTS_PER_MINUTE", str(EVENTS_PER_MINUTE))
    cluster.load()
    agency = cluster.truth["agencies"][0]["agency"]
    names = [f"{agency}-view-{i}" for i in range(policies)]
    started = time.monotonic()
    async with running_operator():
        for name in names:
            await cluster.create_policy(policy_object(name, agency))
        await wait_for(
            lambda: all(cluster.evaluated(n) for n in names), timeout=60, what="evaluations"
        )
        await settle()
    elapsed = time.monotonic() - started

    # every kind listed once, cluster-wide, whatever the number of policies
    listed = lists(cluster)
    assert set(listed) == {r.plural for r in LISTED}, listed
    assert all(count == 1 for count in listed.values()), listed

    # events about workloads: within the budget (a bucket of EVENTS_PER_MINUTE, refilled at
    # that rate); the others are counted in one summary event per policy evaluation
    about_workloads = [e for e in cluster.events() if e["involvedObject"]["kind"] in WORKLOAD_KINDS]
    assert len(about_workloads) <= EVENTS_PER_MINUTE * (1 + elapsed / 60)
    summaries = cluster.events("EventsSuppressed")
    assert summaries, "no evaluation ran over the budget: the test proves nothing"
    per_policy = Counter(e["involvedObject"]["name"] for e in summaries)
    evaluations = status_writes(cluster)
    assert set(per_policy) == set(names), per_policy  # each ran over: the budget is shared
    assert all(per_policy[n] <= evaluations[n] for n in names), (per_policy, evaluations)
    assert all(suppressed(e) > 0 for e in summaries)


def report_writes(cluster: Cluster) -> list[str]:
    """Requests that wrote a report, in order: their HTTP methods."""
    return [
        request.method.value
        for request in list(cluster.server)
        if request.resource == REPORTS_RESOURCE and request.action != kmock.action.WATCH
    ]


async def test_a_report_is_written_in_one_call_once_it_exists(cluster: Cluster) -> None:
    cluster.load()
    agency = cluster.truth["agencies"][0]["agency"]
    name = f"{agency}-reported"
    async with running_operator():
        await cluster.create_policy(policy_object(name, agency))
        await wait_for(lambda: cluster.evaluated(name), timeout=60, what="the evaluation")
        first = report_writes(cluster)
        # a spec change makes the policy due at once: its second evaluation
        await cluster.merge_patch(f"/apis/{POLICIES}/{name}", {"spec": {"displayName": "again"}})
        await wait_for(
            lambda: cluster.status(name).get("observedGeneration") == 2,
            timeout=60,
            what="the second evaluation",
        )
        await settle()
    assert first == ["PATCH", "POST"]  # none yet: the update finds nothing, then creates
    assert report_writes(cluster)[len(first) :] == ["PATCH"]
    [report] = cluster.reports().values()
    assert report["spec"]["agency"] == agency
