"""Reports: the core's ``AgencyReport``s rendered as a terminal table, JSON, CSV, Markdown or
one self-contained HTML page, in English or Chinese.

    render(reports, fmt="html", lang="zh")
    out.writelines(render_parts(reports, fmt="json", options=RenderOptions.of(lang="zh")))

``FORMATS`` maps each format's name to its renderer, a function of the reports and the
``RenderOptions``. Agencies are ranked by score (``rank_agencies``); an agency whose
evaluation failed is shown as not evaluated, with its error and no numbers. Money is
exact in the model and rounded only for display; JSON and CSV carry the exact decimals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from rightsizer.core.policy import PriceCatalogue
from rightsizer.core.report import AgencyReport
from rightsizer.reports.csv_format import render_csv
from rightsizer.reports.html_format import render_html
from rightsizer.reports.json_format import document as json_document
from rightsizer.reports.json_format import json_parts, render_json
from rightsizer.reports.markdown_format import render_markdown
from rightsizer.reports.table import render_table
from rightsizer.reports.text import LANGS
from rightsizer.reports.view import RenderOptions

Renderer = Callable[[Sequence[AgencyReport], RenderOptions], str]

FORMATS: dict[str, Renderer] = {
    "table": render_table,
    "json": render_json,
    "csv": render_csv,
    "markdown": render_markdown,
    "html": render_html,
}
# formats made in parts (an agency at a time), so that a large report is never held whole
STREAMED: dict[str, Callable[[Sequence[AgencyReport], RenderOptions], Iterator[str]]] = {
    "json": json_parts,
}
DEFAULT_FORMAT = "table"


def render(
    reports: Sequence[AgencyReport],
    *,
    fmt: str = DEFAULT_FORMAT,
    lang: str = "en",
    detail: bool = True,
    width: int | None = None,
    prices: Mapping[str, PriceCatalogue] | None = None,
) -> str:
    """Render ``reports`` as ``fmt`` in ``lang`` ("en" or "zh").

    ``detail``: per-workload lines (tables, Markdown, HTML) and the ``workloads`` of each
    agency (JSON); CSV always has them. ``width``: of the terminal table (default 160).
    ``prices``: the price catalogue per policy name (``AgencyReport.policy``), to show money
    per workload; the report model carries money per agency and project only.
    """
    options = RenderOptions.of(lang=lang, detail=detail, width=width, prices=prices)
    return "".join(render_parts(reports, fmt=fmt, options=options))


def render_parts(
    reports: Sequence[AgencyReport], *, fmt: str, options: RenderOptions
) -> Iterator[str]:
    """``render``'s text in parts, to be written as they are made (JSON: an agency at a
    time; the other formats in one part)."""
    renderer = FORMATS.get(fmt)
    if renderer is None:
        raise ValueError(f"unknown report format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    streamed = STREAMED.get(fmt)
    return streamed(reports, options) if streamed else iter([renderer(reports, options)])


__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "LANGS",
    "RenderOptions",
    "Renderer",
    "json_document",
    "render",
    "render_parts",
]
