"""Factories for the core's plain data: workloads, usage and policies, with sane defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rightsizer.core.model import (
    ContainerResources,
    ContainerUsage,
    ResourceStats,
    UsageSummary,
    VolumeUsage,
    Workload,
    WorkloadRef,
)
from rightsizer.core.policy import PolicySpec
from rightsizer.core.units import GIB, MIB

END = datetime(2026, 11, 16, tzinfo=UTC)
DAY = 86400.0


def policy(**overrides: Any) -> PolicySpec:
    data: dict[str, Any] = {"agency": "finance", "namespaces": ["fin-prod"]}
    data.update(overrides)
    return PolicySpec.model_validate(data)


def stats(days: float = 14, samples: int | None = None, **values: float) -> ResourceStats:
    return ResourceStats(
        values=values,
        samples=samples if samples is not None else int(days * 288),
        history_days=days,
    )


def container(
    name: str = "app",
    cpu: float | None = 1.0,
    memory: float | None = 1 * GIB,
    *,
    cpu_limit: float | None = None,
    memory_limit: float | None = None,
) -> ContainerResources:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    limits = {k: v for k, v in (("cpu", cpu_limit), ("memory", memory_limit)) if v is not None}
    return ContainerResources(name=name, requests=requests, limits=limits)  # type: ignore[arg-type]


def usage_of(
    name: str = "app",
    *,
    cpu: ResourceStats | None = None,
    memory: ResourceStats | None = None,
    oom_kills: int = 0,
    throttled: float | None = None,
    fresh: bool = True,
) -> ContainerUsage:
    resources = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return ContainerUsage(
        container=name,
        resources=resources,
        oom_kills=oom_kills,  # type: ignore[arg-type]
        throttled_ratio=throttled,
        fresh=fresh,
    )


def workload(
    *containers: ContainerResources,
    name: str = "web",
    kind: str = "Deployment",
    replicas: float = 2,
    project: str | None = "portal",
) -> Workload:
    ref = WorkloadRef(kind=kind, namespace="fin-prod", name=name)  # type: ignore[arg-type]
    return Workload(
        ref=ref, project=project, replicas=replicas, containers=containers or (container(),)
    )


def summary(
    target: Workload,
    *usages: ContainerUsage,
    volumes: tuple[VolumeUsage, ...] = (),
    duty_cycle: float = 1.0,
) -> UsageSummary:
    return UsageSummary(
        ref=target.ref,
        end=END,
        window_seconds=14 * DAY,
        containers={u.container: u for u in usages},
        volumes=volumes,
        duty_cycle=duty_cycle,
    )


def steady(
    cpu_fraction: float,
    memory_fraction: float,
    *,
    cpu: float = 1.0,
    memory: float = GIB,
    days: float = 14,
    cpu_peak: float | None = None,
    memory_peak: float | None = None,
) -> tuple[ResourceStats, ResourceStats]:
    """Usage at a steady fraction of requests (peaks given or 1.2x the average)."""
    cpu_max = (cpu_peak or cpu_fraction * 1.2) * cpu
    mem_max = (memory_peak or memory_fraction * 1.1) * memory
    return (
        stats(
            days,
            avg=cpu_fraction * cpu,
            p95=min(cpu_max, cpu_fraction * 1.15 * cpu),
            p98=min(cpu_max, cpu_fraction * 1.18 * cpu),
            p99=min(cpu_max, cpu_fraction * 1.19 * cpu),
            max=cpu_max,
        ),
        stats(days, avg=memory_fraction * memory, max=mem_max),
    )


__all__ = [
    "DAY",
    "END",
    "GIB",
    "MIB",
    "container",
    "policy",
    "stats",
    "steady",
    "summary",
    "usage_of",
    "workload",
]
