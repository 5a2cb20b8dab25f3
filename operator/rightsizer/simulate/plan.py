"""The plan of a synthetic cloud: agencies, namespaces, workloads and pods (no samples)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rightsizer.simulate.spec import CloudSpec, IntArray, grid

NODES = ("node-1", "node-2", "node-3")
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Container:
    """Requests and limits of one container: cpu in cores, memory in bytes, gpu devices."""

    name: str
    cpu_request: float
    memory_request: int
    cpu_limit: float | None = None
    memory_limit: int | None = None
    gpu: int = 0

    def requests(self) -> dict[str, float]:
        amounts: dict[str, float] = {"cpu": self.cpu_request, "memory": self.memory_request}
        if self.gpu:
            amounts[GPU_RESOURCE] = self.gpu
        return amounts

    def limits(self) -> dict[str, float]:
        amounts: dict[str, float] = {}
        if self.cpu_limit is not None:
            amounts["cpu"] = self.cpu_limit
        if self.memory_limit is not None:
            amounts["memory"] = self.memory_limit
        if self.gpu:
            amounts[GPU_RESOURCE] = self.gpu
        return amounts


@dataclass(frozen=True)
class Pod:
    """A pod and the samples it has: indexes ``first..last`` (inclusive) of the cloud's grid."""

    name: str
    node: str
    owner_kind: str  # ReplicaSet | StatefulSet | DaemonSet | Job
    owner_name: str
    first: int
    last: int
    slot: int  # the pod's number inside its workload: seeds its noise
    pvc: str | None = None
    gpu_uuid: str | None = None
    fresh: bool = False  # started inside the window: counters start near zero


@dataclass(frozen=True)
class Workload:
    index: int  # position in the cloud: seeds the workload's series
    kind: str  # Deployment | StatefulSet | DaemonSet | CronJob
    namespace: str
    name: str
    agency: str
    project: str
    shape: str
    replicas: int
    containers: tuple[Container, ...]
    pods: tuple[Pod, ...]
    hpa: bool = False
    gpu: bool = False
    replicasets: tuple[tuple[str, int], ...] = ()  # (name, first grid index it exists)
    storage_bytes: int = 0  # capacity of each pod's PVC (StatefulSets)


@dataclass(frozen=True)
class Agency:
    index: int
    name: str
    display_name: str
    namespaces: tuple[str, ...]
    projects: tuple[str, ...]


@dataclass(frozen=True)
class SyntheticCloud:
    spec: CloudSpec
    agencies: tuple[Agency, ...]
    workloads: tuple[Workload, ...]

    @property
    def end(self) -> int:
        return self.spec.end_timestamp

    @property
    def start(self) -> int:
        return int(self.times()[0])

    def times(self) -> IntArray:
        """cAdvisor sample times: every interval, the last exactly at ``end``."""
        return grid(self.end, self.spec.days * 86400, self.spec.interval_seconds)

    def ksm_times(self) -> IntArray:
        """kube-state-metrics sample times inside the window (every ksm interval)."""
        times = grid(self.end, self.spec.days * 86400, self.spec.ksm_interval_seconds)
        selected: IntArray = times[times >= self.start]
        return selected

    def ksm_times_between(self, first: int, last: int) -> IntArray:
        """ksm times between grid indexes first..last, plus the times at both ends."""
        times = self.times()
        start, end = int(times[first]), int(times[last])
        ksm = self.ksm_times()
        inside = ksm[(ksm >= start) & (ksm <= end)]
        merged: IntArray = np.unique(np.concatenate([inside, [start, end]]).astype(np.int64))
        return merged

    def pod_ksm_times(self, pod: Pod) -> IntArray:
        """ksm times while the pod lives, plus its first and last sample times."""
        return self.ksm_times_between(pod.first, pod.last)

    def workloads_of(self, agencies: set[str]) -> list[Workload]:
        return [w for w in self.workloads if w.agency in agencies]
