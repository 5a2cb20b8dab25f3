"""A real Prometheus on loopback, holding a backfilled synthetic government cloud."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rightsizer.localprom import Dataset, LocalPrometheus, cached_dataset
from rightsizer.simulate import CloudSpec

ROOT = Path(__file__).resolve().parents[2]

# every shape of the standard mix, 14 days at 5-minute samples
STANDARD = CloudSpec(agencies=3, workloads_per_agency=30)


@pytest.fixture(scope="session")
def standard_cloud() -> Dataset:
    return cached_dataset(STANDARD, files=2)


@pytest.fixture(scope="session")
def truth(standard_cloud: Dataset) -> dict[str, Any]:
    return json.loads(standard_cloud.truth_path.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def prometheus(standard_cloud: Dataset) -> Iterator[LocalPrometheus]:
    with LocalPrometheus(standard_cloud.data_dir) as server:
        yield server


@pytest.fixture
def fresh_prometheus(standard_cloud: Dataset) -> Iterator[LocalPrometheus]:
    """A server of the test's own, for tests that stop it or count its queries."""
    with LocalPrometheus(standard_cloud.data_dir) as server:
        yield server
