"""Terminal tables: headings over a rule, numbers right-aligned, cells wrapped by terminal
cells (a CJK character takes two) to fit the width, no text lost."""

from __future__ import annotations

import pytest
from report_factories import estate
from rich.cells import cell_len

from rightsizer.reports.layout import Column, layout_table


def test_a_table_that_fits_keeps_every_cell_on_its_line() -> None:
    columns = [Column("Workload"), Column("Score\n(0-100)", numeric=True), Column("Action")]
    rows = [["fin/ledger", "23.8", "downsize"], ["fin/web", "100.0", "keep"]]

    text = layout_table("Workloads", columns, rows, width=80)

    assert text == (
        "Workloads\n"
        "                Score\n"  # headings are aligned on their last line
        " Workload     (0-100)   Action\n"
        "─────────────────────────────────\n"  # the cells' width and their padding
        " fin/ledger      23.8   downsize\n"
        " fin/web        100.0   keep\n"
    )


LONG = (
    "rule cpu-downsize (downsize): cpu avg 5% of request (cpu avg < 20%), cpu p95 10% of "
    "request (cpu p95 < 50%)"
)
CJK = "市自然资源和规划局海口市市场监督管理局"


@pytest.mark.parametrize(
    ("text", "width", "joined_by"),
    [
        (LONG, 40, " "),  # words wrap at spaces
        (LONG, 18, " "),
        (CJK, 20, ""),  # CJK breaks between characters, two cells each
        (CJK, 9, ""),
        ("x" * 50, 20, ""),  # a word wider than the column is folded
        ("short", 40, " "),
    ],
)
def test_a_cell_wraps_within_the_width_and_loses_nothing(
    text: str, width: int, joined_by: str
) -> None:
    laid = layout_table(None, [Column("Reasons")], [[text]], width=width)

    heading, rule, *lines = laid.splitlines()
    assert (heading, set(rule)) == (" Reasons", {"─"})
    assert all(cell_len(line) <= width for line in lines), lines
    assert joined_by.join(line.strip() for line in lines) == text


def test_the_widest_columns_give_way_first() -> None:
    columns = [Column("Name"), Column("Cost", numeric=True), Column("Reasons")]
    rows = [["ledger", "CNY 1,170.00", LONG]]

    laid = layout_table(None, columns, rows, width=70)

    lines = laid.splitlines()
    assert max(cell_len(line) for line in lines) <= 70
    assert lines[2].startswith(" ledger   CNY 1,170.00   rule cpu-downsize")  # unbroken
    assert len(lines) > 3  # the reasons wrapped


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("width", [120, 160, 200])
def test_every_line_of_a_report_fits_the_terminal(lang: str, width: int) -> None:
    from rightsizer.reports.table import render_table
    from rightsizer.reports.view import RenderOptions

    text = render_table(estate(4), RenderOptions(lang=lang, width=width))

    assert max(cell_len(line) for line in text.splitlines()) <= width
    for report in estate(4):
        assert report.agency in text
