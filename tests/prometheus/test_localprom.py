"""A real Prometheus over a backfilled synthetic cloud (Debian package prometheus)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rightsizer import localprom, simulate
from rightsizer.localprom import LocalPrometheus
from rightsizer.simulate import CloudSpec, SyntheticCloud, build_cloud, pod_series
from rightsizer.simulate.series import COUNTER_SCALE

pytestmark = pytest.mark.prometheus

SPEC = CloudSpec(agencies=1, workloads_per_agency=6, days=2, interval_seconds=900, seed=11)


def query(url: str, promql: str, at: int) -> list[dict[str, Any]]:
    """An instant query over plain HTTP, at an explicit evaluation time."""
    params = urllib.parse.urlencode({"query": promql, "time": str(at)})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=30) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticCloud, Path, Path]:
    root = tmp_path_factory.mktemp("cloud")
    cloud = build_cloud(SPEC)
    files = simulate.write_openmetrics(cloud, root / "openmetrics")
    simulate.write_truth(cloud, root / "truth.json")
    localprom.backfill(files, root / "data")
    return cloud, root / "data", root / "truth.json"


@pytest.fixture(scope="module")
def server(backfilled: tuple[SyntheticCloud, Path, Path]) -> Iterator[LocalPrometheus]:
    with LocalPrometheus(backfilled[1]) as prom:
        yield prom


def _running_at_end(cloud: SyntheticCloud) -> int:
    last = cloud.times().size - 1
    return sum(1 for w in cloud.workloads for p in w.pods if p.last == last)


def test_backfilled_pods_are_counted_at_the_end_time(
    server: LocalPrometheus, backfilled: tuple[SyntheticCloud, Path, Path]
) -> None:
    cloud, _, truth_path = backfilled
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    (sample,) = query(server.url, "count(kube_pod_owner)", cloud.end)
    assert int(float(sample["value"][1])) == _running_at_end(cloud)
    last = cloud.times().size - 1
    running = {w.name for w in cloud.workloads if w.pods and w.pods[-1].last == last}
    assert running <= {w["name"] for w in truth["workloads"]}
    assert query(server.url, "count(kube_pod_owner)", cloud.end + 3600) == []


def test_rate_of_a_known_container_matches_the_generated_counter(
    server: LocalPrometheus, backfilled: tuple[SyntheticCloud, Path, Path]
) -> None:
    cloud = backfilled[0]
    last = cloud.times().size - 1
    workload = next(
        w for w in cloud.workloads if w.shape != "oom-killed" and w.pods and w.pods[0].last == last
    )
    pod = workload.pods[0]
    item = pod_series(cloud, workload, pod).containers[0]
    selector = (
        f'container_cpu_usage_seconds_total{{namespace="{workload.namespace}",'
        f'pod="{pod.name}",container="{item.container.name}"}}'
    )
    (sample,) = query(server.url, f"rate({selector}[30m])", cloud.end)
    expected = (item.cpu_units[-1] - item.cpu_units[-3]) / COUNTER_SCALE / 1800
    assert float(sample["value"][1]) == pytest.approx(expected, rel=1e-6)
    assert sample["metric"]["namespace"] == workload.namespace


def test_query_count_counts_exactly_the_queries_made(
    server: LocalPrometheus, backfilled: tuple[SyntheticCloud, Path, Path]
) -> None:
    end = backfilled[0].end
    before = server.query_count()
    for promql in ("up", "count(kube_namespace_labels)", "sum(container_memory_working_set_bytes)"):
        query(server.url, promql, end)
    params = urllib.parse.urlencode(
        {"query": "count(kube_pod_owner)", "start": end - 3600, "end": end, "step": "900"}
    )
    with urllib.request.urlopen(f"{server.url}/api/v1/query_range?{params}", timeout=30) as rsp:
        assert json.load(rsp)["status"] == "success"
    assert server.query_count() == before + 4
    assert server.query_count() == before + 4  # reading /metrics is not a query


def test_stop_makes_queries_fail_and_start_recovers(
    backfilled: tuple[SyntheticCloud, Path, Path], tmp_path: Path
) -> None:
    cloud, data_dir, _ = backfilled
    log = tmp_path / "prometheus.log"
    with LocalPrometheus(data_dir, log_path=log) as prom:
        assert query(prom.url, "count(kube_pod_owner)", cloud.end)
        prom.stop()
        assert not prom.running
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            query(prom.url, "count(kube_pod_owner)", cloud.end)
        prom.start()
        (sample,) = query(prom.url, "count(kube_pod_owner)", cloud.end)
        assert int(float(sample["value"][1])) == _running_at_end(cloud)
        assert prom.query_count() == 1  # counters start again with the process
    assert "Server is ready to receive web requests" in log.read_text(encoding="utf-8")
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        query(prom.url, "up", cloud.end)


def test_a_server_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    prom = LocalPrometheus(tmp_path / "data", extra_args=["--no-such-flag"], ready_timeout=20)
    with pytest.raises(localprom.PrometheusStartError, match="no-such-flag"), prom:
        pass
    assert not prom.running


def test_backfill_reports_promtool_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.om"
    bad.write_text('# TYPE x gauge\nx{a="1"} not-a-number 1\n# EOF\n', encoding="utf-8")
    with pytest.raises(localprom.BackfillError, match=r"bad\.om"):
        localprom.backfill([bad], tmp_path / "data")


def test_missing_binaries_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(localprom.PrometheusNotInstalled, match="apt-get install prometheus"):
        localprom.prometheus_binaries()


def test_free_port_is_bindable() -> None:
    port = localprom.free_port()
    assert 1024 < port < 65536


def test_cached_dataset_is_built_once_and_rebuilt_when_incomplete(tmp_path: Path) -> None:
    spec = CloudSpec(agencies=2, workloads_per_agency=3, days=1, interval_seconds=1800, seed=3)
    first = localprom.cached_dataset(spec, cache_root=tmp_path, files=2)
    assert first.spec == spec and first.truth_path.is_file()
    assert any(first.data_dir.iterdir())
    marker = first.root / "COMPLETE.json"
    stamp = marker.stat().st_mtime_ns
    again = localprom.cached_dataset(spec, cache_root=tmp_path)
    assert again == first and marker.stat().st_mtime_ns == stamp
    marker.unlink()  # an interrupted or damaged build
    rebuilt = localprom.cached_dataset(spec, cache_root=tmp_path)
    assert rebuilt.root == first.root and (rebuilt.root / "COMPLETE.json").is_file()
    assert not list(tmp_path.glob(".build-*"))
    with LocalPrometheus(rebuilt.data_dir) as prom:
        result = query(prom.url, "count(kube_namespace_labels)", spec.end_timestamp)
        truth = json.loads(rebuilt.truth_path.read_text(encoding="utf-8"))
        namespaces = sum(len(a["namespaces"]) for a in truth["agencies"])
        assert int(float(result[0]["value"][1])) == namespaces


def test_cache_key_follows_the_spec() -> None:
    assert localprom.dataset_key(SPEC) == localprom.dataset_key(CloudSpec(**vars(SPEC)))
    assert localprom.dataset_key(SPEC) != localprom.dataset_key(CloudSpec(seed=12))


def test_default_cache_root_honours_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RIGHTSIZER_CACHE", str(tmp_path))
    assert localprom.default_cache_root() == tmp_path
    monkeypatch.delenv("RIGHTSIZER_CACHE")
    assert localprom.default_cache_root().parts[-2:] == ("rightsizer", "datasets")
