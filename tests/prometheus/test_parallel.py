"""Agencies evaluated in several processes give the reports one process gives (full and
incremental, on the real Prometheus); a process that dies fails its agencies with the reason,
and nothing else stops."""

from __future__ import annotations

import functools
import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import STANDARD
from test_incremental import policies as policies_of

from rightsizer.adapters.incremental import IncrementalConfig
from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
from rightsizer.core.report import AgencyReport
from rightsizer.localprom import LocalPrometheus
from rightsizer.parallel import SourceRecipe, evaluate_in_processes
from rightsizer.process import set_up_command_line
from rightsizer.service import NamedPolicy

pytestmark = pytest.mark.prometheus


def agencies(url: str) -> list[NamedPolicy]:
    return policies_of(PrometheusSource(PrometheusConfig(url=url)))


def recipe(url: str, state: Path | None) -> SourceRecipe:
    config = PrometheusConfig(url=url, workers=2)
    return SourceRecipe(config, state=state, incremental=IncrementalConfig() if state else None)


def without_query_counts(reports: list[AgencyReport]) -> list[AgencyReport]:
    """Reports as numbers and decisions: how many queries an agency shared depends on which
    agencies were batched with it (here, in one process, all three)."""
    return [report.model_copy(update={"queries": 0}) for report in reports]


@pytest.mark.parametrize("incremental", [False, True], ids=["full", "incremental"])
def test_agencies_evaluated_in_processes_get_the_reports_of_one_process(
    prometheus: LocalPrometheus, tmp_path: Path, incremental: bool
) -> None:
    policies = agencies(prometheus.url)
    assert len(policies) == STANDARD.agencies == 3
    # incremental: the state rebuilt three hours before the end, then folded to the end
    times = [STANDARD.end - timedelta(hours=3), STANDARD.end] if incremental else [STANDARD.end]
    found: dict[int, list[AgencyReport]] = {}
    for processes in (1, 2):
        state = tmp_path / f"state-{processes}" if incremental else None
        for end in times:
            found[processes] = evaluate_in_processes(
                policies,
                recipe(prometheus.url, state),
                end=end,
                processes=processes,
                prepare=functools.partial(set_up_command_line, logging.WARNING),  # the CLI's
                chunk=1,
            )
        if state is not None:  # each agency's state, written by whichever process held it
            assert len(list(state.glob("*.state"))) == 3

    one, several = found[1], found[2]
    assert [r.policy for r in several] == [p.name for p in policies]
    assert all(r.complete for r in several), [r.error for r in several]
    assert sum(len(r.workloads) for r in several) == 90
    assert without_query_counts(several) == without_query_counts(one)


def test_a_process_that_dies_fails_its_agencies_with_the_reason(
    prometheus: LocalPrometheus,
) -> None:
    policies = agencies(prometheus.url)
    dies = functools.partial(os._exit, 3)  # as the kernel's OOM killer would end it

    reports = evaluate_in_processes(
        policies, recipe(prometheus.url, None), end=STANDARD.end, processes=2, prepare=dies, chunk=1
    )

    assert [r.policy for r in reports] == [p.name for p in policies]
    for report in reports:
        assert not report.complete and not report.workloads
        assert report.error is not None
        assert "the evaluating process stopped" in report.error
