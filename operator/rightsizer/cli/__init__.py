"""`rightsizer evaluate | validate | backtest | simulate | demo | revert`: the command line.

Exit codes (stable, for pipelines):
  0  done; every agency evaluated completely
  2  bad arguments or an invalid policy (each problem printed with its field path)
  3  the metrics source failed for at least one agency (its numbers are not shown)
  4  --fail-under: an agency scored below the threshold
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from rightsizer.cli import backtest, demo, revert
from rightsizer.cli.evaluate import add_evaluate_arguments, run_validate
from rightsizer.process import set_up_command_line


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.log_level = logging.INFO if args.verbose else logging.WARNING
    set_up_command_line(args.log_level)
    code: int = args.run(args)
    return code


def build_parser() -> argparse.ArgumentParser:
    from rightsizer import simulate

    parser = argparse.ArgumentParser(
        prog="rightsizer",
        description="Grade workloads by resource efficiency and recommend their requests.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also log what happens (states read and rebuilt, retries) on standard error; "
        "warnings are always logged there",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_evaluate_arguments(
        commands.add_parser("evaluate", help="evaluate policies", parents=[common])
    )
    validate = commands.add_parser(
        "validate", help="check policy files (for GitOps pipelines)", parents=[common]
    )
    validate.add_argument("paths", nargs="+", type=Path, help="policy files or folders")
    validate.set_defaults(run=run_validate)
    simulation = commands.add_parser(
        "simulate", help="write a synthetic government cloud", parents=[common]
    )
    simulate.add_arguments(simulation)
    simulation.set_defaults(run=simulate.run)
    backtest.add_arguments(
        commands.add_parser(
            "backtest",
            help="replay a policy on history, beside reference strategies",
            parents=[common],
        )
    )
    demo.add_arguments(
        commands.add_parser("demo", help="the whole thing on a synthetic cloud", parents=[common])
    )
    revert.add_arguments(
        commands.add_parser(
            "revert",
            help="restore a workload's resources from before rightsizer's last change",
            parents=[common],
        )
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
