"""The fault matrix as a test report artefact: one row per fault (fault, expected, observed,
result), written to build/fault-matrix.md and printed at the end of the run.

A test asks the ``fault_row`` fixture for its row, says what it expects, and fills in what
it observed as it goes; the result is the test's own outcome (a failed assertion fails the
row, whatever the observed text says)."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from controlplane import REPO_ROOT

ARTEFACT = REPO_ROOT / "build" / "fault-matrix.md"


@dataclass
class MatrixRow:
    fault: str
    expected: str
    observed: list[str] = field(default_factory=list)
    result: str = "not run"
    seconds: float = 0.0

    def saw(self, text: str) -> None:
        self.observed.append(text)


ROWS = pytest.StashKey[list[MatrixRow]]()
NOTES = pytest.StashKey[list[str]]()
OUTCOME = pytest.StashKey[str]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, Any]:
    report = yield
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if hasattr(report, "wasxfail"):
            outcome = f"XFAIL ({report.wasxfail})" if report.skipped else "XPASS(strict): FAILED"
        else:
            outcome = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[report.outcome]
        item.stash[OUTCOME] = outcome
    return report


@pytest.fixture
def fault_row(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``fault_row(fault, expected)`` -> the test's MatrixRow; kept for the report."""
    rows = request.config.stash.setdefault(ROWS, [])
    made: list[MatrixRow] = []
    began = time.monotonic()

    def make(fault: str, expected: str) -> MatrixRow:
        row = MatrixRow(fault, expected)
        made.append(row)
        rows.append(row)
        return row

    yield make
    for row in made:
        row.result = request.node.stash.get(OUTCOME, "ERROR")
        row.seconds = time.monotonic() - began


def note(config: pytest.Config, text: str) -> None:
    """A line under the table (e.g. how long the rig took to start)."""
    config.stash.setdefault(NOTES, []).append(text)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def render(rows: list[MatrixRow], notes: list[str] | None = None) -> str:
    lines = [
        "# Fault matrix",
        "",
        "Each row ran against the real kube-apiserver and a real Prometheus on loopback, "
        "with the fault injected by tests/e2e/faultproxy.py between the operator and the "
        "server (tests/e2e/test_fault_matrix.py).",
        "",
        "| # | Fault | Expected | Observed | Result |",
        "|---|---|---|---|---|",
    ]
    for number, row in enumerate(rows, 1):
        observed = "; ".join(row.observed) or "(nothing recorded)"
        lines.append(
            f"| {number} | {_cell(row.fault)} | {_cell(row.expected)} | {_cell(observed)} "
            f"| {row.result} ({row.seconds:.0f} s) |"
        )
    passed = sum(1 for row in rows if row.result == "PASS")
    seconds = sum(row.seconds for row in rows)
    summary = [
        f"{passed} of {len(rows)} rows passed",
        f"the rows took {seconds:.0f} s",
        *(notes or []),
    ]
    lines += ["", "; ".join(summary) + "."]
    return "\n".join(lines) + "\n"


def report(terminalreporter: Any, config: pytest.Config, path: Path = ARTEFACT) -> None:
    """Write the artefact and print it (called from the e2e conftest's terminal summary)."""
    rows = config.stash.get(ROWS, [])
    if not rows:
        return
    text = render(rows, config.stash.get(NOTES, []))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    terminalreporter.write_sep("=", f"fault matrix ({path.relative_to(REPO_ROOT)})")
    for line in text.splitlines():
        terminalreporter.write_line(line)
