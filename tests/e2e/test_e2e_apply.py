"""Apply mode on the second agency, with the chart rendered with apply enabled: conditional
JSON patches on every workload kind, limits kept in ratio, previous resources recorded, the
Deployment rolled out, ``rightsizer revert`` restoring, an excluded workload untouched."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from controlplane import ControlPlane
from e2e_cloud import (
    ACTUATOR_USER,
    KINDS,
    PLURAL,
    POLICIES,
    PREVIOUS,
    Chart,
    Cloud,
    OperatorProcess,
    condition,
    consistent_change,
    delete_policy,
    denials,
    evaluated,
    events,
    involved,
    key,
    operator_audit,
    operator_errors,
    path_of,
    policy,
    recommendation,
    resources,
    rfc3339_now,
    snapshot,
    wait_for,
)

from rightsizer.core.units import parse_quantity
from rightsizer.localprom import LocalPrometheus

pytestmark = pytest.mark.e2e

POLICY = "apply-e2e"
SAFETY = {"noticeEvaluations": 1, "maxChangesPerEvaluation": 50, "inPlaceResize": True}


@dataclass
class Run:
    agency: str
    namespaces: list[str]
    status: dict[str, Any]
    before: dict[str, dict[str, Any]]
    after: dict[str, dict[str, Any]]
    operator: OperatorProcess
    denied: list[str]
    since: str


@pytest.fixture(scope="module")
def run(
    control_plane: ControlPlane,
    chart: Chart,
    cloud: Cloud,
    prometheus: LocalPrometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Run]:
    cp = control_plane
    chart.use(apply_enabled=True)
    assert chart.env["RIGHTSIZER_APPLY_ENABLED"] == "true"
    agency = cloud.agencies[1]
    namespaces = next(a["namespaces"] for a in cloud.truth["agencies"] if a["agency"] == agency)
    keys = [key(w) for w in cloud.workloads(agency)]
    before = snapshot(cp, keys)
    since = rfc3339_now()
    operator = OperatorProcess(
        kubeconfig=chart.kubeconfig(),
        prometheus_url=prometheus.url,
        log_path=tmp_path_factory.mktemp("apply") / "operator.log",
        apply_enabled=True,
    )
    body = policy(POLICY, agency, mode="apply", safety=SAFETY)
    created = cp.request("POST", POLICIES, body=body)
    assert created.status_code == 201, created.text
    try:
        with operator:
            status = wait_for(
                "the apply-mode evaluation", lambda: evaluated(cp, POLICY), timeout=90,
                alive=operator.alive,
            )  # fmt: skip
        yield Run(
            agency=agency,
            namespaces=namespaces,
            status=status,
            before=before,
            after=snapshot(cp, keys),
            operator=operator,
            denied=denials(cp, since=since),
            since=since,
        )
    finally:
        delete_policy(cp, POLICY)
        chart.use(apply_enabled=False)


def test_apply_mode_resizes_every_kind_the_truth_says(
    run: Run, cloud: Cloud, control_plane: ControlPlane
) -> None:
    assert not run.denied, run.denied
    assert not operator_errors(run.operator), operator_errors(run.operator)
    ready = condition(run.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Evaluated"), ready
    assert condition(run.status, "Degraded")["status"] == "False", run.status

    outcome = {k: consistent_change(run.before[k], run.after[k]) for k in run.before}
    changed = {k for k, result in outcome.items() if result == "changed"}
    expected = cloud.expected_changes(run.agency)
    assert expected <= changed, {
        k: recommendation(run.after[k])["containers"] for k in expected - changed
    }
    assert {k.split("/")[0] for k in changed} == set(KINDS)
    # only what the operator decided to apply changed, and each is counted once
    decided = {
        k
        for k in set(run.after) - cloud.excluded  # an excluded workload gets no annotation
        if recommendation(run.after[k])["decision"] == "apply"
    }
    assert changed == decided
    assert run.status["changesApplied"] == len(changed)
    resized = events(control_plane, run.namespaces, "Resized")
    assert sorted(involved(e) for e in resized) == sorted(changed)
    # made by the chart's actuator (the audit log says who), not by the reader or an admin
    patched = {
        (e["objectRef"]["resource"], e["objectRef"].get("namespace"), e["objectRef"]["name"])
        for e in control_plane.audit(ACTUATOR_USER)
        if e["requestReceivedTimestamp"] >= run.since
        and e["verb"] == "patch"
        and e["responseStatus"]["code"] == 200
    }
    for k in changed:
        kind, namespace, name = k.split("/")
        assert (PLURAL[kind].rsplit("/", 1)[1], namespace, name) in patched, k

    for k in changed:
        before, after = resources(run.before[k]), resources(run.after[k])
        for container in after:
            for resource in ("cpu", "memory"):
                old_request = before[container].get("requests", {}).get(resource)
                new_request = after[container].get("requests", {}).get(resource)
                old_limit = before[container].get("limits", {}).get(resource)
                new_limit = after[container].get("limits", {}).get(resource)
                assert (old_limit is None) == (new_limit is None), (k, container, resource)
                if old_limit is None or old_request == new_request:
                    continue
                # keepRatio: the limit moves with the request (within unit rounding)
                old_ratio = parse_quantity(old_limit) / parse_quantity(old_request)
                new_ratio = parse_quantity(new_limit) / parse_quantity(new_request)
                assert new_ratio == pytest.approx(old_ratio, rel=0.03), (k, container, resource)
                assert parse_quantity(new_request) <= parse_quantity(new_limit)
        # the new state, for the next evaluation's cooldown
        state = json.loads(run.after[k]["metadata"]["annotations"]["rightsizer.io/state"])
        assert state["last_change"] >= run.since[:19], state


def test_in_place_resize_patches_running_pods_beside_the_template(
    run: Run, control_plane: ControlPlane
) -> None:
    """safety.inPlaceResize: after each Deployment's template patch, its pods are resized
    through pods/resize by the chart's ServiceAccount (no kubelet here: the API level only)."""
    resized_pods = {
        (e["objectRef"].get("namespace"), e["objectRef"]["name"])
        for e in control_plane.audit(ACTUATOR_USER)
        if e["requestReceivedTimestamp"] >= run.since
        and e["verb"] == "patch"
        and e["objectRef"]["resource"] == "pods"
        and e["objectRef"].get("subresource") == "resize"
        and e["responseStatus"]["code"] == 200
    }
    assert resized_pods, "no pod was resized in place"
    changed_namespaces = {
        k.split("/")[1]
        for k, v in run.after.items()
        if k.startswith("Deployment/") and consistent_change(run.before[k], v) == "changed"
    }
    assert {namespace for namespace, _ in resized_pods} <= changed_namespaces
    assert events(control_plane, run.namespaces, "ResizedInPlace")


def test_excluded_workload_is_untouched(
    run: Run, cloud: Cloud, control_plane: ControlPlane
) -> None:
    (excluded,) = cloud.excluded
    assert excluded in run.before
    before, after = run.before[excluded], run.after[excluded]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["metadata"].get("annotations", {}) == before["metadata"].get("annotations", {})
    name = excluded.split("/")[-1]
    writes = [
        e
        for e in operator_audit(control_plane)
        if e["requestReceivedTimestamp"] >= run.since
        and e["verb"] in ("patch", "update")
        and (e.get("objectRef") or {}).get("name") == name
    ]
    assert not writes, writes


def test_deployment_rolls_out_a_replicaset_with_the_new_requests(
    run: Run, control_plane: ControlPlane
) -> None:
    cp = control_plane
    changed = [
        k
        for k in run.after
        if k.startswith("Deployment/") and resources(run.after[k]) != resources(run.before[k])
    ]
    assert changed
    for k in changed:
        wanted = resources(run.after[k])
        namespace = k.split("/")[1]
        uid = run.after[k]["metadata"]["uid"]

        def rolled_out(uid: str = uid, namespace: str = namespace) -> list[dict[str, Any]]:
            items = cp.get(f"/apis/apps/v1/namespaces/{namespace}/replicasets")["items"]
            return [
                rs
                for rs in items
                if any(o["uid"] == uid for o in rs["metadata"].get("ownerReferences", []))
                and rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision") == "2"
            ]

        (new,) = wait_for(f"the new ReplicaSet of {k}", rolled_out, timeout=30)
        template = new["spec"]["template"]["spec"]["containers"]
        got = {c["name"]: c.get("resources", {}) for c in template}
        assert got == wanted, k
        assert new["spec"]["replicas"] >= 1 or run.after[k]["spec"]["replicas"] == 0


def _rightsizer() -> str:
    beside = Path(sys.executable).parent / "rightsizer"
    found = str(beside) if beside.exists() else shutil.which("rightsizer")
    assert found, "the rightsizer command is not installed (pip install -e .)"
    return found


def test_revert_restores_the_previous_resources(run: Run, control_plane: ControlPlane) -> None:
    cp = control_plane
    changed = sorted(
        k for k in run.after if consistent_change(run.before[k], run.after[k]) == "changed"
    )
    chosen = {k.split("/")[0]: k for k in changed}  # one per kind
    assert set(chosen) == set(KINDS), chosen
    result = subprocess.run(
        [_rightsizer(), "revert", *chosen.values(), "--kubeconfig", str(cp.admin_kubeconfig)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for k in chosen.values():
        assert f"{k}: reverted (rightsizer revert)" in result.stdout, result.stdout
        now = cp.get(path_of(k))
        assert _amounts(resources(now)) == _amounts(resources(run.before[k])), k
        notes = now["metadata"]["annotations"]
        assert notes["rightsizer.io/exclude"] == "true"  # opted out until a human says so
        assert "rightsizer revert" in notes["rightsizer.io/reverted"]
        assert "rightsizer.io/state" not in notes
        assert PREVIOUS in notes  # kept: what was there before the change
    # reverting again restores the same values (the record is kept): idempotent
    again = subprocess.run(
        [_rightsizer(), "revert", chosen["Deployment"], "--kubeconfig", str(cp.admin_kubeconfig)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert _amounts(resources(cp.get(path_of(chosen["Deployment"])))) == _amounts(
        resources(run.before[chosen["Deployment"]])
    )


def _amounts(by_container: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    return {
        container: {
            part: {r: parse_quantity(v) for r, v in values.items()}
            for part, values in parts.items()
        }
        for container, parts in by_container.items()
    }
