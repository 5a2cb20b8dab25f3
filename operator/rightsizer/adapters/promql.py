"""Pure PromQL builders: a fixed set of queries per batch of namespaces.

Every query selects a whole batch (one agency or a group of agencies) with one namespace
matcher, so the number of queries depends on the number of batches and the statistics the
policy reads, never on the number of workloads. Cheap selections are merged into one query
with ``or``; each part carries a ``rs_part`` label naming what it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from rightsizer.core.policy import DAY, duration_seconds

PART = "rs_part"
POD_KEYS = "namespace, pod, container"
CADVISOR_FILTER = 'container!="", container!="POD"'
RECENT = "6h"  # the span the sample interval is measured over
_PERCENTILE = re.compile(r"^p([1-9][0-9]?)$")


@dataclass(frozen=True)
class Resolution:
    """How finely CPU is read: rate over ``rate_window``, evaluated every ``step``.

    The default reads each 10-minute average once (non-overlapping windows): the same
    statistic as 10-minute windows every 5 minutes, for half of Prometheus' work.
    """

    step: str = "10m"
    rate_window: str = "10m"


Backend = Literal["prometheus", "thanos", "mimir", "victoriametrics"]
BACKENDS: tuple[Backend, ...] = ("prometheus", "thanos", "mimir", "victoriametrics")
# Query parameters that make a backend answer completely or fail, never with part of the
# data (docs/backends.md): Thanos answers partially when a store is down unless told not
# to; a VictoriaMetrics cluster likewise (a single node ignores the parameter).
_STRICT_PARAMS: dict[str, dict[str, str]] = {
    "thanos": {"partial_response": "false", "dedup": "true"},
    "victoriametrics": {"deny_partial_response": "1"},
}


def backend_params(backend: str) -> dict[str, str]:
    """The query parameters ``backend`` is always sent (the queries themselves are the same
    PromQL everywhere: see docs/backends.md for how the answers differ)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: one of {', '.join(BACKENDS)}")
    return dict(_STRICT_PARAMS.get(backend, {}))


def namespace_matcher(namespaces: Iterable[str]) -> str:
    names = sorted(set(namespaces))
    if not names:
        raise ValueError("a query needs at least one namespace")
    escaped = "|".join(re.escape(name).replace("\\-", "-") for name in names)
    return f'namespace=~"{escaped}"'


def sanitise_label(label: str) -> str:
    """kube-state-metrics' name for a Kubernetes label: 'label_' + [^a-zA-Z0-9_] -> '_'."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)


def tagged(parts: Mapping[str, str]) -> str:
    """Merge expressions into one query; each result series carries ``rs_part=<name>``."""
    return " or ".join(
        f'label_replace({expr}, "{PART}", "{name}", "", "")' for name, expr in parts.items()
    )


def quantile_of(stat: str) -> float | None:
    match = _PERCENTILE.match(stat)
    return int(match.group(1)) / 100 if match else None


def inventory_query(ns: str, *, window: str, stale_after: str, project_label: str) -> str:
    """Owners, labels, requests, limits, replicas, HPAs, PVCs and OOM facts, in one query."""
    return tagged(
        inventory_parts(ns, window=window, stale_after=stale_after, project_label=project_label)
    )


def inventory_parts(
    ns: str, *, window: str, stale_after: str, project_label: str
) -> dict[str, str]:
    """``inventory_query``'s parts, by name."""
    project = sanitise_label(project_label)
    owner = "owner_kind, owner_name"
    return {
        "pod_owner": f"max by (namespace, pod, {owner}) (last_over_time(kube_pod_owner{{{ns}}}[{window}]))",
        "rs_owner": f"max by (namespace, replicaset, {owner}) "
        f"(last_over_time(kube_replicaset_owner{{{ns}}}[{window}]))",
        "job_owner": f"max by (namespace, job_name, {owner}) "
        f"(last_over_time(kube_job_owner{{{ns}}}[{window}]))",
        "pod_project": f"max by (namespace, pod, {project}) "
        f"(last_over_time(kube_pod_labels{{{ns}}}[{window}]))",
        "alive": f"max by (namespace, pod) (last_over_time(kube_pod_owner{{{ns}}}[{stale_after}]))",
        "request": f"max by ({POD_KEYS}, resource) "
        f"(last_over_time(kube_pod_container_resource_requests{{{ns}}}[{window}]))",
        "limit": f"max by ({POD_KEYS}, resource) "
        f"(last_over_time(kube_pod_container_resource_limits{{{ns}}}[{window}]))",
        # cluster-wide: the largest node, the bound of any plausible usage
        "node": "max by (resource) (last_over_time("
        f'kube_node_status_allocatable{{resource=~"cpu|memory|nvidia_com_gpu"}}[{window}]))',
        "replicas": "max by (namespace, deployment, statefulset, daemonset) (last_over_time("
        '{__name__=~"kube_deployment_spec_replicas|kube_statefulset_replicas|'
        f'kube_daemonset_status_desired_number_scheduled",{ns}}}[{window}]))',
        "hpa": "max by (namespace, horizontalpodautoscaler, scaletargetref_kind, "
        f"scaletargetref_name) (last_over_time(kube_horizontalpodautoscaler_info{{{ns}}}"
        f"[{stale_after}]))",
        "hpa_metric": "max by (namespace, horizontalpodautoscaler, metric_name) (last_over_time("
        f"kube_horizontalpodautoscaler_spec_target_metric{{{ns}}}[{stale_after}]))",
        "pvc": "max by (namespace, pod, persistentvolumeclaim) (last_over_time("
        f"kube_pod_spec_volumes_persistentvolumeclaims_info{{{ns}}}[{window}]))",
        "oom": f"max by ({POD_KEYS}) (max_over_time("
        f'kube_pod_container_status_last_terminated_reason{{{ns},reason="OOMKilled"}}'
        f"[{window}]))",
        "restarts": f"sum by ({POD_KEYS}) "
        f"(increase(kube_pod_container_status_restarts_total{{{ns}}}[{window}]))",
    }


def cpu_counters_query(ns: str, *, window: str, seconds: bool = True) -> str:
    """CPU seconds used, samples seen and CFS throttling, per pod and container.

    ``seconds=False`` leaves out the CPU seconds: a window of whole days adds them up from
    the daily query's (``whole_days``), one scan of the CPU counter fewer.
    """
    sel = f"{{{ns},{CADVISOR_FILTER}}}"
    parts = {
        "cpu_seconds": f"sum by ({POD_KEYS}) (increase(container_cpu_usage_seconds_total{sel}[{window}]))",
        "cpu_samples": f"max by ({POD_KEYS}) (count_over_time(container_cpu_usage_seconds_total{sel}[{window}]))",
        "cpu_recent": f"max by ({POD_KEYS}) (count_over_time(container_cpu_usage_seconds_total{sel}[{RECENT}]))",
        "throttled": f"sum by ({POD_KEYS}) (increase(container_cpu_cfs_throttled_periods_total{sel}[{window}]))"
        f" / sum by ({POD_KEYS}) (increase(container_cpu_cfs_periods_total{sel}[{window}]))",
    }
    if not seconds:
        del parts["cpu_seconds"]
    return tagged(parts)


def whole_days(window: str) -> bool:
    """Whether the daily query's days tile the window exactly (no day counted twice): then
    the window's CPU seconds are the days' sum and its memory peak the days' largest."""
    return duration_seconds(window) % DAY == 0


def cpu_stat_query(ns: str, *, stat: str, window: str, resolution: Resolution) -> str:
    """A CPU percentile or maximum of ``rate`` over the window (a subquery).

    The statistic is taken per series and then the largest per container: an aggregation
    inside the subquery runs at each of its steps and doubles Prometheus' work (measured:
    README, Performance). A container with one series in the window (the usual case) gets
    exactly the subquery's value; one with several (restarted under a new cgroup id, or
    scraped twice) gets the largest of its series' values, which is never below the
    statistic of their union (a percentile of a union is at most its parts' largest).
    """
    subquery = cpu_rate_subquery(ns, window=window, resolution=resolution)
    if stat == "max":
        return f"max by ({POD_KEYS}) (max_over_time({subquery}))"
    quantile = quantile_of(stat)
    if quantile is None:
        raise ValueError(f"no CPU subquery for stat {stat!r}")
    return f"max by ({POD_KEYS}) (quantile_over_time({quantile:g}, {subquery}))"


def cpu_rate_subquery(ns: str, *, window: str, resolution: Resolution) -> str:
    """Each CPU series' rate over ``resolution.rate_window``, every ``resolution.step``."""
    return (
        f"rate(container_cpu_usage_seconds_total{{{ns},{CADVISOR_FILTER}}}"
        f"[{resolution.rate_window}])[{window}:{resolution.step}]"
    )


def memory_query(ns: str, *, window: str, stale_after: str, stats: Sequence[str]) -> str:
    """Memory working set: samples, freshness and each statistic asked for, per container."""
    sel = f"container_memory_working_set_bytes{{{ns},{CADVISOR_FILTER}}}"
    parts = {
        "mem_samples": f"max by ({POD_KEYS}) (count_over_time({sel}[{window}]))",
        "mem_fresh": f"max by ({POD_KEYS}) (count_over_time({sel}[{stale_after}]))",
    }
    for stat in sorted(set(stats)):
        parts[f"memstat_{stat}"] = memory_stat_expr(sel, stat=stat, window=window)
    return tagged(parts)


def memory_stat_expr(sel: str, *, stat: str, window: str) -> str:
    """One memory statistic of the raw series ``sel``, per container."""
    return f"max by ({POD_KEYS}) ({_over_time(stat)}{sel}[{window}]))"


def _over_time(stat: str) -> str:
    if stat == "avg":
        return "avg_over_time("
    if stat == "max":
        return "max_over_time("
    quantile = quantile_of(stat)
    if quantile is None:
        raise ValueError(f"unknown statistic {stat!r}")
    return f"quantile_over_time({quantile:g}, "


def daily_query(ns: str) -> str:
    """A range query at a 1d step: each day's memory peak and CPU seconds, per container."""
    return tagged(
        {
            "mem_day_peak": f"max by ({POD_KEYS}) (max_over_time(container_memory_working_set_bytes"
            f"{{{ns},{CADVISOR_FILTER}}}[1d]))",
            "cpu_day_seconds": f"sum by ({POD_KEYS}) (increase(container_cpu_usage_seconds_total"
            f"{{{ns},{CADVISOR_FILTER}}}[1d]))",
        }
    )


def storage_query(ns: str, *, window: str) -> str:
    used = f"kubelet_volume_stats_used_bytes{{{ns}}}"
    keys = "namespace, persistentvolumeclaim"
    return tagged(
        {
            "pvc_capacity": f"max by ({keys}) (last_over_time(kubelet_volume_stats_capacity_bytes{{{ns}}}[{window}]))",
            "pvc_avg": f"max by ({keys}) (avg_over_time({used}[{window}]))",
            "pvc_max": f"max by ({keys}) (max_over_time({used}[{window}]))",
        }
    )


def gpu_query(ns: str, *, window: str) -> str:
    """GPU devices busy (DCGM utilisation / 100, summed over a container's GPUs)."""
    sel = f"DCGM_FI_DEV_GPU_UTIL{{{ns}}}"
    return tagged(
        {
            "gpu_avg": f"sum by ({POD_KEYS}) (avg_over_time({sel}[{window}])) / 100",
            "gpu_max": f"sum by ({POD_KEYS}) (max_over_time({sel}[{window}])) / 100",
            "gpu_samples": f"max by ({POD_KEYS}) (count_over_time({sel}[{window}]))",
        }
    )


def namespace_labels_query(window: str) -> str:
    """Every namespace's allowlisted labels (kube-state-metrics ``label_*``)."""
    return f"last_over_time(kube_namespace_labels[{window}])"


DISPLAY_NAME_ANNOTATION = "rightsizer.io/display-name"


def namespace_annotations_query(window: str) -> str:
    """Allowlisted namespace annotations (kube-state-metrics ``annotation_*``)."""
    return f"last_over_time(kube_namespace_annotations[{window}])"


def sanitise_annotation(annotation: str) -> str:
    return "annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", annotation)
