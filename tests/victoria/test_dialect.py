"""How VictoriaMetrics' answers differ from Prometheus' on the same data (docs/backends.md).

Every query of a batch goes to both servers; each part's values must agree within the
tolerance stated here, and the evaluation's grades, actions and recommendations too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import STANDARD
from faults import fault_server

from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
from rightsizer.core.policy import PolicySpec
from rightsizer.handlers.config import OperatorConfig
from rightsizer.localprom import LocalPrometheus, cached_dataset
from rightsizer.localvm import LocalVictoriaMetrics
from rightsizer.service import NamedPolicy, collection_request, evaluate_policies

pytestmark = pytest.mark.victoria

AGENCY = NamedPolicy(
    "finance", PolicySpec(agency="agency-001", namespaces=["agency-001-prod", "agency-001-test"])
)
# Range selectors: Prometheus 2 includes a sample at the window's start, VictoriaMetrics
# does not (left-open, as Prometheus 3): a count may be one lower, an average moves a bit.
COUNTS = {"cpu_samples", "cpu_recent", "mem_samples", "mem_fresh", "gpu_samples"}
# increase() does not extrapolate on VictoriaMetrics (it uses the sample before the window,
# or 0 for a series that starts inside it); Prometheus extrapolates up to half a sample
# interval past each end. A series that lives its whole life inside the window (a Job's
# pod) so differs by up to one interval's share: 1 / its sample count.
PER_SAMPLE = {"cpu_seconds": "cpu_samples"}
TOLERANCE = {
    "cpu_seconds": 1e-3,
    "throttled": 1e-3,
    "memstat_avg": 1e-3,
    "pvc_avg": 1e-3,
    "gpu_avg": 1e-3,
    "cpu_day_seconds": 0.05,  # one day's increase: extrapolated vs from the previous sample
    "mem_day_peak": 0.01,  # a day's peak: the boundary sample counts on one side only
}
EXACT = 1e-9  # max, last_over_time, subquery percentiles, inventory


@pytest.fixture(scope="module")
def real_prometheus() -> Iterator[LocalPrometheus]:
    with LocalPrometheus(cached_dataset(STANDARD, files=2).data_dir) as server:
        yield server


def rows_by_part(source: PrometheusSource) -> dict[str, dict[tuple[Any, ...], Any]]:
    request = collection_request(AGENCY, tuple(AGENCY.spec.namespaces))
    found: dict[str, dict[tuple[Any, ...], Any]] = {}
    for task in source._tasks(0, [request]):
        for labels, value in source._run(task, [request], STANDARD.end):
            part = task.part or labels.get("rs_part", "?")
            key = tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))
            found.setdefault(part, {})[key] = value
    return found


def _retag(key: tuple[Any, ...], part: str) -> tuple[Any, ...]:
    return tuple((k, part if k == "rs_part" else v) for k, v in key)


def relative(a: float, b: float) -> float:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def test_every_query_answers_alike_within_the_stated_tolerance(
    real_prometheus: LocalPrometheus, prometheus: LocalVictoriaMetrics
) -> None:
    ours = rows_by_part(PrometheusSource(PrometheusConfig(url=real_prometheus.url)))
    theirs = rows_by_part(
        PrometheusSource(PrometheusConfig(url=prometheus.url, backend="victoriametrics"))
    )
    assert set(ours) == set(theirs)
    beyond = []
    for part, rows in ours.items():
        assert set(rows) == set(theirs[part]), part  # the same series, label for label
        for key, value in rows.items():
            other = theirs[part][key]
            if isinstance(value, list):  # a range answer: (t, v) per day
                assert [t for t, _ in value] == [t for t, _ in other], part
                worst = max(relative(v, w) for (_, v), (_, w) in zip(value, other, strict=True))
            elif part in COUNTS:
                worst = 0.0 if 0 <= value - other <= 1 else math.inf
            else:
                worst = relative(value, other)
            allowed = TOLERANCE.get(part, EXACT)
            if part in PER_SAMPLE:
                samples = ours[PER_SAMPLE[part]][_retag(key, PER_SAMPLE[part])]
                allowed = max(allowed, 1 / samples)
            if worst > allowed:
                beyond.append((part, dict(key), value, other))
    assert beyond == [], "\n".join(map(str, beyond))


def test_evaluations_agree_on_grades_actions_and_targets(
    real_prometheus: LocalPrometheus, prometheus: LocalVictoriaMetrics
) -> None:
    def evaluate(url: str, backend: Any) -> dict[str, Any]:
        source = PrometheusSource(PrometheusConfig(url=url, backend=backend))
        [report] = evaluate_policies([AGENCY], source, end=STANDARD.end)
        assert report.complete
        return {e.ref.key: e for e in report.workloads}

    ours = evaluate(real_prometheus.url, "prometheus")
    theirs = evaluate(prometheus.url, "victoriametrics")
    assert ours.keys() == theirs.keys()
    for key, mine in ours.items():
        other = theirs[key]
        assert (mine.grade, mine.action) == (other.grade, other.action), key
        for a, b in zip(mine.containers, other.containers, strict=True):
            for resource, rec in a.resources.items():
                target = b.resources[resource].target
                assert relative(rec.target, target) <= 0.01, (key, resource)


@pytest.mark.parametrize(
    ("backend", "sent"),
    [
        ("thanos", ["partial_response=false", "dedup=true"]),
        ("victoriametrics", ["deny_partial_response=1"]),
        ("prometheus", []),
    ],
)
def test_each_backend_is_sent_its_strict_parameters(
    prometheus: LocalVictoriaMetrics, backend: str, sent: list[str]
) -> None:
    with fault_server(lambda path, body: None, upstream=prometheus.url) as (url, seen):
        env = {"RIGHTSIZER_PROMETHEUS_URL": url, "RIGHTSIZER_PROMETHEUS_BACKEND": backend}
        source = PrometheusSource(OperatorConfig.from_environment(env).prometheus())
        [report] = evaluate_policies([AGENCY], source, end=STANDARD.end)
    assert report.complete
    queries = [line for line in seen if line.startswith("/api/v1/query")]
    assert queries
    for parameter in sent:
        assert all(parameter in line for line in queries), parameter
    assert not any("partial_response" in line for line in queries) or sent


def test_an_unknown_backend_is_refused() -> None:
    env = {"RIGHTSIZER_PROMETHEUS_URL": "http://x", "RIGHTSIZER_PROMETHEUS_BACKEND": "influx"}
    with pytest.raises(ValueError, match="RIGHTSIZER_PROMETHEUS_BACKEND"):
        OperatorConfig.from_environment(env)
