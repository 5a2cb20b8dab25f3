"""The synthetic government cloud: shapes, determinism, OpenMetrics structure, names, truth."""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from rightsizer import simulate
from rightsizer.core.policy import Band, default_grades, default_indicators
from rightsizer.simulate import CloudSpec, SyntheticCloud, Workload, build_cloud, pod_series
from rightsizer.simulate.series import COUNTER_SCALE

Floats = npt.NDArray[np.float64]
SEEDS = (1, 7, 42, 2026)
INF = float("inf")

# The shape table, independent of the code: (low, high) per statistic, every range at least
# 0.02 inside its score band of the default policy (14-day window, 5-minute samples).
TABLE: dict[str, dict[str, tuple[float, float]]] = {
    "idle": {
        "cpu_avg": (0, 0.01),
        "cpu_p95": (0, 0.012),
        "cpu_max": (0, 0.015),
        "mem_avg": (0, 0.03),
        "mem_max": (0, 0.07),
        "storage": (0, 0.03),
    },
    "overprovisioned": {
        "cpu_avg": (0.07, 0.08),
        "cpu_p95": (0.12, 0.28),
        "cpu_max": (0, 0.3),
        "mem_avg": (0.12, 0.18),
        "mem_max": (0.12, 0.28),
        "storage": (0.07, 0.08),
    },
    "rightsized": {
        "cpu_avg": (0.52, 0.78),
        "cpu_p95": (0.72, 0.88),
        "cpu_max": (0, 0.88),
        "mem_avg": (0.52, 0.78),
        "mem_max": (0.72, 0.88),
        "storage": (0.52, 0.78),
    },
    "diurnal": {
        "cpu_avg": (0.22, 0.38),
        "cpu_p95": (0.72, 0.88),
        "cpu_max": (0, 0.88),
        "mem_avg": (0.42, 0.48),
        "mem_max": (0.52, 0.68),
        "storage": (0.42, 0.48),
    },
    "batch": {
        "cpu_avg": (0.52, 0.78),
        "cpu_p95": (0.72, 0.88),
        "cpu_max": (0, 0.88),
        "mem_avg": (0.52, 0.78),
        "mem_max": (0.52, 0.68),
    },
    "bursty": {
        "cpu_avg": (0.12, 0.18),
        "cpu_p95": (0.72, 0.88),
        "cpu_max": (0, 0.88),
        "mem_avg": (0.42, 0.48),
        "mem_max": (0.52, 0.68),
        "storage": (0.42, 0.48),
    },
    "memory-growth": {
        "cpu_avg": (0.52, 0.78),
        "cpu_p95": (0.52, 0.68),
        "cpu_max": (0, 0.85),
        "mem_avg": (0.52, 0.78),
        "mem_max": (0.72, 0.88),
        "storage": (0.52, 0.78),
    },
    "at-capacity": {
        "cpu_avg": (0.82, 0.88),
        "cpu_p95": (0.99, INF),
        "cpu_max": (1.1, 1.5),
        "mem_avg": (0.52, 0.78),
        "mem_max": (0.72, 0.88),
        "storage": (0.52, 0.78),
        "throttled": (0.27, 0.33),
    },
    "oom-killed": {
        "cpu_avg": (0.22, 0.38),
        "cpu_p95": (0.32, 0.48),
        "cpu_max": (0, 0.6),
        "mem_avg": (0.92, 1.2),
        "mem_max": (1.25, 1.25),
        "storage": (0.22, 0.38),
        "kills": (5, 10),
    },
}
EXPECTED = {  # shape -> (grade, action) under the shipped default policy
    "idle": ("差", "reclaim"),
    "overprovisioned": ("差", "downsize"),
    "rightsized": ("优", "keep"),
    "diurnal": ("中", "keep"),
    "batch": ("优", "keep"),
    "bursty": ("中", "keep"),
    "memory-growth": ("优", "keep"),
    "at-capacity": ("良", "upsize"),
    "oom-killed": ("差", "upsize"),
}


@dataclass
class Stats:
    values: dict[str, float]


def _rates(times: npt.NDArray[np.int64], units: npt.NDArray[np.int64], step: int) -> Floats:
    """Counter rate over `step` intervals, like rate() (a decrease is a counter reset)."""
    counter = units / COUNTER_SCALE
    delta = counter[step:] - counter[:-step]
    delta = np.where(delta < 0, counter[step:], delta)
    result: Floats = delta / (times[step:] - times[:-step])
    return result


def _container_stats(cloud: SyntheticCloud, workload: Workload) -> list[dict[str, Floats]]:
    """Per pod and container: 5-minute rates, 10-minute rates, memory, throttled share."""
    found = []
    for pod in workload.pods:
        series = pod_series(cloud, workload, pod)
        for item in series.containers:
            request = item.container
            part = {
                "r5": _rates(series.times, item.cpu_units, 1) / request.cpu_request,
                "r10": _rates(series.times, item.cpu_units, 2) / request.cpu_request,
                "mem": item.memory_bytes / request.memory_request,
                "kills": np.array([float(item.usage.kills.sum())]),
            }
            if item.cfs_periods is not None and item.cfs_throttled is not None:
                part["periods"] = np.diff(item.cfs_periods).astype(np.float64)
                part["throttled"] = np.diff(item.cfs_throttled).astype(np.float64)
            found.append(part)
    return found


def _pooled(parts: list[dict[str, Floats]]) -> list[dict[str, Floats]]:
    """A batch workload's runs pooled: statistics over its running samples only."""
    keys = ("r5", "r10", "mem", "kills")
    return [{key: np.concatenate([p[key] for p in parts]) for key in keys}]


def _summary(part: dict[str, Floats], storage: float | None) -> dict[str, float]:
    values = {
        "cpu_avg": float(part["r5"].mean()),
        "cpu_p95": float(np.quantile(part["r10"], 0.95)),
        "cpu_max": float(part["r5"].max()),
        "mem_avg": float(part["mem"].mean()),
        "mem_max": float(part["mem"].max()),
        "kills": float(part["kills"].sum()),
    }
    if storage is not None:
        values["storage"] = storage
    periods, throttled = part.get("periods"), part.get("throttled")
    if periods is not None and throttled is not None:
        values["throttled"] = float(throttled.sum() / periods.sum())
    return values


def _storage(workload: Workload) -> float | None:
    if workload.kind != "StatefulSet":
        return None
    return simulate.SHAPES[workload.shape].storage_used


def _workload_stats(cloud: SyntheticCloud, workload: Workload) -> list[dict[str, float]]:
    parts = _container_stats(cloud, workload)
    if workload.kind == "CronJob":
        parts = _pooled(parts)
    return [_summary(part, _storage(workload)) for part in parts]


def _shape_cloud(shape: str, seed: int) -> SyntheticCloud:
    spec = CloudSpec(
        agencies=1, workloads_per_agency=12, seed=seed, shapes=(shape,), pod_level_series=False
    )
    return build_cloud(spec)


# --- scoring with the shipped default policy (bands and weights read from rightsizer.core) ---


def _band_score(bands: list[Band], value: float) -> float:
    eligible = [band for band in bands if value >= band.min]
    return max(eligible, key=lambda band: band.min).score


def _grade(values: dict[str, float], *, gpu: float | None = None) -> str:
    measured = {
        ("cpu", "avg"): values["cpu_avg"],
        ("cpu", "p95"): values["cpu_p95"],
        ("memory", "avg"): values["mem_avg"],
        ("memory", "max"): values["mem_max"],
    }
    if "storage" in values:
        measured["storage", "max"] = values["storage"]
    if gpu is not None:
        measured["gpu", "avg"] = gpu
    total = weight = 0.0
    for indicator in default_indicators():
        key = (indicator.resource, indicator.stat)
        if key in measured:
            total += indicator.weight * _band_score(indicator.bands, measured[key])
            weight += indicator.weight
    score = total / weight
    grades = sorted(default_grades(), key=lambda g: g.min, reverse=True)
    return next(g.name for g in grades if score >= g.min)


def _action(values: dict[str, float]) -> str:
    """The default rules; precedence upsize > reclaim > downsize."""
    if values["kills"] > 0 or values["cpu_p95"] > 0.9 or values["mem_max"] > 0.9:
        return "upsize"
    if values.get("throttled", 0.0) > 0.25:
        return "upsize"
    if values["cpu_max"] < 0.02 and values["mem_max"] < 0.1:
        return "reclaim"
    cpu_down = values["cpu_avg"] < 0.2 and values["cpu_p95"] < 0.5
    mem_down = values["mem_avg"] < 0.2 and values["mem_max"] < 0.5
    return "downsize" if cpu_down or mem_down else "keep"


@pytest.mark.parametrize("shape", sorted(TABLE))
def test_shape_statistics_stay_in_their_ranges_for_every_seed(shape: str) -> None:
    checked = 0
    for seed in SEEDS:
        cloud = _shape_cloud(shape, seed)
        for workload in cloud.workloads:
            for values in _workload_stats(cloud, workload):
                for stat, (low, high) in TABLE[shape].items():
                    if stat in values:
                        where = f"{shape} seed={seed} {workload.name}: {stat}"
                        assert low <= values[stat] <= high, f"{where}={values[stat]:.4f}"
                checked += 1
    assert checked >= 12 * len(SEEDS)


@pytest.mark.parametrize("shape", sorted(TABLE))
def test_measured_statistics_give_the_expected_grade_and_action(shape: str) -> None:
    grade, action = EXPECTED[shape]
    info = simulate.SHAPES[shape]
    assert (info.grade, info.action) == (grade, action)
    for seed in SEEDS[:2]:
        cloud = _shape_cloud(shape, seed)
        for workload in cloud.workloads:
            for values in _workload_stats(cloud, workload):
                assert _grade(values) == grade, (workload.name, values)
                assert _action(values) == action, (workload.name, values)


def test_the_nominal_figures_score_like_the_measured_ones() -> None:
    for shape, info in simulate.SHAPES.items():
        nominal = info.nominal()
        values = {
            "cpu_avg": nominal["cpu"]["avg"],
            "cpu_p95": nominal["cpu"]["p95"],
            "cpu_max": nominal["cpu"]["max"],
            "mem_avg": nominal["memory"]["avg"],
            "mem_max": nominal["memory"]["max"],
            "kills": 0.0,
        }
        assert _grade(values) == EXPECTED[shape][0], shape
        if shape != "batch":
            assert _grade({**values, "storage": info.storage_used}) == EXPECTED[shape][0]
        for stat, (low, high) in TABLE[shape].items():
            if stat in values and stat != "kills":
                assert low <= values[stat] <= high, (shape, stat)


def test_gpu_workloads_are_rightsized_with_60_percent_gpu() -> None:
    cloud = build_cloud(CloudSpec(agencies=4, workloads_per_agency=20, seed=3))
    gpu = [w for w in cloud.workloads if w.gpu]
    assert gpu and all(w.shape == "rightsized" and w.kind == "Deployment" for w in gpu)
    assert {w.agency for w in gpu} == {"agency-001", "agency-004"}
    for workload in gpu:
        series = pod_series(cloud, workload, workload.pods[0])
        util = series.containers[0].gpu_util
        assert util is not None
        assert 0.55 <= util.mean() / 100 <= 0.65
        values = _workload_stats(cloud, workload)[0]
        assert _grade(values, gpu=float(util.mean() / 100)) == "优"


# --- the plan ---


def test_standard_mix_has_every_kind_and_shape() -> None:
    cloud = build_cloud(CloudSpec())
    kinds = {w.kind for w in cloud.workloads}
    assert kinds == {"Deployment", "StatefulSet", "DaemonSet", "CronJob"}
    assert {w.shape for w in cloud.workloads} == set(simulate.SHAPE_NAMES)
    deployments = [w for w in cloud.workloads if w.kind == "Deployment"]
    rollouts = [w for w in deployments if len(w.replicasets) == 2]
    assert 0.04 <= len(rollouts) / len(deployments) <= 0.2
    assert any(w.hpa for w in deployments)
    assert any(len(w.containers) == 2 for w in deployments)
    assert all(w.kind == "CronJob" for w in cloud.workloads if w.shape == "batch")


def test_requests_have_a_realistic_spread() -> None:
    cloud = build_cloud(CloudSpec(agencies=2))
    for workload in cloud.workloads:
        for container in workload.containers:
            assert 0.1 <= container.cpu_request <= 4
            assert 128 <= container.memory_request / 2**20 <= 8192
            assert container.memory_request % 2**20 == 0
            if container.memory_limit is not None:
                assert container.memory_limit >= container.memory_request
            if workload.shape == "oom-killed":
                assert container.memory_limit == container.memory_request * 1.25
            if workload.shape == "at-capacity":
                assert container.cpu_limit == container.cpu_request * 2


def test_single_pod_mode_makes_single_container_single_pod_deployments() -> None:
    cloud = build_cloud(CloudSpec(agencies=3, workloads_per_agency=30, single_pod=True))
    for workload in cloud.workloads:
        assert workload.kind == "Deployment"
        assert len(workload.pods) == 1 and len(workload.containers) == 1
        assert not workload.hpa and not workload.gpu
    with pytest.raises(ValueError, match="batch"):
        CloudSpec(single_pod=True, shapes=("batch",))


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="unknown shapes"):
        CloudSpec(shapes=("sleepy",))
    with pytest.raises(ValueError, match="timezone"):
        CloudSpec(end=simulate.DEFAULT_END.replace(tzinfo=None))
    with pytest.raises(ValueError, match="agencies"):
        CloudSpec(agencies=0)


def test_first_agencies_do_not_depend_on_how_many_there_are() -> None:
    small = build_cloud(CloudSpec(agencies=1, workloads_per_agency=10))
    large = build_cloud(CloudSpec(agencies=3, workloads_per_agency=10))
    assert small.agencies[0] == large.agencies[0]
    assert small.workloads == large.workloads[:10]


@pytest.mark.parametrize(
    "hour_minute",
    [(17, 55), (18, 0), (18, 5), (18, 30), (18, 55), (19, 0)],  # 02:00 in Shanghai: a run starts
)
def test_the_plan_does_not_depend_on_the_hour_the_window_ends(
    hour_minute: tuple[int, int],
) -> None:
    """Tests pick their window's end from the clock: a nightly run still going when the
    window ends must not shift the draws of the workloads after it (it did, for an hour a
    day: the tests that expected a DaemonSet in the second agency failed at 18:05 UTC)."""

    def plan(end: datetime) -> list[tuple[object, ...]]:
        cloud = build_cloud(CloudSpec(agencies=3, workloads_per_agency=16, days=8, end=end))
        return [
            (w.kind, w.namespace, w.name, w.shape, w.replicas, w.containers)
            for w in cloud.workloads
        ]

    day = datetime(2026, 11, 23, tzinfo=UTC)
    hour, minute = hour_minute
    assert plan(day.replace(hour=hour, minute=minute)) == plan(day.replace(hour=12))


# --- the OpenMetrics text ---

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\}) (\S+) (\d+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"')
TINY = CloudSpec(agencies=2, workloads_per_agency=12, days=2, interval_seconds=900, seed=5)


@dataclass
class Parsed:
    types: dict[str, str]
    series: dict[tuple[str, str], list[tuple[int, float]]]  # (name, labels) -> samples

    def labels(self, name: str) -> list[dict[str, str]]:
        return [dict(LABEL.findall(text)) for n, text in self.series if n == name]


def parse(text: str) -> Parsed:
    """A strict reader of what we write: checks the structure while it parses."""
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    types: dict[str, str] = {}
    series: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    family = ""
    for line in text[: -len("# EOF\n")].splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, f"family {name} is not contiguous"
            types[name], family = kind, name
            continue
        match = SAMPLE.match(line)
        assert match, f"bad line {line!r}"
        name, label_text, value, stamp = match.groups()
        expected = family + "_total" if types[family] == "counter" else family
        assert name == expected, f"{name} outside its family {family}"
        series[name, label_text].append((int(stamp), float(value)))
    return Parsed(types, dict(series))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticCloud, Parsed, Path]:
    out = tmp_path_factory.mktemp("tiny")
    cloud = build_cloud(TINY)
    (path,) = simulate.write_openmetrics(cloud, out)
    return cloud, parse(path.read_text(encoding="utf-8")), path


def test_openmetrics_structure(tiny: tuple[SyntheticCloud, Parsed, Path]) -> None:
    _, parsed, _ = tiny
    assert parsed.types["container_cpu_usage_seconds"] == "counter"
    assert parsed.types["kube_pod_container_status_restarts"] == "counter"
    assert parsed.types["container_memory_working_set_bytes"] == "gauge"
    for (name, label_text), samples in parsed.series.items():
        times = [t for t, _ in samples]
        assert times == sorted(set(times)), f"{name}{label_text} is not in time order"


def test_counters_never_decrease_except_after_an_oom_kill(
    tiny: tuple[SyntheticCloud, Parsed, Path],
) -> None:
    cloud, parsed, _ = tiny
    oom_pods = {p.name for w in cloud.workloads if w.shape == "oom-killed" for p in w.pods}
    for (name, label_text), samples in parsed.series.items():
        if not name.endswith("_total"):
            continue
        values = np.array([v for _, v in samples])
        if dict(LABEL.findall(label_text)).get("pod") not in oom_pods:
            assert np.all(np.diff(values) >= 0), f"{name}{label_text} decreases"


def test_text_matches_the_generated_series(tiny: tuple[SyntheticCloud, Parsed, Path]) -> None:
    cloud, parsed, _ = tiny
    workload = next(w for w in cloud.workloads if w.kind == "Deployment")
    pod = workload.pods[0]
    series = pod_series(cloud, workload, pod)
    item = series.containers[0]
    key = f'{{namespace="{workload.namespace}",pod="{pod.name}",container="{item.container.name}"}}'
    cpu = parsed.series["container_cpu_usage_seconds_total", key]
    assert [t for t, _ in cpu] == series.times.tolist()
    assert np.allclose([v for _, v in cpu], item.cpu_units / COUNTER_SCALE, atol=1e-9)
    memory = parsed.series["container_memory_working_set_bytes", key]
    assert [v for _, v in memory] == item.memory_bytes.tolist()


def test_pod_level_series_are_written_on_request(
    tiny: tuple[SyntheticCloud, Parsed, Path], tmp_path: Path
) -> None:
    _, parsed, _ = tiny
    cpu = parsed.labels("container_cpu_usage_seconds_total")
    containers = {labels["container"] for labels in cpu}
    assert {"", "POD"} <= containers
    spec = CloudSpec(
        agencies=1, workloads_per_agency=4, days=1, interval_seconds=900, pod_level_series=False
    )
    (path,) = simulate.write_openmetrics(build_cloud(spec), tmp_path)
    lean = parse(path.read_text(encoding="utf-8"))
    names = {labels["container"] for labels in lean.labels("container_cpu_usage_seconds_total")}
    assert "" not in names and "POD" not in names


def test_every_sample_lies_in_the_window_and_ksm_reaches_the_end(
    tiny: tuple[SyntheticCloud, Parsed, Path],
) -> None:
    cloud, parsed, _ = tiny
    for samples in parsed.series.values():
        assert cloud.start <= samples[0][0] and samples[-1][0] <= cloud.end
    for (name, _), samples in parsed.series.items():
        if name == "kube_namespace_labels":
            assert samples[-1][0] == cloud.end and samples[0][0] == cloud.start


def test_pod_names_and_owners_are_consistent(tiny: tuple[SyntheticCloud, Parsed, Path]) -> None:
    cloud, parsed, _ = tiny
    owners = {(o["namespace"], o["pod"]): o for o in parsed.labels("kube_pod_owner")}
    replicasets = {
        (r["namespace"], r["replicaset"]): r["owner_name"]
        for r in parsed.labels("kube_replicaset_owner")
    }
    jobs = {
        (j["namespace"], j["job_name"]): j["owner_name"] for j in parsed.labels("kube_job_owner")
    }
    cadvisor_pods = {
        (s["namespace"], s["pod"]) for s in parsed.labels("container_memory_working_set_bytes")
    }
    assert cadvisor_pods == set(owners)
    for workload in cloud.workloads:
        for pod in workload.pods:
            owner = owners[workload.namespace, pod.name]
            assert owner["owner_is_controller"] == "true"
            _check_owner(workload, pod.name, owner, replicasets, jobs)


def _check_owner(
    workload: Workload,
    pod: str,
    owner: dict[str, str],
    replicasets: dict[tuple[str, str], str],
    jobs: dict[tuple[str, str], str],
) -> None:
    kind, name, ns = owner["owner_kind"], owner["owner_name"], workload.namespace
    if workload.kind == "Deployment":
        assert kind == "ReplicaSet" and replicasets[ns, name] == workload.name
        assert re.fullmatch(re.escape(workload.name) + r"-[0-9a-f]{10}", name)
        assert re.fullmatch(re.escape(name) + r"-[bcdfghjklmnpqrstvwxz2456789]{5}", pod)
    elif workload.kind == "StatefulSet":
        assert kind == "StatefulSet" and name == workload.name
        assert re.fullmatch(re.escape(workload.name) + r"-\d+", pod)
    elif workload.kind == "DaemonSet":
        assert kind == "DaemonSet" and name == workload.name
        assert re.fullmatch(re.escape(workload.name) + r"-[a-z0-9]{5}", pod)
    else:
        assert kind == "Job" and jobs[ns, name] == workload.name
        assert re.fullmatch(re.escape(workload.name) + r"-\d{8}", name)
        assert re.fullmatch(re.escape(name) + r"-[a-z0-9]{5}", pod)


def test_cronjobs_run_nightly_at_two_in_shanghai(tiny: tuple[SyntheticCloud, Parsed, Path]) -> None:
    cloud, _, _ = tiny
    cronjobs = [w for w in cloud.workloads if w.kind == "CronJob"]
    assert cronjobs
    times = cloud.times()
    for workload in cronjobs:
        assert len(workload.pods) == 2  # two nights in a two-day window
        for pod in workload.pods:
            minutes = int(pod.owner_name.rsplit("-", 1)[1])
            assert (minutes * 60 + 8 * 3600) % 86400 == 2 * 3600
            assert times[pod.first] > minutes * 60 >= times[pod.first] - cloud.spec.interval_seconds


def test_daemonsets_run_one_pod_per_node() -> None:
    cloud = build_cloud(CloudSpec(agencies=2, workloads_per_agency=60, days=1))
    daemonsets = [w for w in cloud.workloads if w.kind == "DaemonSet"]
    assert daemonsets
    for workload in daemonsets:
        assert sorted(p.node for p in workload.pods) == ["node-1", "node-2", "node-3"]


def test_namespaces_and_labels(tiny: tuple[SyntheticCloud, Parsed, Path]) -> None:
    cloud, parsed, _ = tiny
    namespaces = {
        (n["namespace"], n["label_rightsizer_io_agency"])
        for n in parsed.labels("kube_namespace_labels")
    }
    expected = {(ns, a.name) for a in cloud.agencies for ns in a.namespaces}
    assert namespaces == expected
    projects = {
        (p["namespace"], p["pod"]): p["label_app_kubernetes_io_part_of"]
        for p in parsed.labels("kube_pod_labels")
    }
    for workload in cloud.workloads:
        for pod in workload.pods:
            assert projects[workload.namespace, pod.name] == workload.project


def test_requests_and_limits_carry_units(tiny: tuple[SyntheticCloud, Parsed, Path]) -> None:
    _, parsed, _ = tiny
    requests = parsed.labels("kube_pod_container_resource_requests")
    units = {(r["resource"], r["unit"]) for r in requests}
    assert units == {("cpu", "core"), ("memory", "byte"), ("nvidia_com_gpu", "integer")}
    for labels in parsed.labels("kube_pod_container_resource_requests"):
        assert labels["node"].startswith("node-")


def test_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    spec = CloudSpec(agencies=2, workloads_per_agency=8, days=1, interval_seconds=600, seed=9)
    first = simulate.write_openmetrics(build_cloud(spec), tmp_path / "a", files=2)
    second = simulate.write_openmetrics(build_cloud(spec), tmp_path / "b", files=2, jobs=2)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    other = CloudSpec(agencies=2, workloads_per_agency=8, days=1, interval_seconds=600, seed=10)
    (changed,) = simulate.write_openmetrics(build_cloud(other), tmp_path / "c")
    assert changed.read_bytes() != first[0].read_bytes()


def test_files_split_agencies_into_complete_documents(tmp_path: Path) -> None:
    spec = CloudSpec(agencies=3, workloads_per_agency=6, days=1, interval_seconds=900)
    cloud = build_cloud(spec)
    (whole,) = simulate.write_openmetrics(cloud, tmp_path / "one")
    parts = simulate.write_openmetrics(cloud, tmp_path / "many", files=5)
    assert len(parts) == 3  # never more files than agencies
    merged: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for path in parts:
        parsed = parse(path.read_text(encoding="utf-8"))
        assert not set(parsed.series) & set(merged)
        merged.update(parsed.series)
    assert merged == parse(whole.read_text(encoding="utf-8")).series


def test_truth_lists_every_workload(
    tmp_path: Path, tiny: tuple[SyntheticCloud, Parsed, Path]
) -> None:
    cloud, parsed, _ = tiny
    simulate.write_truth(cloud, tmp_path / "truth.json")
    truth = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert truth["start"] == "2026-11-14T00:00:00Z" and truth["end"] == "2026-11-16T00:00:00Z"
    assert truth["spec"]["seed"] == TINY.seed
    assert [a["agency"] for a in truth["agencies"]] == ["agency-001", "agency-002"]
    keys = {(w["kind"], w["namespace"], w["name"]) for w in truth["workloads"]}
    assert keys == {(w.kind, w.namespace, w.name) for w in cloud.workloads}
    assert len(keys) == len(truth["workloads"]) == 24
    owner_names = {o["owner_name"] for o in parsed.labels("kube_replicaset_owner")}
    for workload in truth["workloads"]:
        assert workload["expectedGrade"] in {"优", "良", "中", "差"}
        assert workload["expectedAction"] in {"keep", "downsize", "upsize", "reclaim"}
        assert set(workload["nominal"]) >= {"cpu", "memory"}
        assert workload["containers"][0]["requests"]["memory"] >= 128 * 2**20
        if workload["kind"] == "Deployment":
            assert workload["name"] in owner_names
    assert "市" in truth["agencies"][0]["displayName"]


def test_cli_writes_openmetrics_and_truth(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    args = parser.parse_args(
        [
            "--agencies",
            "2",
            "--workloads-per-agency",
            "3",
            "--days",
            "1",
            "--interval",
            "15m",
            "--ksm-interval",
            "1h",
            "--seed",
            "4",
            "--end",
            "2026-11-09T00:00:00Z",
            "--out",
            str(tmp_path),
            "--files",
            "2",
            "--no-pod-level-series",
            "--shapes",
            "idle,bursty",
        ]
    )
    assert simulate.run(args) == 0
    files = sorted((tmp_path / "openmetrics").glob("*.om"))
    assert len(files) == 2
    truth = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert {w["shape"] for w in truth["workloads"]} == {"idle", "bursty"}
    assert truth["end"] == "2026-11-09T00:00:00Z"
    text = files[0].read_text(encoding="utf-8")
    assert 'container=""' not in text


def test_cli_rejects_bad_values() -> None:
    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    for bad in (["--interval", "5x"], ["--shapes", "idle,nope"], ["--end", "2026-11-16"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["--out", "x", *bad])
