"""A resize decided from the shared listing: the workload is read again first. What changed
its spec or forbids the change since is a conflict; a status write alone (a rollout making
progress) is not, so a busy controller manager cannot hold every change."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from harness import Cluster
from kubernetes import client
from manifests import containers

from rightsizer.adapters.cache import CachedCluster
from rightsizer.adapters.kubernetes import EXCLUDE, ClusterWorkload, Conflict
from rightsizer.core.decision import ResourceChange

pytestmark = [pytest.mark.operator, pytest.mark.asyncio]


async def listed_deployment(cluster: Cluster) -> tuple[CachedCluster, ClusterWorkload]:
    cluster.load()
    api = client.ApiClient(client.Configuration(host=str(cluster.server.url).rstrip("/")))
    cached = CachedCluster(api=api, cache_seconds=3600)
    namespaces = sorted({w["namespace"] for w in cluster.truth["workloads"]})
    found = await asyncio.to_thread(cached.workloads, namespaces)
    target = next(w for w in found if w.ref.kind == "Deployment" and w.workload.containers)
    return cached, target


def halve_cpu(target: ClusterWorkload) -> ResourceChange:
    container = target.workload.containers[0]
    cpu = container.requests["cpu"]
    return ResourceChange(
        container=container.name,
        resource="cpu",
        request_from=cpu,
        request_to=cpu / 2,
        limit_from=container.limits.get("cpu"),
        limit_to=container.limits.get("cpu"),
    )


def path(target: ClusterWorkload) -> str:
    return f"/apis/apps/v1/namespaces/{target.ref.namespace}/deployments/{target.ref.name}"


# what happens between the listing and the resize: (subresource, merge patch, a conflict?)
SINCE: list[tuple[str, str, Mapping[str, Any], bool]] = [
    ("a rollout's status write", "/status", {"status": {"observedGeneration": 7}}, False),
    ("an opt-out", "", {"metadata": {"annotations": {EXCLUDE: "true"}}}, True),
    ("scaled by hand", "", {"spec": {"replicas": 9}}, True),
]


@pytest.mark.parametrize(
    ("what", "subresource", "patch", "conflict"), SINCE, ids=[s[0] for s in SINCE]
)
async def test_what_changed_since_the_listing_decides_the_resize(
    cluster: Cluster, what: str, subresource: str, patch: Mapping[str, Any], conflict: bool
) -> None:
    cached, target = await listed_deployment(cluster)
    change = halve_cpu(target)
    key = f"Deployment/{target.ref.namespace}/{target.ref.name}"
    before = containers(cluster.workload(key))[change.container]
    await cluster.merge_patch(path(target) + subresource, patch)
    if conflict:
        with pytest.raises(Conflict):
            await asyncio.to_thread(cached.resize, target, [change], {})
        assert containers(cluster.workload(key))[change.container] == before, what
    else:
        await asyncio.to_thread(cached.resize, target, [change], {})
        after = containers(cluster.workload(key))[change.container]
        assert after != before and after["requests"]["cpu"] != before["requests"]["cpu"], what
