"""Markdown (GitLab / GitHub flavoured): a ranking table, then a summary table per agency.

Every cell taken from the data is escaped: '&' and '<' become entities (no tag survives) and the
characters Markdown reads (pipes, emphasis, links, code) are backslash-escaped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rightsizer.core.evaluation import WorkloadEvaluation
from rightsizer.core.report import AgencyReport, GroupSummary
from rightsizer.reports.text import (
    Lang,
    counts,
    gib,
    label,
    money,
    number,
    score_text,
)
from rightsizer.reports.view import (
    RenderOptions,
    agency_title,
    by_grade,
    change_lines,
    period_line,
    ranked,
    status,
)

WORKLOAD_ROWS = 200  # per agency; more would make an MR comment unreadable
_SPECIAL = re.compile(r"([\\`*_\[\]|#~!])")
_DASH = "-"


def cell(text: str) -> str:
    """One table cell: escaped, on one line (line breaks become <br>)."""
    escaped = _SPECIAL.sub(r"\\\1", text.replace("&", "&amp;").replace("<", "&lt;"))
    return "<br>".join(part.strip() for part in escaped.splitlines()) or _DASH


def table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> list[str]:
    align = ["---:" if index in numeric else "---" for index in range(len(header))]
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "| " + " | ".join(align) + " |"]
    lines.extend("| " + " | ".join(cell(value) for value in row) + " |" for row in rows)
    return lines


def ranking(reports: Sequence[AgencyReport], lang: Lang) -> list[str]:
    header = [
        label(key, lang)
        for key in (
            "rank",
            "agency",
            "display_name",
            "score",
            "grade",
            "count",
            "by_grade",
            "monthly_cost",
            "money_released",
            "money_reclaimable",
        )
    ]
    rows: list[list[str]] = []
    for rank, report in ranked(reports):
        head = [str(rank) if rank else _DASH, report.agency, report.display_name or _DASH]
        summary = report.summary
        if report.error is not None or summary is None:
            failure = f"{label('not_evaluated', lang)}: {report.error or _DASH}"
            rows.append([*head, _DASH, _DASH, _DASH, failure, _DASH, _DASH, _DASH])
            continue
        card, currency = summary.card, report.currency
        rows.append(
            [
                *head,
                score_text(card.score if card else None),
                card.grade if card else _DASH,
                number(summary.workloads),
                by_grade(summary, lang),
                money(summary.monthly_cost, currency, lang),
                money(summary.money_released, currency, lang),
                money(summary.money_reclaimable, currency, lang),
            ]
        )
    return table(header, rows, numeric={0, 3, 5, 7, 8, 9})


def summary_table(summary: GroupSummary, currency: str, lang: Lang) -> list[str]:
    card = summary.card
    rows = [
        (label("score", lang), score_text(card.score if card else None)),
        (label("grade", lang), card.grade if card else _DASH),
        (label("count", lang), number(summary.workloads)),
        (label("by_grade", lang), by_grade(summary, lang)),
        (label("by_action", lang), counts(summary.by_action, lang, translate=True)),
        (label("monthly_cost", lang), money(summary.monthly_cost, currency, lang)),
        (label("released_cpu", lang), number(summary.released.cpu, 2)),
        (label("released_memory", lang), number(gib(summary.released.memory), 1)),
        (label("money_released", lang), money(summary.money_released, currency, lang)),
        (label("money_added", lang), money(summary.money_added, currency, lang)),
        (label("reclaimable_cpu", lang), number(summary.reclaimable.cpu, 2)),
        (label("reclaimable_memory", lang), number(gib(summary.reclaimable.memory), 1)),
        (label("money_reclaimable", lang), money(summary.money_reclaimable, currency, lang)),
    ]
    return table([label("summary", lang), label("value", lang)], rows, numeric={1})


def project_rows(report: AgencyReport, lang: Lang) -> list[str]:
    header = [
        label(key, lang) for key in ("project", "score", "grade", "count", "by_grade", "by_action")
    ] + [label("money_released", lang), label("money_reclaimable", lang)]
    rows = [
        [
            project.name,
            score_text(project.card.score if project.card else None),
            project.card.grade if project.card else _DASH,
            number(project.workloads),
            by_grade(project, lang),
            counts(project.by_action, lang, translate=True),
            money(project.money_released, report.currency, lang),
            money(project.money_reclaimable, report.currency, lang),
        ]
        for project in report.projects
    ]
    return table(header, rows, numeric={1, 3, 6, 7})


def workload_rows(items: Sequence[WorkloadEvaluation], lang: Lang) -> list[str]:
    header = [
        label(key, lang)
        for key in ("workload", "project", "grade", "score", "action", "changes", "reasons")
    ]
    rows = [
        [
            item.ref.key,
            item.project or _DASH,
            item.grade or _DASH,
            score_text(item.score),
            status(item, lang),
            "\n".join(change_lines(item)),
            "\n".join(item.reasons[:2]),
        ]
        for item in items
    ]
    return table(header, rows, numeric={3})


def agency_section(report: AgencyReport, options: RenderOptions) -> list[str]:
    lang = options.lang
    lines = [f"## {cell(agency_title(report, lang))}", ""]
    if report.error is not None or report.summary is None:
        error = cell(report.error or _DASH)
        lines += [f"> **{label('not_evaluated', lang)}**. {label('error', lang)}: {error}", ""]
        return lines
    lines += [*summary_table(report.summary, report.currency, lang), ""]
    lines += [f"### {label('projects', lang)}", "", *project_rows(report, lang), ""]
    if options.detail and report.workloads:
        shown = report.workloads[:WORKLOAD_ROWS]
        lines += [f"### {label('workloads', lang)}", "", *workload_rows(shown, lang), ""]
        hidden = len(report.workloads) - len(shown)
        if hidden > 0:
            lines += [f"_{label('more_workloads', lang, n=hidden)}_", ""]
    return lines


def render_markdown(reports: Sequence[AgencyReport], options: RenderOptions) -> str:
    lang = options.lang
    lines = [f"# {label('title', lang)}", ""]
    if reports:
        lines += [cell(period_line(reports, lang)), ""]
    if not reports:
        return "\n".join([*lines, label("no_agencies", lang), ""])
    lines += [f"## {label('ranking', lang)}", "", *ranking(reports, lang), ""]
    for _, report in ranked(reports):
        lines += agency_section(report, options)
    lines += [f"> **{label('note_title', lang)}**: {label('note', lang)}", ""]
    return "\n".join(lines)
