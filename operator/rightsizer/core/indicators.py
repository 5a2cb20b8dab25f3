"""Indicators: one measurement function per resource, in a registry.

A measurement is a workload's utilisation of one resource for one statistic: the sum of
its containers' usage divided by the sum of what that usage is measured against (the
request, else the limit). Summing before dividing weighs containers by their requests.
"""

from __future__ import annotations

from collections.abc import Callable

from rightsizer.core.model import (
    ContainerResources,
    ContainerUsage,
    Frozen,
    Resource,
    UsageSummary,
    Workload,
    trusted,
)


class Measurement(Frozen):
    """Utilisation (a fraction) of one resource for one statistic, with what it came from."""

    resource: Resource
    stat: str
    utilisation: float
    usage: float
    reference: float
    basis: str  # "request", "limit" or "capacity"

    def describe(self) -> str:
        return describe_utilisation(self.resource, self.stat, self.utilisation, self.basis)


def describe_utilisation(resource: Resource, stat: str, utilisation: float, basis: str) -> str:
    return f"{resource} {stat} {utilisation:.0%} of {basis}"


Measure = Callable[[Workload, UsageSummary, Resource, str], Measurement | None]


def measure_containers(
    workload: Workload, usage: UsageSummary, resource: Resource, stat: str
) -> Measurement | None:
    """CPU, memory or GPU: containers with both a measured stat and a request or limit."""
    total_usage = total_reference = 0.0
    bases: set[str] = set()
    for container in workload.containers:
        measured = usage.containers.get(container.name)
        stats = measured.resources.get(resource) if measured else None
        value = stats.values.get(stat) if stats else None
        if value is None:
            continue
        reference, basis = container.reference(resource)
        if reference is None:
            continue
        total_usage += value
        total_reference += reference
        bases.add(basis)
    if total_reference <= 0:
        return None
    return trusted(
        Measurement,
        resource=resource,
        stat=stat,
        utilisation=total_usage / total_reference,
        usage=total_usage,
        reference=total_reference,
        basis="/".join(sorted(bases)),
    )


def measure_volumes(
    workload: Workload, usage: UsageSummary, resource: Resource, stat: str
) -> Measurement | None:
    """Storage: used bytes over PVC capacity, summed over the workload's claims."""
    del workload
    total_used = total_capacity = 0.0
    for volume in usage.volumes:
        value = volume.used.stat(stat)
        if value is None or volume.capacity <= 0:
            continue
        total_used += value
        total_capacity += volume.capacity
    if total_capacity <= 0:
        return None
    return trusted(
        Measurement,
        resource=resource,
        stat=stat,
        utilisation=total_used / total_capacity,
        usage=total_used,
        reference=total_capacity,
        basis="capacity",
    )


MEASURES: dict[Resource, Measure] = {
    "cpu": measure_containers,
    "memory": measure_containers,
    "gpu": measure_containers,
    "storage": measure_volumes,
}


def measure(
    workload: Workload, usage: UsageSummary, resource: Resource, stat: str
) -> Measurement | None:
    """The workload's utilisation of ``resource`` by ``stat``, or None when unmeasurable."""
    return MEASURES[resource](workload, usage, resource, stat)


def container_utilisation(
    container: ContainerResources, measured: ContainerUsage | None, resource: Resource, stat: str
) -> Measurement | None:
    """One container's utilisation of ``resource`` by ``stat``."""
    reference, basis = container.reference(resource)
    stats = measured.resources.get(resource) if measured else None
    value = stats.stat(stat) if stats else None
    if reference is None or value is None:
        return None
    return Measurement(
        resource=resource,
        stat=stat,
        utilisation=value / reference,
        usage=value,
        reference=reference,
        basis=basis,
    )


def utilisation(
    container: ContainerResources, measured: ContainerUsage | None, resource: Resource, stat: str
) -> tuple[float, str] | None:
    """One container's utilisation of ``resource`` by ``stat`` as a bare fraction, and what it
    is measured against: ``container_utilisation`` without the record of what it came from."""
    reference, basis = container.reference(resource)
    stats = measured.resources.get(resource) if measured else None
    value = stats.stat(stat) if stats else None
    if reference is None or value is None:
        return None
    return value / reference, basis
