"""Queries are batched per agency and metric: their number never grows with workloads."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import STANDARD

from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
from rightsizer.core.policy import PolicySpec
from rightsizer.localprom import LocalPrometheus, cached_dataset
from rightsizer.service import NamedPolicy, evaluate_policies
from rightsizer.simulate import CloudSpec

pytestmark = pytest.mark.prometheus


def small_cloud(workloads_per_agency: int) -> CloudSpec:
    """Three agencies, two days at 15 minutes: cheap to build for counting queries."""
    return CloudSpec(
        agencies=3, workloads_per_agency=workloads_per_agency, days=2, interval_seconds=900, seed=7
    )


def small_cloud_policies() -> list[NamedPolicy]:
    return [
        NamedPolicy(
            f"p{i}",
            PolicySpec(
                agency=f"agency-00{i}",
                namespaces=[f"agency-00{i}-prod", f"agency-00{i}-test"],
                min_history="1d",
            ),
        )
        for i in (1, 2, 3)
    ]


def prometheus_for(spec: CloudSpec) -> LocalPrometheus:
    return LocalPrometheus(cached_dataset(spec).data_dir)


def served_queries(
    workloads_per_agency: int,
    *,
    agencies_per_batch: int = 1,
    server_for: Callable[[CloudSpec], LocalPrometheus] = prometheus_for,
) -> int:
    """Queries the server counted for one evaluation (``server_for``: which server, e.g.
    LocalVictoriaMetrics in tests/victoria)."""
    spec = small_cloud(workloads_per_agency)
    policies = small_cloud_policies()
    with server_for(spec) as server:
        source = PrometheusSource(
            PrometheusConfig(url=server.url, agencies_per_batch=agencies_per_batch)
        )
        before = server.query_count()
        reports = evaluate_policies(policies, source, end=spec.end)
        served = server.query_count() - before
    assert all(report.complete for report in reports)
    assert sum(len(report.workloads) for report in reports) >= 3 * workloads_per_agency * 0.9
    return served


def test_query_count_is_flat_when_workloads_are_multiplied() -> None:
    small, large = served_queries(8), served_queries(64)
    assert small == large
    assert small <= 3 * 9  # a fixed list per agency


def test_grouping_agencies_divides_the_query_count() -> None:
    probe = 1  # recording rules "auto": one coverage probe per evaluation, however batched
    assert (served_queries(8, agencies_per_batch=3) - probe) * 3 == served_queries(8) - probe


def test_standard_cloud_end_is_what_queries_use() -> None:
    assert STANDARD.end.tzinfo is not None
