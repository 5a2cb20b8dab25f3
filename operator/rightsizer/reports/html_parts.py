"""The pieces of the HTML page: style, tables, and one section per agency.

Helpers here return HTML; every string taken from the data is escaped where it is put in.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from rightsizer.core.evaluation import WorkloadEvaluation
from rightsizer.core.report import AgencyReport, GroupSummary
from rightsizer.reports.text import Lang, counts, gib, label, money, number, score_text
from rightsizer.reports.view import (
    UNGRADED_COLOUR,
    RenderOptions,
    agency_title,
    biggest_releasable,
    by_grade,
    change_lines,
    lowest_scores,
    releasable,
    report_prices,
    status,
    workload_money,
)

WORKLOAD_ROWS = 500  # per agency, with detail; the rest is counted, not listed
CSS = """
body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei","Source Han Sans SC",
 "Helvetica Neue",Arial,sans-serif;color:#222;margin:0;background:#fff;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;border-bottom:2px solid #3b75af;
 padding-bottom:3px;margin-top:32px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#555;margin:0}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0 12px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eef2f7}td.n,th.n{text-align:right;white-space:nowrap}
tr.failed td{background:#fdecee}
.grade{display:inline-block;padding:0 6px;border-radius:3px;color:#111}
.figures{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.figure{border:1px solid #ccc;border-radius:4px;padding:6px 12px;min-width:140px;font-size:13px}
.figure b{display:block;font-size:17px}
.note{border-left:4px solid #d9a600;background:#fff8e0;padding:8px 12px;margin:12px 0}
p.failed{border-left:4px solid #b00020;background:#fdecee;padding:8px 12px}
figure{margin:12px 0;break-inside:avoid}figcaption{font-weight:bold;margin-bottom:4px}
svg.chart{max-width:100%;height:auto;font-size:12px}
svg .label,svg .value,svg .legend{fill:#222}svg .axis{stroke:#888}
.detail table{font-size:11px}footer{color:#777;font-size:12px;margin-top:32px}
@page{size:A4;margin:14mm}
@media print{main{max-width:none;padding:0}section.agency{break-before:page}
 tr,figure,.figure{break-inside:avoid}thead{display:table-header-group}}
"""

Column = tuple[str, bool]  # heading, numeric


def table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], failed: frozenset[int] = frozenset()
) -> str:
    """Headings are text (escaped here); cells are HTML already (escaped by the caller).
    The rows at the indices in ``failed`` are marked (agencies not evaluated)."""

    def attr(numeric: bool) -> str:
        return ' class="n"' if numeric else ""

    head = "".join(f"<th{attr(n)}>{escape(name)}</th>" for name, n in columns)
    body: list[str] = []
    for index, row in enumerate(rows):
        css = ' class="failed"' if index in failed else ""
        cells = zip(columns, row, strict=True)
        body.append(f"<tr{css}>" + "".join(f"<td{attr(n)}>{c}</td>" for (_, n), c in cells))
        body.append("</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def lines(items: Sequence[str]) -> str:
    return "<br>".join(escape(item) for item in items) or "-"


def cards(items: Sequence[tuple[str, str]]) -> str:
    """Key figures; both parts are HTML already."""
    inner = "".join(f'<div class="figure">{key}<b>{value}</b></div>' for key, value in items)
    return f'<div class="figures">{inner}</div>'


class Context:
    """Language, grade colours and the options: what every part of the page needs."""

    def __init__(self, options: RenderOptions, colours: dict[str, str]) -> None:
        self.options = options
        self.lang: Lang = options.lang
        self.colours = colours
        self.best = next(iter(colours), None)  # the best grade: not an offender

    def t(self, key: str, **values: object) -> str:
        return escape(label(key, self.lang, **values))

    def grade(self, grade: str | None) -> str:
        if not grade:
            return "-"
        colour = self.colours.get(grade, UNGRADED_COLOUR)
        return f'<span class="grade" style="background:{colour}">{escape(grade)}</span>'

    def money(self, amount: Decimal, currency: str) -> str:
        return escape(money(amount, currency, self.lang))

    def group_columns(self) -> list[Column]:
        numeric = {"score", "count", "monthly_cost", "money_released", "money_reclaimable"}
        keys = ["score", "grade", "count", "by_grade"]
        keys += ["monthly_cost", "money_released", "money_reclaimable"]
        return [(label(key, self.lang), key in numeric) for key in keys]

    def group_cells(self, summary: GroupSummary, currency: str) -> list[str]:
        card = summary.card
        return [
            score_text(card.score if card else None),
            self.grade(card.grade if card else None),
            number(summary.workloads),
            escape(by_grade(summary, self.lang)),
            self.money(summary.monthly_cost, currency),
            self.money(summary.money_released, currency),
            self.money(summary.money_reclaimable, currency),
        ]

    def workload_table(self, report: AgencyReport, items: Sequence[WorkloadEvaluation]) -> str:
        priced = report_prices(report, self.options) is not None
        keys = ["workload", "project", "score", "grade", "action", "releasable_cpu"]
        keys += ["releasable_memory", *(["money_releasable"] if priced else [])]
        keys += ["changes", "reasons"]
        numeric = {"score", "releasable_cpu", "releasable_memory", "money_releasable"}
        columns = [(label(key, self.lang), key in numeric) for key in keys]
        rows = []
        for item in items:
            freed = releasable(item)
            row = [escape(item.ref.key), escape(item.project or "-"), score_text(item.score)]
            row += [self.grade(item.grade), escape(status(item, self.lang))]
            row += [number(freed.cpu, 2), number(gib(freed.memory), 1)]
            amount = workload_money(report, freed, self.options)
            if priced:
                row.append("-" if amount is None else self.money(amount, report.currency))
            row += [lines(change_lines(item)), lines(item.reasons[:2])]
            rows.append(row)
        return table(columns, rows)

    def facts(self, summary: GroupSummary, currency: str) -> str:
        card = summary.card
        amounts = "{} / {}"  # cores / GiB
        items = [
            (self.t("score"), f"{score_text(card.score if card else None)} "
                              f"{self.grade(card.grade if card else None)}"),
            (self.t("count"), number(summary.workloads)),
            (self.t("by_grade"), escape(by_grade(summary, self.lang))),
            (self.t("by_action"), escape(counts(summary.by_action, self.lang, translate=True))),
            (self.t("monthly_cost"), self.money(summary.monthly_cost, currency)),
            (self.t("released"), amounts.format(number(summary.released.cpu, 2),
                                                number(gib(summary.released.memory), 1))),
            (self.t("money_released"), self.money(summary.money_released, currency)),
            (self.t("money_added"), self.money(summary.money_added, currency)),
            (self.t("reclaimable"), amounts.format(number(summary.reclaimable.cpu, 2),
                                                   number(gib(summary.reclaimable.memory), 1))),
            (self.t("money_reclaimable"), self.money(summary.money_reclaimable, currency)),
        ]  # fmt: skip
        return cards(items)

    def agency(self, rank: int | None, report: AgencyReport) -> str:
        """One agency: key figures, projects, the worst and the most wasteful workloads."""
        title = f"{rank}. " if rank else ""
        parts = [
            f'<section class="agency"><h2>{title}{escape(agency_title(report, self.lang))}</h2>'
        ]
        if report.error is not None or report.summary is None:
            parts.append(
                f'<p class="failed"><strong>{self.t("not_evaluated")}</strong>. '
                f"{self.t('error')}: {escape(report.error or '-')}</p></section>"
            )
            return "".join(parts)
        currency = report.currency
        parts.append(self.facts(report.summary, currency))
        projects = [[escape(p.name), *self.group_cells(p, currency)] for p in report.projects]
        columns = [(label("project", self.lang), False), *self.group_columns()]
        parts += [f"<h3>{self.t('projects')}</h3>", table(columns, projects)]
        for key, items in (
            ("lowest_scores", lowest_scores(report, best=self.best)),
            ("biggest_releasable", biggest_releasable(report, self.options)),
        ):
            if items:
                parts += [f"<h3>{self.t(key)}</h3>", self.workload_table(report, items)]
        if self.options.detail and report.workloads:
            shown = report.workloads[:WORKLOAD_ROWS]
            parts += [f'<h3>{self.t("workloads")}</h3><div class="detail">']
            parts += [self.workload_table(report, shown), "</div>"]
            hidden = len(report.workloads) - len(shown)
            if hidden > 0:
                parts.append(f"<p>{self.t('more_workloads', n=hidden)}</p>")
        parts.append("</section>")
        return "".join(parts)
