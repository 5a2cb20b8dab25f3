"""What the operator tests drive and read: the emulated cluster, kopf in the test's loop,
bounded polling. Imported after conftest.py has set the environment (see there)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import kopf
import pytest
from apiserver import ApiServer
from manifests import (
    EVENTS,
    POLICIES,
    REPORTS,
    WORKLOAD_RESOURCES,
    load_cloud,
    pod_template,
    policy_object,
)

from rightsizer.core.units import parse_quantity

T = TypeVar("T")
KUBECONFIG = Path(os.environ["KUBECONFIG"])
# kopf counts every task created after its start as its own, and gives those still running at
# its exit 5 s before it cancels them: kmock's handlers of idle keep-alive connections are
# such tasks, so the test's own requests close theirs (and the operator's client is closed).
CLOSE = {"Connection": "close"}


def write_kubeconfig(url: str) -> None:
    KUBECONFIG.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": url}}],
                "users": [{"name": "kmock", "user": {"token": "test-token"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
                "current-context": "kmock",
            }
        ),
        encoding="utf-8",
    )


@dataclass
class Cluster:
    """The emulated API server with the synthetic cloud in it, and what tests ask of it."""

    server: ApiServer
    truth: dict[str, Any]
    created: dict[str, dict[str, Any]] = field(default_factory=dict)

    def load(
        self, *, excluded: tuple[str, ...] = (), annotations: Mapping[str, str] | None = None
    ) -> None:
        self.created = load_cloud(
            self.server, self.truth, excluded=excluded, annotations=annotations
        )

    # -- writes, over HTTP like any client ------------------------------------------------
    async def create_policy(self, body: Mapping[str, Any]) -> None:
        async with self.server.post(
            "/apis/rightsizer.io/v1alpha1/efficiencypolicies", json=body, headers=CLOSE
        ) as response:
            assert response.status < 300, await response.text()

    async def merge_patch(self, path: str, body: Mapping[str, Any]) -> None:
        headers = {"Content-Type": "application/merge-patch+json", **CLOSE}
        async with self.server.patch(path, data=json.dumps(body), headers=headers) as response:
            assert response.status < 300, await response.text()

    # -- reads ------------------------------------------------------------------------------
    def policy(self, name: str) -> dict[str, Any]:
        return self.server.objects[POLICIES, None, name].raw

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.policy(name).get("status") or {})

    def workload(self, key: str) -> dict[str, Any]:
        kind, namespace, name = key.split("/")
        return self.server.objects[WORKLOAD_RESOURCES[kind], namespace, name].raw

    def annotations(self, key: str) -> dict[str, str]:
        return dict(self.workload(key)["metadata"].get("annotations") or {})

    def reports(self) -> dict[str, dict[str, Any]]:
        return {
            name: obj.raw
            for (resource, _, name), obj in self.server.objects.items()
            if resource == REPORTS and not obj.deleted
        }

    def events(self, reason: str | None = None) -> list[dict[str, Any]]:
        found = [
            obj.raw
            for (resource, _, _), obj in self.server.objects.items()
            if resource == EVENTS and not obj.deleted
        ]
        return [e for e in found if reason is None or e.get("reason") == reason]

    def workload_writes(self) -> list[Any]:
        """Every write request (PATCH, PUT, POST, DELETE) to a workload resource."""
        groups = {"apps", "batch"}
        return [
            r
            for r in list(self.server)
            if r.resource is not None
            and r.resource.group in groups
            and r.method.value in ("PATCH", "PUT", "POST", "DELETE")
        ]

    def patches_of(self, key: str) -> list[Any]:
        kind, namespace, name = key.split("/")
        plural = WORKLOAD_RESOURCES[kind].rsplit("/", 1)[1]
        return [
            r
            for r in self.workload_writes()
            if r.resource.plural == plural and r.namespace == namespace and r.name == name
        ]

    def evaluated(self, name: str) -> bool:
        """The policy's status records an evaluation."""
        return self.status(name).get("lastEvaluation") is not None


@contextlib.asynccontextmanager
async def running_operator(timeout: float = 20) -> AsyncIterator[kopf.Memo]:
    """kopf in this event loop, cluster-wide, no peering; stopped (and awaited) on exit."""
    stop, ready = asyncio.Event(), asyncio.Event()
    memo = kopf.Memo()
    task = asyncio.create_task(
        kopf.operator(
            clusterwide=True, standalone=True, stop_flag=stop, ready_flag=ready, memo=memo
        )
    )
    try:
        started = asyncio.ensure_future(ready.wait())
        await asyncio.wait({started, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises what stopped it
            raise AssertionError("the operator exited before it was ready")
        assert ready.is_set(), f"the operator was not ready within {timeout}s"
        yield memo
    finally:
        if "cluster" in memo:
            memo.cluster.api.close()
        stop.set()
        await asyncio.wait_for(task, timeout=timeout)


async def wait_for(condition: Callable[[], T], *, timeout: float = 30, what: str = "") -> T:
    """Poll ``condition`` until it is truthy; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or condition}")
        await asyncio.sleep(0.1)


async def settle(seconds: float = 2.5) -> None:
    """Let a few more ticks pass, to see that nothing else happens."""
    await asyncio.sleep(seconds)


# -- reading what the operator wrote ----------------------------------------------------------
CHANGING = ("downsize", "upsize")


def is_json_patch(request: Any) -> bool:
    return isinstance(request.data, list)


def recommendation(cluster: Cluster, key: str) -> dict[str, Any]:
    text = cluster.annotations(key).get("rightsizer.io/recommendation")
    assert text, f"{key} has no recommendation annotation"
    return json.loads(text)  # type: ignore[no-any-return]


def truth_by_key(truth: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{w['kind']}/{w['namespace']}/{w['name']}": w for w in truth["workloads"]}


def pick(truth: Mapping[str, Any], *, shape: str, kind: str = "Deployment") -> str:
    """The first workload of a shape and kind in the truth, as a key."""
    for key, workload in truth_by_key(truth).items():
        if workload["shape"] == shape and workload["kind"] == kind:
            return key
    raise AssertionError(f"the synthetic cloud has no {kind} of shape {shape}")


def condition(status: Mapping[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in status.get("conditions") or [] if c["type"] == kind]
    assert len(found) == 1, f"expected one {kind} condition in {status}"
    return dict(found[0])


def resized(cluster: Cluster) -> dict[str, list[Any]]:
    """Workload key -> the JSON patches (resizes and reverts) sent to it."""
    found: dict[str, list[Any]] = {}
    for key in cluster.created:
        patches = [r for r in cluster.patches_of(key) if is_json_patch(r)]
        if patches:
            found[key] = patches
    return found


# -- apply mode -------------------------------------------------------------------------------
APPLY_POLICY = "agency-001-apply"
CAP = 3
BOUNDS = {"cpu": ("50m", "8"), "memory": ("64Mi", "16Gi")}
APPLY_SPEC: dict[str, Any] = {
    "mode": "apply",
    "safety": {"noticeEvaluations": 1, "maxChangesPerEvaluation": CAP},
    "recommendation": {
        "cpu": {"stat": "p95", "headroom": 0.15, "min": BOUNDS["cpu"][0], "max": BOUNDS["cpu"][1]},
        "memory": {
            "stat": "max",
            "headroom": 0.2,
            "min": BOUNDS["memory"][0],
            "max": BOUNDS["memory"][1],
            "trend": True,
        },
        "maxStepDown": 0.5,
        "maxStepUp": 1.0,
        "limits": "keepRatio",
    },
}


def agency(cluster: Cluster) -> str:
    return str(cluster.truth["agencies"][0]["agency"])


async def evaluate_once(cluster: Cluster, spec: dict[str, Any]) -> None:
    """Create the policy, wait for its evaluation and a few more ticks."""
    await cluster.create_policy(policy_object(APPLY_POLICY, agency(cluster), **spec))
    await wait_for(lambda: cluster.evaluated(APPLY_POLICY), what="the first evaluation")
    await settle()


def quantity(resources: dict[str, Any], part: str, resource: str) -> float | None:
    value = (resources.get(part) or {}).get(resource)
    return None if value is None else parse_quantity(value)


def pod_container(body: dict[str, Any], index: int) -> dict[str, Any]:
    return dict(pod_template(body)["containers"][index])


def check_resize(key: str, before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """The safety rules on one resized workload; returns the changed 'container/resource'."""
    changed = set()
    assert set(before) == set(after), key
    for name, old in before.items():
        new = after[name]
        for resource in ("cpu", "memory"):
            old_request = quantity(old, "requests", resource)
            new_request = quantity(new, "requests", resource)
            if old_request == new_request:
                assert quantity(old, "limits", resource) == quantity(new, "limits", resource)
                continue
            changed.add(f"{name}/{resource}")
            assert old_request is not None and new_request is not None, (key, name, resource)
            low, high = (parse_quantity(b) for b in BOUNDS[resource])
            assert low <= new_request <= high, (key, name, resource, new_request)
            assert old_request / 2 <= new_request <= old_request * 2, (key, name, resource)
            old_limit = quantity(old, "limits", resource)
            new_limit = quantity(new, "limits", resource)
            if old_limit is None:
                assert new_limit is None, (key, name, resource)
            else:
                assert new_limit is not None and new_limit >= new_request
                assert new_limit / new_request == pytest.approx(
                    old_limit / old_request, rel=0.02
                ), (key, name, resource)
    assert changed, f"{key} was patched but no request changed"
    return changed
