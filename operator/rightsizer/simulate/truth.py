"""write_truth: the ground truth of a synthetic cloud, as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rightsizer.simulate.plan import Agency, Container, SyntheticCloud, Workload
from rightsizer.simulate.shapes import SHAPES
from rightsizer.simulate.spec import iso


def truth(cloud: SyntheticCloud) -> dict[str, Any]:
    return {
        "spec": cloud.spec.to_json(),
        "start": iso(cloud.start),
        "end": iso(cloud.end),
        "agencies": [_agency(agency) for agency in cloud.agencies],
        "workloads": [_workload(workload) for workload in cloud.workloads],
    }


def write_truth(cloud: SyntheticCloud, path: Path) -> None:
    """Write ``truth(cloud)`` to ``path`` (UTF-8 JSON, Chinese names kept readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(truth(cloud), ensure_ascii=False, indent=1)
    path.write_text(text + "\n", encoding="utf-8")


def _agency(agency: Agency) -> dict[str, Any]:
    return {
        "agency": agency.name,
        "displayName": agency.display_name,
        "namespaces": list(agency.namespaces),
        "projects": list(agency.projects),
    }


def _container(container: Container) -> dict[str, Any]:
    return {"name": container.name, "requests": container.requests(), "limits": container.limits()}


def _workload(workload: Workload) -> dict[str, Any]:
    info = SHAPES[workload.shape]
    data: dict[str, Any] = {
        "kind": workload.kind,
        "namespace": workload.namespace,
        "name": workload.name,
        "agency": workload.agency,
        "project": workload.project,
        "shape": workload.shape,
        "replicas": workload.replicas,
        "containers": [_container(c) for c in workload.containers],
        "hpa": workload.hpa,
        "gpu": workload.gpu,
        "expectedGrade": info.grade,
        "expectedAction": info.action,
        "nominal": info.nominal(),
        "pods": [pod.name for pod in workload.pods],
    }
    if workload.storage_bytes:
        data["nominal"]["storage"] = {"max": info.storage_used}
        data["storageBytes"] = workload.storage_bytes
    if workload.gpu:
        data["nominal"]["gpu"] = {"avg": 0.6}
    return data
