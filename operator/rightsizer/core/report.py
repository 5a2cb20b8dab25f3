"""Summaries of evaluations: per project, per agency, and the ranking of agencies."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from rightsizer.core.evaluation import WorkloadEvaluation
from rightsizer.core.model import Frozen
from rightsizer.core.policy import Grade, PolicySpec, PriceCatalogue
from rightsizer.core.savings import Amounts, monthly_cost
from rightsizer.core.scoring import ScoreCard, combine_scores


class GroupSummary(Frozen):
    """Totals for a set of workloads (a project or an agency)."""

    name: str
    card: ScoreCard | None
    workloads: int
    by_grade: dict[str, int]
    by_action: dict[str, int]
    by_outcome: dict[str, int]
    requested: Amounts
    released: Amounts
    added: Amounts
    reclaimable: Amounts
    monthly_cost: Decimal
    money_released: Decimal
    money_added: Decimal
    money_reclaimable: Decimal

    @property
    def money_net(self) -> Decimal:
        return self.money_released - self.money_added


class AgencyReport(Frozen):
    """One policy's evaluation of its agency over one window."""

    policy: str
    agency: str
    display_name: str | None
    currency: str
    window: str
    end: datetime
    summary: GroupSummary | None = None
    projects: tuple[GroupSummary, ...] = ()
    workloads: tuple[WorkloadEvaluation, ...] = ()
    error: str | None = None  # the evaluation could not be completed (e.g. Prometheus down)
    queries: int = 0
    prices: PriceCatalogue | None = None
    grades: tuple[Grade, ...] = ()

    @property
    def complete(self) -> bool:
        return self.error is None


def summarise(
    name: str, evaluations: Sequence[WorkloadEvaluation], policy: PolicySpec
) -> GroupSummary:
    prices = policy.prices
    graded = [e for e in evaluations if e.card is not None]
    card = combine_scores(
        [(e.card, float(monthly_cost(e.requested, prices))) for e in graded if e.card],
        policy.grades,
    )
    requested = Amounts.total([e.requested for e in evaluations])
    released = Amounts.total([e.released for e in evaluations])
    added = Amounts.total([e.added for e in evaluations])
    reclaimable = Amounts.total([e.reclaimable for e in evaluations])
    grade_order = {g.name: -g.min for g in policy.grades}
    by_grade = Counter(e.grade for e in graded if e.grade)
    return GroupSummary(
        name=name,
        card=card,
        workloads=len(evaluations),
        by_grade={g: by_grade[g] for g in sorted(by_grade, key=lambda g: grade_order.get(g, 0))},
        by_action=dict(Counter(e.action for e in evaluations)),
        by_outcome=dict(Counter(e.outcome for e in evaluations)),
        requested=requested,
        released=released,
        added=added,
        reclaimable=reclaimable,
        monthly_cost=monthly_cost(requested, prices),
        money_released=monthly_cost(released, prices),
        money_added=monthly_cost(added, prices),
        money_reclaimable=monthly_cost(reclaimable, prices),
    )


def build_agency_report(
    policy_name: str,
    policy: PolicySpec,
    evaluations: Sequence[WorkloadEvaluation],
    *,
    end: datetime,
    queries: int = 0,
) -> AgencyReport:
    by_project: dict[str, list[WorkloadEvaluation]] = {}
    for evaluation in evaluations:
        by_project.setdefault(evaluation.project or "(none)", []).append(evaluation)
    projects = tuple(summarise(name, items, policy) for name, items in sorted(by_project.items()))
    return AgencyReport(
        policy=policy_name,
        agency=policy.agency,
        display_name=policy.display_name,
        currency=policy.prices.currency,
        window=policy.window,
        end=end,
        summary=summarise(policy.agency, evaluations, policy),
        projects=projects,
        workloads=tuple(evaluations),
        queries=queries,
        prices=policy.prices,
        grades=tuple(policy.grades),
    )


def failed_agency_report(
    policy_name: str, policy: PolicySpec, *, end: datetime, error: str
) -> AgencyReport:
    """An agency whose evaluation could not be completed: no numbers, only the reason."""
    return AgencyReport(
        policy=policy_name,
        agency=policy.agency,
        display_name=policy.display_name,
        currency=policy.prices.currency,
        window=policy.window,
        end=end,
        error=error,
        prices=policy.prices,
        grades=tuple(policy.grades),
    )


def rank_agencies(reports: Sequence[AgencyReport]) -> list[AgencyReport]:
    """Best score first; agencies without a score (or failed) last, by name."""

    def key(report: AgencyReport) -> tuple[int, float, str]:
        card = report.summary.card if report.summary else None
        return (0, -card.score, report.agency) if card else (1, 0.0, report.agency)

    return sorted(reports, key=key)
