"""Conditional writes: what the operator does when the workload is no longer what it read.

The resize is a JSON patch that first tests the container names and the request and limit
values it read. A real API server answers 422 when such a test fails (and 409 on a
resourceVersion conflict); the emulator does both. The workload under test is the OOM-killed
Deployment: its urgent memory upsize always comes first under the cap.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from apiserver import versions
from harness import (
    APPLY_POLICY,
    APPLY_SPEC,
    CAP,
    Cluster,
    check_resize,
    evaluate_once,
    is_json_patch,
    pick,
    recommendation,
    running_operator,
)
from manifests import containers, pod_template

pytestmark = [pytest.mark.operator, pytest.mark.asyncio]

STATUS_409 = {
    "apiVersion": "v1",
    "kind": "Status",
    "status": "Failure",
    "reason": "Conflict",
    "code": 409,
    "message": "Operation cannot be fulfilled: the object has been modified",
}


@pytest.fixture
def apply_enabled(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIGHTSIZER_APPLY_ENABLED", "true")  # after the cluster fixture's "false"


def stored_versions(cluster: Cluster, key: str) -> list[Mapping[str, Any]]:
    _, namespace, name = key.split("/")
    return versions(cluster.server, ("apps/v1/deployments", namespace, name))


@pytest.mark.usefixtures("apply_enabled")
async def test_a_409_is_retried_from_a_fresh_read(cluster: Cluster) -> None:
    cluster.load()
    key = pick(cluster.truth, shape="oom-killed")
    _, namespace, name = key.split("/")
    server = cluster.server
    conflict = (
        server[
            "patch",
            server.resource("apps", "v1", "deployments"),
            server.namespace(namespace),
            server.name(name),
            is_json_patch,
        ][:1]
        << 409
        << STATUS_409
    )
    async with running_operator():
        await evaluate_once(cluster, APPLY_SPEC)

    assert len(list(conflict)) == 1, "the injected 409 was not met"
    patches = [r for r in cluster.patches_of(key) if is_json_patch(r)]
    assert len(patches) == 2, "one refused patch, then one retry"
    first, second = patches
    assert first in conflict and second not in conflict
    assert [
        r
        for r in server
        if r.method.value == "GET"
        and (r.namespace, r.name) == (namespace, name)
        and first.id < r.id < second.id
    ], "no fresh read between the conflict and the retry"
    # the refused patch changed nothing; exactly one change landed: the retry's
    assert len(stored_versions(cluster, key)) == 2
    stored = cluster.workload(key)
    changed = check_resize(key, containers(cluster.created[key]), containers(stored))
    assert any(c.endswith("/memory") for c in changed)
    pod = pod_template(stored)
    for op in second.data:
        if op["op"] == "add" and "/resources/requests/" in op["path"]:
            index = int(op["path"].split("/containers/")[1].split("/")[0])
            resource = op["path"].rsplit("/", 1)[1]
            assert pod["containers"][index]["resources"]["requests"][resource] == op["value"]
    status = cluster.status(APPLY_POLICY)
    assert status["changesApplied"] == CAP
    assert "apiError" not in status["changesSkipped"]
    assert recommendation(cluster, key)["decision"] == "apply"
    assert not cluster.events("ResizeSkipped")


def _bump_request(pod: list[dict[str, Any]]) -> None:
    pod[0]["resources"]["requests"]["memory"] = "256Mi"  # someone else's upsize


def _bump_limit(pod: list[dict[str, Any]]) -> None:
    pod[0]["resources"]["limits"]["memory"] = "300Mi"


def _insert_sidecar(pod: list[dict[str, Any]]) -> None:
    pod.insert(0, {"name": "istio-proxy", "image": "istio/proxyv2:1.24", "resources": {}})


EDITS: dict[str, tuple[Callable[[list[dict[str, Any]]], None], bool]] = {
    # what another writer changes right after the operator read: (edit, resized anyway?)
    "request": (_bump_request, False),  # the value decided from is gone: never overwritten
    "limit": (_bump_limit, False),  # likewise: the limit would follow the old ratio
    "sidecar": (_insert_sidecar, True),  # container moved: still the same values, retried
}


@pytest.mark.usefixtures("apply_enabled")
@pytest.mark.parametrize("edit", sorted(EDITS))
async def test_an_edit_after_the_read_is_never_overwritten(cluster: Cluster, edit: str) -> None:
    cluster.load()
    key = pick(cluster.truth, shape="oom-killed")
    _, namespace, name = key.split("/")
    server = cluster.server
    change, resized_anyway = EDITS[edit]

    async def list_then_edit(request: Any) -> dict[str, Any]:
        """Serve the (cluster-wide) list as it is, then let another client write (before
        our PATCH)."""
        items = [
            copy.deepcopy(obj.raw)
            for (resource, _, _), obj in server.objects.items()
            if resource == server.resource("apps", "v1", "deployments") and not obj.deleted
        ]
        before = pod_template(cluster.workload(key))["containers"]
        pod = copy.deepcopy(before)
        change(pod)
        assert pod != before, f"the {edit} edit changes nothing in {key}: pick another value"
        await server.write(
            ("apps/v1/deployments", namespace, name),
            {"spec": {"template": {"spec": {"containers": pod}}}},
        )
        return {"kind": "DeploymentList", "apiVersion": "apps/v1", "items": items}

    stale = server["list", server.resource("apps", "v1", "deployments")][:1] << list_then_edit
    async with running_operator():
        await evaluate_once(cluster, APPLY_SPEC)

    assert len(list(stale)) == 1
    edited = stored_versions(cluster, key)[1]
    patches = [r for r in cluster.patches_of(key) if is_json_patch(r)]
    stored = cluster.workload(key)
    status = cluster.status(APPLY_POLICY)
    if resized_anyway:
        # the read before a resize saw the edit: one patch, made from that fresh read
        assert len(patches) == 1, "one patch, after a fresh read"
        assert len(stored_versions(cluster, key)) == 3
        after = containers(stored)
        assert after["istio-proxy"] == {}, "the other writer's container was changed"
        del after["istio-proxy"]
        check_resize(key, containers(cluster.created[key]), after)
        assert status["changesApplied"] == CAP
        assert not cluster.events("ResizeSkipped")
    else:
        assert not patches, "the read before the resize must see the edit and stop"
        assert containers(stored) == containers(edited), "the other writer's edit was overwritten"
        assert pod_template(stored) == pod_template(edited)
        assert status["changesApplied"] == CAP - 1
        assert status["changesSkipped"].get("apiError") == 1
        body = recommendation(cluster, key)
        assert body["decision"] == "recommend"
        skipped = [
            r["skipped"] for c in body["containers"].values() for r in c.values() if r["skipped"]
        ]
        assert "apiError" in skipped
        [event] = cluster.events("ResizeSkipped")
        assert (event["type"], event["involvedObject"]["name"]) == ("Warning", name)
