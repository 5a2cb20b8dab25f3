"""End-to-end fixtures: a real control plane, the chart's identity, the synthetic cloud in the
API server, a real Prometheus with its usage, and the operator as a subprocess.

One control plane serves the whole session (it starts in ~6 s once the binaries are cached;
building them takes ~14 min on a fresh machine). Agencies keep tests apart: the first agency
is evaluated in recommend mode, the second in apply mode, the third is the one whose operator
is killed mid-evaluation. Every policy a test creates is deleted when the test ends.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from controlplane import REPO_ROOT, ControlPlane, ensure_binaries
from e2e_cloud import (
    CHART_NAMESPACE,
    KINDS,
    POLICIES,
    PROBE,
    Chart,
    Cloud,
    OperatorProcess,
    delete_policy,
    key,
    path_of,
    wait_for,
)
from matrix import fault_row, pytest_runtest_makereport  # noqa: F401  (the fault matrix)
from matrix import report as fault_matrix_report

from rightsizer.localprom import Dataset, LocalPrometheus, cached_dataset
from rightsizer.simulate import CloudSpec

STEP = 300  # the generator's sample interval


def _recent_end() -> datetime:
    """Now, rounded down to the sample interval: the operator evaluates at the real time."""
    now = int(datetime.now(UTC).timestamp())
    return datetime.fromtimestamp(now - now % STEP, UTC)


# -- the control plane ----------------------------------------------------------------------
BIN_DIR = pytest.StashKey[Path]()


WORK_DIR = pytest.StashKey[Path]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the binaries before the first test, outside any test's timeout: the first
    build takes ~14 min on a fresh machine (then they are cached); its progress is shown."""
    config = session.config
    if config.option.collectonly or not any(i.get_closest_marker("e2e") for i in session.items):
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        config.stash[BIN_DIR] = ensure_binaries()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    fault_matrix_report(terminalreporter, config)  # build/fault-matrix.md, when rows ran
    work = config.stash.get(WORK_DIR, None)
    if work is not None and (
        terminalreporter.stats.get("failed") or terminalreporter.stats.get("error")
    ):
        terminalreporter.write_line(
            f"e2e: logs of etcd, kube-apiserver, the controller manager and the audit log are "
            f"in {work}; the operators' logs are beside it, in each test's tmp_path"
        )


@pytest.fixture(scope="session")
def control_plane(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[ControlPlane]:
    bin_dir = pytestconfig.stash.get(BIN_DIR, None) or ensure_binaries()
    work = tmp_path_factory.mktemp("controlplane")
    pytestconfig.stash[WORK_DIR] = work
    plane = ControlPlane.start(work, bin_dir)
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def crds(control_plane: ControlPlane) -> str:
    """``kubectl apply -f crds/``: its output, once both CRDs are Established."""
    applied = control_plane.kubectl("apply", "-f", str(REPO_ROOT / "crds")).stdout
    control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/efficiencypolicies.rightsizer.io", "crd/efficiencyreports.rightsizer.io",
    )  # fmt: skip
    return applied


# -- the chart's identity -------------------------------------------------------------------
@pytest.fixture(scope="session")
def chart(
    control_plane: ControlPlane, crds: str, tmp_path_factory: pytest.TempPathFactory
) -> Chart:
    cp = control_plane
    cp.kubectl("create", "namespace", CHART_NAMESPACE)
    # what the admission-policy probes patch (dry run), as the chart's ServiceAccount
    cp.kubectl(
        "create", "deployment", PROBE, "-n", CHART_NAMESPACE,
        "--image=registry.invalid/probe:1", "--replicas=0",
    )  # fmt: skip
    cp.kubectl(
        "set", "resources", f"deployment/{PROBE}", "-n", CHART_NAMESPACE,
        "--requests=cpu=100m,memory=64Mi",
    )  # fmt: skip
    chart = Chart(cp, tmp_path_factory.mktemp("chart"))
    chart.use(apply_enabled=False)  # the chart's default
    return chart


# -- usage and workloads --------------------------------------------------------------------
@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    spec = CloudSpec(agencies=3, workloads_per_agency=16, days=8, end=_recent_end())
    return cached_dataset(spec, cache_root=tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="session")
def prometheus(dataset: Dataset) -> Iterator[LocalPrometheus]:
    with LocalPrometheus(dataset.data_dir) as server:
        yield server


@pytest.fixture(scope="session")
def cloud(control_plane: ControlPlane, crds: str, dataset: Dataset) -> Cloud:
    """Every agency's namespaces, workloads and HPAs, created in the API server.

    In the apply-mode agencies (second and third), each CronJob asks for four times what
    the truth gives it (the generator's batch jobs are sized right; this makes one of each
    kind an over-provisioned downsize), and in the second agency one clear downsize
    Deployment carries ``rightsizer.io/exclude: "true"``.
    """
    truth = json.loads(dataset.truth_path.read_text(encoding="utf-8"))
    cloud = Cloud(truth)
    assert len(cloud.agencies) == 3, cloud.agencies
    for agency in cloud.agencies[1:]:
        cloud.inflated |= {key(w) for w in cloud.workloads(agency) if w["kind"] == "CronJob"}
    downsizes = [
        key(w)
        for w in cloud.workloads(cloud.agencies[1])
        if w["kind"] == "Deployment"
        and w["shape"] == "overprovisioned"
        and not w["hpa"]
        and not w["gpu"]
    ]
    assert len(downsizes) >= 2, f"the generator changed: {downsizes}"
    cloud.excluded.add(downsizes[-1])
    agency = cloud.agencies[1]
    kinds = {k.split("/")[0] for k in cloud.expected_changes(agency)}
    assert kinds == set(KINDS), (
        f"the generator changed: {agency} has changes only for {kinds}; "
        f"shapes: {[(w['kind'], w['shape']) for w in cloud.workloads(agency)]}"
    )
    assert len(cloud.expected_changes(cloud.agencies[2])) >= 4, "the generator changed"

    objects = cloud.objects()
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    rest = [o for o in objects if o["kind"] != "Namespace"]
    for batch in (namespaces, rest):
        control_plane.kubectl(
            "apply", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": batch}),
        )  # fmt: skip
    # let the controllers settle the workloads' status before tests snapshot them (pods
    # stay Pending without a kubelet, so the status stops changing)
    versions: dict[str, str] = {}

    def settled() -> bool:
        nonlocal versions
        now = {
            k: control_plane.get(path_of(k))["metadata"]["resourceVersion"] for k in cloud.created
        }
        same, versions = now == versions, now
        return same

    wait_for("the workloads' status to settle", settled, timeout=60, interval=1.0)
    return cloud


# -- the operator ---------------------------------------------------------------------------
@pytest.fixture
def run_operator(
    prometheus: LocalPrometheus, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    """Start operators (``run_operator(kubeconfig, apply_enabled=...)``); all are stopped
    (SIGTERM, then SIGKILL) when the test ends."""
    started: list[OperatorProcess] = []

    def start(kubeconfig: Path, *, apply_enabled: bool = False) -> OperatorProcess:
        process = OperatorProcess(
            kubeconfig=kubeconfig,
            prometheus_url=prometheus.url,
            log_path=tmp_path / f"operator-{len(started)}.log",
            apply_enabled=apply_enabled,
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def policies(control_plane: ControlPlane, crds: str) -> Iterator[Callable[[dict[str, Any]], str]]:
    """``create(body)`` an EfficiencyPolicy; every one is deleted when the test ends."""
    names: list[str] = []

    def create(body: dict[str, Any]) -> str:
        answer = control_plane.request("POST", POLICIES, body=body)
        assert answer.status_code == 201, answer.text
        names.append(body["metadata"]["name"])
        return str(body["metadata"]["name"])

    yield create
    for name in names:
        delete_policy(control_plane, name)
