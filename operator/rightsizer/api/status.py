"""From an evaluation to the objects the cluster keeps: policy status and report (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from rightsizer.api.v1alpha1 import (
    Condition,
    EfficiencyReport,
    ObjectMeta,
    PolicyStatus,
    ProjectLine,
    ReportSpec,
    Totals,
    WorkloadLine,
)
from rightsizer.core.decision import Decision
from rightsizer.core.evaluation import WorkloadEvaluation
from rightsizer.core.report import AgencyReport, GroupSummary
from rightsizer.core.savings import Amounts, display_money, monthly_cost
from rightsizer.core.units import GIB

SHANGHAI = timezone(timedelta(hours=8))


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def period_of(moment: datetime) -> str:
    """The calendar quarter in Asia/Shanghai: '2026-q4'."""
    local = moment.astimezone(SHANGHAI)
    return f"{local.year}-q{(local.month - 1) // 3 + 1}"


def report_name(policy: str, moment: datetime) -> str:
    return f"{policy}-{period_of(moment)}"


def condition(
    kind: str, status: bool, reason: str, message: str, *, now: datetime, generation: int | None
) -> Condition:
    return Condition(
        type=kind,
        status="True" if status else "False",
        reason=reason,
        message=message[:2048],
        last_transition_time=stamp(now),
        observed_generation=generation,
    )


def totals(summary: GroupSummary, currency: str, *, applied: Decimal = Decimal(0)) -> Totals:
    return Totals(
        currency=currency,
        requested_cpu_cores=round(summary.requested.cpu, 3),
        requested_memory_gib=round(summary.requested.memory / GIB, 3),
        released_cpu_cores=round(summary.released.cpu, 3),
        released_memory_gib=round(summary.released.memory / GIB, 3),
        added_cpu_cores=round(summary.added.cpu, 3),
        added_memory_gib=round(summary.added.memory / GIB, 3),
        reclaimable_cpu_cores=round(summary.reclaimable.cpu, 3),
        reclaimable_memory_gib=round(summary.reclaimable.memory / GIB, 3),
        reclaimable_storage_gib=round(summary.reclaimable.storage / GIB, 3),
        monthly_cost=str(display_money(summary.monthly_cost)),
        money_released=str(display_money(summary.money_released)),
        money_reclaimable=str(display_money(summary.money_reclaimable)),
        money_applied=str(display_money(applied)),
    )


def applied_money(report: AgencyReport, decisions: Sequence[Decision]) -> Decimal:
    """Monthly money released by the changes actually made in this evaluation."""
    if report.prices is None:
        return Decimal(0)
    released = Amounts()
    for decision in decisions:
        for change in decision.changes:
            delta = change.request_from - change.request_to
            released = released + Amounts.of(change.resource, delta)
    return monthly_cost(released, report.prices)


def policy_status(
    report: AgencyReport,
    decisions: Sequence[Decision],
    *,
    now: datetime,
    generation: int | None,
    applied: int,
    warnings: Sequence[str] = (),
) -> PolicyStatus:
    """Ready (or Degraded with the reason) and the evaluation's figures."""
    if report.error or report.summary is None:
        return failed_status(
            report.error or "no result",
            reason="PrometheusUnavailable",
            now=now,
            generation=generation,
        )
    summary = report.summary
    insufficient = summary.by_outcome.get("insufficient-data", 0)
    degraded = insufficient == summary.workloads and summary.workloads > 0
    skipped = Counter(code for d in decisions for code in d.skipped.values())
    conditions = [
        condition(
            "Ready",
            not degraded,
            "InsufficientData" if degraded else "Evaluated",
            f"{summary.workloads} workloads evaluated",
            now=now,
            generation=generation,
        ),
        condition(
            "Degraded",
            degraded or bool(warnings),
            "InsufficientData" if degraded else ("Warnings" if warnings else "None"),
            "; ".join(warnings)[:2048] or ("no workload has enough history" if degraded else ""),
            now=now,
            generation=generation,
        ),
    ]
    card = summary.card
    return PolicyStatus(
        observed_generation=generation,
        conditions=conditions,
        last_evaluation=stamp(now),
        score=card.score if card else None,
        grade=card.grade if card else None,
        workloads=summary.workloads,
        by_grade=summary.by_grade,
        by_action=summary.by_action,
        by_outcome=summary.by_outcome,
        changes_applied=applied,
        changes_skipped=dict(skipped),
        totals=totals(summary, report.currency, applied=applied_money(report, decisions)),
        report=report_name(report.policy, now),
        summary=f"{card.grade} {card.score:g}" if card else "ungraded",
    )


def status_patch(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> dict[str, Any]:
    """The merge patch that makes a policy's status ``new`` (a model dump): a JSON merge
    patch merges maps and never drops their keys, so each key of a map in ``old`` (the status
    now) that ``new`` lacks is sent as null. Without it, ``changesSkipped`` or ``byOutcome``
    would keep counts from earlier evaluations. Lists (conditions) are replaced whole."""
    patch = dict(new)
    for name, value in new.items():
        before = (old or {}).get(name)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            patch[name] = _nulled(value, before)
    return patch


def _nulled(new: Mapping[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            patch[key] = _nulled(value, before)
        else:
            patch[key] = value
    return patch


def failed_status(
    message: str, *, reason: str, now: datetime, generation: int | None
) -> PolicyStatus:
    return PolicyStatus(
        observed_generation=generation,
        conditions=[
            condition("Ready", False, reason, message, now=now, generation=generation),
            condition("Degraded", True, reason, message, now=now, generation=generation),
        ],
        last_evaluation=stamp(now),
    )


def _line(evaluation: WorkloadEvaluation, report: AgencyReport, reason: str = "") -> WorkloadLine:
    money = (
        monthly_cost(evaluation.released + evaluation.reclaimable, report.prices)
        if (report.prices)
        else Decimal(0)
    )
    return WorkloadLine(
        workload=evaluation.ref.key,
        project=evaluation.project,
        score=evaluation.score,
        grade=evaluation.grade,
        action=evaluation.action,
        reason=(reason or "; ".join(evaluation.reasons))[:512],
        money_released=str(display_money(money)),
    )


def report_object(
    report: AgencyReport, decisions: Sequence[Decision], *, now: datetime, applied: int
) -> EfficiencyReport:
    """The period's report object: small (top lists only), well under etcd's limit."""
    assert report.summary is not None
    graded = sorted(
        (e for e in report.workloads if e.score is not None), key=lambda e: (e.score, e.ref.key)
    )
    proposed = [e for e in report.workloads if e.action in ("downsize", "upsize", "reclaim")]
    proposed.sort(key=lambda e: -(e.released.cpu + e.released.memory / GIB + e.added.cpu))
    card = report.summary.card
    spec = ReportSpec(
        policy=report.policy,
        agency=report.agency,
        display_name=report.display_name,
        period=period_of(now),
        window=report.window,
        evaluated_at=stamp(now),
        score=card.score if card else None,
        grade=card.grade if card else None,
        workloads=report.summary.workloads,
        by_grade=report.summary.by_grade,
        by_action=report.summary.by_action,
        projects=[
            ProjectLine(
                name=p.name[:253],
                score=p.card.score if p.card else None,
                grade=p.card.grade if p.card else None,
                workloads=p.workloads,
                by_grade=p.by_grade,
                released_cpu_cores=round(p.released.cpu, 3),
                released_memory_gib=round(p.released.memory / GIB, 3),
                money_released=str(display_money(p.money_released)),
            )
            for p in report.projects[:200]
        ],
        top_offenders=[_line(e, report) for e in graded[:20]],
        proposed_changes=[_line(e, report) for e in proposed[:50]],
        proposed_change_count=len(proposed),
        applied_change_count=applied,
        totals=totals(report.summary, report.currency, applied=applied_money(report, decisions)),
    )
    name = report_name(report.policy, now)
    meta = ObjectMeta(
        name=name,
        labels={"rightsizer.io/policy": report.policy[:63], "rightsizer.io/period": period_of(now)},
    )
    return EfficiencyReport(metadata=meta, spec=spec)
