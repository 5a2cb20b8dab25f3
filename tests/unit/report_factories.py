"""Agency reports built through the real core: hand-made workloads and usage summaries,
``evaluate_workload`` and ``build_agency_report`` with the shipped default policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from rightsizer.core.evaluation import evaluate_workload
from rightsizer.core.model import (
    ContainerResources,
    ContainerUsage,
    ResourceStats,
    UsageSummary,
    Workload,
    WorkloadRef,
)
from rightsizer.core.policy import PolicySpec
from rightsizer.core.report import AgencyReport, build_agency_report, failed_agency_report
from rightsizer.core.units import GIB

END = datetime(2026, 3, 31, 16, 0, tzinfo=UTC)  # 2026-04-01 00:00 in Beijing: the end of Q1
WINDOW_DAYS = 14
HOSTILE = "<img src=x onerror=alert(1)>"

# utilisation of the request: (avg, p95, max)
SHAPES: dict[str, tuple[float, float, float]] = {
    "idle": (0.05, 0.10, 0.15),  # downsize (cpu and memory)
    "hot": (0.70, 1.0, 1.0),  # upsize
    "healthy": (0.50, 0.70, 0.75),  # keep
    "zombie": (0.001, 0.005, 0.01),  # reclaim
}


@dataclass(frozen=True)
class Spec:
    """One workload to build: its shape, size and how much history it has."""

    name: str
    shape: str
    cpu: float = 1.0  # cores per replica
    memory_gib: float = 1.0  # GiB per replica
    replicas: float = 2.0
    project: str | None = "portal"
    days: float = WINDOW_DAYS


def stats(request: float, shape: str, days: float) -> ResourceStats:
    avg, p95, peak = SHAPES[shape]
    return ResourceStats(
        values={"avg": avg * request, "p95": p95 * request, "max": peak * request},
        samples=int(days * 24 * 12),
        history_days=days,
    )


def workload(spec: Spec, namespace: str) -> tuple[Workload, UsageSummary]:
    ref = WorkloadRef(kind="Deployment", namespace=namespace, name=spec.name)
    memory = spec.memory_gib * GIB
    container = ContainerResources(
        name="app",
        requests={"cpu": spec.cpu, "memory": memory},
        limits={"cpu": spec.cpu * 2, "memory": memory},
    )
    usage = ContainerUsage(
        container="app",
        resources={
            "cpu": stats(spec.cpu, spec.shape, spec.days),
            "memory": stats(memory, spec.shape, spec.days),
        },
    )
    return (
        Workload(ref=ref, project=spec.project, replicas=spec.replicas, containers=(container,)),
        UsageSummary(
            ref=ref,
            end=END,
            window_seconds=WINDOW_DAYS * 86400.0,
            containers={"app": usage},
            pods=int(spec.replicas),
        ),
    )


def policy(agency: str, display_name: str | None = None) -> PolicySpec:
    return PolicySpec(agency=agency, display_name=display_name, namespaces=[agency])


def agency_report(agency: str, specs: list[Spec], display_name: str | None = None) -> AgencyReport:
    spec = policy(agency, display_name)
    evaluations = [evaluate_workload(*workload(s, agency), spec) for s in specs]
    return build_agency_report(f"{agency}-q1", spec, evaluations, end=END, queries=7)


def failed_report(agency: str, display_name: str | None, error: str) -> AgencyReport:
    return failed_agency_report(f"{agency}-q1", policy(agency, display_name), end=END, error=error)


def finance() -> AgencyReport:
    """Mixed: a downsize, an upsize, a keep, a reclaim and one with too little history."""
    return agency_report(
        "finance",
        [
            Spec("ledger", "idle", cpu=2, memory_gib=4),
            Spec("payments", "hot"),
            Spec("portal-web", "healthy", project="web"),
            Spec("legacy", "zombie", cpu=4, memory_gib=8),
            Spec("new-api", "healthy", days=2),
        ],
        display_name="市财政局",
    )


def health() -> AgencyReport:
    """Big and idle: more than 10,000 a month released; scores lowest."""
    return agency_report(
        "health",
        [
            Spec("his", "idle", cpu=8, memory_gib=16, replicas=50, project="his"),
            Spec("lis", "zombie", cpu=2, memory_gib=4, project="lis"),
        ],
        display_name="市卫健委",
    )


def education() -> AgencyReport:
    """Healthy: scores best."""
    return agency_report(
        "education",
        [Spec("school-portal", "healthy"), Spec("exam", "healthy", project="exam")],
        display_name="市教育局",
    )


def outage() -> AgencyReport:
    """Not evaluated: Prometheus was down; its display name is hostile HTML."""
    return failed_report("police", HOSTILE, "Prometheus unavailable: connection refused")


ESTATES: dict[int, Callable[[], list[AgencyReport]]] = {
    0: lambda: [],
    1: lambda: [finance()],
    3: lambda: [outage(), health(), finance()],  # one failed, not in ranking order
    4: lambda: [health(), outage(), education(), finance()],
}


def estate(size: int) -> list[AgencyReport]:
    """0, 1, 3 or 4 agencies; with 3 or more, one of them failed (police)."""
    return ESTATES[size]()
