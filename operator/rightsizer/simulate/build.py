"""build_cloud: the seeded plan of agencies, namespaces, projects, workloads and pods."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from rightsizer.simulate import names
from rightsizer.simulate.plan import NODES, Agency, Container, Pod, SyntheticCloud, Workload
from rightsizer.simulate.shapes import (
    AT_CAPACITY_CPU_LIMIT_RATIO,
    OOM_LIMIT_RATIO,
    SHAPES,
    STANDARD_MIX,
)
from rightsizer.simulate.spec import DAY, SHANGHAI_OFFSET, CloudSpec, IntArray

MI = 1024 * 1024
GI = 1024 * MI
CPU_CHOICES = (0.1, 0.2, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
MEMORY_MI_CHOICES = (128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192)
KINDS = ("Deployment", "StatefulSet", "DaemonSet")
KIND_SHARES = (0.8, 0.14, 0.06)
HPA_SHARE = 1 / 15
SIDECAR_SHARE = 0.25
ROLLOUT_SHARE = 0.2  # of the stationary Deployments: about 1 in 10 Deployments overall
BATCH_START_LOCAL = 2 * 3600  # 02:00 Asia/Shanghai
BATCH_MINUTES = (55, 60, 65)


@dataclass
class _AgencyBuild:
    spec: CloudSpec
    agency: Agency
    rng: np.random.Generator
    times: IntArray
    taken: dict[str, set[str]] = field(default_factory=dict)


def build_cloud(spec: CloudSpec) -> SyntheticCloud:
    """The plan of the cloud (no samples yet); the same spec always gives the same plan."""
    cloud = SyntheticCloud(spec, (), ())
    times = cloud.times()
    agencies: list[Agency] = []
    workloads: list[Workload] = []
    for number in range(1, spec.agencies + 1):
        rng = np.random.default_rng([spec.seed, number])
        agency = _agency(number, rng)
        agencies.append(agency)
        build = _AgencyBuild(spec, agency, rng, times)
        workloads.extend(_agency_workloads(build))
    return SyntheticCloud(spec, tuple(agencies), tuple(workloads))


def _agency(number: int, rng: np.random.Generator) -> Agency:
    name = names.agency_name(number)
    namespaces = [f"{name}-prod"]
    if rng.random() < 0.5:
        namespaces.append(f"{name}-test")
    count = int(rng.integers(2, 6))
    projects = [str(p) for p in rng.choice(names.PROJECTS, count, replace=False)]
    return Agency(number, name, names.display_name(number), tuple(namespaces), tuple(projects))


def _has_gpu(spec: CloudSpec, number: int) -> bool:
    allowed = spec.shapes is None or "rightsized" in spec.shapes
    return allowed and not spec.single_pod and (number - 1) % 3 == 0


def _agency_workloads(build: _AgencyBuild) -> list[Workload]:
    spec, rng = build.spec, build.rng
    count = spec.workloads_per_agency
    gpu_positions: set[int] = set()
    if _has_gpu(spec, build.agency.index):
        picks = rng.choice(count, min(count, int(rng.integers(1, 3))), replace=False)
        gpu_positions = {int(p) for p in picks}
    base = (build.agency.index - 1) * count
    return [_workload(build, base + i, i, gpu=i in gpu_positions) for i in range(count)]


def _shape(spec: CloudSpec, rng: np.random.Generator, position: int) -> str:
    if spec.shapes is not None:
        return spec.shapes[position % len(spec.shapes)]
    mix = {k: v for k, v in STANDARD_MIX.items() if not (spec.single_pod and k == "batch")}
    weights = np.array(list(mix.values()))
    return str(rng.choice(list(mix), p=weights / weights.sum()))


def _kind(spec: CloudSpec, rng: np.random.Generator, shape: str) -> str:
    if shape == "batch":
        return "CronJob"
    if spec.single_pod:
        return "Deployment"
    return str(rng.choice(KINDS, p=KIND_SHARES))


def _workload(build: _AgencyBuild, index: int, position: int, *, gpu: bool) -> Workload:
    spec, rng, agency = build.spec, build.rng, build.agency
    shape = "rightsized" if gpu else _shape(spec, rng, position)
    kind = "Deployment" if gpu else _kind(spec, rng, shape)
    namespace = agency.namespaces[0]
    if len(agency.namespaces) > 1 and rng.random() < 0.25:
        namespace = agency.namespaces[1]
    project = str(rng.choice(agency.projects))
    role = str(rng.choice(names.ROLES[kind]))
    name = names.unique(f"{project}-{role}", build.taken.setdefault(namespace, set()))
    containers = _containers(build, role, shape, kind=kind, gpu=gpu)
    workload = Workload(
        index,
        kind,
        namespace,
        name,
        agency.name,
        project,
        shape,
        _replicas(spec, rng, kind),
        containers,
        (),
    )
    return _with_pods(build, workload)


def _replicas(spec: CloudSpec, rng: np.random.Generator, kind: str) -> int:
    if spec.single_pod or kind == "CronJob":
        return 1
    if kind == "DaemonSet":
        return len(NODES)
    if kind == "StatefulSet":
        return int(rng.integers(1, 4))
    return int(rng.choice([1, 2, 3, 4], p=[0.3, 0.35, 0.2, 0.15]))


def _containers(
    build: _AgencyBuild, role: str, shape: str, *, kind: str, gpu: bool
) -> tuple[Container, ...]:
    rng = build.rng
    if gpu:
        main = _container(
            rng,
            role,
            shape,
            float(rng.choice([2.0, 4.0])),
            int(rng.choice([4096, 8192])) * MI,
            gpu=1,
        )
        return (main,)
    cpu = float(rng.choice(CPU_CHOICES))
    memory = int(rng.choice(MEMORY_MI_CHOICES)) * MI
    main = _container(rng, role, shape, cpu, memory)
    if build.spec.single_pod or kind != "Deployment" or rng.random() >= SIDECAR_SHARE:
        return (main,)
    sidecar = _container(
        rng, "log-agent", shape, float(rng.choice([0.1, 0.2])), int(rng.choice([128, 256])) * MI
    )
    return (main, sidecar)


def _container(
    rng: np.random.Generator, name: str, shape: str, cpu: float, memory: int, *, gpu: int = 0
) -> Container:
    memory_ratio = float(rng.choice([1.0, 1.5, 2.0])) if rng.random() < 0.8 else None
    cpu_ratio = float(rng.choice([1.5, 2.0])) if rng.random() < 0.5 else None
    if shape == "oom-killed":
        memory_ratio = OOM_LIMIT_RATIO
    if shape == "at-capacity":
        cpu_ratio = AT_CAPACITY_CPU_LIMIT_RATIO
    return Container(
        name=name,
        cpu_request=cpu,
        memory_request=memory,
        cpu_limit=None if cpu_ratio is None else round(cpu * cpu_ratio, 6),
        memory_limit=None if memory_ratio is None else round(memory * memory_ratio),
        gpu=gpu,
    )


def _with_pods(build: _AgencyBuild, workload: Workload) -> Workload:
    pods_of = {
        "Deployment": _deployment_pods,
        "StatefulSet": _statefulset_pods,
        "DaemonSet": _daemonset_pods,
        "CronJob": _cronjob_pods,
    }[workload.kind]
    return pods_of(build, workload)


def _rolls_out(build: _AgencyBuild, workload: Workload, *, gpu: bool) -> bool:
    stationary = SHAPES[workload.shape].rollout and not gpu
    return stationary and not build.spec.single_pod and build.rng.random() < ROLLOUT_SHARE


def _deployment_pods(build: _AgencyBuild, workload: Workload) -> Workload:
    rng, last = build.rng, build.times.size - 1
    gpu = workload.containers[0].gpu > 0
    hpa = not build.spec.single_pod and rng.random() < HPA_SHARE
    ranges = [(0, last, False)]
    if _rolls_out(build, workload, gpu=gpu) and last >= 4:
        rollout = int(rng.integers(int(0.4 * last), int(0.6 * last) + 1))
        ranges = [(0, rollout - 1, False), (rollout, last, True)]
    pods: list[Pod] = []
    replicasets: list[tuple[str, int]] = []
    for first, end, fresh in ranges:
        replicaset = f"{workload.name}-{names.template_hash(rng)}"
        replicasets.append((replicaset, first))
        for _ in range(workload.replicas):
            pods.append(
                Pod(
                    name=f"{replicaset}-{names.pod_suffix(rng)}",
                    node=str(rng.choice(NODES)),
                    owner_kind="ReplicaSet",
                    owner_name=replicaset,
                    first=first,
                    last=end,
                    slot=len(pods),
                    gpu_uuid=names.gpu_uuid(rng) if gpu else None,
                    fresh=fresh,
                )
            )
    return replace(workload, pods=tuple(pods), hpa=hpa, gpu=gpu, replicasets=tuple(replicasets))


def _statefulset_pods(build: _AgencyBuild, workload: Workload) -> Workload:
    last = build.times.size - 1
    capacity = int(build.rng.choice([10, 20, 50, 100, 200])) * GI
    pods = [
        Pod(
            f"{workload.name}-{i}",
            NODES[i % len(NODES)],
            "StatefulSet",
            workload.name,
            0,
            last,
            i,
            pvc=f"data-{workload.name}-{i}",
        )
        for i in range(workload.replicas)
    ]
    return replace(workload, pods=tuple(pods), storage_bytes=capacity)


def _daemonset_pods(build: _AgencyBuild, workload: Workload) -> Workload:
    last = build.times.size - 1
    pods = [
        Pod(
            f"{workload.name}-{names.pod_suffix(build.rng)}",
            node,
            "DaemonSet",
            workload.name,
            0,
            last,
            i,
        )
        for i, node in enumerate(NODES)
    ]
    return replace(workload, pods=tuple(pods))


def _cronjob_pods(build: _AgencyBuild, workload: Workload) -> Workload:
    times, rng = build.times, build.rng
    first_day = (int(times[0]) + SHANGHAI_OFFSET) // DAY
    last_day = (int(times[-1]) + SHANGHAI_OFFSET) // DAY
    pods: list[Pod] = []
    for day in range(first_day, last_day + 1):
        minutes = int(rng.choice(BATCH_MINUTES))
        run_start = day * DAY + BATCH_START_LOCAL - SHANGHAI_OFFSET
        run_end = run_start + minutes * 60
        first = int(np.searchsorted(times, run_start, side="right"))
        last = int(np.searchsorted(times, run_end, side="right")) - 1
        if run_start < times[0] or last < first:
            continue
        suffix, node = names.pod_suffix(rng), str(rng.choice(NODES))
        if run_end > times[-1]:
            # still running when the window ends: left out, but its draws are made, so the
            # rest of the plan does not depend on the hour the window ends
            continue
        job = f"{workload.name}-{run_start // 60}"
        pods.append(
            Pod(
                f"{job}-{suffix}",
                node,
                "Job",
                job,
                first,
                last,
                len(pods),
                fresh=True,
            )
        )
    return replace(workload, pods=tuple(pods))
