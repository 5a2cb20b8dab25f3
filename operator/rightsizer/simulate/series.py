"""The samples of one pod: counters and gauges as cAdvisor, kubelet and DCGM report them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rightsizer.simulate.plan import Container, Pod, SyntheticCloud, Workload
from rightsizer.simulate.shapes import (
    GENERATORS,
    FloatArray,
    ShapeContext,
    Usage,
    gpu_utilisation,
    throttled_share,
)
from rightsizer.simulate.spec import IntArray

COUNTER_SCALE = 10_000  # CPU-second counters carry 4 decimals
CFS_PERIODS_PER_SECOND = 10  # the default 100 ms CFS period
PAUSE_CPU_CORES = 0.0001
PAUSE_MEMORY_BYTES = 700 * 1024


@dataclass(frozen=True, eq=False)
class ContainerSeries:
    container: Container
    usage: Usage  # utilisation: usage / request per sample
    cpu_units: IntArray  # container_cpu_usage_seconds_total * COUNTER_SCALE
    memory_bytes: IntArray
    restarts: IntArray  # restarts so far at each sample
    first_oom: int | None  # first sample after an OOM kill (the restarted container)
    cfs_periods: IntArray | None  # only with a cpu limit
    cfs_throttled: IntArray | None
    gpu_util: IntArray | None  # percent, GPU containers only


@dataclass(frozen=True, eq=False)
class PodSeries:
    pod: Pod
    times: IntArray
    containers: tuple[ContainerSeries, ...]
    pause_cpu_units: IntArray  # container="POD"
    pause_memory_bytes: IntArray
    pod_cpu_units: IntArray  # container="": the pod's cgroup, never reset
    pod_memory_bytes: IntArray


def pod_series(cloud: SyntheticCloud, workload: Workload, pod: Pod) -> PodSeries:
    """Every sample of the pod, seeded by (seed, workload, pod slot, container)."""
    times = cloud.times()[pod.first : pod.last + 1]
    seed = cloud.spec.seed
    containers = tuple(
        _container_series(cloud, workload, pod, times, number)
        for number in range(len(workload.containers))
    )
    rng = np.random.default_rng([seed, workload.index, pod.slot, 1000])
    interval = cloud.spec.interval_seconds
    pause_inc = PAUSE_CPU_CORES * interval * (1 + rng.uniform(-0.2, 0.2, times.size))
    pause_cpu = _counter(pause_inc, _offset(rng, pod, 1e4), _NO_RESETS)
    pause_memory = PAUSE_MEMORY_BYTES + rng.integers(-4096, 4096, times.size)
    pod_inc = pause_inc + sum((_increments(c, interval) for c in containers), np.zeros(times.size))
    pod_cpu = _counter(pod_inc, _offset(rng, pod, 1e6), _NO_RESETS)
    pod_memory = pause_memory + sum((c.memory_bytes for c in containers), np.zeros(times.size))
    return PodSeries(
        pod,
        times,
        containers,
        _units(pause_cpu),
        pause_memory.astype(np.int64),
        _units(pod_cpu),
        pod_memory.astype(np.int64),
    )


_NO_RESETS = np.zeros(0, dtype=np.int64)


def _offset(rng: np.random.Generator, pod: Pod, scale: float) -> float:
    """Counters of containers running before the window start at a random offset."""
    return 0.0 if pod.fresh else float(rng.uniform(0.01, 1.0)) * scale


def _units(counter: FloatArray) -> IntArray:
    return np.round(counter * COUNTER_SCALE).astype(np.int64)


def _increments(series: ContainerSeries, interval: int) -> FloatArray:
    cores = np.clip(series.usage.cpu, 0.0, None) * series.container.cpu_request
    return cores * interval


def _counter(increments: FloatArray, offset: float, resets: IntArray) -> FloatArray:
    """offset + running sum, restarting from zero at each reset sample."""
    total = np.cumsum(increments)
    if resets.size == 0:
        return offset + total
    marks = np.zeros(total.size, dtype=np.int64)
    marks[resets] = 1
    segment = np.cumsum(marks)
    bases = np.concatenate([[-offset], total[resets - 1]])
    result: FloatArray = total - bases[segment]
    return result


def _container_series(
    cloud: SyntheticCloud, workload: Workload, pod: Pod, times: IntArray, number: int
) -> ContainerSeries:
    spec = cloud.spec
    container = workload.containers[number]
    rng = np.random.default_rng([spec.seed, workload.index, pod.slot, number])
    ctx = ShapeContext(
        times, spec.interval_seconds, (cloud.start, cloud.end), (spec.seed, workload.index), rng
    )
    usage = GENERATORS[workload.shape](ctx)
    resets = np.flatnonzero(usage.kills[:-1]).astype(np.int64) + 1
    increments = np.clip(usage.cpu, 0.0, None) * container.cpu_request * spec.interval_seconds
    increments[resets] *= 0.5
    if pod.fresh:
        increments[0] *= 0.5
    cpu = _counter(increments, _offset(rng, pod, 1e5 * container.cpu_request), resets)
    memory = np.round(np.clip(usage.memory, 0.0, None) * container.memory_request)
    if container.memory_limit is not None:
        memory[usage.kills] = container.memory_limit
    restarts = np.concatenate([[0], np.cumsum(usage.kills[:-1])]).astype(np.int64)
    periods, throttled = _cfs(
        ctx, container, usage, resets, fresh=pod.fresh, at_capacity=workload.shape == "at-capacity"
    )
    return ContainerSeries(
        container=container,
        usage=usage,
        cpu_units=_units(cpu),
        memory_bytes=memory.astype(np.int64),
        restarts=restarts,
        first_oom=int(resets[0]) if resets.size else None,
        cfs_periods=periods,
        cfs_throttled=throttled,
        gpu_util=gpu_utilisation(ctx) if container.gpu else None,
    )


def _cfs(
    ctx: ShapeContext,
    container: Container,
    usage: Usage,
    resets: IntArray,
    *,
    fresh: bool,
    at_capacity: bool,
) -> tuple[IntArray | None, IntArray | None]:
    """CFS period counters, for containers with a cpu limit."""
    if container.cpu_limit is None:
        return None, None
    busy = 1.0 if at_capacity else np.clip(0.2 + usage.cpu, 0.0, 1.0)
    periods = np.round(ctx.interval * CFS_PERIODS_PER_SECOND * busy * np.ones(ctx.times.size))
    throttled = np.round(periods * throttled_share(usage.cpu, at_capacity=at_capacity))
    start = 0.0 if fresh else float(ctx.rng.integers(100_000, 10_000_000))
    share = 0.3 if at_capacity else 0.001
    total = np.round(_counter(periods, start, resets)).astype(np.int64)
    hit = np.round(_counter(throttled, round(start * share), resets)).astype(np.int64)
    return total, hit
