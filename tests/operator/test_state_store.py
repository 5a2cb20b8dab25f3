"""Incremental state in ConfigMaps, over HTTP to kmock: sharded under the size bound, read
back intact, and a missing or damaged shard reported (so the state is rebuilt, not used)."""

from __future__ import annotations

import asyncio
import random

import kmock
import pytest
from apiserver import ApiServer
from kubernetes import client

from rightsizer.adapters.statestore import ConfigMapStateStore
from rightsizer.ports import StateUnavailable

pytestmark = [pytest.mark.operator, pytest.mark.asyncio]
CONFIGMAPS = "v1/configmaps"
NAMESPACE = "rightsizer-system"


def store(server: ApiServer, *, shard_bytes: int) -> ConfigMapStateStore:
    server.resources[CONFIGMAPS] = kmock.ResourceInfo(
        kind="ConfigMap",
        namespaced=True,
        verbs={"get", "list", "create", "update", "patch"},
        subresources=set(),
    )
    configuration = client.Configuration(host=str(server.url).rstrip("/"))
    return ConfigMapStateStore(
        api=client.ApiClient(configuration), namespace=NAMESPACE, shard_bytes=shard_bytes
    )


def stored(server: ApiServer) -> dict[str, dict[str, object]]:
    return {
        name: body
        for (resource, namespace, name), body in server.objects.items()
        if resource == CONFIGMAPS and namespace == NAMESPACE
    }


def blob(size: int) -> bytes:
    return random.Random(size).randbytes(size)


@pytest.mark.parametrize(("size", "shards"), [(100, 1), (30_000, 3), (9_000, 1)])
async def test_state_is_sharded_under_the_bound_and_read_back(
    kmock: ApiServer, size: int, shards: int
) -> None:
    states = store(kmock, shard_bytes=16 * 1024)
    await asyncio.to_thread(states.save, "default-agency-001", blob(size))
    objects = stored(kmock)
    assert len(objects) == shards
    for body in objects.values():
        assert len(body["binaryData"]["state"]) <= 16 * 1024  # type: ignore[index]
    assert await asyncio.to_thread(states.load, "default-agency-001") == blob(size)
    assert await asyncio.to_thread(states.load, "another-agency") is None


async def test_a_replaced_state_keeps_only_its_own_shards_readable(kmock: ApiServer) -> None:
    states = store(kmock, shard_bytes=16 * 1024)
    await asyncio.to_thread(states.save, "finance", blob(30_000))
    await asyncio.to_thread(states.save, "finance", blob(100))
    assert await asyncio.to_thread(states.load, "finance") == blob(100)


async def test_a_missing_shard_is_reported(kmock: ApiServer) -> None:
    states = store(kmock, shard_bytes=16 * 1024)
    await asyncio.to_thread(states.save, "finance", blob(30_000))
    del kmock.objects[CONFIGMAPS, NAMESPACE, states.name("finance", 2)]
    with pytest.raises(StateUnavailable, match="shard 2 of 3 is missing"):
        await asyncio.to_thread(states.load, "finance")


async def test_a_damaged_shard_is_reported(kmock: ApiServer) -> None:
    states = store(kmock, shard_bytes=16 * 1024)
    await asyncio.to_thread(states.save, "finance", blob(100))
    damage = {"binaryData": {"state": "not base64!"}}  # kmock does not validate, as etcd might
    await asyncio.to_thread(
        client.CoreV1Api(states.api).patch_namespaced_config_map,
        states.name("finance"),
        NAMESPACE,
        damage,
    )
    with pytest.raises(StateUnavailable, match="not base64"):
        await asyncio.to_thread(states.load, "finance")
