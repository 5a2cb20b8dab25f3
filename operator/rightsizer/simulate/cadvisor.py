"""cAdvisor and DCGM families: samples every interval while a pod runs."""

from __future__ import annotations

from collections.abc import Iterator

from rightsizer.simulate.families import Part
from rightsizer.simulate.plan import Pod, Workload
from rightsizer.simulate.text import counter, integers, labels

CPU = "container_cpu_usage_seconds_total"
MEMORY = "container_memory_working_set_bytes"


def _labels(workload: Workload, pod: Pod, container: str) -> str:
    return labels([("namespace", workload.namespace), ("pod", pod.name), ("container", container)])


def cpu_usage(part: Part) -> Iterator[str]:
    pod_level = part.cloud.spec.pod_level_series
    for workload, series in part.series():
        tails = part.tails(series.pod)
        for item in series.containers:
            text = _labels(workload, series.pod, item.container.name)
            yield counter(CPU, text, item.cpu_units, tails)
        if pod_level:
            yield counter(CPU, _labels(workload, series.pod, ""), series.pod_cpu_units, tails)
            yield counter(CPU, _labels(workload, series.pod, "POD"), series.pause_cpu_units, tails)


def memory_working_set(part: Part) -> Iterator[str]:
    pod_level = part.cloud.spec.pod_level_series
    for workload, series in part.series():
        tails = part.tails(series.pod)
        for item in series.containers:
            text = _labels(workload, series.pod, item.container.name)
            yield integers(MEMORY, text, item.memory_bytes, tails)
        if pod_level:
            yield integers(
                MEMORY, _labels(workload, series.pod, ""), series.pod_memory_bytes, tails
            )
            yield integers(
                MEMORY, _labels(workload, series.pod, "POD"), series.pause_memory_bytes, tails
            )


def _has_cpu_limit(workload: Workload) -> bool:
    return any(c.cpu_limit is not None for c in workload.containers)


def _cfs(part: Part, name: str, *, throttled: bool) -> Iterator[str]:
    for workload, series in part.series(only=_has_cpu_limit):
        tails = part.tails(series.pod)
        for item in series.containers:
            values = item.cfs_throttled if throttled else item.cfs_periods
            if values is not None:
                text = _labels(workload, series.pod, item.container.name)
                yield integers(name, text, values, tails)


def cfs_periods(part: Part) -> Iterator[str]:
    return _cfs(part, "container_cpu_cfs_periods_total", throttled=False)


def cfs_throttled_periods(part: Part) -> Iterator[str]:
    return _cfs(part, "container_cpu_cfs_throttled_periods_total", throttled=True)


def gpu_util(part: Part) -> Iterator[str]:
    for workload, series in part.series(only=lambda w: w.gpu):
        tails = part.tails(series.pod)
        for item in series.containers:
            if item.gpu_util is not None:
                text = labels(
                    [
                        ("namespace", workload.namespace),
                        ("pod", series.pod.name),
                        ("container", item.container.name),
                        ("gpu", "0"),
                        ("UUID", series.pod.gpu_uuid or ""),
                    ]
                )
                yield integers("DCGM_FI_DEV_GPU_UTIL", text, item.gpu_util, tails)
