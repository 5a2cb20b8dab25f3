"""The operator's own metrics on /metrics (prometheus-client)."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from rightsizer.cycle import CycleResult


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.score = Gauge(
            "rightsizer_agency_score", "Agency score (0-100)", ["policy", "agency"], registry=r
        )
        self.workloads = Gauge(
            "rightsizer_workloads", "Workloads by grade", ["policy", "grade"], registry=r
        )
        self.savings = Gauge(
            "rightsizer_savings_monthly",
            "Money per month: potential (recommended) and realised (applied this evaluation)",
            ["policy", "kind", "currency"],
            registry=r,
        )
        self.duration = Histogram(
            "rightsizer_evaluation_seconds",
            "Evaluation duration",
            ["policy"],
            registry=r,
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300),
        )
        self.evaluations = Counter(
            "rightsizer_evaluations_total",
            "Evaluations by result",
            ["policy", "result"],
            registry=r,
        )
        self.source_errors = Counter(
            "rightsizer_prometheus_query_errors_total",
            "Evaluations that could not read Prometheus",
            ["policy"],
            registry=r,
        )
        self.changes = Counter(
            "rightsizer_changes_total",
            "Resource changes applied or skipped, by reason",
            ["policy", "result", "reason"],
            registry=r,
        )

    def serve(self, port: int) -> None:
        if port:
            start_http_server(port, registry=self.registry)

    def record(self, policy: str, result: CycleResult, seconds: float) -> None:
        self.duration.labels(policy).observe(seconds)
        status = result.status
        ready = next((c for c in status.conditions if c.type == "Ready"), None)
        reason = ready.reason if ready else "Unknown"
        self.evaluations.labels(policy, reason).inc()
        if reason == "PrometheusUnavailable":
            self.source_errors.labels(policy).inc()
        report = result.report
        if report is None or report.summary is None:
            return
        card = report.summary.card
        if card is not None:
            self.score.labels(policy, report.agency).set(card.score)
        for grade, count in report.summary.by_grade.items():
            self.workloads.labels(policy, grade).set(count)
        totals = status.totals
        if totals is not None:
            self.savings.labels(policy, "potential", totals.currency).set(
                float(totals.money_released)
            )
            self.savings.labels(policy, "realised", totals.currency).set(
                float(totals.money_applied)
            )
        skipped = Tally(code for d in result.decisions for code in d.skipped.values())
        for code, count in skipped.items():
            self.changes.labels(policy, "skipped", code).inc(count)
        applied = sum(len(d.changes) for d in result.decisions)
        if applied:
            self.changes.labels(policy, "applied", "").inc(applied)
