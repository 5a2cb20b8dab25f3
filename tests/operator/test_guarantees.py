"""Guarantees 2, 4 and 5 at the API: what the operator reads (LimitRanges, nodes, VPAs, PDBs)
changes what it patches. The pure rules are in tests/unit/test_bounds.py."""

from __future__ import annotations

import copy
from typing import Any

import kmock
import pytest
from harness import (
    APPLY_SPEC,
    Cluster,
    evaluate_once,
    is_json_patch,
    pod_container,
    quantity,
    recommendation,
    running_operator,
    truth_by_key,
)
from manifests import (
    LIMIT_RANGES,
    NODES,
    PDBS,
    PODS,
    VPAS,
    containers,
    pod_template,
)

from rightsizer.core.units import format_quantity, parse_quantity

pytestmark = [pytest.mark.operator, pytest.mark.asyncio]
SPEC = {**APPLY_SPEC, "safety": {**APPLY_SPEC["safety"], "maxChangesPerEvaluation": 50}}


def downsizes(cluster: Cluster) -> list[str]:
    """Deployments the generator makes clear downsizes of, without an HPA."""
    return [
        key
        for key, w in truth_by_key(cluster.truth).items()
        if w["kind"] == "Deployment"
        and w["expectedAction"] == "downsize"
        and w["shape"] in ("idle", "overprovisioned")
        and not w["hpa"]
    ]


def namespace_of(key: str) -> str:
    return key.split("/")[1]


def requests_to(cluster: Cluster, plural: str, *, method: str = "GET") -> list[Any]:
    return [
        r
        for r in list(cluster.server)
        if r.resource is not None and r.resource.plural == plural and r.method.value == method
    ]


async def test_limit_range_clamps_what_is_patched_and_a_vpa_target_is_not_patched(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIGHTSIZER_APPLY_ENABLED", "true")
    cluster.load()
    clamped, owned = downsizes(cluster)[:2]
    namespace = namespace_of(clamped)
    first = pod_container(cluster.created[clamped], 0)
    cpu_now = parse_quantity(first["resources"]["requests"]["cpu"])
    floor = format_quantity("cpu", cpu_now * 0.75)
    cluster.server.objects[LIMIT_RANGES, namespace, "floor"] = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "floor", "namespace": namespace, "resourceVersion": "1"},
        "spec": {"limits": [{"type": "Container", "min": {"cpu": floor}}]},
    }
    cluster.server.objects[NODES, None, "node-1"] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1", "resourceVersion": "1"},
        "status": {"allocatable": {"cpu": "64", "memory": "256Gi"}},
    }
    cluster.server.resources[VPAS] = kmock.ResourceInfo(
        kind="VerticalPodAutoscaler", namespaced=True, verbs={"get", "list", "watch"}
    )
    owned_name = owned.split("/")[2]
    cluster.server.objects[VPAS, namespace_of(owned), owned_name] = {
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": {"name": owned_name, "namespace": namespace_of(owned), "resourceVersion": "1"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": owned_name}},
    }
    async with running_operator():
        await evaluate_once(cluster, SPEC)

    # the LimitRange min: no cpu request in the namespace was set below it, and the clamped
    # workload's first container was raised to it, saying so
    lowest = parse_quantity(floor)
    for key in cluster.created:
        if namespace_of(key) != namespace:
            continue
        for request in cluster.patches_of(key):
            for op in request.data if is_json_patch(request) else []:
                if op["op"] == "add" and op["path"].endswith("/resources/requests/cpu"):
                    assert parse_quantity(op["value"]) >= lowest, (key, op)
    after = containers(cluster.workload(clamped))[first["name"]]
    assert quantity(after, "requests", "cpu") == pytest.approx(lowest), (clamped, after)
    proposal = recommendation(cluster, clamped)["containers"][first["name"]]["cpu"]
    assert parse_quantity(proposal["request"]) == pytest.approx(lowest)
    assert any("LimitRange min" in reason for reason in proposal["reasons"]), proposal
    # one list of nodes per evaluation
    assert len(requests_to(cluster, "nodes")) == 1

    # the VPA's workload: annotated, never patched, and the reason is the VPA
    assert not [r for r in cluster.patches_of(owned) if is_json_patch(r)]
    assert cluster.workload(owned)["spec"] == cluster.created[owned]["spec"]
    body = recommendation(cluster, owned)
    assert body["decision"] == "recommend"
    skipped = {
        r["skipped"]
        for res in body["containers"].values()
        for r in res.values()
        if r["change"] != "none"
    }
    assert skipped == {"vpa"}, body


def pod(workload: dict[str, Any], name: str, extra: dict[str, str]) -> dict[str, Any]:
    template = pod_template(workload)
    labels = dict((workload["spec"]["template"].get("metadata") or {}).get("labels") or {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": workload["metadata"]["namespace"],
            "labels": {**labels, **extra},
            "resourceVersion": "1",
        },
        "spec": {"containers": copy.deepcopy(template["containers"])},
    }


def pdb(namespace: str, name: str, labels: dict[str, str], allowed: int) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
        "spec": {"selector": {"matchLabels": labels}, "minAvailable": 1},
        "status": {"disruptionsAllowed": allowed},
    }


async def test_a_pdb_with_no_disruption_left_holds_the_in_place_resize_of_its_pods(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIGHTSIZER_APPLY_ENABLED", "true")
    target = downsizes(cluster)[0]
    others = tuple(k for k in truth_by_key(cluster.truth) if k != target)
    cluster.load(excluded=others)  # kmock ignores label selectors: only this one's pods exist
    namespace, name = namespace_of(target), target.split("/")[2]
    workload = cluster.created[target]
    for pod_name, extra in (("guarded-0", {"guard": "yes"}), ("free-0", {})):
        cluster.server.objects[PODS, namespace, pod_name] = pod(workload, pod_name, extra)
    cluster.server.objects[PDBS, namespace, "guarded"] = pdb(
        namespace, "guarded", {"guard": "yes"}, 0
    )
    cluster.server.objects[PDBS, namespace, "roomy"] = pdb(
        namespace, "roomy", {"app.kubernetes.io/name": name}, 1
    )
    spec = {**SPEC, "safety": {**SPEC["safety"], "inPlaceResize": True}}
    async with running_operator():
        await evaluate_once(cluster, spec)

    assert [r for r in cluster.patches_of(target) if is_json_patch(r)], "the template changed"
    resized = {
        r.name for r in requests_to(cluster, "pods", method="PATCH") if r.subresource == "resize"
    }
    assert resized == {"free-0"}
    held = cluster.events("ResizeInPlaceHeld")
    assert len(held) == 1 and "guarded" in held[0]["message"], held
    assert "allows no disruption" in held[0]["message"]
    guarded = cluster.server.objects[PODS, namespace, "guarded-0"].raw
    assert guarded["spec"]["containers"] == pod_template(workload)["containers"]
