"""What every format shows, derived once from the core's report model.

Ranking, grade order and colours, per-workload request totals and change lines, and the
money a workload releases (only when the caller passes the policy's price catalogue: the
report model carries money per agency and project, not per workload).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from rightsizer.core.evaluation import WorkloadEvaluation
from rightsizer.core.model import Resource
from rightsizer.core.policy import PriceCatalogue
from rightsizer.core.report import AgencyReport, GroupSummary, rank_agencies
from rightsizer.core.savings import Amounts, monthly_cost
from rightsizer.core.scoring import ScoreCard
from rightsizer.core.units import format_quantity, human
from rightsizer.reports.text import (
    Lang,
    action_text,
    check_lang,
    counts,
    distinct,
    label,
    local_time,
    outcome_text,
    period,
    score_text,
    window_range,
)


@dataclass(frozen=True)
class RenderOptions:
    """How to render: language, per-workload detail, terminal width, prices per policy."""

    lang: Lang = "en"
    detail: bool = True
    width: int = 160
    prices: Mapping[str, PriceCatalogue] = field(default_factory=dict)

    @staticmethod
    def of(
        lang: str = "en",
        detail: bool = True,
        width: int | None = None,
        prices: Mapping[str, PriceCatalogue] | None = None,
    ) -> RenderOptions:
        return RenderOptions(
            lang=check_lang(lang), detail=detail, width=width or 160, prices=prices or {}
        )


# best to worst; grades are spread over it by their position in the policy's order
_GRADE_COLOURS = ("#1a9850", "#91cf60", "#d9c93b", "#fc8d59", "#d73027")
_SHORT: tuple[tuple[Resource, str], ...] = (("cpu", "cpu"), ("memory", "mem"))
UNGRADED_COLOUR = "#bdbdbd"
FAILED_COLOUR = "#7f7f7f"


def ranked(reports: Sequence[AgencyReport]) -> list[tuple[int | None, AgencyReport]]:
    """Best score first (``rank_agencies``); agencies without a score get no rank."""
    result: list[tuple[int | None, AgencyReport]] = []
    position = 0
    for report in rank_agencies(reports):
        if card_of(report) is not None:
            position += 1
            result.append((position, report))
        else:
            result.append((None, report))
    return result


def card_of(report: AgencyReport) -> ScoreCard | None:
    if report.error is not None or report.summary is None:
        return None
    return report.summary.card


def cards(report: AgencyReport) -> list[ScoreCard]:
    found = [e.card for e in report.workloads if e.card is not None]
    groups: list[GroupSummary] = [*report.projects]
    if report.summary is not None:
        groups.append(report.summary)
    found.extend(g.card for g in groups if g.card is not None)
    return found


def grade_order(reports: Sequence[AgencyReport]) -> list[str]:
    """Grade names best first. The report does not carry the policy's bands, so grades are
    ordered by the lowest score seen with each name (the band's floor as far as known)."""
    floor: dict[str, float] = {}
    for report in reports:
        for card in cards(report):
            floor[card.grade] = min(card.score, floor.get(card.grade, card.score))
        if report.summary is not None:
            for grade in report.summary.by_grade:
                floor.setdefault(grade, -1.0)
    return sorted(floor, key=lambda grade: -floor[grade])


def grade_colours(order: Sequence[str]) -> dict[str, str]:
    if len(order) == 1:
        return {order[0]: _GRADE_COLOURS[0]}
    top = len(_GRADE_COLOURS) - 1
    return {
        grade: _GRADE_COLOURS[round(index * top / (len(order) - 1))]
        for index, grade in enumerate(order)
    }


def ungraded(summary: GroupSummary) -> int:
    return summary.workloads - sum(summary.by_grade.values())


def requests(
    evaluation: WorkloadEvaluation, resource: Resource
) -> tuple[float | None, float | None]:
    """Current and recommended requests per replica, summed over the containers sized."""
    current: float | None = None
    proposed: float | None = None
    for container in evaluation.containers:
        rec = container.resources.get(resource)
        if rec is None:
            continue
        if rec.current_request is not None:
            current = (current or 0.0) + rec.current_request
        if rec.request is not None:
            proposed = (proposed or 0.0) + rec.request
    return current, proposed


def _quantity(resource: str, amount: float | None) -> str:
    if amount is None:
        return "none"
    return format_quantity(resource, amount) if resource == "cpu" else human(resource, amount)


def change_lines(evaluation: WorkloadEvaluation) -> list[str]:
    """'app cpu 2 -> 500m, mem 4Gi -> 1.2Gi' per container ('=' when unchanged)."""
    lines: list[str] = []
    for container in evaluation.containers:
        parts: list[str] = []
        for resource, short in _SHORT:
            rec = container.resources.get(resource)
            if rec is None:
                continue
            now = _quantity(resource, rec.current_request)
            if rec.change == "none":
                parts.append(f"{short} {now} =")
            else:
                parts.append(f"{short} {now} -> {_quantity(resource, rec.request)}")
        if parts:
            lines.append(f"{container.container} " + ", ".join(parts))
    return lines


def releasable(evaluation: WorkloadEvaluation) -> Amounts:
    """What the workload would free: its downsizes, or all of it if it is to be reclaimed."""
    return evaluation.released + evaluation.reclaimable


def workload_money(
    report: AgencyReport, amounts: Amounts, options: RenderOptions
) -> Decimal | None:
    """Monthly money of ``amounts`` at the report's own prices (or the caller's, if given)."""
    prices = report_prices(report, options)
    return None if prices is None else monthly_cost(amounts, prices)


def report_prices(report: AgencyReport, options: RenderOptions) -> PriceCatalogue | None:
    return options.prices.get(report.policy) or report.prices


def lowest_scores(
    report: AgencyReport, limit: int = 10, best: str | None = None
) -> list[WorkloadEvaluation]:
    """The graded workloads with the lowest scores, leaving out those in the ``best`` grade."""
    graded = [e for e in report.workloads if e.card is not None and e.card.grade != best]
    return sorted(graded, key=lambda e: (e.card.score if e.card else 0.0, e.ref.key))[:limit]


def biggest_releasable(
    report: AgencyReport, options: RenderOptions, limit: int = 10
) -> list[WorkloadEvaluation]:
    """By money when prices are known, else by cores then memory."""

    def key(evaluation: WorkloadEvaluation) -> tuple[Decimal, float, float, str]:
        amounts = releasable(evaluation)
        money = workload_money(report, amounts, options) or Decimal(0)
        return (-money, -amounts.cpu, -amounts.memory, evaluation.ref.key)

    candidates = [e for e in report.workloads if releasable(e).cpu or releasable(e).memory]
    return sorted(candidates, key=key)[:limit]


def by_grade(summary: GroupSummary, lang: Lang) -> str:
    text = counts(summary.by_grade, lang)
    rest = ungraded(summary)
    if rest:
        extra = f"{label('not_graded', lang)} {rest}"
        return extra if text == "-" else f"{text} · {extra}"
    return text


def status(item: WorkloadEvaluation, lang: Lang) -> str:
    """The action, or why there is none (the outcome) when the workload was not evaluated."""
    if item.outcome != "evaluated":
        return outcome_text(item.outcome, lang)
    return action_text(item.action, lang)


def period_line(reports: Sequence[AgencyReport], lang: Lang) -> str:
    """'Period 2026 Q1 · Window 14d: 2026-03-17 - 2026-03-31 · Evaluated at ...'."""
    if not reports:
        return ""
    return (
        f"{label('period', lang)} {distinct(period(r.end, lang) for r in reports)} · "
        f"{label('window', lang)} {distinct(window_range(r.end, r.window) for r in reports)} · "
        f"{label('evaluated_at', lang)} {distinct(local_time(r.end) for r in reports)}"
    )


def heading(reports: Sequence[AgencyReport], lang: Lang) -> str:
    """The title and, when there are reports, their period, window and evaluation time."""
    line = period_line(reports, lang)
    return f"{label('title', lang)} · {line}" if line else label("title", lang)


def agency_title(report: AgencyReport, lang: Lang) -> str:
    name = f"{report.agency} {report.display_name}" if report.display_name else report.agency
    parts = [name, f"{label('policy', lang)} {report.policy}"]
    card = report.summary.card if report.summary and report.error is None else None
    if card:
        parts.append(f"{label('score', lang)} {score_text(card.score)} {card.grade}")
    return " · ".join(parts)
