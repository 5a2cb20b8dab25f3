"""Tables for a terminal, as plain text: the estate, then each agency.

Tables are laid out by ``layout`` (rich took 18 s for 15,000 workloads); the prose around
them by a rich console that parses no markup and no emoji, so names taken from the data print
as they are.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from rightsizer.core.report import AgencyReport, GroupSummary
from rightsizer.reports.layout import Column, layout_table
from rightsizer.reports.text import Lang, counts, gib, label, money, number, score_text
from rightsizer.reports.view import (
    RenderOptions,
    agency_title,
    by_grade,
    change_lines,
    heading,
    ranked,
    status,
)

_REASONS_SHOWN = 2
_HEADER_WIDTH = 12
_DASH = "-"


def _console(width: int) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        color_system=None,
        force_terminal=False,
        force_jupyter=False,
        markup=False,
        emoji=False,
        highlight=False,
        legacy_windows=False,
        soft_wrap=False,
    )
    return console, buffer


Columns = Sequence[tuple[str, bool]]  # heading, numeric


def _table(
    title: str | None, columns: Columns, rows: Sequence[Sequence[str]], *, width: int
) -> str:
    laid = [
        Column("\n".join(textwrap.wrap(name, _HEADER_WIDTH)) or name, numeric)
        for name, numeric in columns
    ]
    return layout_table(title, laid, rows, width=width)


def group_cells(summary: GroupSummary, currency: str, lang: Lang) -> list[str]:
    """Score, grade, counts and money: the columns agencies and projects share."""
    card = summary.card
    return [
        score_text(card.score if card else None),
        card.grade if card else _DASH,
        number(summary.workloads),
        by_grade(summary, lang),
        counts(summary.by_action, lang, translate=True),
        money(summary.monthly_cost, currency, lang),
        released(summary),
        money(summary.money_released, currency, lang),
        money(summary.money_reclaimable, currency, lang),
    ]


def released(summary: GroupSummary) -> str:
    """'2.5 / 4.0': cores / GiB."""
    return f"{number(summary.released.cpu, 2)} / {number(gib(summary.released.memory), 1)}"


def _group_columns(lang: Lang) -> list[tuple[str, bool]]:
    return [
        (label("score", lang), True),
        (label("grade", lang), False),
        (label("count", lang), True),
        (label("by_grade", lang), False),
        (label("by_action", lang), False),
        (label("monthly_cost", lang), True),
        (label("released", lang), True),
        (label("money_released", lang), True),
        (label("money_reclaimable", lang), True),
    ]


def estate_table(reports: Sequence[AgencyReport], lang: Lang, *, width: int) -> str:
    columns = [
        (label("rank", lang), True),
        (label("agency", lang), False),
        (label("display_name", lang), False),
        *_group_columns(lang),
    ]
    rows: list[list[str]] = []
    for rank, report in ranked(reports):
        head = [str(rank) if rank else _DASH, report.agency, report.display_name or _DASH]
        if report.error is not None or report.summary is None:
            cells = [_DASH] * (len(columns) - len(head))
            cells[3] = label("not_evaluated", lang)  # the "by grade" column: it wraps
            rows.append([*head, *cells])
        else:
            rows.append([*head, *group_cells(report.summary, report.currency, lang)])
    return _table(label("estate", lang), columns, rows, width=width)


def project_table(report: AgencyReport, lang: Lang, *, width: int) -> str:
    columns = [(label("project", lang), False), *_group_columns(lang)]
    rows = [[p.name, *group_cells(p, report.currency, lang)] for p in report.projects]
    return _table(label("projects", lang), columns, rows, width=width)


def workload_table(report: AgencyReport, lang: Lang, *, width: int) -> str:
    columns = [
        (label("workload", lang), False),
        (label("project", lang), False),
        (label("grade", lang), False),
        (label("score", lang), True),
        (label("action", lang), False),
        (label("changes", lang), False),
        (label("reasons", lang), False),
    ]
    rows = [
        [
            item.ref.key,
            item.project or _DASH,
            item.grade or _DASH,
            score_text(item.score),
            status(item, lang),
            "\n".join(change_lines(item)) or _DASH,
            "\n".join(item.reasons[:_REASONS_SHOWN]) or _DASH,
        ]
        for item in report.workloads
    ]
    return _table(label("workloads", lang), columns, rows, width=width)


def render_table(reports: Sequence[AgencyReport], options: RenderOptions) -> str:
    lang = options.lang
    console, buffer = _console(options.width)
    console.print(heading(reports, lang))
    if not reports:
        console.print(label("no_agencies", lang))
        return buffer.getvalue()
    buffer.write(estate_table(reports, lang, width=options.width))
    for _, report in ranked(reports):
        if report.error is not None:
            name = f"{report.agency} {report.display_name or ''}".strip()
            console.print(f"{label('not_evaluated', lang)}: {name}: {report.error}")
    for _, report in ranked(reports):
        console.print()
        console.rule(Text(agency_title(report, lang)), align="left")
        if report.error is not None:
            console.print(f"{label('not_evaluated', lang)}. {label('error', lang)}: {report.error}")
            continue
        buffer.write(project_table(report, lang, width=options.width))
        if options.detail:
            if report.workloads:
                buffer.write(workload_table(report, lang, width=options.width))
            else:
                console.print(label("no_workloads", lang))
    console.print()
    console.print(f"{label('note_title', lang)}.")
    console.print(label("note", lang))
    return buffer.getvalue()
