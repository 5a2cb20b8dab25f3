"""The Prometheus suite's core cases, run unchanged against VictoriaMetrics.

The functions are imported from tests/prometheus (pytest collects them here too); the
``prometheus`` and ``fresh_prometheus`` fixtures of this folder make them query
VictoriaMetrics. Where its answers differ from Prometheus', test_dialect.py says by how much.
"""

from __future__ import annotations

import pytest
from test_evaluate_on_prometheus import (
    reports,
    test_agency_display_names_come_from_the_namespace_annotation,
    test_cli_writes_every_format_and_exits_zero,
    test_cronjobs_are_graded_on_their_running_samples,
    test_every_agency_is_found_and_evaluated_completely,
    test_grades_and_actions_recover_the_ground_truth_of_every_shape,
    test_hpa_managed_resources_are_discovered,
    test_memory_growth_is_never_cut_below_its_projected_peak,
    test_query_count_is_reported_and_matches_the_server,
    test_recommendations_move_the_right_way_with_reasons,
    test_savings_add_up_from_workloads_to_projects_to_agencies,
)
from test_query_plan import served_queries
from test_source_failures import (
    test_a_stopped_prometheus_is_unreachable_and_recovers,
    test_one_failing_query_fails_the_whole_agency,
)

from rightsizer.localvm import LocalVictoriaMetrics, cached_victoria
from rightsizer.simulate import CloudSpec

pytestmark = pytest.mark.victoria

__all__ = [
    "reports",
    "test_a_stopped_prometheus_is_unreachable_and_recovers",
    "test_agency_display_names_come_from_the_namespace_annotation",
    "test_cli_writes_every_format_and_exits_zero",
    "test_cronjobs_are_graded_on_their_running_samples",
    "test_every_agency_is_found_and_evaluated_completely",
    "test_grades_and_actions_recover_the_ground_truth_of_every_shape",
    "test_hpa_managed_resources_are_discovered",
    "test_memory_growth_is_never_cut_below_its_projected_peak",
    "test_one_failing_query_fails_the_whole_agency",
    "test_query_count_is_reported_and_matches_the_server",
    "test_recommendations_move_the_right_way_with_reasons",
    "test_savings_add_up_from_workloads_to_projects_to_agencies",
]


def victoria_for(spec: CloudSpec) -> LocalVictoriaMetrics:
    return LocalVictoriaMetrics(seed=cached_victoria(spec).storage_dir)


def test_query_count_is_flat_when_workloads_are_multiplied_on_victoria() -> None:
    small = served_queries(8, server_for=victoria_for)
    assert small == served_queries(64, server_for=victoria_for)
    assert small <= 3 * 9  # a fixed list per agency, as on Prometheus
