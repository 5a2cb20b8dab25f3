"""Series from one batch of queries -> workloads and their usage summaries.

This module only sorts series by pod, container and owner; the arithmetic that combines
pods into a workload (weights, maxima, days) is the core's (``core.aggregate``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from rightsizer.adapters import promql
from rightsizer.core.aggregate import PodStats, combine, estimate_interval
from rightsizer.core.model import (
    ContainerResources,
    ContainerUsage,
    Resource,
    ResourceStats,
    UsageSummary,
    VolumeUsage,
    Workload,
    WorkloadKind,
    WorkloadRef,
)
from rightsizer.core.policy import DAY, duration_seconds
from rightsizer.ports import CollectionRequest, Observation

T = TypeVar("T")
Labels = dict[str, str]
Instant = list[tuple[Labels, float]]
Ranged = list[tuple[Labels, list[tuple[float, float]]]]
PodKey = tuple[str, str]  # namespace, pod
ContainerKey = tuple[str, str, str]  # namespace, pod, container
_RESOURCE_NAMES: dict[str, Resource] = {"cpu": "cpu", "memory": "memory", "nvidia_com_gpu": "gpu"}
_DIRECT_KINDS: dict[str, WorkloadKind] = {"StatefulSet": "StatefulSet", "DaemonSet": "DaemonSet"}


@dataclass
class BatchSeries:
    """Everything one batch's queries returned, by part name: rows with their labels, and
    figures already keyed by container (``keyed``: a part's value per container;
    ``keyed_daily``: per container, day index (0 = the window's oldest) -> value), which the
    incremental path computes from its state without labels to make and parse again."""

    instant: dict[str, Instant] = field(default_factory=lambda: defaultdict(list))
    daily: dict[str, Ranged] = field(default_factory=lambda: defaultdict(list))
    keyed: dict[str, dict[ContainerKey, float]] = field(default_factory=lambda: defaultdict(dict))
    keyed_daily: dict[str, dict[ContainerKey, dict[int, float]]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    def part(self, name: str) -> Instant:
        return self.instant.get(name, [])

    def numbers(self, name: str) -> list[float]:
        """The values of a part, from its rows and its keyed figures."""
        return [value for _, value in self.part(name)] + list(self.keyed.get(name, {}).values())


def _container_key(labels: Labels) -> ContainerKey:
    return labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", "")


def _by_container(rows: Instant) -> dict[ContainerKey, float]:
    return {_container_key(labels): value for labels, value in rows}


def owners(series: BatchSeries) -> dict[PodKey, WorkloadRef]:
    """Each pod's workload: ReplicaSet -> Deployment, Job -> CronJob, or the direct owner."""
    parents: dict[tuple[str, str, str], tuple[str, str]] = {}
    for part, child in (("rs_owner", "replicaset"), ("job_owner", "job_name")):
        for labels, _ in series.part(part):
            key = (labels.get("namespace", ""), child, labels.get(child, ""))
            parents[key] = (labels.get("owner_kind", ""), labels.get("owner_name", ""))
    found: dict[PodKey, WorkloadRef] = {}
    for labels, _ in series.part("pod_owner"):
        namespace, kind, name = (
            labels.get("namespace", ""),
            labels.get("owner_kind", ""),
            labels.get("owner_name", ""),
        )
        ref = _workload_ref(namespace, kind, name, parents)
        if ref is not None:
            found[(namespace, labels.get("pod", ""))] = ref
    return found


def _workload_ref(
    namespace: str, kind: str, name: str, parents: dict[tuple[str, str, str], tuple[str, str]]
) -> WorkloadRef | None:
    if kind in _DIRECT_KINDS:
        return WorkloadRef(kind=_DIRECT_KINDS[kind], namespace=namespace, name=name)
    if kind == "ReplicaSet":
        parent = parents.get((namespace, "replicaset", name))
        if parent and parent[0] == "Deployment" and parent[1]:
            return WorkloadRef(kind="Deployment", namespace=namespace, name=parent[1])
        return None  # a bare ReplicaSet: not a workload rightsizer changes
    if kind == "Job":
        parent = parents.get((namespace, "job_name", name))
        if parent and parent[0] == "CronJob" and parent[1]:
            return WorkloadRef(kind="CronJob", namespace=namespace, name=parent[1])
        return WorkloadRef(kind="Job", namespace=namespace, name=name)
    return None


@dataclass(frozen=True)
class BatchContext:
    end: datetime
    window_seconds: float
    stale_seconds: float
    project_label: str
    interval: float


def assemble(
    series: BatchSeries, request: CollectionRequest, *, end: datetime
) -> list[Observation]:
    """The observations of one request's namespaces from its batch's series."""
    [observations] = assemble_batch(series, [request], end=end)
    return observations


def assemble_batch(
    series: BatchSeries, requests: Sequence[CollectionRequest], *, end: datetime
) -> list[list[Observation]]:
    """Each request's observations from the series of the batch they shared (requests of
    one batch share a ``batch_key``): the series are indexed once, not once per request."""
    if not requests:
        return []
    context = _context(series, requests[0], end=end)
    indexes = _Indexes.build(series, context)
    pods_of: dict[str, dict[WorkloadRef, list[str]]] = defaultdict(lambda: defaultdict(list))
    for (namespace, pod), ref in owners(series).items():
        pods_of[namespace][ref].append(pod)
    observed: dict[str, list[Observation]] = {
        namespace: [_observe(ref, sorted(pods), indexes, context) for ref, pods in refs.items()]
        for namespace, refs in pods_of.items()
    }
    return [
        sorted(
            (found for ns in set(request.namespaces) for found in observed.get(ns, [])),
            key=lambda observation: observation.workload.ref.key,
        )
        for request in requests
    ]


def _context(series: BatchSeries, request: CollectionRequest, *, end: datetime) -> BatchContext:
    window_seconds = duration_seconds(request.window)
    stale_seconds = duration_seconds(request.stale_after)
    recent = series.numbers("cpu_recent")
    samples = series.numbers("cpu_samples")
    fallback = window_seconds / max(samples) if samples else 60.0
    interval = estimate_interval(recent, duration_seconds(promql.RECENT), fallback=fallback)
    return BatchContext(
        end=end,
        window_seconds=window_seconds,
        stale_seconds=stale_seconds,
        project_label=request.project_label,
        interval=interval,
    )


@dataclass
class _Indexes:
    """The batch's series, indexed for lookups by pod and container."""

    alive: set[PodKey]
    project: dict[PodKey, str]
    requests: dict[ContainerKey, dict[Resource, float]]
    limits: dict[ContainerKey, dict[Resource, float]]
    containers: dict[PodKey, list[str]]
    replicas: dict[WorkloadRef, float]
    hpa: dict[WorkloadRef, frozenset[Resource]]
    claims: dict[PodKey, set[str]]
    days: int
    by_part: dict[str, dict[ContainerKey, float]]
    daily: dict[str, dict[ContainerKey, dict[int, float]]]
    node_capacity: dict[Resource, float]  # the largest node's allocatable, when known
    volumes: dict[str, dict[tuple[str, str], float]]  # part -> (namespace, claim) -> value
    _prefixed: dict[str, dict[str, dict[ContainerKey, float]]] = field(default_factory=dict)

    def values(self, part: str) -> dict[ContainerKey, float]:
        return self.by_part.get(part, {})

    def prefixed(self, prefix: str) -> dict[str, dict[ContainerKey, float]]:
        """Parts named ``<prefix><stat>``, by stat (found once per batch)."""
        if prefix not in self._prefixed:
            self._prefixed[prefix] = {
                part[len(prefix) :]: rows
                for part, rows in self.by_part.items()
                if part.startswith(prefix)
            }
        return self._prefixed[prefix]

    @classmethod
    def build(cls, series: BatchSeries, context: BatchContext) -> _Indexes:
        start = context.end.timestamp() - context.window_seconds
        daily = _merged_parts(
            {
                part: {
                    _container_key(labels): {_day_index(ts, start): value for ts, value in points}
                    for labels, points in rows
                }
                for part, rows in series.daily.items()
            },
            series.keyed_daily,
        )
        by_part = _merged_parts(
            {part: _by_container(rows) for part, rows in series.instant.items()}, series.keyed
        )
        requests = _resources(series.part("request"))
        limits = _resources(series.part("limit"))
        containers: dict[PodKey, list[str]] = defaultdict(list)
        for namespace, pod, container in sorted(
            {*requests, *limits, *by_part.get("mem_samples", {})}
        ):
            containers[(namespace, pod)].append(container)
        claims: dict[PodKey, set[str]] = defaultdict(set)
        for labels, _ in series.part("pvc"):
            claims[(labels["namespace"], labels["pod"])].add(labels["persistentvolumeclaim"])
        project_key = "label_" + "".join(
            c if c.isalnum() or c == "_" else "_" for c in context.project_label
        )
        return cls(
            alive={(labels["namespace"], labels["pod"]) for labels, _ in series.part("alive")},
            project={
                (labels["namespace"], labels["pod"]): labels[project_key]
                for labels, _ in series.part("pod_project")
                if labels.get(project_key)
            },
            requests=requests,
            limits=limits,
            containers=containers,
            replicas=_replicas(series.part("replicas")),
            hpa=_hpa(series),
            claims=claims,
            days=max(1, round(context.window_seconds / DAY)),
            by_part=_with_day_totals(by_part, daily),
            daily=daily,
            node_capacity=dict(_resources(series.part("node")).get(("", "", ""), {})),
            volumes={
                part: {
                    (labels["namespace"], labels["persistentvolumeclaim"]): value
                    for labels, value in series.part(part)
                }
                for part in ("pvc_capacity", "pvc_avg", "pvc_max")
            },
        )


def _merged_parts(
    found: dict[str, dict[ContainerKey, T]], keyed: Mapping[str, dict[ContainerKey, T]]
) -> dict[str, dict[ContainerKey, T]]:
    """Each part's values from its rows, then its keyed figures."""
    for part, values in keyed.items():
        if part in found:
            found[part].update(values)
        else:
            found[part] = values
    return found


def _with_day_totals(
    by_part: dict[str, dict[ContainerKey, float]],
    daily: dict[str, dict[ContainerKey, dict[int, float]]],
) -> dict[str, dict[ContainerKey, float]]:
    """The window's CPU seconds and memory peak from the days', where the queries left them
    to the daily query (``promql.whole_days``: the days tile the window)."""
    derived = (("cpu_seconds", "cpu_day_seconds", sum), ("memstat_max", "mem_day_peak", max))
    for part, day_part, total in derived:
        if part not in by_part and day_part in daily:
            by_part[part] = {
                key: total(days.values()) for key, days in daily[day_part].items() if days
            }
    return by_part


def _resources(rows: Instant) -> dict[ContainerKey, dict[Resource, float]]:
    found: dict[ContainerKey, dict[Resource, float]] = defaultdict(dict)
    for labels, value in rows:
        resource = _RESOURCE_NAMES.get(labels.get("resource", ""))
        if resource is not None:
            found[_container_key(labels)][resource] = value
    return found


def _replicas(rows: Instant) -> dict[WorkloadRef, float]:
    found: dict[WorkloadRef, float] = {}
    for labels, value in rows:
        for label, kind in (
            ("deployment", "Deployment"),
            ("statefulset", "StatefulSet"),
            ("daemonset", "DaemonSet"),
        ):
            if labels.get(label):
                ref = WorkloadRef(kind=kind, namespace=labels["namespace"], name=labels[label])
                found[ref] = value
    return found


def _hpa(series: BatchSeries) -> dict[WorkloadRef, frozenset[Resource]]:
    metrics: dict[tuple[str, str], set[str]] = defaultdict(set)
    for labels, _ in series.part("hpa_metric"):
        metrics[(labels["namespace"], labels["horizontalpodautoscaler"])].add(
            labels.get("metric_name", "")
        )
    found: dict[WorkloadRef, frozenset[Resource]] = {}
    for labels, _ in series.part("hpa"):
        kind = labels.get("scaletargetref_kind", "")
        if kind not in ("Deployment", "StatefulSet"):
            continue
        ref = WorkloadRef(
            kind=kind,
            namespace=labels["namespace"],
            name=labels.get("scaletargetref_name", ""),
        )
        names = metrics[(labels["namespace"], labels["horizontalpodautoscaler"])]
        found[ref] = frozenset(r for r in ("cpu", "memory") if r in names)
    return found


def _observe(
    ref: WorkloadRef, pods: list[str], indexes: _Indexes, context: BatchContext
) -> Observation:
    namespace = ref.namespace
    current = [pod for pod in pods if (namespace, pod) in indexes.alive] or pods[-1:]
    names = sorted({c for pod in current for c in indexes.containers.get((namespace, pod), [])})
    containers = tuple(
        ContainerResources(
            name=name,
            requests=_merged(indexes.requests, namespace, current, name),
            limits=_merged(indexes.limits, namespace, current, name),
        )
        for name in names
    )
    is_job = ref.kind in ("CronJob", "Job")
    usage_by_container = {
        name: _container_usage(name, namespace, pods, indexes, context, fresh_required=not is_job)
        for name in names
    }
    seconds = _pod_seconds(namespace, pods, indexes, context)
    duty = min(1.0, seconds / context.window_seconds) if is_job else 1.0
    replicas = indexes.replicas.get(ref, float(len(current)) if not is_job else 1.0)
    project = next(
        (
            indexes.project[(namespace, pod)]
            for pod in reversed(pods)
            if (namespace, pod) in indexes.project
        ),
        None,
    )
    workload = Workload(
        ref=ref,
        project=project,
        replicas=replicas,
        containers=containers,
        hpa_resources=indexes.hpa.get(ref, frozenset()),
    )
    usage = UsageSummary(
        ref=ref,
        end=context.end,
        window_seconds=context.window_seconds,
        containers={k: v for k, v in usage_by_container.items() if v is not None},
        volumes=_volumes(namespace, pods, indexes),
        duty_cycle=duty,
        pods=len(pods),
        node_capacity=indexes.node_capacity,
    )
    return Observation(workload=workload, usage=usage)


def _merged(
    index: dict[ContainerKey, dict[Resource, float]], namespace: str, pods: list[str], name: str
) -> dict[Resource, float]:
    merged: dict[Resource, float] = {}
    for pod in pods:
        for resource, value in index.get((namespace, pod, name), {}).items():
            merged[resource] = max(merged.get(resource, 0.0), value)
    return merged


def _pod_seconds(namespace: str, pods: list[str], indexes: _Indexes, ctx: BatchContext) -> float:
    """How long the pods ran in the window (their longest-lived container each)."""
    samples = indexes.values("mem_samples")
    return sum(
        max(
            (
                samples.get((namespace, pod, c), 0.0)
                for c in indexes.containers.get((namespace, pod), [])
            ),
            default=0.0,
        )
        * ctx.interval
        for pod in pods
    )


def _container_usage(
    name: str,
    namespace: str,
    pods: list[str],
    indexes: _Indexes,
    context: BatchContext,
    *,
    fresh_required: bool,
) -> ContainerUsage | None:
    keys = [(namespace, pod, name) for pod in pods]
    resources: dict[Resource, ResourceStats] = {}
    for resource, reader in (("cpu", _cpu_pods), ("memory", _memory_pods), ("gpu", _gpu_pods)):
        pod_stats = reader(keys, indexes, context)
        if pod_stats:
            resources[resource] = combine(pod_stats, days=indexes.days)  # type: ignore[index]
    if not resources:
        return None
    throttled_rows, fresh_rows = indexes.values("throttled"), indexes.values("mem_fresh")
    throttled = [
        throttled_rows[k] for k in keys if k in throttled_rows and math.isfinite(throttled_rows[k])
    ]
    killed = [k for k in keys if k in indexes.values("oom")]
    oom_flag = bool(killed)
    # the memory a kill happened at: the limit the killed pod had (it may be lower than the
    # limit the workload has now, if it was raised since)
    died_at = [indexes.limits[k]["memory"] for k in killed if "memory" in indexes.limits.get(k, {})]
    restarts = sum(indexes.values("restarts").get(k, 0.0) for k in keys)
    fresh = any(fresh_rows.get(k, 0.0) > 0 for k in keys)
    return ContainerUsage(
        container=name,
        resources=resources,
        throttled_ratio=max(throttled) if throttled else None,
        oom_kills=max(1, round(restarts)) if oom_flag else 0,
        oom_memory=max(died_at) if died_at else None,
        fresh=fresh or not fresh_required,
    )


def _day_index(timestamp: float, start: float) -> int:
    """The day (0 = the window's oldest) of a daily point at ``timestamp`` (the day's end)."""
    return round((timestamp - start) / DAY) - 1


def _daily(indexes: _Indexes, part: str, key: ContainerKey) -> dict[int, float]:
    return indexes.daily.get(part, {}).get(key, {})


def _cpu_pods(keys: list[ContainerKey], indexes: _Indexes, context: BatchContext) -> list[PodStats]:
    seconds, samples = indexes.values("cpu_seconds"), indexes.values("cpu_samples")
    stat_parts = indexes.prefixed("cpustat_")
    found = []
    for key in keys:
        if key not in samples or key not in seconds:
            continue
        lifetime = max(samples[key] * context.interval, context.interval)
        values = {"avg": seconds[key] / lifetime}
        values.update({stat: rows[key] for stat, rows in stat_parts.items() if key in rows})
        found.append(
            PodStats(
                values=values,
                samples=int(samples[key]),
                seconds=lifetime,
                daily_peaks={},  # given: a default would be deep-copied, per pod
                daily_totals=_daily(indexes, "cpu_day_seconds", key),
            )
        )
    return found


def _memory_pods(
    keys: list[ContainerKey], indexes: _Indexes, context: BatchContext
) -> list[PodStats]:
    samples = indexes.values("mem_samples")
    stat_parts = indexes.prefixed("memstat_")
    found = []
    for key in keys:
        if key not in samples:
            continue
        values = {stat: rows[key] for stat, rows in stat_parts.items() if key in rows}
        found.append(
            PodStats(
                values=values,
                samples=int(samples[key]),
                seconds=samples[key] * context.interval,
                daily_peaks=_daily(indexes, "mem_day_peak", key),
                daily_totals={},
            )
        )
    return found


def _gpu_pods(keys: list[ContainerKey], indexes: _Indexes, context: BatchContext) -> list[PodStats]:
    samples = indexes.values("gpu_samples")
    parts = {"avg": indexes.values("gpu_avg"), "max": indexes.values("gpu_max")}
    return [
        PodStats(
            values={stat: rows[key] for stat, rows in parts.items() if key in rows},
            samples=int(samples[key]),
            seconds=samples[key] * context.interval,
            daily_peaks={},
            daily_totals={},
        )
        for key in keys
        if key in samples
    ]


def _volumes(namespace: str, pods: list[str], indexes: _Indexes) -> tuple[VolumeUsage, ...]:
    claims = sorted({claim for pod in pods for claim in indexes.claims.get((namespace, pod), ())})
    parts = indexes.volumes
    volumes = []
    for claim in claims:
        key = (namespace, claim)
        if key not in parts["pvc_capacity"]:
            continue
        used = {
            stat: parts[f"pvc_{stat}"][key]
            for stat in ("avg", "max")
            if key in parts[f"pvc_{stat}"]
        }
        volumes.append(
            VolumeUsage(
                claim=claim, capacity=parts["pvc_capacity"][key], used=ResourceStats(values=used)
            )
        )
    return tuple(volumes)
