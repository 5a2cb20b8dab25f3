"""The operator's conditional JSON patch against the real API server's patch semantics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from controlplane import ControlPlane
from kubernetes import config as kube_config

from rightsizer.adapters.kubernetes import ClusterError, Conflict, KubernetesCluster
from rightsizer.core.decision import ResourceChange
from rightsizer.core.model import WorkloadRef

pytestmark = pytest.mark.e2e

NAMESPACE = "e2e-patch"
PATH = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
PREVIOUS = "rightsizer.io/previous-resources"


def _deployment(name: str) -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "registry.invalid/app:1",
        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "1"}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container]},
            },
        },
    }


@pytest.fixture(scope="module")
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    assert control_plane.request("POST", "/api/v1/namespaces", body=body).status_code == 201
    yield NAMESPACE
    control_plane.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}")


@pytest.fixture
def deployment(control_plane: ControlPlane, namespace: str, request: pytest.FixtureRequest) -> str:
    name = request.node.name.removeprefix("test_").replace("_", "-")[:50].strip("-")
    answer = control_plane.request("POST", PATH, body=_deployment(name))
    assert answer.status_code == 201, answer.text
    return name


@pytest.fixture
def cluster(control_plane: ControlPlane) -> KubernetesCluster:
    """The operator's own adapter, as admin (the identity is not what is tested here)."""
    api = kube_config.new_client_from_config(config_file=str(control_plane.admin_kubeconfig))
    return KubernetesCluster(api=api)


def _cpu_change() -> ResourceChange:
    return ResourceChange(
        container="app", resource="cpu", request_from=0.5, request_to=0.25,
        limit_from=1.0, limit_to=0.5,
    )  # fmt: skip


def test_failed_test_operation_is_answered_422_and_changes_nothing(
    control_plane: ControlPlane, deployment: str
) -> None:
    before = control_plane.get(f"{PATH}/{deployment}")
    patch = [
        {"op": "test", "path": "/spec/template/spec/containers/0/resources/requests/cpu",
         "value": "400m"},
        {"op": "replace", "path": "/spec/template/spec/containers/0/resources/requests/cpu",
         "value": "250m"},
        {"op": "add", "path": "/metadata/annotations", "value": {PREVIOUS: "{}"}},
    ]  # fmt: skip
    answer = control_plane.request(
        "PATCH", f"{PATH}/{deployment}", body=patch, content_type="application/json-patch+json"
    )
    # the real kube-apiserver: 422 Unprocessable Entity, reason Invalid, a generic message
    assert answer.status_code == 422, answer.text
    status = answer.json()
    assert (status["reason"], status["code"]) == ("Invalid", 422), status
    assert status["message"] == "the server rejected our request due to an error in our request"
    after = control_plane.get(f"{PATH}/{deployment}")
    assert after["spec"] == before["spec"]  # (status moves on: the controller manager)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert PREVIOUS not in after["metadata"].get("annotations", {})


def test_resize_lands_in_one_patch(
    control_plane: ControlPlane, deployment: str, cluster: KubernetesCluster
) -> None:
    target = cluster.read(WorkloadRef(kind="Deployment", namespace=NAMESPACE, name=deployment))
    cluster.resize(target, [_cpu_change()], {PREVIOUS: json.dumps({"app": {}})})
    after = control_plane.get(f"{PATH}/{deployment}")
    resources = after["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "500m"}}
    assert after["metadata"]["annotations"][PREVIOUS] == json.dumps({"app": {}})


def test_concurrent_value_change_makes_the_resize_fail_whole(
    control_plane: ControlPlane, deployment: str, cluster: KubernetesCluster
) -> None:
    target = cluster.read(WorkloadRef(kind="Deployment", namespace=NAMESPACE, name=deployment))
    # someone else changes the request after the operator read it
    edit = [{"op": "replace", "value": "600m",
             "path": "/spec/template/spec/containers/0/resources/requests/cpu"}]  # fmt: skip
    answer = control_plane.request(
        "PATCH", f"{PATH}/{deployment}", body=edit, content_type="application/json-patch+json"
    )
    assert answer.status_code == 200, answer.text
    with pytest.raises(ClusterError) as raised:
        cluster.resize(target, [_cpu_change()], {PREVIOUS: "{}"})
    assert raised.value.status == 422
    after = control_plane.get(f"{PATH}/{deployment}")
    resources = after["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"]["cpu"] == "600m"  # theirs, not ours
    assert resources["limits"]["cpu"] == "1"
    assert PREVIOUS not in after["metadata"].get("annotations", {})


def test_failed_test_operation_is_reported_as_a_conflict(
    control_plane: ControlPlane, deployment: str, cluster: KubernetesCluster
) -> None:
    """A failed ``test`` op is the API server's "changed since you read it" (422, not 409):
    the adapter reports a Conflict, so the cycle re-reads and retries while the values it
    decided from are still there."""
    target = cluster.read(WorkloadRef(kind="Deployment", namespace=NAMESPACE, name=deployment))
    # someone inserts a sidecar before our container: its index moves, its values do not
    sidecar = {"name": "proxy", "image": "registry.invalid/proxy:1"}
    edit = [{"op": "add", "path": "/spec/template/spec/containers/0", "value": sidecar}]
    answer = control_plane.request(
        "PATCH", f"{PATH}/{deployment}", body=edit, content_type="application/json-patch+json"
    )
    assert answer.status_code == 200, answer.text
    with pytest.raises(Conflict) as raised:
        cluster.resize(target, [_cpu_change()], {PREVIOUS: "{}"})
    assert raised.value.status == 422
    # read again: the values are as decided from, at a new index; the retry lands
    fresh = cluster.read(target.ref)
    assert fresh.container_index == {"proxy": 0, "app": 1}
    cluster.resize(fresh, [_cpu_change()], {PREVIOUS: "{}"})
    containers = control_plane.get(f"{PATH}/{deployment}")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["proxy", "app"]
    assert containers[1]["resources"]["requests"]["cpu"] == "250m"
    assert "resources" not in containers[0] or not containers[0]["resources"]
