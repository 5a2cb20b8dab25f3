"""Recommend mode (the chart's default, apply disabled) on the first agency: annotations,
Recommended events, status, report and printer columns; no pod template changes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from controlplane import ControlPlane
from e2e_cloud import (
    CLEAR_SHAPES,
    GRADE,
    POLICIES,
    PREVIOUS,
    REPORTS,
    SCORE,
    Chart,
    Cloud,
    OperatorProcess,
    condition,
    delete_policy,
    denials,
    evaluated,
    events,
    involved,
    key,
    operator_errors,
    policy,
    recommendation,
    rfc3339_now,
    snapshot,
    wait_for,
)

from rightsizer.api.status import period_of
from rightsizer.localprom import LocalPrometheus

pytestmark = pytest.mark.e2e

POLICY = "recommend-e2e"


@dataclass
class Run:
    agency: str
    namespaces: list[str]
    status: dict[str, Any]
    before: dict[str, dict[str, Any]]
    after: dict[str, dict[str, Any]]
    replicasets_before: dict[str, list[dict[str, Any]]]
    operator: OperatorProcess
    denied: list[str]
    since: str  # when this run began (RFC 3339): events of earlier tests are older


def replicasets(cp: ControlPlane, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    meta = deployment["metadata"]
    items = cp.get(f"/apis/apps/v1/namespaces/{meta['namespace']}/replicasets")["items"]
    return [
        rs
        for rs in items
        if any(o["uid"] == meta["uid"] for o in rs["metadata"].get("ownerReferences", []))
    ]


@pytest.fixture(scope="module")
def run(
    control_plane: ControlPlane,
    chart: Chart,
    cloud: Cloud,
    prometheus: LocalPrometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Run]:
    cp = control_plane
    chart.use(apply_enabled=False)
    agency = cloud.agencies[0]
    namespaces = next(a["namespaces"] for a in cloud.truth["agencies"] if a["agency"] == agency)
    keys = [key(w) for w in cloud.workloads(agency)]
    before = snapshot(cp, keys)
    sets = {k: replicasets(cp, before[k]) for k in keys if k.startswith("Deployment/")}
    since = rfc3339_now()
    operator = OperatorProcess(
        kubeconfig=chart.kubeconfig(),
        prometheus_url=prometheus.url,
        log_path=tmp_path_factory.mktemp("recommend") / "operator.log",
        apply_enabled=chart.env["RIGHTSIZER_APPLY_ENABLED"] == "true",  # false: chart default
    )
    created = cp.request("POST", POLICIES, body=policy(POLICY, agency))
    assert created.status_code == 201, created.text
    try:
        with operator:
            status = wait_for(
                "the first evaluation", lambda: evaluated(cp, POLICY), timeout=90,
                alive=operator.alive,
            )  # fmt: skip
            time.sleep(5)  # a few more ticks: the schedule is weekly, nothing else may happen
        yield Run(
            agency=agency,
            namespaces=namespaces,
            status=status,
            before=before,
            after=snapshot(cp, keys),
            replicasets_before=sets,
            operator=operator,
            denied=denials(cp, since=since),
            since=since,
        )
    finally:
        delete_policy(cp, POLICY)


def test_recommend_mode_annotates_every_workload(run: Run, cloud: Cloud) -> None:
    assert not run.denied, run.denied  # the chart's RBAC let the operator do its job
    assert not operator_errors(run.operator), operator_errors(run.operator)
    for workload in cloud.workloads(run.agency):
        k = key(workload)
        notes = run.after[k]["metadata"].get("annotations", {})
        assert notes.get(GRADE), (k, notes)
        assert 0 <= float(notes[SCORE]) <= 100, (k, notes)
        assert PREVIOUS not in notes, k
        body = recommendation(run.after[k])
        assert body["policy"] == POLICY
        assert body["decision"] in ("recommend", "none"), (k, body["decision"])
        assert set(body["containers"]) == {c["name"] for c in workload["containers"]}, k
        for name, resources in body["containers"].items():
            for resource, rec in resources.items():
                if rec["change"] != "none":
                    assert rec["skipped"] == "recommendMode", (k, name, resource, rec)
        if workload["shape"] in CLEAR_SHAPES:
            got = (notes[GRADE], body["action"])
            assert got == (workload["expectedGrade"], workload["expectedAction"]), (k, got)


def test_recommend_mode_changes_no_pod_template(run: Run, control_plane: ControlPlane) -> None:
    for k, before in run.before.items():
        after = run.after[k]
        assert after["spec"] == before["spec"], k
        if k.startswith("Deployment/"):
            # a Deployment's generation also counts annotation changes (one write here);
            # its template is the same, so the controller made no new ReplicaSet
            assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1, k
            now = replicasets(control_plane, after)
            assert [rs["metadata"]["name"] for rs in now] == [
                rs["metadata"]["name"] for rs in run.replicasets_before[k]
            ], k
            assert [rs["spec"]["template"] for rs in now] == [
                rs["spec"]["template"] for rs in run.replicasets_before[k]
            ], k
        else:
            assert after["metadata"]["generation"] == before["metadata"]["generation"], k


def test_recommend_mode_posts_recommended_events(
    run: Run, cloud: Cloud, control_plane: ControlPlane
) -> None:
    proposing = {k for k, body in run.after.items() if recommendation(body)["action"] != "keep"}
    clear = {
        key(w)
        for w in cloud.workloads(run.agency)
        if w["shape"] in CLEAR_SHAPES and w["expectedAction"] in ("downsize", "upsize")
    }
    assert clear and clear <= proposing, (clear, proposing)
    posted = [  # the agency is shared with earlier tests (peering): only this run's events
        e
        for e in events(control_plane, run.namespaces, "Recommended")
        if e["metadata"]["creationTimestamp"] >= run.since
    ]
    about = [involved(e) for e in posted]
    assert sorted(about) == sorted(proposing), "one Recommended event per proposal"
    for event in posted:
        body = run.after[involved(event)]
        assert event["type"] == "Normal"
        assert event["involvedObject"]["uid"] == body["metadata"]["uid"]
        assert event["message"].startswith(recommendation(body)["action"] + ":"), event
        assert event["source"]["component"] == "rightsizer"


def test_policy_status_and_report(run: Run, control_plane: ControlPlane, cloud: Cloud) -> None:
    status = run.status
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Evaluated"), ready
    assert condition(status, "Degraded")["status"] == "False"
    assert status["workloads"] == len(cloud.workloads(run.agency))
    assert status["changesApplied"] == 0
    assert float(status["totals"]["moneyApplied"]) == 0
    name = f"{POLICY}-{period_of(datetime.now(UTC))}"
    assert status["report"] == name
    report = control_plane.get(f"{REPORTS}/{name}")["spec"]
    assert (report["policy"], report["agency"]) == (POLICY, run.agency)
    assert report["workloads"] == status["workloads"]
    assert report["appliedChangeCount"] == 0


def _table(text: str) -> tuple[list[str], list[list[str]]]:
    header, *rows = [line.split() for line in text.strip().splitlines()]
    return header, rows


def test_printer_columns_show_the_evaluation(run: Run, control_plane: ControlPlane) -> None:
    cp = control_plane
    status = cp.get(f"{POLICIES}/{POLICY}")["status"]
    header, rows = _table(cp.kubectl("get", "efficiencypolicies").stdout)
    assert header == [
        "NAME", "AGENCY", "MODE", "GRADE", "SCORE", "WORKLOADS", "SAVINGS", "READY",
        "LAST-EVALUATION", "AGE",
    ]  # fmt: skip
    row = dict(zip(header, next(r for r in rows if r[0] == POLICY), strict=True))
    assert (row["AGENCY"], row["MODE"], row["READY"]) == (run.agency, "recommend", "True")
    assert row["GRADE"] == status["grade"]
    assert float(row["SCORE"]) == pytest.approx(status["score"], abs=0.01)
    assert int(row["WORKLOADS"]) == status["workloads"] == len(run.before)
    assert row["SAVINGS"] == status["totals"]["moneyReleased"]
    assert float(row["SAVINGS"]) > 0
    assert row["LAST-EVALUATION"][-1] in "smh", row  # an age such as 12s

    report_name = status["report"]
    report = cp.get(f"{REPORTS}/{report_name}")["spec"]
    header, rows = _table(cp.kubectl("get", "efficiencyreports").stdout)
    assert header == [
        "NAME", "POLICY", "AGENCY", "PERIOD", "GRADE", "SCORE", "WORKLOADS", "RELEASED", "AGE",
    ]  # fmt: skip
    row = dict(zip(header, next(r for r in rows if r[0] == report_name), strict=True))
    assert (row["POLICY"], row["AGENCY"], row["PERIOD"]) == (
        POLICY,
        run.agency,
        period_of(datetime.now(UTC)),
    )
    assert (row["GRADE"], int(row["WORKLOADS"])) == (report["grade"], report["workloads"])
    assert float(row["SCORE"]) == pytest.approx(report["score"], abs=0.01)
    assert row["RELEASED"] == report["totals"]["moneyReleased"]
