"""`rightsizer backtest`: what a policy would have done over a stretch of history."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rightsizer.adapters.prometheus import PrometheusSource
from rightsizer.backtest.run import BacktestResult, run_backtest
from rightsizer.cli.evaluate import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_SOURCE,
    add_connection_arguments,
    prometheus_config,
    read_policies,
    timestamp,
)
from rightsizer.core.policy import duration_seconds
from rightsizer.ports import SourceUnavailable
from rightsizer.service import NamedPolicy, expand_by_label

_EXTENSIONS = {".html": "html", ".json": "json", ".csv": "csv", ".txt": "table"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prometheus-url", required=True)
    parser.add_argument("--policy", action="append", type=Path, required=True)
    parser.add_argument("--agency-label", metavar="LABEL")
    parser.add_argument(
        "--from",
        dest="start",
        type=timestamp,
        required=True,
        help="first evaluation time (ISO 8601)",
    )
    parser.add_argument("--to", dest="end", type=timestamp, help="end (default: now)")
    parser.add_argument("--step", default="7d", help="time between evaluations (default 7d)")
    parser.add_argument(
        "--resolution", default="10m", help="sample resolution of the replay (default 10m)"
    )
    parser.add_argument("--format", choices=["table", "json", "csv", "html"], default="table")
    parser.add_argument("-o", "--output", action="append", type=Path, default=[])
    parser.add_argument(
        "--trace", type=Path, help="write every strategy's requests per step and container as CSV"
    )
    add_connection_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rightsizer.backtest.render import RENDERERS

    loaded = read_policies(args.policy)
    if loaded is None:
        return EXIT_INVALID
    source = PrometheusSource(prometheus_config(args))
    end = args.end or datetime.now(UTC)
    policies = [NamedPolicy(p.name, p.spec) for p in loaded]
    try:
        if args.agency_label:
            policies = expand_by_label(policies, source, label=args.agency_label, end=end)
        result = run_backtest(
            policies,
            source,
            start=args.start,
            end=end,
            step=timedelta(seconds=duration_seconds(args.step)),
            resolution_seconds=int(duration_seconds(args.resolution)),
        )
    except SourceUnavailable as error:
        print(f"rightsizer backtest: {error}", file=sys.stderr)
        return EXIT_SOURCE
    for path in args.output:
        fmt = _EXTENSIONS.get(path.suffix.lower(), "table")
        path.write_text(RENDERERS[fmt](result), encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    if args.trace:
        write_trace(result, args.trace)
    sys.stdout.write(RENDERERS[args.format](result))
    return EXIT_OK


def write_trace(result: BacktestResult, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "strategy", "workload", "container", "cpu_cores", "memory_bytes"])
        for line in result.trace:
            writer.writerow(
                [
                    datetime.fromtimestamp(line.step, UTC).isoformat(),
                    line.strategy,
                    line.workload,
                    line.container,
                    line.cpu,
                    line.memory,
                ]
            )
