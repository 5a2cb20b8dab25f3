"""The evaluation against a real Prometheus recovers the generator's ground truth."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, STANDARD

from rightsizer.adapters.files import load_policies
from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
from rightsizer.core.report import AgencyReport
from rightsizer.localprom import LocalPrometheus
from rightsizer.service import NamedPolicy, evaluate_policies, expand_by_label

pytestmark = pytest.mark.prometheus


def default_policies(source: PrometheusSource) -> list[NamedPolicy]:
    [policy] = [p for p in load_policies([ROOT / "policies"]) if p.name == "default"]
    template = NamedPolicy(policy.name, policy.spec)
    return expand_by_label([template], source, label="rightsizer.io/agency", end=STANDARD.end)


@pytest.fixture(scope="module")
def reports(prometheus: LocalPrometheus) -> list[AgencyReport]:
    source = PrometheusSource(PrometheusConfig(url=prometheus.url))
    return evaluate_policies(default_policies(source), source, end=STANDARD.end)


def key(workload: dict[str, Any]) -> str:
    return f"{workload['kind']}/{workload['namespace']}/{workload['name']}"


def test_every_agency_is_found_and_evaluated_completely(
    reports: list[AgencyReport], truth: dict[str, Any]
) -> None:
    assert sorted(r.agency for r in reports) == sorted(a["agency"] for a in truth["agencies"])
    assert all(r.complete for r in reports)
    found = {e.ref.key for r in reports for e in r.workloads}
    assert found == {key(w) for w in truth["workloads"]}


def test_grades_and_actions_recover_the_ground_truth_of_every_shape(
    reports: list[AgencyReport], truth: dict[str, Any]
) -> None:
    evaluations = {e.ref.key: e for r in reports for e in r.workloads}
    shapes: Counter[str] = Counter()
    wrong = []
    for workload in truth["workloads"]:
        shapes[workload["shape"]] += 1
        got = evaluations[key(workload)]
        expected = (workload["expectedGrade"], workload["expectedAction"])
        if (got.grade, got.action) != expected:
            wrong.append((key(workload), workload["shape"], expected, (got.grade, got.action)))
    assert set(shapes) >= {
        "idle",
        "overprovisioned",
        "rightsized",
        "diurnal",
        "batch",
        "bursty",
        "memory-growth",
        "at-capacity",
        "oom-killed",
    }
    assert wrong == []


@pytest.mark.parametrize(
    ("shape", "resource", "change"),
    [
        ("overprovisioned", "cpu", "down"),
        ("overprovisioned", "memory", "down"),
        ("at-capacity", "cpu", "up"),
        ("oom-killed", "memory", "up"),
    ],
)
def test_recommendations_move_the_right_way_with_reasons(
    reports: list[AgencyReport], truth: dict[str, Any], shape: str, resource: str, change: str
) -> None:
    evaluations = {e.ref.key: e for r in reports for e in r.workloads}
    for workload in (w for w in truth["workloads"] if w["shape"] == shape):
        for container in evaluations[key(workload)].containers:
            rec = container.resources[resource]
            assert rec.change == change, rec.reasons
            assert any(reason.startswith("rule ") for reason in rec.reasons)


def test_memory_growth_is_never_cut_below_its_projected_peak(
    reports: list[AgencyReport], truth: dict[str, Any]
) -> None:
    evaluations = {e.ref.key: e for r in reports for e in r.workloads}
    growing = [w for w in truth["workloads"] if w["shape"] == "memory-growth"]
    assert growing
    for workload in growing:
        requests = {c["name"]: c["requests"]["memory"] for c in workload["containers"]}
        for container in evaluations[key(workload)].containers:
            memory = container.resources["memory"]
            assert memory.change != "down"
            # above the last day's peak, with the trend projected a week ahead
            assert (
                memory.target > workload["nominal"]["memory"]["max"] * requests[container.container]
            )
            assert any("grow" in reason for reason in memory.reasons)


def test_savings_add_up_from_workloads_to_projects_to_agencies(
    reports: list[AgencyReport],
) -> None:
    for report in reports:
        assert report.summary is not None
        by_workload = sum(e.released.cpu for e in report.workloads)
        by_project = sum(p.released.cpu for p in report.projects)
        assert report.summary.released.cpu == pytest.approx(by_workload)
        assert report.summary.released.cpu == pytest.approx(by_project)
        assert report.summary.money_released == sum(p.money_released for p in report.projects)


def test_cronjobs_are_graded_on_their_running_samples(
    reports: list[AgencyReport], truth: dict[str, Any]
) -> None:
    evaluations = {e.ref.key: e for r in reports for e in r.workloads}
    batches = [w for w in truth["workloads"] if w["kind"] == "CronJob"]
    assert batches
    for workload in batches:
        evaluation = evaluations[key(workload)]
        assert evaluation.outcome == "evaluated"
        cpu = next(i for i in evaluation.card.indicators if i.name == "cpu-average")  # type: ignore[union-attr]
        assert cpu.measurement.utilisation > 0.5  # not diluted by the idle time between runs


def test_hpa_managed_resources_are_discovered(
    prometheus: LocalPrometheus, truth: dict[str, Any]
) -> None:
    source = PrometheusSource(PrometheusConfig(url=prometheus.url))
    policies = default_policies(source)
    from rightsizer.service import collection_request

    requests = [collection_request(p, tuple(p.spec.namespaces)) for p in policies]
    collections = source.collect(requests, end=STANDARD.end)
    hpa = {
        ob.workload.ref.key: ob.workload.hpa_resources
        for c in collections
        if not isinstance(c, Exception)
        for ob in c.observations
    }
    expected = {key(w) for w in truth["workloads"] if w["hpa"]}
    assert expected, "the standard cloud has HPA-managed Deployments"
    assert {k for k, resources in hpa.items() if resources} == expected
    assert all(hpa[k] == frozenset({"cpu"}) for k in expected)


def test_query_count_is_reported_and_matches_the_server(fresh_prometheus: LocalPrometheus) -> None:
    source = PrometheusSource(PrometheusConfig(url=fresh_prometheus.url))
    policies = default_policies(source)
    served_before, sent_before = fresh_prometheus.query_count(), source.queries
    reports = evaluate_policies(policies, source, end=STANDARD.end)
    served = fresh_prometheus.query_count() - served_before
    assert served == source.queries - sent_before
    assert sum(r.queries for r in reports) == served


def evaluate_cli(url: str, *extra: str) -> int:
    """`rightsizer evaluate` with the default policy as a template for every agency."""
    from rightsizer.cli import main

    return main(
        [
            "evaluate",
            "--prometheus-url",
            url,
            "--policy",
            str(ROOT / "policies" / "default.yaml"),
            "--agency-label",
            "rightsizer.io/agency",
            "--at",
            STANDARD.end.isoformat(),
            "--no-progress",
            *extra,
        ]
    )


def test_cli_writes_every_format_and_exits_zero(
    prometheus: LocalPrometheus, tmp_path: Path
) -> None:
    outputs = [tmp_path / name for name in ("r.html", "r.json", "r.csv", "r.md")]
    assert evaluate_cli(prometheus.url, *[a for p in outputs for a in ("-o", str(p))]) == 0
    for path in outputs:
        assert path.stat().st_size > 200
    assert evaluate_cli(prometheus.url, "--summary", "--fail-under", "101") == 4


def test_agency_display_names_come_from_the_namespace_annotation(
    reports: list[AgencyReport], truth: dict[str, Any]
) -> None:
    expected = {a["agency"]: a["displayName"] for a in truth["agencies"]}
    assert {r.agency: r.display_name for r in reports} == expected
