"""Inline SVG charts: horizontal bars and 100% stacked bars. No script, no external resource
(not even an xmlns: inline SVG in HTML needs none); every text is escaped; hovering a bar
shows its exact value (an SVG <title>)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

ROW = 22
LABEL_WIDTH = 200
VALUE_WIDTH = 110
TOP = 8
LEGEND_ROW = 22


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    colour: str
    text: str  # the value as shown next to the bar


@dataclass(frozen=True)
class Segment:
    name: str
    value: float
    colour: str


@dataclass(frozen=True)
class StackedRow:
    label: str
    segments: Sequence[Segment]


def _columns(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def shorten(text: str, columns: int = 24) -> str:
    """At most ``columns`` (a wide character takes two), with an ellipsis when cut."""
    used, kept = 0, list[str]()
    for char in text:
        used += _columns(char)
        if used > columns:
            return "".join(kept).rstrip() + "…"
        kept.append(char)
    return text


def _svg(width: int, height: int, title: str, body: Sequence[str]) -> str:
    """``title``: for screen readers, when no caption says it already."""
    named = f' aria-label="{escape(title)}"><title>{escape(title)}</title>' if title else ">"
    size = f'viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
    return f'<svg class="chart" role="img" {size}{named}' + "".join(body) + "</svg>"


def _label(y: float, text: str) -> str:
    return (
        f'<text x="{LABEL_WIDTH - 8}" y="{y:.1f}" text-anchor="end" class="label">'
        f"{escape(shorten(text))}</text>"
    )


def bar_chart(
    bars: Sequence[Bar], *, title: str = "", maximum: float | None = None, width: int = 720
) -> str:
    """One horizontal bar per item, scaled to ``maximum`` (the largest value by default)."""
    area = width - LABEL_WIDTH - VALUE_WIDTH
    top = maximum if maximum is not None else max((b.value for b in bars), default=0.0)
    height = TOP * 2 + ROW * max(len(bars), 1)
    body: list[str] = []
    for index, bar in enumerate(bars):
        y = TOP + index * ROW
        length = 0.0 if top <= 0 else max(0.0, min(bar.value / top, 1.0)) * area
        body.append(_label(y + ROW * 0.68, bar.label))
        body.append(
            f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{length:.1f}" height="{ROW - 6}" '
            f'fill="{escape(bar.colour)}"><title>{escape(bar.label)}: {escape(bar.text)}'
            "</title></rect>"
        )
        body.append(
            f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{y + ROW * 0.68:.1f}" class="value">'
            f"{escape(bar.text)}</text>"
        )
    axis = f'x1="{LABEL_WIDTH}" y1="{TOP}" x2="{LABEL_WIDTH}" y2="{height - TOP}"'
    body.append(f'<line {axis} class="axis"/>')
    return _svg(width, height, title, body)


def _legend(items: Sequence[tuple[str, str]], width: int) -> tuple[list[str], int]:
    body: list[str] = []
    x, y = float(LABEL_WIDTH), float(TOP)
    for name, colour in items:
        step = 24 + 7 * sum(_columns(c) for c in shorten(name, 20))
        if x + step > width and x > LABEL_WIDTH:
            x, y = float(LABEL_WIDTH), y + LEGEND_ROW
        body.append(
            f'<rect x="{x:.1f}" y="{y + 4}" width="12" height="12" fill="{escape(colour)}"/>'
            f'<text x="{x + 16:.1f}" y="{y + 15}" class="legend">'
            f"{escape(shorten(name, 20))}</text>"
        )
        x += step + 12
    return body, int(y + LEGEND_ROW - TOP)


def stacked_chart(
    rows: Sequence[StackedRow],
    *,
    legend: Sequence[tuple[str, str]],
    title: str = "",
    width: int = 720,
) -> str:
    """One 100% bar per row, split into its segments; the counts show on hover and in text."""
    area = width - LABEL_WIDTH - VALUE_WIDTH
    body, legend_height = _legend(legend, width)
    start = TOP + legend_height + 6
    for index, row in enumerate(rows):
        y = start + index * ROW
        total = sum(max(s.value, 0.0) for s in row.segments)
        body.append(_label(y + ROW * 0.68, row.label))
        x = float(LABEL_WIDTH)
        for segment in row.segments:
            if segment.value <= 0 or total <= 0:
                continue
            length = segment.value / total * area
            body.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{length:.1f}" height="{ROW - 6}" '
                f'fill="{escape(segment.colour)}"><title>{escape(row.label)} · '
                f"{escape(segment.name)}: {segment.value:g}</title></rect>"
            )
            x += length
        body.append(
            f'<text x="{LABEL_WIDTH + area + 6}" y="{y + ROW * 0.68:.1f}" class="value">'
            f"{total:g}</text>"
        )
    height = start + ROW * max(len(rows), 1) + TOP
    return _svg(width, height, title, body)
