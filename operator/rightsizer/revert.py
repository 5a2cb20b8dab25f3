"""Revert: put back the resources recorded before rightsizer's last change to a workload.

Used by `rightsizer revert` and by the operator when a workload carries the annotation
``rightsizer.io/revert: "true"``. The workload is then opted out (``rightsizer.io/exclude``)
so the next evaluation does not change it again, unless ``keep_managed``.
"""

from __future__ import annotations

from datetime import datetime

from rightsizer.adapters.kubernetes import (
    EXCLUDE,
    REVERT,
    ClusterError,
    ClusterWorkload,
    KubernetesCluster,
)
from rightsizer.api import annotations as notes
from rightsizer.api.status import stamp
from rightsizer.core.decision import ResourceChange
from rightsizer.core.model import Resource
from rightsizer.core.units import parse_quantity

REVERTED = "rightsizer.io/reverted"


def revert_changes(target: ClusterWorkload) -> list[ResourceChange]:
    """The changes that restore the recorded resources (cpu and memory)."""
    previous = notes.decode_previous(target.annotations.get(notes.PREVIOUS))
    if previous is None:
        raise ClusterError(f"{target.ref} has no readable {notes.PREVIOUS} annotation")
    current = {c.name: c for c in target.workload.containers}
    changes: list[ResourceChange] = []
    for name, parts in sorted(previous.items()):
        container = current.get(name)
        if container is None:
            continue
        resources: tuple[Resource, ...] = ("cpu", "memory")
        for resource in resources:
            old = (parts.get("requests") or {}).get(resource)
            now_request = container.requests.get(resource)
            if old is None or now_request is None:
                continue
            old_limit = (parts.get("limits") or {}).get(resource)
            changes.append(
                ResourceChange(
                    container=name,
                    resource=resource,
                    request_from=now_request,
                    request_to=parse_quantity(old),
                    limit_from=container.limits.get(resource),
                    limit_to=parse_quantity(old_limit) if old_limit is not None else None,
                )
            )
    return changes


def restore(
    cluster: KubernetesCluster,
    target: ClusterWorkload,
    *,
    now: datetime,
    reason: str,
    keep_managed: bool = False,
) -> str:
    """Patch the recorded resources back (one conditional patch); return what was done."""
    changes = revert_changes(target)
    annotations: dict[str, str | None] = {
        REVERTED: f"{stamp(now)} ({reason})",
        notes.STATE: None,
        REVERT: None,
    }
    if not keep_managed:
        annotations[EXCLUDE] = "true"
    cluster.resize(target, changes, annotations)
    restored = ", ".join(f"{c.key} -> {c.request_to:g}" for c in changes) or "nothing to restore"
    suffix = "" if keep_managed else "; opted out until rightsizer.io/exclude is removed"
    return f"reverted ({reason}): {restored}{suffix}"
