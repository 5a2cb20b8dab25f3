"""Plain-text tables laid out as a terminal shows them: headings over a rule, columns three
spaces apart, numbers right-aligned, cells wrapped to fit the width.

It draws what rich's ``SIMPLE_HEAD`` tables drew here, at a fraction of the cost: rich
measured and wrapped every cell through its renderables, ~1.2 ms a workload (18 s for a
15,000-workload report, longer than the evaluation); this takes a few microseconds a cell.
Widths are terminal cells (a CJK character takes two; ``rich.cells.cell_len``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len

_GAP = "   "  # between columns
_RULE = "─"


@dataclass(frozen=True)
class Column:
    heading: str  # may hold line breaks
    numeric: bool = False  # right-aligned


def layout_table(
    title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[str]], *, width: int
) -> str:
    """The table as text lines (each ending with a newline), no wider than ``width`` unless
    every column is already one cell wide."""
    cells = [[cell.split("\n") for cell in row] for row in rows]
    headings = [column.heading.split("\n") for column in columns]
    widths = _fit(_natural(headings, cells), _shortest([headings, *cells]), width)
    out: list[str] = [] if title is None else [title]
    heading_lines = [_wrapped(lines, w) for lines, w in zip(headings, widths, strict=True)]
    out.extend(_lines(heading_lines, columns, widths, bottom=True))
    out.append(_RULE * (sum(widths) + len(_GAP) * (len(widths) - 1) + 2))
    for row in cells:
        wrapped = [_wrapped(lines, w) for lines, w in zip(row, widths, strict=True)]
        out.extend(_lines(wrapped, columns, widths, bottom=False))
    return "".join(line.rstrip() + "\n" for line in out)


def _natural(headings: list[list[str]], cells: list[list[list[str]]]) -> list[int]:
    widths = [max((cell_len(line) for line in lines), default=0) for lines in headings]
    for row in cells:
        for index, lines in enumerate(row):
            for line in lines:
                found = cell_len(line)
                widths[index] = max(widths[index], found)
    return [max(1, w) for w in widths]


def _shortest(rows: list[list[list[str]]]) -> list[int]:
    """Each column's longest word, headings' included: narrower, it would break words (CJK
    text, which has no spaces, breaks between characters, as rich broke it)."""
    shortest = [1] * len(rows[0])
    for row in rows:
        for index, lines in enumerate(row):
            for line in lines:
                for word in line.split(" "):
                    found = cell_len(word)
                    if found != len(word):  # wide (CJK) characters: a line breaks between any
                        found = 2
                    shortest[index] = max(shortest[index], found)
    return shortest


def _fit(natural: list[int], shortest: list[int], width: int) -> list[int]:
    """Narrow the widest columns first, down to the next widest, until the table fits; then,
    if it must, below their longest words."""
    widths = list(natural)
    room = width - 2 - len(_GAP) * (len(widths) - 1)
    for floor in (shortest, [1] * len(widths)):
        while sum(widths) > room:
            narrowable = [i for i, w in enumerate(widths) if w > floor[i]]
            if not narrowable:
                break
            widest = max(widths[i] for i in narrowable)
            at_widest = [i for i in narrowable if widths[i] == widest]
            below = [widths[i] for i in narrowable if widths[i] < widest]
            target = max([*below, *(floor[i] for i in at_widest)])
            excess = sum(widths) - room
            step = min(widest - target, -(-excess // len(at_widest)))
            for i in at_widest:
                widths[i] = max(floor[i], widths[i] - step)
    return widths


def _wrapped(lines: list[str], width: int) -> list[str]:
    out: list[str] = []
    for line in lines:
        if cell_len(line) <= width:
            out.append(line)
        else:
            out.extend(_wrap_line(line, width))
    return out


def _wrap_line(line: str, width: int) -> list[str]:
    """Greedy word wrap by cells; a word wider than ``width`` is folded."""
    out: list[str] = []
    current, used = "", 0
    for word in line.split(" "):
        size = cell_len(word)
        if current and used + 1 + size <= width:
            current, used = f"{current} {word}", used + 1 + size
            continue
        if current:
            out.append(current)
        rest = word
        while size > width:
            head, rest = _fold(rest, width)
            out.append(head)
            size = cell_len(rest)
        current, used = rest, size
    out.append(current)
    return out


def _fold(word: str, width: int) -> tuple[str, str]:
    used = 0
    for position, character in enumerate(word):
        used += cell_len(character)
        if used > width:
            return word[: max(position, 1)], word[max(position, 1) :]
    return word, ""


def _lines(
    cells: list[list[str]], columns: Sequence[Column], widths: list[int], *, bottom: bool
) -> list[str]:
    height = max((len(lines) for lines in cells), default=1)
    out = []
    for number in range(height):
        parts = []
        for lines, column, width in zip(cells, columns, widths, strict=True):
            index = number - (height - len(lines)) if bottom else number
            text = lines[index] if 0 <= index < len(lines) else ""
            pad = " " * (width - cell_len(text))
            parts.append(pad + text if column.numeric else text + pad)
        out.append(" " + _GAP.join(parts))
    return out
