"""Recommend mode (the default): the operator annotates, reports and records, and changes no
workload's spec."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from harness import (
    CHANGING,
    Cluster,
    condition,
    is_json_patch,
    recommendation,
    running_operator,
    settle,
    truth_by_key,
    wait_for,
)
from manifests import policy_object

from rightsizer.api.status import period_of

pytestmark = [pytest.mark.operator, pytest.mark.asyncio]

POLICY = "agency-001-weekly"
# shapes whose grade and action the generator guarantees (DESIGN: the synthetic cloud)
CLEAR_SHAPES = ("idle", "overprovisioned", "rightsized", "at-capacity", "oom-killed")


async def test_recommend_mode_annotates_every_workload_and_changes_no_spec(
    cluster: Cluster,
) -> None:
    cluster.load()
    agency = cluster.truth["agencies"][0]["agency"]
    started = datetime.now(UTC).replace(microsecond=0)
    async with running_operator():
        await cluster.create_policy(policy_object(POLICY, agency))
        await wait_for(lambda: cluster.evaluated(POLICY), what="the first evaluation")
        await settle()  # a few more ticks: the schedule is weekly, nothing else may happen

    truth = truth_by_key(cluster.truth)
    assert set(cluster.created) == set(truth)

    # every workload: grade, score and a per-container recommendation with reasons
    grades: Counter[str] = Counter()
    for key, workload in truth.items():
        notes = cluster.annotations(key)
        assert notes.get("rightsizer.io/grade"), key
        grades[notes["rightsizer.io/grade"]] += 1
        assert 0 <= float(notes["rightsizer.io/score"]) <= 100, key
        body = recommendation(cluster, key)
        assert body["policy"] == POLICY
        assert body["decision"] in ("recommend", "none"), (key, body["decision"])
        assert set(body["containers"]) == {c["name"] for c in workload["containers"]}, key
        for name, resources in body["containers"].items():
            assert {"cpu", "memory"} <= set(resources), (key, name)
            for resource, rec in resources.items():
                assert rec["reasons"], (key, name, resource)
                assert rec["current"] is not None, (key, name, resource)
                if rec["change"] != "none":
                    assert rec["skipped"] == "recommendMode", (key, name, resource)
        if workload["shape"] in CLEAR_SHAPES:
            got = (notes["rightsizer.io/grade"], body["action"])
            assert got == (workload["expectedGrade"], workload["expectedAction"]), (key, got)

    # nothing but annotations was written: every spec is as created
    for key, created in cluster.created.items():
        stored = cluster.workload(key)
        assert stored["spec"] == created["spec"], key
        assert stored["metadata"]["labels"] == created["metadata"]["labels"], key
    writes = cluster.workload_writes()
    assert writes, "the operator wrote no annotations"
    assert not [r for r in writes if is_json_patch(r)], "a JSON patch was sent in recommend mode"
    for request in writes:
        assert request.method.value == "PATCH"
        assert request.headers.get("Content-Type") == "application/merge-patch+json"
        assert set(request.data) == {"metadata"} and set(request.data["metadata"]) == {
            "annotations"
        }, request.data
    assert len(writes) == len(truth), "one annotation write per workload, no more"

    # the policy's status
    status = cluster.status(POLICY)
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Evaluated")
    assert condition(status, "Degraded")["status"] == "False"
    assert status["observedGeneration"] == cluster.policy(POLICY)["metadata"]["generation"]
    assert status["workloads"] == len(truth)
    assert status["byGrade"] == dict(grades)
    assert sum(status["byAction"].values()) == len(truth)
    assert status["changesApplied"] == 0
    assert set(status["changesSkipped"]) == {"recommendMode"}
    assert status["lastEvaluation"] >= started.strftime("%Y-%m-%dT%H:%M:%SZ")
    totals = status["totals"]
    assert totals["requestedCpuCores"] > 0 and totals["requestedMemoryGib"] > 0
    assert totals["releasedCpuCores"] > 0 and float(totals["moneyReleased"]) > 0
    assert float(totals["moneyApplied"]) == 0
    assert status["grade"] in grades and 0 <= status["score"] <= 100

    # the period's report
    name = f"{POLICY}-{period_of(datetime.now(UTC))}"
    assert status["report"] == name
    reports = cluster.reports()
    assert set(reports) == {name}
    report = reports[name]["spec"]
    assert (report["policy"], report["agency"], report["workloads"]) == (POLICY, agency, len(truth))
    assert report["byGrade"] == dict(grades)
    assert report["appliedChangeCount"] == 0
    proposing = {
        key for key in truth if recommendation(cluster, key)["action"] in (*CHANGING, "reclaim")
    }
    assert report["proposedChangeCount"] == len(proposing)

    # one Recommended event per workload with something to do, about that workload
    events = cluster.events("Recommended")
    about = {
        f"{e['involvedObject']['kind']}/{e['involvedObject']['namespace']}/"
        f"{e['involvedObject']['name']}"
        for e in events
    }
    assert about == proposing and len(events) == len(proposing)
    for event in events:
        key = "/".join(event["involvedObject"][part] for part in ("kind", "namespace", "name"))
        assert event["involvedObject"]["uid"] == cluster.created[key]["metadata"]["uid"]
        assert event["message"].startswith(recommendation(cluster, key)["action"])
    assert len(cluster.events("Evaluated")) == 1
