"""HTML: one self-contained, printable page for the people who answer for the budget.

Title with period, window and evaluation time; key figures; the note that keeps
releasable capacity (可释放资源) apart from actual savings (实际节省); the agency ranking;
charts of scores (coloured by grade), grade distribution and money released; then one
section per agency. Inline CSS and inline SVG only: no script, no font, image or style
sheet from elsewhere. Every string taken from the data goes through ``html.escape``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from html import escape

from rightsizer.core.report import AgencyReport, GroupSummary
from rightsizer.reports.charts import Bar, Segment, StackedRow, bar_chart, stacked_chart
from rightsizer.reports.html_parts import CSS, Column, Context, cards, table
from rightsizer.reports.text import label, money, number
from rightsizer.reports.view import (
    FAILED_COLOUR,
    UNGRADED_COLOUR,
    RenderOptions,
    grade_colours,
    grade_order,
    period_line,
    ranked,
    ungraded,
)

SAVINGS_BARS = 20
_SAVINGS_COLOUR = "#3b75af"
_MONEY_FIGURES: tuple[tuple[str, Callable[[GroupSummary], Decimal]], ...] = (
    ("monthly_cost", lambda s: s.monthly_cost),
    ("money_released", lambda s: s.money_released),
    ("money_reclaimable", lambda s: s.money_reclaimable),
)


def _name(report: AgencyReport) -> str:
    return report.display_name or report.agency


class Page(Context):
    """The page for one set of reports, top to bottom."""

    def __init__(self, reports: Sequence[AgencyReport], options: RenderOptions) -> None:
        self.grades = grade_order(reports)
        super().__init__(options, grade_colours(self.grades))
        self.order = ranked(reports)
        self.done = [r for _, r in self.order if r.error is None and r.summary is not None]

    def figures(self) -> str:
        summaries = [r.summary for r in self.done if r.summary is not None]
        items = [
            (self.t("agencies_evaluated"), f"{len(self.done)} / {len(self.order)}"),
            (self.t("count"), number(sum(s.workloads for s in summaries))),
        ]
        for currency in dict.fromkeys(r.currency for r in self.done):
            mine = [r.summary for r in self.done if r.currency == currency and r.summary]
            for key, get in _MONEY_FIGURES:
                total = sum((get(s) for s in mine), Decimal(0))
                items.append((self.t(key), self.money(total, currency)))
        return cards(items)

    def note(self) -> str:
        title, text = self.t("note_title"), self.t("note")
        return f'<aside class="note"><strong>{title}</strong>. {text}</aside>'

    def ranking(self) -> str:
        columns: list[Column] = [
            (label("rank", self.lang), True),
            (label("agency", self.lang), False),
            (label("display_name", self.lang), False),
            *self.group_columns(),
        ]
        rows: list[list[str]] = []
        failed: set[int] = set()
        for rank, report in self.order:
            head = [str(rank) if rank else "-", escape(report.agency)]
            head.append(escape(report.display_name or "-"))
            if report.error is not None or report.summary is None:
                error = escape(report.error or "-")
                failure = f"<strong>{self.t('not_evaluated')}</strong>: {error}"
                failed.add(len(rows))
                rows.append([*head, "-", "-", "-", failure, "-", "-", "-"])
            else:
                rows.append([*head, *self.group_cells(report.summary, report.currency)])
        return f"<h2>{self.t('ranking')}</h2>" + table(columns, rows, frozenset(failed))

    def score_bars(self) -> list[Bar]:
        bars = []
        for _, report in self.order:
            card = report.summary.card if report.summary and report.error is None else None
            if card is not None:
                colour = self.colours.get(card.grade, UNGRADED_COLOUR)
                text = f"{card.score:.1f} {card.grade}"
                bars.append(Bar(_name(report), card.score, colour, text))
            else:
                why = "not_evaluated" if report.error is not None else "not_graded"
                bars.append(Bar(_name(report), 0.0, FAILED_COLOUR, label(why, self.lang)))
        return bars

    def grade_row(self, name: str, summaries: Sequence[GroupSummary]) -> StackedRow:
        segments = [
            Segment(grade, sum(s.by_grade.get(grade, 0) for s in summaries), self.colours[grade])
            for grade in self.grades
        ]
        rest = sum(ungraded(s) for s in summaries)
        segments.append(Segment(label("not_graded", self.lang), rest, UNGRADED_COLOUR))
        return StackedRow(name, segments)

    def savings_bars(self) -> list[Bar]:
        pairs = [(r, r.summary) for r in self.done if r.summary is not None]
        pairs.sort(key=lambda pair: -pair[1].money_released)
        return [
            Bar(
                _name(report),
                float(summary.money_released),
                _SAVINGS_COLOUR,
                money(summary.money_released, report.currency, self.lang),
            )
            for report, summary in pairs[:SAVINGS_BARS]
        ]

    def charts(self) -> str:
        summaries = [r.summary for r in self.done if r.summary is not None]
        rows = [self.grade_row(label("all_agencies", self.lang), summaries)]
        rows += [self.grade_row(_name(r), [r.summary]) for r in self.done if r.summary]
        legend = [(g, self.colours[g]) for g in self.grades]
        legend.append((label("not_graded", self.lang), UNGRADED_COLOUR))
        charts = (
            ("chart_scores", bar_chart(self.score_bars(), maximum=100)),
            ("chart_grades", stacked_chart(rows, legend=legend)),
            ("chart_savings", bar_chart(self.savings_bars())),
        )
        return "".join(
            f"<figure><figcaption>{self.t(key)}</figcaption>{svg}</figure>" for key, svg in charts
        )


def render_html(reports: Sequence[AgencyReport], options: RenderOptions) -> str:
    page = Page(reports, options)
    title = page.t("title")
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if options.lang == "zh" else "en"}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title><style>{CSS}</style></head>",
        f"<body><main><header><h1>{title}</h1>",
        f'<p class="meta">{escape(period_line(reports, options.lang))}</p></header>',
    ]
    if not reports:
        parts.append(f"<p>{page.t('no_agencies')}</p>")
    else:
        parts += [page.figures(), page.note(), page.ranking(), page.charts()]
        parts += [page.agency(rank, report) for rank, report in page.order]
    parts.append(f"<footer>{page.t('generated')}</footer></main></body></html>\n")
    return "\n".join(parts)
