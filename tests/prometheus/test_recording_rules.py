"""Recorded series (rightsizer's recording rules) are read when they cover the window.

The rules are backfilled into the standard cloud as a deployment backfills them
(``promtool tsdb create-blocks-from rules`` against the running server). Prometheus evaluates
a rule group at its own phase within the 10-minute interval, not on the subquery's grid: on
this cloud's 5-minute samples a recorded ``rate[10m]`` spans two samples where the
subquery's spans three, so a noisy container's CPU p95 may differ by several percent
(measured: at most 7.2%, 3.2% at the 90th percentile of containers), and a recommended CPU
target by at most 1.5%. Memory peaks agree exactly, averages within 0.75%. With real
15-30 s scrapes the two agree more closely still. Grades, actions and the direction of every
recommendation must agree exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from conftest import ROOT, STANDARD

from rightsizer.adapters.files import load_policies
from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
from rightsizer.adapters.rules import Mode
from rightsizer.core.evaluation import WorkloadEvaluation
from rightsizer.core.report import AgencyReport
from rightsizer.localprom import Dataset, LocalPrometheus
from rightsizer.localrules import RulesDataset, cached_rules_dataset
from rightsizer.ports import Collection, CollectionRequest
from rightsizer.service import NamedPolicy, evaluate_policies, expand_by_label

pytestmark = pytest.mark.prometheus

TARGET_TOLERANCE = 0.02  # relative, on the targets of recommended changes
MEASUREMENT_TOLERANCE = {"cpu-p95": 0.08, "memory-average": 0.01}  # relative; others exact


@pytest.fixture(scope="module")
def covered(standard_cloud: Dataset) -> RulesDataset:
    return cached_rules_dataset(standard_cloud)


@pytest.fixture(scope="module")
def with_rules(covered: RulesDataset) -> Iterator[LocalPrometheus]:
    with LocalPrometheus(covered.data_dir) as server:
        yield server


def evaluate(url: str, mode: Mode) -> tuple[list[AgencyReport], PrometheusSource]:
    source = PrometheusSource(PrometheusConfig(url=url, recording_rules=mode))
    [policy] = [p for p in load_policies([ROOT / "policies"]) if p.name == "default"]
    policies = expand_by_label(
        [NamedPolicy(policy.name, policy.spec)],
        source,
        label="rightsizer.io/agency",
        end=STANDARD.end,
    )
    return evaluate_policies(policies, source, end=STANDARD.end), source


def by_workload(reports: list[AgencyReport]) -> dict[str, WorkloadEvaluation]:
    return {e.ref.key: e for r in reports for e in r.workloads}


def notes(source: PrometheusSource) -> set[str]:
    return {plan.note for _, plan in source.plans.values()}


@pytest.fixture(scope="module")
def raw_and_recorded(
    with_rules: LocalPrometheus,
) -> tuple[dict[str, WorkloadEvaluation], dict[str, WorkloadEvaluation], PrometheusSource]:
    raw, _ = evaluate(with_rules.url, "off")
    recorded, source = evaluate(with_rules.url, "auto")
    assert all(r.complete for r in raw + recorded)
    return by_workload(raw), by_workload(recorded), source


def test_auto_reads_recorded_series_when_they_cover_the_window(
    raw_and_recorded: tuple[
        dict[str, WorkloadEvaluation], dict[str, WorkloadEvaluation], PrometheusSource
    ],
) -> None:
    _, _, source = raw_and_recorded
    assert notes(source) == {"recording rules: recorded series (they cover the 14d window)"}


def test_grades_and_actions_agree_with_raw_series(
    raw_and_recorded: tuple[
        dict[str, WorkloadEvaluation], dict[str, WorkloadEvaluation], PrometheusSource
    ],
) -> None:
    raw, recorded, _ = raw_and_recorded
    assert raw.keys() == recorded.keys()
    differ = [
        (key, (raw[key].grade, raw[key].action), (recorded[key].grade, recorded[key].action))
        for key in raw
        if (raw[key].grade, raw[key].action) != (recorded[key].grade, recorded[key].action)
    ]
    assert differ == []


def test_recommendations_agree_within_the_tolerance(
    raw_and_recorded: tuple[
        dict[str, WorkloadEvaluation], dict[str, WorkloadEvaluation], PrometheusSource
    ],
) -> None:
    raw, recorded, _ = raw_and_recorded
    changes = 0
    for key, evaluation in raw.items():
        theirs = {c.container: c for c in recorded[key].containers}
        for container in evaluation.containers:
            for resource, rec in container.resources.items():
                other = theirs[container.container].resources[resource]
                assert other.change == rec.change, (key, container.container, resource)
                if rec.change != "none":
                    assert other.target == pytest.approx(rec.target, rel=TARGET_TOLERANCE), key
                    changes += 1
    assert changes > 50


def test_measurements_agree_within_the_tolerance(
    raw_and_recorded: tuple[
        dict[str, WorkloadEvaluation], dict[str, WorkloadEvaluation], PrometheusSource
    ],
) -> None:
    raw, recorded, _ = raw_and_recorded
    compared = set()
    for key, evaluation in raw.items():
        if evaluation.card is None:
            continue
        assert recorded[key].card is not None
        theirs = {i.name: i.measurement for i in recorded[key].card.indicators}  # type: ignore[union-attr]
        for indicator in evaluation.card.indicators:
            tolerance = MEASUREMENT_TOLERANCE.get(indicator.name, 1e-9)
            expected = indicator.measurement.utilisation
            got = theirs[indicator.name].utilisation
            assert got == pytest.approx(expected, rel=tolerance), (key, indicator.name)
            compared.add(indicator.name)
    assert {"cpu-p95", "memory-peak", "memory-average", "cpu-average"} <= compared


@pytest.mark.parametrize("mode", ["off", "auto"])
def test_query_count_is_the_same_in_every_mode(with_rules: LocalPrometheus, mode: Mode) -> None:
    before = with_rules.query_count()
    reports, source = evaluate(with_rules.url, mode)
    served = with_rules.query_count() - before
    probes = 1 if mode == "auto" else 0  # the coverage probe, once per evaluation
    namespaces = 2  # expand_by_label's two namespace queries
    assert served == source.queries
    assert sum(r.queries for r in reports) == served - namespaces
    assert served - namespaces - probes == 8  # one batch (three agencies), eight queries


def test_without_rules_auto_falls_back_to_raw_series(prometheus: LocalPrometheus) -> None:
    reports, source = evaluate(prometheus.url, "auto")
    assert all(r.complete for r in reports)
    assert notes(source) == {
        "recording rules: raw series (no recorded series: the rules are not installed)"
    }


def test_rules_installed_two_days_ago_do_not_cover_fourteen(
    standard_cloud: Dataset, raw_and_recorded: tuple[dict[str, WorkloadEvaluation], ...]
) -> None:
    raw = raw_and_recorded[0]
    recent = cached_rules_dataset(standard_cloud, start=STANDARD.end - timedelta(days=2))
    with LocalPrometheus(recent.data_dir) as server:
        reports, source = evaluate(server.url, "auto")
    assert notes(source) == {
        "recording rules: raw series (they do not cover the 14d window (none at the start))"
    }
    got = by_workload(reports)
    assert {k: (e.grade, e.action) for k, e in got.items()} == {
        k: (e.grade, e.action) for k, e in raw.items()
    }


def test_each_collection_says_which_series_it_read(with_rules: LocalPrometheus) -> None:
    source = PrometheusSource(PrometheusConfig(url=with_rules.url, recording_rules="on"))
    request = CollectionRequest(
        key="agency-001",
        namespaces=("agency-001-prod", "agency-001-test"),
        window="14d",
        stale_after="1h",
        project_label="rightsizer.io/project",
        stats={"cpu": frozenset({"avg", "p95"}), "memory": frozenset({"avg", "max"})},
    )
    [collection] = source.collect([request], end=STANDARD.end)
    assert isinstance(collection, Collection)
    assert collection.observations
    assert collection.notes == ("recording rules: recorded series (turned on)",)


def test_cli_option(with_rules: LocalPrometheus) -> None:
    from rightsizer.cli import main

    arguments = ["evaluate", "--prometheus-url", with_rules.url, "--summary", "--no-progress"]
    policy = ["--policy", str(ROOT / "policies" / "default.yaml")]
    at = ["--agency-label", "rightsizer.io/agency", "--at", STANDARD.end.isoformat()]
    assert main([*arguments, *policy, *at, "--recording-rules", "on"]) == 0
