"""A backfilled dataset plus rightsizer's recorded series, made as a deployment makes them.

    rules = cached_rules_dataset(cached_dataset(spec))
    with LocalPrometheus(rules.data_dir) as prom:
        ...  # raw and recorded series

The recorded series come from ``promtool tsdb create-blocks-from rules`` run against a
Prometheus serving the dataset (what an operator does after installing the rules, to cover
history), and are added to a copy of the dataset's blocks (hard links: the dataset's cache
is never written). The result is cached next to the dataset, keyed by the dataset, the
rules' digest and the span backfilled; ``start`` later than the data's first day makes a
dataset whose rules do not cover a 14-day window.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from rightsizer.adapters import rulesgen
from rightsizer.localprom import (
    BackfillError,
    Dataset,
    LocalPrometheus,
    _locked,
    prometheus_binaries,
)

_MARKER = "COMPLETE.json"


@dataclass(frozen=True)
class RulesDataset:
    root: Path
    data_dir: Path
    dataset: Dataset
    start: datetime
    end: datetime
    backfill_seconds: float  # promtool's time to evaluate the rules over the span
    compact_seconds: float  # Prometheus' time to merge the new blocks (0 when not asked)


def cached_rules_dataset(
    dataset: Dataset,
    *,
    start: datetime | None = None,
    compact: bool = False,
    compact_timeout: float = 3600.0,
) -> RulesDataset:
    """The dataset with the rules backfilled from ``start`` (default: its first sample).

    ``compact`` waits until Prometheus has merged the rules' blocks into the data (the state
    a long-running server reaches; benchmarks want it, tests need not wait for it).
    """
    end = dataset.spec.end
    begin = start if start is not None else end - timedelta(days=dataset.spec.days)
    name = f"{dataset.root.name}-rules-{rulesgen.digest()}-{int(begin.timestamp())}"
    root = dataset.root.parent / (name + ("-compacted" if compact else ""))
    with _locked(dataset.root.parent / f"{root.name}.lock"):
        if not (root / _MARKER).is_file():
            shutil.rmtree(root, ignore_errors=True)
            _build(dataset, root, start=begin, compact=compact, timeout=compact_timeout)
    marker = json.loads((root / _MARKER).read_text(encoding="utf-8"))
    return RulesDataset(
        root=root,
        data_dir=root / "data",
        dataset=dataset,
        start=begin,
        end=end,
        backfill_seconds=float(marker["backfillSeconds"]),
        compact_seconds=float(marker["compactSeconds"]),
    )


def _build(dataset: Dataset, root: Path, *, start: datetime, compact: bool, timeout: float) -> None:
    work = Path(tempfile.mkdtemp(prefix=f".build-{root.name}-", dir=root.parent))
    try:
        data = work / "data"
        link_blocks(dataset.data_dir, data)
        rules_file = work / "recording-rules.yaml"
        rules_file.write_text(rulesgen.plain_rules(), encoding="utf-8")
        started = time.monotonic()
        with LocalPrometheus(data) as server:
            backfill_rules(
                rules_file, url=server.url, start=start, end=dataset.spec.end, out=work / "blocks"
            )
        backfilled = time.monotonic()
        for block in sorted((work / "blocks").iterdir()):
            block.rename(data / block.name)
        if compact:
            with LocalPrometheus(data):
                wait_until_merged(data, timeout=timeout)
        marker = {
            "start": start.isoformat(),
            "end": dataset.spec.end.isoformat(),
            "rulesDigest": rulesgen.digest(),
            "backfillSeconds": round(backfilled - started, 3),
            "compactSeconds": round(time.monotonic() - backfilled, 3) if compact else 0.0,
        }
        (work / _MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        work.rename(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def link_blocks(source: Path, target: Path) -> None:
    """Hard-link every finished TSDB block of ``source`` into ``target`` (blocks are
    immutable; Prometheus replaces them whole when it compacts)."""
    target.mkdir(parents=True, exist_ok=True)
    for block in sorted(source.iterdir()):
        if (block / "meta.json").is_file() and ".tmp" not in block.name:
            shutil.copytree(block, target / block.name, copy_function=os.link)


def backfill_rules(
    rules_file: Path, *, url: str, start: datetime, end: datetime, out: Path
) -> None:
    """``promtool tsdb create-blocks-from rules`` over [start, end] against ``url``."""
    promtool = prometheus_binaries()[1]
    command = [
        str(promtool),
        "tsdb",
        "create-blocks-from",
        "rules",
        "--quiet",
        f"--url={url}",
        f"--start={int(start.timestamp())}",
        f"--end={int(end.timestamp())}",
        f"--output-dir={out}",
        str(rules_file),
    ]
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()[-4000:]
        raise BackfillError(f"promtool could not backfill {rules_file}: {detail}")


def overlapping_blocks(data_dir: Path) -> int:
    """How many blocks overlap another in time (0 once Prometheus has merged them)."""
    spans = sorted(
        (meta["minTime"], meta["maxTime"])
        for meta in (
            json.loads((block / "meta.json").read_text(encoding="utf-8"))
            for block in data_dir.iterdir()
            if (block / "meta.json").is_file() and ".tmp" not in block.name
        )
    )
    overlapping, reach = 0, float("-inf")
    for low, high in spans:
        if low < reach:
            overlapping += 1
        reach = max(reach, high)
    return overlapping


def wait_until_merged(data_dir: Path, *, timeout: float, poll: float = 2.0) -> None:
    """Wait (Prometheus running on ``data_dir``) until no block overlaps another."""
    deadline = time.monotonic() + timeout
    while overlapping_blocks(data_dir):
        if time.monotonic() > deadline:
            raise TimeoutError(f"blocks in {data_dir} still overlap after {timeout:g}s")
        time.sleep(poll)
