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


def cost_weights(evaluations: Sequence[WorkloadEvaluation], prices: PriceCatalogue) -> list[float]:
    """What each graded evaluation's requests cost per month: its weight in a group's score
    (0.0 for the ungraded, which have no score to weigh)."""
    return [
        float(monthly_cost(e.requested, prices)) if e.card is not None else 0.0 for e in evaluations
    ]


def summarise(
    name: str,
    evaluations: Sequence[WorkloadEvaluation],
    policy: PolicySpec,
    *,
    weights: Sequence[float] | None = None,
) -> GroupSummary:
    """``weights``: the evaluations' ``cost_weights``, when the caller has them already."""
    prices = policy.prices
    if weights is None:
        weights = cost_weights(evaluations, prices)
    graded = [e for e in evaluations if e.card is not None]
    card = combine_scores(
        [(e.card, w) for e, w in zip(evaluations, weights, strict=True) if e.card],
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
    weights = cost_weights(evaluations, policy.prices)  # once: projects and agency share them
    by_project: dict[str, list[tuple[WorkloadEvaluation, float]]] = {}
    for evaluation, weight in zip(evaluations, weights, strict=True):
        by_project.setdefault(evaluation.project or "(none)", []).append((evaluation, weight))
    projects = tuple(
        summarise(name, [e for e, _ in items], policy, weights=[w for _, w in items])
        for name, items in sorted(by_project.items())
    )
    return AgencyReport(
        policy=policy_name,
        agency=policy.agency,
        display_name=policy.display_name,
        currency=policy.prices.currency,
        window=policy.window,
        end=end,
        summary=summarise(policy.agency, evaluations, policy, weights=weights),
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
