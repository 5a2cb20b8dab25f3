"""The operator (kopf, in the test's event loop) against kmock over HTTP and a real Prometheus.

Order matters here: kopf fixes the timer interval when ``rightsizer.handlers`` is imported,
so RIGHTSIZER_TICK_SECONDS is set before that import. KUBECONFIG is read by the operator when
it starts (its login handler and client), so each test sets it with monkeypatch.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

_SAVED = {name: os.environ.get(name) for name in ("RIGHTSIZER_TICK_SECONDS", "KUBECONFIG")}
os.environ.setdefault("RIGHTSIZER_TICK_SECONDS", "1")
os.environ["KUBECONFIG"] = str(
    Path(tempfile.mkdtemp(prefix="rightsizer-operator-tests-")) / "kubeconfig"
)

from apiserver import ApiServer  # noqa: E402
from harness import KUBECONFIG, Cluster, write_kubeconfig  # noqa: E402
from manifests import declare_resources  # noqa: E402

import rightsizer.handlers  # noqa: E402, F401  (registers the kopf handlers)
from rightsizer.handlers import policies  # noqa: E402
from rightsizer.localprom import Dataset, LocalPrometheus, cached_dataset  # noqa: E402
from rightsizer.simulate import CloudSpec  # noqa: E402

# both are read once, at import: put the environment back for the rest of the session
for _name, _value in _SAVED.items():
    if _value is None:
        os.environ.pop(_name, None)
    else:
        os.environ[_name] = _value

STEP = 300  # the generator's sample interval


def _recent_end() -> datetime:
    """Now, rounded down to the sample interval: the operator evaluates at the real time."""
    now = int(datetime.now(UTC).timestamp())
    return datetime.fromtimestamp(now - now % STEP, UTC)


@pytest.fixture(scope="session", autouse=True)
def _kubeconfig_folder() -> Iterator[None]:
    yield
    shutil.rmtree(KUBECONFIG.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    spec = CloudSpec(agencies=1, workloads_per_agency=20, days=8, end=_recent_end())
    return cached_dataset(spec, cache_root=tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="session")
def truth(dataset: Dataset) -> dict[str, Any]:
    return json.loads(dataset.truth_path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def prometheus(dataset: Dataset) -> Iterator[LocalPrometheus]:
    with LocalPrometheus(dataset.data_dir) as server:
        yield server


@pytest.fixture
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    """kmock's fixture, with the emulator that versions objects and honours injected errors."""
    return {**kmock_options, "cls": ApiServer}


@pytest.fixture
def cluster(
    kmock: ApiServer,
    prometheus: LocalPrometheus,
    truth: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Cluster:
    assert policies.TICK_SECONDS == 1, (
        "rightsizer.handlers was imported before tests/operator/conftest.py set "
        "RIGHTSIZER_TICK_SECONDS; run the operator tests in their own session"
    )
    declare_resources(kmock)
    write_kubeconfig(str(kmock.url).rstrip("/"))
    monkeypatch.setenv("KUBECONFIG", str(KUBECONFIG))  # the operator reads it when it starts
    monkeypatch.setenv("RIGHTSIZER_PROMETHEUS_URL", prometheus.url)
    monkeypatch.setenv("RIGHTSIZER_METRICS_PORT", "0")
    monkeypatch.setenv("RIGHTSIZER_LOG_FORMAT", "console")
    monkeypatch.setenv("RIGHTSIZER_APPLY_ENABLED", "false")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return Cluster(server=kmock, truth=truth)
