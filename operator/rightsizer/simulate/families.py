"""The metric families of a synthetic cloud, each a generator of OpenMetrics text chunks.

kube-state-metrics and kubelet gauges come every ksm interval (plus a sample at each pod's
first and last timestamp); cAdvisor and DCGM samples every interval while a pod runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from rightsizer.simulate.plan import GPU_RESOURCE, Agency, Container, Pod, SyntheticCloud, Workload
from rightsizer.simulate.series import PodSeries, pod_series
from rightsizer.simulate.shapes import SHAPES
from rightsizer.simulate.spec import IntArray
from rightsizer.simulate.text import constant, integers, labels, number, stamps


@dataclass
class Part:
    """The part of a cloud one file holds, with the timestamp text it reuses."""

    cloud: SyntheticCloud
    agencies: tuple[Agency, ...]
    workloads: tuple[Workload, ...]
    _tails: list[str] = field(default_factory=list)
    _ksm: dict[tuple[int, int], tuple[IntArray, list[str]]] = field(default_factory=dict)

    def tails(self, pod: Pod) -> list[str]:
        if not self._tails:
            self._tails = stamps(self.cloud.times())
        return self._tails[pod.first : pod.last + 1]

    def ksm(self, first: int, last: int) -> tuple[IntArray, list[str]]:
        """ksm sample times (and their text) for grid indexes first..last."""
        key = (first, last)
        if key not in self._ksm:
            if len(self._ksm) > 4096:
                self._ksm.clear()
            times = self.cloud.ksm_times_between(first, last)
            self._ksm[key] = (times, stamps(times))
        return self._ksm[key]

    def window(self) -> list[str]:
        return self.ksm(0, self.cloud.times().size - 1)[1]

    def pods(self, kind: str | None = None) -> Iterator[tuple[Workload, Pod]]:
        for workload in self.workloads:
            if kind is None or workload.kind == kind:
                for pod in workload.pods:
                    yield workload, pod

    def series(
        self, *, shapes: set[str] | None = None, only: Callable[[Workload], bool] | None = None
    ) -> Iterator[tuple[Workload, PodSeries]]:
        """Each pod's samples (computed again per family: only one pod is held at a time)."""
        for workload, pod in self.pods():
            if (shapes is None or workload.shape in shapes) and (only is None or only(workload)):
                yield workload, pod_series(self.cloud, workload, pod)


Emitter = Callable[[Part], Iterator[str]]
ONE = "1"


def namespace_labels(part: Part) -> Iterator[str]:
    for agency in part.agencies:
        for namespace in agency.namespaces:
            text = labels([("namespace", namespace), ("label_rightsizer_io_agency", agency.name)])
            yield constant("kube_namespace_labels", text, ONE, part.window())


def namespace_annotations(part: Part) -> Iterator[str]:
    """The agency's display name, as kube-state-metrics exports an allowlisted annotation."""
    for agency in part.agencies:
        for namespace in agency.namespaces:
            text = labels(
                [
                    ("namespace", namespace),
                    ("annotation_rightsizer_io_display_name", agency.display_name),
                ]
            )
            yield constant("kube_namespace_annotations", text, ONE, part.window())


def pod_owner(part: Part) -> Iterator[str]:
    for workload, pod in part.pods():
        text = labels(
            [
                ("namespace", workload.namespace),
                ("pod", pod.name),
                ("owner_kind", pod.owner_kind),
                ("owner_name", pod.owner_name),
                ("owner_is_controller", "true"),
            ]
        )
        yield constant("kube_pod_owner", text, ONE, part.ksm(pod.first, pod.last)[1])


def replicaset_owner(part: Part) -> Iterator[str]:
    last = part.cloud.times().size - 1
    for workload in part.workloads:
        for replicaset, first in workload.replicasets:
            text = labels(
                [
                    ("namespace", workload.namespace),
                    ("replicaset", replicaset),
                    ("owner_kind", "Deployment"),
                    ("owner_name", workload.name),
                ]
            )
            yield constant("kube_replicaset_owner", text, ONE, part.ksm(first, last)[1])


def job_owner(part: Part) -> Iterator[str]:
    for workload, pod in part.pods("CronJob"):
        text = labels(
            [
                ("namespace", workload.namespace),
                ("job_name", pod.owner_name),
                ("owner_kind", "CronJob"),
                ("owner_name", workload.name),
            ]
        )
        yield constant("kube_job_owner", text, ONE, part.ksm(pod.first, pod.last)[1])


def pod_labels(part: Part) -> Iterator[str]:
    for workload, pod in part.pods():
        text = labels(
            [
                ("namespace", workload.namespace),
                ("pod", pod.name),
                ("label_app_kubernetes_io_part_of", workload.project),
            ]
        )
        yield constant("kube_pod_labels", text, ONE, part.ksm(pod.first, pod.last)[1])


_UNITS = {
    "cpu": ("cpu", "core"),
    "memory": ("memory", "byte"),
    GPU_RESOURCE: ("nvidia_com_gpu", "integer"),
}


def _resources(
    part: Part, name: str, amounts: Callable[[Container], dict[str, float]]
) -> Iterator[str]:
    for workload, pod in part.pods():
        tails = part.ksm(pod.first, pod.last)[1]
        for container in workload.containers:
            for resource, amount in amounts(container).items():
                label, unit = _UNITS[resource]
                text = labels(
                    [
                        ("namespace", workload.namespace),
                        ("pod", pod.name),
                        ("container", container.name),
                        ("node", pod.node),
                        ("resource", label),
                        ("unit", unit),
                    ]
                )
                yield constant(name, text, number(amount), tails)


def resource_requests(part: Part) -> Iterator[str]:
    return _resources(part, "kube_pod_container_resource_requests", Container.requests)


def resource_limits(part: Part) -> Iterator[str]:
    return _resources(part, "kube_pod_container_resource_limits", Container.limits)


def _container_labels(workload: Workload, pod: Pod, container: str) -> str:
    return labels([("namespace", workload.namespace), ("pod", pod.name), ("container", container)])


def restarts(part: Part) -> Iterator[str]:
    name = "kube_pod_container_status_restarts_total"
    for workload, pod in part.pods():
        times, tails = part.ksm(pod.first, pod.last)
        if workload.shape != "oom-killed":
            for container in workload.containers:
                yield constant(name, _container_labels(workload, pod, container.name), "0", tails)
            continue
        series = pod_series(part.cloud, workload, pod)
        at = np.searchsorted(series.times, times, side="right") - 1
        for item in series.containers:
            text = _container_labels(workload, pod, item.container.name)
            yield integers(name, text, item.restarts[at], tails)


def last_terminated_reason(part: Part) -> Iterator[str]:
    for workload, series in part.series(shapes={"oom-killed"}):
        times = part.ksm(series.pod.first, series.pod.last)[0]
        for item in series.containers:
            if item.first_oom is None:
                continue
            since = int(series.times[item.first_oom])
            kept = [since, *[t for t in times.tolist() if t > since]]
            text = labels(
                [
                    ("namespace", workload.namespace),
                    ("pod", series.pod.name),
                    ("container", item.container.name),
                    ("reason", "OOMKilled"),
                ]
            )
            yield constant(
                "kube_pod_container_status_last_terminated_reason",
                text,
                ONE,
                stamps(np.array(kept, dtype=np.int64)),
            )


def _replica_counts(part: Part, kind: str, name: str, label: str) -> Iterator[str]:
    for workload in part.workloads:
        if workload.kind == kind:
            text = labels([("namespace", workload.namespace), (label, workload.name)])
            yield constant(name, text, str(workload.replicas), part.window())


def deployment_replicas(part: Part) -> Iterator[str]:
    return _replica_counts(part, "Deployment", "kube_deployment_spec_replicas", "deployment")


def statefulset_replicas(part: Part) -> Iterator[str]:
    return _replica_counts(part, "StatefulSet", "kube_statefulset_replicas", "statefulset")


def daemonset_desired(part: Part) -> Iterator[str]:
    return _replica_counts(
        part, "DaemonSet", "kube_daemonset_status_desired_number_scheduled", "daemonset"
    )


def hpa_info(part: Part) -> Iterator[str]:
    for workload in part.workloads:
        if workload.hpa:
            text = labels(
                [
                    ("namespace", workload.namespace),
                    ("horizontalpodautoscaler", workload.name),
                    ("scaletargetref_kind", "Deployment"),
                    ("scaletargetref_name", workload.name),
                ]
            )
            yield constant("kube_horizontalpodautoscaler_info", text, ONE, part.window())


def hpa_target(part: Part) -> Iterator[str]:
    for workload in part.workloads:
        if workload.hpa:
            text = labels(
                [
                    ("namespace", workload.namespace),
                    ("horizontalpodautoscaler", workload.name),
                    ("metric_name", "cpu"),
                    ("metric_target_type", "utilization"),
                ]
            )
            yield constant(
                "kube_horizontalpodautoscaler_spec_target_metric", text, "70", part.window()
            )


def pvc_info(part: Part) -> Iterator[str]:
    for workload, pod in part.pods("StatefulSet"):
        if pod.pvc:
            text = labels(
                [
                    ("namespace", workload.namespace),
                    ("pod", pod.name),
                    ("volume", "data"),
                    ("persistentvolumeclaim", pod.pvc),
                ]
            )
            yield constant(
                "kube_pod_spec_volumes_persistentvolumeclaims_info",
                text,
                ONE,
                part.ksm(pod.first, pod.last)[1],
            )


def volume_capacity(part: Part) -> Iterator[str]:
    for workload, pod in part.pods("StatefulSet"):
        if pod.pvc:
            text = labels([("namespace", workload.namespace), ("persistentvolumeclaim", pod.pvc)])
            yield constant(
                "kubelet_volume_stats_capacity_bytes",
                text,
                str(workload.storage_bytes),
                part.ksm(pod.first, pod.last)[1],
            )


def volume_used(part: Part) -> Iterator[str]:
    """used / capacity grows slowly to the shape's storage figure at the window's end."""
    start, end = part.cloud.start, part.cloud.end
    for workload, pod in part.pods("StatefulSet"):
        if pod.pvc:
            times, tails = part.ksm(pod.first, pod.last)
            progress = (times - start) / max(end - start, 1)
            share = SHAPES[workload.shape].storage_used * (0.97 + 0.03 * progress)
            used = np.round(share * workload.storage_bytes).astype(np.int64)
            text = labels([("namespace", workload.namespace), ("persistentvolumeclaim", pod.pvc)])
            yield integers("kubelet_volume_stats_used_bytes", text, used, tails)
