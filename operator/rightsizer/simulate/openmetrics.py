"""write_openmetrics: stream a cloud's samples into OpenMetrics files for promtool backfill."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TextIO

from rightsizer.simulate import cadvisor, families
from rightsizer.simulate.families import Emitter, Part
from rightsizer.simulate.plan import Agency, SyntheticCloud

# (family name, type, emitter); counters' samples carry the family name + "_total".
FAMILIES: tuple[tuple[str, str, Emitter], ...] = (
    ("kube_namespace_labels", "gauge", families.namespace_labels),
    ("kube_namespace_annotations", "gauge", families.namespace_annotations),
    ("kube_pod_owner", "gauge", families.pod_owner),
    ("kube_replicaset_owner", "gauge", families.replicaset_owner),
    ("kube_job_owner", "gauge", families.job_owner),
    ("kube_pod_labels", "gauge", families.pod_labels),
    ("kube_pod_container_resource_requests", "gauge", families.resource_requests),
    ("kube_pod_container_resource_limits", "gauge", families.resource_limits),
    ("kube_pod_container_status_restarts", "counter", families.restarts),
    ("kube_pod_container_status_last_terminated_reason", "gauge", families.last_terminated_reason),
    ("kube_deployment_spec_replicas", "gauge", families.deployment_replicas),
    ("kube_statefulset_replicas", "gauge", families.statefulset_replicas),
    ("kube_daemonset_status_desired_number_scheduled", "gauge", families.daemonset_desired),
    ("kube_horizontalpodautoscaler_info", "gauge", families.hpa_info),
    ("kube_horizontalpodautoscaler_spec_target_metric", "gauge", families.hpa_target),
    ("kube_pod_spec_volumes_persistentvolumeclaims_info", "gauge", families.pvc_info),
    ("kubelet_volume_stats_capacity_bytes", "gauge", families.volume_capacity),
    ("kubelet_volume_stats_used_bytes", "gauge", families.volume_used),
    ("container_cpu_usage_seconds", "counter", cadvisor.cpu_usage),
    ("container_memory_working_set_bytes", "gauge", cadvisor.memory_working_set),
    ("container_cpu_cfs_periods", "counter", cadvisor.cfs_periods),
    ("container_cpu_cfs_throttled_periods", "counter", cadvisor.cfs_throttled_periods),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", cadvisor.gpu_util),
)
_FLUSH_CHARS = 8 << 20


def write_openmetrics(
    cloud: SyntheticCloud, out_dir: Path, *, files: int = 1, jobs: int = 1
) -> list[Path]:
    """Write the cloud's samples to ``files`` OpenMetrics files (agencies split between them).

    Each file is a complete OpenMetrics document ending in ``# EOF``; only one pod's samples
    are held in memory at a time. ``jobs`` files are written in parallel processes.
    """
    if files < 1 or jobs < 1:
        raise ValueError(f"files and jobs must be at least 1 (got files={files}, jobs={jobs})")
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = split_agencies(cloud.agencies, files)
    width = max(3, len(str(len(groups))))
    paths = [out_dir / f"cloud-{i + 1:0{width}d}.om" for i in range(len(groups))]
    parts = [_part(cloud, group) for group in groups]
    if jobs == 1 or len(parts) == 1:
        for part, path in zip(parts, paths, strict=True):
            write_part(part, path)
        return paths
    with ProcessPoolExecutor(max_workers=min(jobs, len(parts))) as pool:
        list(pool.map(write_part, parts, paths))
    return paths


def split_agencies(agencies: Sequence[Agency], files: int) -> list[tuple[Agency, ...]]:
    """Contiguous, nearly equal groups; never more groups than agencies."""
    count = min(files, len(agencies))
    bounds = [round(i * len(agencies) / count) for i in range(count + 1)]
    return [tuple(agencies[bounds[i] : bounds[i + 1]]) for i in range(count)]


def _part(cloud: SyntheticCloud, agencies: tuple[Agency, ...]) -> Part:
    names = {agency.name for agency in agencies}
    workloads = tuple(w for w in cloud.workloads if w.agency in names)
    return Part(SyntheticCloud(cloud.spec, agencies, workloads), agencies, workloads)


def write_part(part: Part, path: Path) -> Path:
    """One OpenMetrics document: each family contiguous under its # TYPE line, then # EOF."""
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for name, kind, emit in FAMILIES:
            _write_family(handle, f"# TYPE {name} {kind}\n", emit(part))
        handle.write("# EOF\n")
    return path


def _write_family(handle: TextIO, header: str, chunks: Iterator[str]) -> None:
    pending: list[str] = []
    size = 0
    for chunk in chunks:
        if header:
            pending.append(header)
            header = ""
        pending.append(chunk)
        size += len(chunk)
        if size >= _FLUSH_CHARS:
            handle.write("".join(pending))
            pending, size = [], 0
    if pending:
        handle.write("".join(pending))
