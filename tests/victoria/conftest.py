"""A real VictoriaMetrics on loopback holding the standard cloud (tests/prometheus).

The Prometheus suite's core test functions are reused here, not copied: they take the
backend from the ``prometheus`` / ``fresh_prometheus`` fixtures, which here are
VictoriaMetrics servers. The first run imports the cloud (about 15 s); later runs copy
the cached storage (~/.cache/rightsizer/datasets/victoriametrics) in well under a second.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rightsizer.localvm import LocalVictoriaMetrics, VictoriaDataset, cached_victoria

PROMETHEUS_TESTS = Path(__file__).resolve().parents[1] / "prometheus"
sys.path.insert(0, str(PROMETHEUS_TESTS))  # its test modules and faults.py


def _prometheus_conftest() -> Any:
    spec = importlib.util.spec_from_file_location(
        "prometheus_conftest", PROMETHEUS_TESTS / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_shared = _prometheus_conftest()
ROOT: Path = _shared.ROOT
STANDARD = _shared.STANDARD  # the same cloud as the Prometheus suite's


@pytest.fixture(scope="session")
def victoria_cloud() -> VictoriaDataset:
    return cached_victoria(STANDARD)


@pytest.fixture(scope="session")
def truth(victoria_cloud: VictoriaDataset) -> dict[str, Any]:
    return json.loads(victoria_cloud.truth_path.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def prometheus(victoria_cloud: VictoriaDataset) -> Iterator[LocalVictoriaMetrics]:
    """The PromQL backend the reused tests query: VictoriaMetrics."""
    with LocalVictoriaMetrics(seed=victoria_cloud.storage_dir) as server:
        yield server


@pytest.fixture
def fresh_prometheus(victoria_cloud: VictoriaDataset) -> Iterator[LocalVictoriaMetrics]:
    """A server of the test's own, for tests that stop it or count its queries."""
    with LocalVictoriaMetrics(seed=victoria_cloud.storage_dir) as server:
        yield server
