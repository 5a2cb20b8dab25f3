"""The operator's own metrics: what one evaluation records, served over HTTP."""

import socket
import urllib.request
from datetime import UTC, datetime

from rightsizer.api.status import policy_status
from rightsizer.core.decision import WorkloadState, decide
from rightsizer.core.evaluation import evaluate_workload
from rightsizer.core.model import (
    ContainerResources,
    ContainerUsage,
    ResourceStats,
    UsageSummary,
    Workload,
    WorkloadRef,
)
from rightsizer.core.policy import PolicySpec
from rightsizer.core.report import build_agency_report
from rightsizer.core.units import GIB
from rightsizer.cycle import CycleResult
from rightsizer.handlers.metrics import OperatorMetrics

NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


def one_cycle() -> CycleResult:
    """A real evaluation of one over-provisioned workload, decided in apply mode."""
    spec = PolicySpec.model_validate(
        {
            "agency": "finance",
            "namespaces": ["fin-prod"],
            "mode": "apply",
            "safety": {"noticeEvaluations": 1},
        }
    )
    ref = WorkloadRef(kind="Deployment", namespace="fin-prod", name="web")
    target = Workload(
        ref=ref,
        replicas=2,
        containers=(ContainerResources(name="app", requests={"cpu": 2.0, "memory": 4 * GIB}),),
    )
    usage = UsageSummary(
        ref=ref,
        end=NOW,
        window_seconds=14 * 86400,
        containers={
            "app": ContainerUsage(
                container="app",
                resources={
                    "cpu": ResourceStats(
                        values={"avg": 0.16, "p95": 0.18, "max": 0.2}, samples=4032, history_days=14
                    ),
                    "memory": ResourceStats(
                        values={"avg": 0.4 * GIB, "max": 0.45 * GIB}, samples=4032, history_days=14
                    ),
                },
            )
        },
    )
    evaluation = evaluate_workload(target, usage, spec)
    decision = decide(
        evaluation,
        target,
        WorkloadState(),
        policy=spec,
        policy_name="finance",
        mode="apply",
        now=NOW,
    )
    report = build_agency_report("finance", spec, [evaluation], end=NOW)
    status = policy_status(report, [decision], now=NOW, generation=1, applied=1)
    return CycleResult(status=status, report=report, decisions=[decision], applied=1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_evaluation_is_recorded_and_served_on_metrics() -> None:
    metrics = OperatorMetrics()
    metrics.record("finance", one_cycle(), seconds=1.5)
    port = free_port()
    metrics.serve(port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    assert 'rightsizer_agency_score{agency="finance",policy="finance"}' in text
    assert 'rightsizer_evaluations_total{policy="finance",result="Evaluated"} 1.0' in text
    assert 'rightsizer_changes_total{policy="finance",reason="",result="applied"} 2.0' in text
    assert 'rightsizer_savings_monthly{currency="CNY",kind="potential",policy="finance"}' in text
    assert "rightsizer_evaluation_seconds_count" in text


def samples(metrics: OperatorMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample the metrics hold, but the duration's (observed, not derived)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in metrics.registry.collect()
        if family.name != "rightsizer_evaluation_seconds"
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_a_summary_keeps_what_the_caller_records_and_lets_the_evaluations_go() -> None:
    """``run_policies`` keeps each policy's ``summary()``: the same status, metrics and
    decided changes, without the per-workload evaluations or the decisions' reasons."""
    full = one_cycle()
    summary = full.summary()
    assert full.report is not None and full.report.workloads  # the full result is untouched
    assert summary.report is not None and summary.report.workloads == ()
    assert summary.report.summary == full.report.summary
    assert summary.status == full.status
    assert (summary.applied, summary.events, summary.failures) == (
        full.applied,
        full.events,
        full.failures,
    )
    assert [(d.workload, d.action, d.changes, d.skipped) for d in summary.decisions] == [
        (d.workload, d.action, d.changes, d.skipped) for d in full.decisions
    ]
    assert all(not d.reasons and d.held_state is None for d in summary.decisions)
    recorded = [OperatorMetrics(), OperatorMetrics()]
    recorded[0].record("finance", full, seconds=1.5)
    recorded[1].record("finance", summary, seconds=1.5)
    assert samples(recorded[0]) == samples(recorded[1])
    assert samples(recorded[0])
