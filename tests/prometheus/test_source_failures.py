"""A stopped, failing, slow or half-failing Prometheus gives a clear error, never a
half-evaluated result presented as complete."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import ROOT, STANDARD
from faults import always, fault_server

from rightsizer.adapters.incremental import IncrementalSource
from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
from rightsizer.adapters.statestore import FileStateStore
from rightsizer.cli import main
from rightsizer.core.policy import PolicySpec
from rightsizer.localprom import LocalPrometheus
from rightsizer.service import NamedPolicy, evaluate_policies

pytestmark = pytest.mark.prometheus

AGENCY = NamedPolicy(
    "finance", PolicySpec(agency="agency-001", namespaces=["agency-001-prod", "agency-001-test"])
)


def evaluate(url: str, **config: object):  # type: ignore[no-untyped-def]
    source = PrometheusSource(PrometheusConfig(url=url, **config))  # type: ignore[arg-type]
    return evaluate_policies([AGENCY], source, end=STANDARD.end)[0]


FAULTS = [
    ("5xx", always(503, b"overloaded"), "answered with an error"),
    (
        "400 bad query",
        always(400, b'{"status":"error","error":"parse error"}'),
        "answered with an error",
    ),
    ("garbage", always(200, b"<html>login</html>"), "not understood"),
    ("wrong shape", always(200, b'{"status":"success","data":{}}'), "not understood"),
]


@pytest.mark.parametrize(("case", "decide", "message"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_failing_prometheus_gives_a_clear_error_and_no_numbers(
    case: str, decide: object, message: str
) -> None:
    with fault_server(decide) as (url, _):  # type: ignore[arg-type]
        report = evaluate(url, retries=0)
    assert not report.complete
    assert message in (report.error or "")
    assert report.summary is None
    assert report.workloads == ()


def test_a_stopped_prometheus_is_unreachable_and_recovers(
    fresh_prometheus: LocalPrometheus,
) -> None:
    fresh_prometheus.stop()
    report = evaluate(fresh_prometheus.url, retries=0)
    assert report.error is not None
    assert "unreachable" in report.error
    fresh_prometheus.start()
    recovered = evaluate(fresh_prometheus.url)
    assert recovered.complete
    assert recovered.summary is not None
    assert recovered.summary.workloads > 0


def test_retries_are_bounded() -> None:
    with fault_server(always(503, b"busy")) as (url, seen):
        report = evaluate(url, retries=2, workers=1)
    assert not report.complete
    queries = [line for line in seen if line.startswith("/api/v1/query")]
    # the first query fails after 1 + 2 tries; the others of the batch fail the same way
    assert len(queries) % 3 == 0


def test_a_slow_prometheus_times_out() -> None:
    with fault_server(always(200, b"{}", delay=3)) as (url, _):
        report = evaluate(url, timeout=1, retries=0)
    assert report.error is not None
    assert "unreachable" in report.error
    assert "timed out" in report.error.lower()


def test_a_timed_out_query_is_not_sent_again_nor_are_the_others() -> None:
    """A query that timed out would time out again: one try, and the failed batch's other
    queries are not sent (the operator retries the whole evaluation)."""
    with fault_server(always(200, b"{}", delay=2)) as (url, seen):
        started = time.monotonic()
        report = evaluate(url, timeout=1, retries=2, workers=1)
        took = time.monotonic() - started
    assert report.error is not None and "timed out" in report.error.lower()
    queries = [line for line in seen if line.startswith("/api/v1/query")]
    assert len(set(queries)) == len(queries), queries  # none sent twice
    # the recording-rules probe (its timeout tolerated), the query that failed the batch,
    # and at most one the worker had taken before the others were cancelled
    assert len(queries) <= 3, queries
    assert took < 10, took


def test_the_incremental_path_sends_no_more_of_a_batch_whose_query_timed_out(
    tmp_path: Path,
) -> None:
    """A rebuild asks some fifty queries per batch (one per part): after a timeout, the
    batch's others are cancelled, not each left to time out in turn."""
    with fault_server(always(200, b"{}", delay=2)) as (url, seen):
        source = IncrementalSource(
            PrometheusSource(PrometheusConfig(url=url, timeout=1, retries=2, workers=1)),
            FileStateStore(tmp_path),
        )
        started = time.monotonic()
        [report] = evaluate_policies([AGENCY], source, end=STANDARD.end)
        took = time.monotonic() - started
    assert report.error is not None and "timed out" in report.error.lower()
    queries = [line for line in seen if line.startswith("/api/v1/query")]
    # the query that failed the batch, and at most one the worker had taken meanwhile
    assert len(queries) <= 2, queries
    assert took < 10, took
    assert not list(tmp_path.iterdir()), "no state saved from a failed batch"


def test_one_failing_query_fails_the_whole_agency(prometheus: LocalPrometheus) -> None:
    def fail_percentiles(path: str, body: bytes) -> tuple[int, bytes] | None:
        del path  # the query is in the form body
        return (503, b"too slow") if b"quantile_over_time" in body else None

    with fault_server(fail_percentiles, upstream=prometheus.url) as (url, seen):
        report = evaluate(url, retries=0)
    assert any("quantile_over_time" in line for line in seen)
    assert any("kube_pod_owner" in line for line in seen)  # other queries went through
    assert not report.complete
    assert report.workloads == ()


def test_cli_exits_3_and_says_which_agency_was_not_evaluated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fault_server(always(503, b"down")) as (url, _):
        code = main(
            [
                "evaluate",
                "--prometheus-url",
                url,
                "--policy",
                str(ROOT / "policies" / "default.yaml"),
                "--no-progress",
                "--retries",
                "0",
                "--at",
                STANDARD.end.isoformat(),
                "--format",
                "json",
                "-o",
                str(tmp_path / "r.html"),
            ]
        )
    assert code == 3
    err = capsys.readouterr().err
    assert "NOT evaluated" in err
    assert "default" in err
