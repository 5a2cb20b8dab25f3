"""`rightsizer evaluate`'s standard output is its result alone, whatever it logs: another
program reads the JSON or CSV it prints (`rightsizer evaluate --format json > report.json`).
Logs go to standard error: warnings always, what happens with --verbose."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import STANDARD

from rightsizer.cli import main
from rightsizer.localprom import LocalPrometheus

pytestmark = pytest.mark.prometheus

POLICY = """apiVersion: rightsizer.io/v1alpha1
kind: EfficiencyPolicy
metadata: {name: finance}
spec: {agency: agency-001, namespaces: [agency-001-prod, agency-001-test]}
"""


def evaluate(url: str, folder: Path, fmt: str, *extra: str) -> int:
    (folder / "policy.yaml").write_text(POLICY)
    return main(["evaluate", "--prometheus-url", url, "--policy", str(folder / "policy.yaml"),
                 "--at", STANDARD.end.isoformat(), "--no-progress", "--format", fmt,
                 "--state", str(folder / "state"), *extra])  # fmt: skip


def parsed(fmt: str, text: str) -> object:
    if fmt == "json":
        return json.loads(text)["agencies"][0]["agency"]
    return next(csv.DictReader(io.StringIO(text)))["agency"]


@pytest.mark.parametrize(
    ("fmt", "state", "verbose", "logged"),
    [
        # state missing: rebuilt, which is news (info), not a problem
        ("json", "missing", [], []),
        ("csv", "missing", [], []),
        ("json", "missing", ["--verbose"], ["state_rebuilt"]),
        # state read back: the second run
        ("json", "kept", ["-v"], ["state_read"]),
        # a damaged state is a warning: always logged, never on standard output
        ("json", "corrupt", [], ["state_corrupt"]),
        ("csv", "corrupt", [], ["state_corrupt"]),
    ],
)
def test_standard_output_holds_the_result_alone(
    prometheus: LocalPrometheus,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fmt: str,
    state: str,
    verbose: list[str],
    logged: list[str],
) -> None:
    if state != "missing":
        assert evaluate(prometheus.url, tmp_path, "json") == 0
        capsys.readouterr()
    if state == "corrupt":
        [saved] = (tmp_path / "state").glob("*.state")
        saved.write_bytes(saved.read_bytes()[:-40] + b"\0" * 40)

    assert evaluate(prometheus.url, tmp_path, fmt, *verbose) == 0

    out, err = capsys.readouterr()
    assert parsed(fmt, out) == "agency-001"
    for event in ["state_rebuilt", "state_read", "state_corrupt"]:
        assert (event in err) == (event in logged), (event, err)
