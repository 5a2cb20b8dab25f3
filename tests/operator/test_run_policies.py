"""Policies run together (``run_policies``: usage collected a chunk at a time, the next chunk
collected while this one runs) decide exactly what each policy decides on its own."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from harness import Cluster
from kubernetes import client
from manifests import policy_object

from rightsizer.adapters.cache import CachedCluster
from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
from rightsizer.core.policy import PolicySpec
from rightsizer.cycle import CycleResult, CycleSettings, run_policy
from rightsizer.cycle_batch import run_policies
from rightsizer.localprom import LocalPrometheus
from rightsizer.service import NamedPolicy

pytestmark = [pytest.mark.operator, pytest.mark.asyncio]

# different views of one agency: every policy reads the same workloads differently
VIEWS: list[dict[str, Any]] = [
    {},
    {"window": "7d"},
    {"recommendation": {"cpu": {"stat": "max", "headroom": 0.3, "min": "10m", "max": "16"}}},
    {"recommendation": {"cpu": {"stat": "p90", "headroom": 0.0, "min": "10m", "max": "16"}}},
    {"window": "5d", "minHistory": "3d"},
]


def named(cluster: Cluster) -> list[NamedPolicy]:
    agency = cluster.truth["agencies"][0]["agency"]
    return [
        NamedPolicy(f"view-{i}", PolicySpec.model_validate(policy_object("x", agency, **v)["spec"]))
        for i, v in enumerate(VIEWS)
    ]


def decided(result: CycleResult) -> tuple[object, ...]:
    report = result.report
    assert report is not None and report.complete, result.failures
    return (
        report.summary,
        sorted((d.workload, d.action, tuple(d.changes)) for d in result.decisions),
    )


@pytest.mark.parametrize("chunk", [1, 2, 25])
async def test_policies_run_together_decide_as_each_alone(
    cluster: Cluster, prometheus: LocalPrometheus, chunk: int
) -> None:
    cluster.load()
    api = client.ApiClient(client.Configuration(host=str(cluster.server.url).rstrip("/")))
    source = PrometheusSource(PrometheusConfig(url=prometheus.url))
    end = datetime.fromisoformat(cluster.truth["end"])
    policies = [(policy, 1) for policy in named(cluster)]

    def alone() -> list[CycleResult]:
        plain = CachedCluster(api=api, cache_seconds=0)
        return [
            run_policy(
                policy,
                generation=1,
                source=source,
                cluster=plain,
                now=end,
                settings=CycleSettings(),
            )
            for policy, _ in policies
        ]

    def together() -> list[CycleResult]:
        cached = CachedCluster(api=api, cache_seconds=3600)
        return run_policies(
            policies, source=source, cluster=cached, now=end, settings=CycleSettings(), chunk=chunk
        )

    expected = [decided(r) for r in await asyncio.to_thread(alone)]
    found = [decided(r) for r in await asyncio.to_thread(together)]
    assert found == expected
    assert len({str(d) for d in expected}) == len(VIEWS), "the views differ: the test tells"
