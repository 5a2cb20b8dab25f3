"""Apply mode: conditional JSON patches of pod templates within the policy's safety rules;
the operator-wide kill switch; revert (annotation and CLI); opt-out. Conflicts: see
test_conflicts.py."""

from __future__ import annotations

import asyncio
import json

import pytest
from harness import (
    APPLY_POLICY,
    APPLY_SPEC,
    CAP,
    CHANGING,
    KUBECONFIG,
    Cluster,
    check_resize,
    condition,
    evaluate_once,
    is_json_patch,
    pick,
    pod_container,
    quantity,
    recommendation,
    resized,
    running_operator,
    truth_by_key,
    wait_for,
)
from manifests import EXCLUDE, containers

from rightsizer.cli import main as cli
from rightsizer.core.units import parse_quantity

pytestmark = [pytest.mark.operator, pytest.mark.asyncio]


async def test_apply_mode_resizes_at_most_the_cap_within_the_safety_rules(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIGHTSIZER_APPLY_ENABLED", "true")
    cluster.load()
    async with running_operator():
        await evaluate_once(cluster, APPLY_SPEC)

    truth = truth_by_key(cluster.truth)
    patched = resized(cluster)
    assert len(patched) == CAP, sorted(patched)
    for key, patches in patched.items():
        assert len(patches) == 1, key
        assert truth[key]["expectedAction"] in CHANGING, (key, truth[key]["shape"])
        assert recommendation(cluster, key)["decision"] == "apply"
        stored = cluster.workload(key)
        created = cluster.created[key]
        # conditional: every value it replaces is first tested against what was read
        operations = patches[0].data
        for index, op in enumerate(operations):
            if op["op"] in ("add", "replace", "remove") and "/resources/" in op["path"]:
                tested = [
                    t for t in operations[:index] if t["op"] == "test" and t["path"] == op["path"]
                ]
                pointer = op["path"].split("/")
                container = pointer[pointer.index("containers") + 1]
                assert {
                    "op": "test",
                    "path": "/".join([*pointer[: pointer.index("containers") + 2], "name"]),
                    "value": pod_container(created, int(container))["name"],
                } in operations[:index]
                old = pod_container(created, int(container)).get("resources") or {}
                part, resource = pointer[-2], pointer[-1]
                if resource in (old.get(part) or {}):
                    assert tested == [
                        {"op": "test", "path": op["path"], "value": old[part][resource]}
                    ], op
        changed = check_resize(key, containers(created), containers(stored))
        # nothing else in the template changed
        for name, body in containers(stored).items():
            assert body.keys() <= {"requests", "limits"}, (key, name)
        assert {**stored["spec"], "template": None} == {**created["spec"], "template": None}
        # revert information: the resources as they were, for the changed containers
        previous = json.loads(stored["metadata"]["annotations"]["rightsizer.io/previous-resources"])
        assert set(previous) == {c.split("/")[0] for c in changed}
        for name, parts in previous.items():
            old = containers(created)[name]
            for part, values in parts.items():
                for resource, value in values.items():
                    assert parse_quantity(value) == quantity(old, part, resource), (key, name)
        assert stored["metadata"]["generation"] == created["metadata"]["generation"] + 1

    # an HPA's resource is never patched
    for key, workload in truth.items():
        if not workload["hpa"]:
            continue
        for request in cluster.patches_of(key):
            if is_json_patch(request):
                assert not [op for op in request.data if op["path"].endswith("/cpu")], key
        body = recommendation(cluster, key)
        for name, resources in body["containers"].items():
            if resources["cpu"]["change"] != "none":
                assert resources["cpu"]["skipped"] == "hpa", (key, name)

    # the others: annotated only, the capped ones say so
    for key, created in cluster.created.items():
        if key not in patched:
            assert cluster.workload(key)["spec"] == created["spec"], key
    capped = [k for k in truth if "cap" in json.dumps(recommendation(cluster, k))]
    assert capped, "no workload was held back by the cap"

    status = cluster.status(APPLY_POLICY)
    assert condition(status, "Ready")["status"] == "True"
    assert status["changesApplied"] == CAP
    assert status["changesSkipped"].get("cap", 0) >= 1
    report = next(iter(cluster.reports().values()))["spec"]
    assert report["appliedChangeCount"] == CAP
    events = cluster.events("Resized")
    assert sorted(
        "/".join(e["involvedObject"][p] for p in ("kind", "namespace", "name")) for e in events
    ) == sorted(patched)
    assert not cluster.events("ResizeSkipped")


async def test_a_resize_and_its_notes_leave_everyone_elses_annotations_in_place(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator keeps only its own annotations in memory (not kubectl's
    last-applied-configuration); its patches still add theirs beside the others."""
    monkeypatch.setenv("RIGHTSIZER_APPLY_ENABLED", "true")
    others = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"kind": "Deployment"}),
        "team.example.org/owner": "finance",
    }
    cluster.load(annotations=others)
    async with running_operator():
        await evaluate_once(cluster, APPLY_SPEC)

    patched = resized(cluster)
    assert len(patched) == CAP
    for key in cluster.created:
        annotations = cluster.annotations(key)
        assert annotations.items() >= others.items(), key
        assert "rightsizer.io/recommendation" in annotations, key
    for key in patched:
        assert "rightsizer.io/previous-resources" in cluster.annotations(key), key


async def test_kill_switch_off_makes_apply_mode_recommend_only(cluster: Cluster) -> None:
    # RIGHTSIZER_APPLY_ENABLED is "false" (the cluster fixture)
    cluster.load()
    async with running_operator():
        await evaluate_once(cluster, APPLY_SPEC)

    assert not resized(cluster)
    for key, created in cluster.created.items():
        assert cluster.workload(key)["spec"] == created["spec"], key
        assert recommendation(cluster, key)["decision"] in ("recommend", "none"), key
    assert all(
        r.headers.get("Content-Type") == "application/merge-patch+json"
        for r in cluster.workload_writes()
    )
    status = cluster.status(APPLY_POLICY)
    assert status["changesApplied"] == 0
    assert set(status["changesSkipped"]) == {"recommendMode"}
    assert not cluster.events("Resized")
    assert cluster.events("Recommended")


async def test_revert_restores_the_previous_resources_and_opts_out(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIGHTSIZER_APPLY_ENABLED", "true")
    cluster.load()
    async with running_operator():
        await evaluate_once(cluster, APPLY_SPEC)
        patched = sorted(resized(cluster))
        assert len(patched) == CAP
        by_annotation, by_cli = patched[0], patched[1]
        for key in (by_annotation, by_cli):
            assert containers(cluster.workload(key)) != containers(cluster.created[key])

        # `rightsizer revert` (a synchronous client: off the event loop kmock serves from)
        code = await asyncio.to_thread(cli, ["revert", by_cli, "--kubeconfig", str(KUBECONFIG)])
        assert code == 0

        # the annotation, picked up by the next evaluation (a spec change makes it due now)
        kind, namespace, name = by_annotation.split("/")
        plural = {"Deployment": "deployments", "StatefulSet": "statefulsets"}[kind]
        await cluster.merge_patch(
            f"/apis/apps/v1/namespaces/{namespace}/{plural}/{name}",
            {"metadata": {"annotations": {"rightsizer.io/revert": "true"}}},
        )
        await cluster.merge_patch(
            f"/apis/rightsizer.io/v1alpha1/efficiencypolicies/{APPLY_POLICY}",
            {"spec": {"displayName": "reverting"}},
        )
        await wait_for(
            lambda: cluster.status(APPLY_POLICY).get("observedGeneration") == 2,
            what="the evaluation of the changed policy",
        )

    for key in (by_annotation, by_cli):
        stored = cluster.workload(key)
        assert containers(stored) == containers(cluster.created[key]), key
        notes = stored["metadata"]["annotations"]
        assert notes[EXCLUDE] == "true", key
        assert "rightsizer.io/revert" not in notes
        assert "rightsizer.io/state" not in notes
        assert "rightsizer.io/reverted" in notes
    reverted = cluster.events("Reverted")
    assert [e["involvedObject"]["name"] for e in reverted] == [name]
    # reverted by the CLI, then opted out: the evaluation after it wrote nothing to it
    assert [is_json_patch(r) for r in cluster.patches_of(by_cli)] == [True, True]
    # the revert itself was conditional: it tested the values it replaced
    revert = cluster.patches_of(by_annotation)[-1]
    assert is_json_patch(revert) and [op for op in revert.data if op["op"] == "test"]


@pytest.mark.parametrize("mode", ["recommend", "apply"])
async def test_an_opted_out_workload_gets_no_request_at_all(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("RIGHTSIZER_APPLY_ENABLED", "true")
    # the workload apply mode would change first (an urgent OOM upsize)
    excluded = pick(cluster.truth, shape="oom-killed")
    cluster.load(excluded=(excluded,))
    async with running_operator():
        await evaluate_once(cluster, {**APPLY_SPEC, "mode": mode})

    assert cluster.patches_of(excluded) == []
    stored = cluster.server.objects[("apps/v1/deployments", *excluded.split("/")[1:])]
    assert len(stored.history) == 1
    assert stored.raw == cluster.created[excluded]
    status = cluster.status(APPLY_POLICY)
    assert status["changesSkipped"].get("excluded") == 1
    assert status["workloads"] == len(cluster.created)
    others = [k for k in cluster.created if k != excluded]
    assert all(cluster.annotations(k).get("rightsizer.io/grade") for k in others)
    if mode == "apply":
        assert status["changesApplied"] == CAP
        assert len(resized(cluster)) == CAP
    else:
        assert status["changesApplied"] == 0
        assert not resized(cluster)
