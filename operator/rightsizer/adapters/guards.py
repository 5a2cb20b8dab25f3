"""API objects that guard a change, as the core's plain data: LimitRanges and nodes (bounds),
VerticalPodAutoscalers (another owner of a workload's resources), PodDisruptionBudgets.

Pure translation: ``kubernetes.py`` lists the objects, these functions read them. A value
the API server would not have stored (an unparsable quantity) is left out, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rightsizer.core.bounds import ClusterBounds, NamespaceBounds
from rightsizer.core.budget import DisruptionBudget
from rightsizer.core.model import Resource
from rightsizer.core.policy import LabelSelector
from rightsizer.core.units import parse_quantity

BOUNDED: tuple[Resource, ...] = ("cpu", "memory")
VPA_GROUP, VPA_VERSION, VPA_PLURAL = "autoscaling.k8s.io", "v1", "verticalpodautoscalers"


def _amounts(values: Any) -> dict[Resource, float]:
    found: dict[Resource, float] = {}
    for resource in BOUNDED:
        raw = (values or {}).get(resource)
        if raw is None:
            continue
        try:
            found[resource] = parse_quantity(raw)
        except ValueError:
            continue
    return found


def namespace_bounds(namespace: str, limit_ranges: Iterable[dict[str, Any]]) -> NamespaceBounds:
    """Every ``type: Container`` item of the namespace's LimitRanges, combined."""
    bounds = NamespaceBounds(namespace=namespace)
    for limit_range in limit_ranges:
        for item in (limit_range.get("spec") or {}).get("limits") or []:
            if item.get("type") != "Container":
                continue
            bounds = bounds.merged(
                NamespaceBounds(
                    namespace=namespace,
                    min=_amounts(item.get("min")),
                    max=_amounts(item.get("max")),
                    max_ratio=_amounts(item.get("maxLimitRequestRatio")),
                )
            )
    return bounds


def cluster_bounds(nodes: Iterable[dict[str, Any]]) -> ClusterBounds:
    """The largest allocatable among the nodes, per resource (no nodes: no bound)."""
    largest: dict[Resource, float] = {}
    for node in nodes:
        for resource, amount in _amounts((node.get("status") or {}).get("allocatable")).items():
            largest[resource] = max(largest.get(resource, 0.0), amount)
    return ClusterBounds(allocatable=largest)


def vpa_targets(vpas: Iterable[dict[str, Any]]) -> dict[tuple[str, str], frozenset[Resource]]:
    """(kind, name) -> the resources a VPA sizes: its containerPolicies' controlledResources
    where given, else cpu and memory. A VPA in updateMode "Off" only recommends: it owns
    nothing; so does a container policy in mode "Off"."""
    targets: dict[tuple[str, str], frozenset[Resource]] = {}
    for vpa in vpas:
        spec = vpa.get("spec") or {}
        if (spec.get("updatePolicy") or {}).get("updateMode") == "Off":
            continue
        ref = spec.get("targetRef") or {}
        policies = [
            p
            for p in (spec.get("resourcePolicy") or {}).get("containerPolicies") or []
            if p.get("mode") != "Off"
        ]
        named = [p["controlledResources"] for p in policies if p.get("controlledResources")]
        resources = {r for names in named for r in names} if named else set(BOUNDED)
        if (spec.get("resourcePolicy") or {}).get("containerPolicies") and not policies:
            resources = set()  # every container policy is "Off"
        key = (str(ref.get("kind", "")), str(ref.get("name", "")))
        owned = frozenset(r for r in BOUNDED if r in resources)
        targets[key] = targets.get(key, frozenset()) | owned
    return {key: owned for key, owned in targets.items() if owned}


def disruption_budgets(pdbs: Iterable[dict[str, Any]]) -> list[DisruptionBudget]:
    """PodDisruptionBudgets: their selector and ``status.disruptionsAllowed`` (absent: 0)."""
    found = []
    for pdb in pdbs:
        raw = (pdb.get("spec") or {}).get("selector")
        found.append(
            DisruptionBudget(
                name=str((pdb.get("metadata") or {}).get("name", "")),
                selector=None if raw is None else _selector(raw),
                disruptions_allowed=int((pdb.get("status") or {}).get("disruptionsAllowed") or 0),
            )
        )
    return found


def _selector(raw: dict[str, Any]) -> LabelSelector:
    """A PDB's label selector; one rightsizer cannot read selects every pod (the cautious
    reading: its budget then holds every resize)."""
    try:
        return LabelSelector.model_validate(
            {
                "matchLabels": raw.get("matchLabels") or {},
                "matchExpressions": [
                    {k: v for k, v in e.items() if k in ("key", "operator", "values")}
                    for e in raw.get("matchExpressions") or []
                ],
            }
        )
    except ValueError:
        return LabelSelector()
