"""`rightsizer evaluate` and `rightsizer validate`.

Exit codes (stable, for pipelines):
  0  done; every agency evaluated completely
  2  bad arguments or an invalid policy (each problem printed with its field path)
  3  the metrics source failed for at least one agency (its numbers are not shown)
  4  --fail-under: an agency scored below the threshold
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from rightsizer.adapters.files import load_policies
from rightsizer.adapters.incremental import IncrementalConfig
from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
from rightsizer.adapters.promql import BACKENDS, Resolution
from rightsizer.adapters.rules import MODES
from rightsizer.api.v1alpha1 import EfficiencyPolicy, PolicyError
from rightsizer.core.report import AgencyReport
from rightsizer.parallel import SourceRecipe, evaluate_in_processes
from rightsizer.ports import Progress, SourceUnavailable
from rightsizer.process import set_up_command_line
from rightsizer.service import NamedPolicy, expand_by_label

Batched = TypeVar("Batched", PrometheusConfig, IncrementalConfig)

EXIT_OK, EXIT_INVALID, EXIT_SOURCE, EXIT_BELOW = 0, 2, 3, 4
_EXTENSIONS = {".html": "html", ".json": "json", ".csv": "csv", ".md": "markdown", ".txt": "table"}


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prometheus-url", required=True, help="e.g. http://127.0.0.1:9090")
    parser.add_argument(
        "--policy",
        action="append",
        type=Path,
        required=True,
        help="policy file or folder (repeatable)",
    )
    parser.add_argument(
        "--agency-label",
        metavar="LABEL",
        help="use each policy as a template: one agency per value of this "
        "namespace label (e.g. rightsizer.io/agency)",
    )
    parser.add_argument("--at", type=timestamp, help="evaluation time, ISO 8601 (default: now)")
    parser.add_argument(
        "--format",
        choices=["table", "json", "csv", "markdown", "html"],
        default="table",
        help="format on standard output",
    )
    parser.add_argument(
        "-o",
        "--output",
        action="append",
        type=Path,
        default=[],
        help="also write a report file; format from the extension "
        "(.html .json .csv .md .txt); repeatable",
    )
    parser.add_argument(
        "--lang",
        choices=["en", "zh"],
        help="report language (default: the policy's reportLanguage)",
    )
    parser.add_argument("--summary", action="store_true", help="agencies and projects only")
    parser.add_argument(
        "--fail-under", type=float, metavar="SCORE", help="exit 4 when an agency scores below SCORE"
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--state",
        type=Path,
        metavar="DIR",
        help="incremental evaluation: keep per-agency state in DIR and read only what is "
        "new since the last run (rebuilt when missing or damaged)",
    )
    parser.add_argument(
        "--processes",
        type=process_count,
        default="auto",
        metavar="N",
        help="evaluate agencies in N processes (a core each; the queries in flight stay "
        "--workers in all). auto: with --state, the cores up to 4 (a steady cycle is our "
        "own work); without, 1 (a full evaluation waits for Prometheus)",
    )
    add_connection_arguments(parser)
    parser.set_defaults(run=run_evaluate)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Prometheus connection")
    group.add_argument("--bearer-token-file", type=Path)
    group.add_argument("--basic-auth-file", type=Path, help="a file holding user:password")
    group.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    group.add_argument("--ca-file", help="CA bundle for TLS verification")
    group.add_argument("--insecure-skip-tls-verify", action="store_true")
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        default="prometheus",
        help="what answers the queries; thanos and victoriametrics are also sent parameters "
        "that refuse partial answers (docs/backends.md)",
    )
    group.add_argument("--timeout", type=float, default=120.0, help="seconds per query")
    group.add_argument("--retries", type=int, default=2)
    group.add_argument("--workers", type=int, default=2, help="queries in flight at once")
    group.add_argument(
        "--agencies-per-batch",
        type=int,
        help="agencies read by one query (default: 5; 25 with --state, whose queries cost "
        "Prometheus per row rather than per query)",
    )
    group.add_argument("--cpu-step", default="10m", help="CPU subquery resolution")
    group.add_argument("--rate-window", default="10m", help="CPU rate() window")
    group.add_argument(
        "--recording-rules",
        choices=MODES,
        default="auto",
        help="read rightsizer's recorded series (charts/rightsizer/files/recording-rules.yaml): "
        "auto = when they cover the window, else raw series (default: auto)",
    )


def process_count(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected auto or a number of at least 1")
    return count


def processes_for(asked: int | str, *, incremental: bool, cores: int | None = None) -> int:
    """``--processes``: a number as given; auto, measured at 300 agencies on 2 cores (README,
    Performance): a steady incremental cycle is our own Python, 12.6-13.6 s in one process
    and 9.3-9.7 s in two; a full evaluation is Prometheus' scanning, 34.5 s and 36 s."""
    if isinstance(asked, int):
        return asked
    return min(cores or os.cpu_count() or 1, 4) if incremental else 1


def timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def prometheus_config(args: argparse.Namespace) -> PrometheusConfig:
    headers = dict(_header(h) for h in args.header)
    token = args.bearer_token_file.read_text().strip() if args.bearer_token_file else None
    basic = None
    if args.basic_auth_file:
        user, _, password = args.basic_auth_file.read_text().strip().partition(":")
        basic = (user, password)
    config = PrometheusConfig(
        url=args.prometheus_url.rstrip("/"),
        headers=headers,
        bearer_token=token,
        basic_auth=basic,
        ca_file=args.ca_file,
        verify_tls=not args.insecure_skip_tls_verify,
        backend=args.backend,
        timeout=args.timeout,
        retries=args.retries,
        workers=args.workers,
        resolution=Resolution(step=args.cpu_step, rate_window=args.rate_window),
        recording_rules=args.recording_rules,
    )
    return _with_batch_size(config, args)


def incremental_config(args: argparse.Namespace) -> IncrementalConfig:
    return _with_batch_size(IncrementalConfig(), args)


def _with_batch_size(config: Batched, args: argparse.Namespace) -> Batched:
    """``--agencies-per-batch`` when given; else each source keeps its own default."""
    given = args.agencies_per_batch
    return config if given is None else dataclasses.replace(config, agencies_per_batch=given)


def _header(text: str) -> tuple[str, str]:
    name, separator, value = text.partition(":")
    if not separator or not name.strip():
        raise SystemExit(f"rightsizer: --header {text!r}: expected NAME:VALUE")
    return name.strip(), value.strip()


def read_policies(paths: Sequence[Path]) -> list[EfficiencyPolicy] | None:
    """The policies in ``paths``, or None after printing every problem (field path: reason)."""
    try:
        return load_policies(paths)
    except PolicyError as error:
        for problem in error.problems:
            print(f"invalid: {problem}", file=sys.stderr)
        return None


def run_validate(args: argparse.Namespace) -> int:
    policies = read_policies(args.paths)
    if policies is None:
        return EXIT_INVALID
    for policy in policies:
        print(f"valid: {policy.name} (agency {policy.spec.agency}, mode {policy.spec.mode})")
    return EXIT_OK


def run_evaluate(args: argparse.Namespace) -> int:
    loaded = read_policies(args.policy)
    if loaded is None:
        return EXIT_INVALID
    policies = [NamedPolicy(name=p.name, spec=p.spec) for p in loaded]
    config = prometheus_config(args)
    source = PrometheusSource(config)
    end = args.at or datetime.now(UTC)
    if args.agency_label:
        try:
            policies = expand_by_label(policies, source, label=args.agency_label, end=end)
        except SourceUnavailable as error:
            print(f"rightsizer: agencies not found: {error}", file=sys.stderr)
            return EXIT_SOURCE
    recipe = SourceRecipe(
        prometheus=config,
        state=args.state,
        incremental=incremental_config(args) if args.state is not None else None,
    )

    def evaluate(progress: Progress | None) -> list[AgencyReport]:
        return evaluate_in_processes(
            policies,
            recipe,
            end=end,
            processes=processes_for(args.processes, incremental=args.state is not None),
            prepare=functools.partial(set_up_command_line, args.log_level),
            progress=progress,
        )

    reports = _run_with_progress(evaluate, len(policies), quiet=args.no_progress)
    lang = args.lang or (policies[0].spec.report_language if policies else "en")
    _write_outputs(reports, args, lang=lang)
    return exit_code(reports, fail_under=args.fail_under)


def _run_with_progress(
    evaluate: Callable[[Progress | None], list[AgencyReport]], agencies: int, *, quiet: bool
) -> list[AgencyReport]:
    if quiet or not sys.stderr.isatty():
        return evaluate(None)
    from rich.progress import Progress as Bar

    with Bar(transient=True) as bar:
        task = bar.add_task(f"Evaluating {agencies} agencies", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return evaluate(advance)


def _write_outputs(reports: list[AgencyReport], args: argparse.Namespace, *, lang: str) -> None:
    from rightsizer.reports import RenderOptions, render_parts

    for path in args.output:
        fmt = _EXTENSIONS.get(path.suffix.lower(), "table")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            out.writelines(render_parts(reports, fmt=fmt, options=RenderOptions.of(lang=lang)))
        print(f"wrote {path}", file=sys.stderr)
    shown = RenderOptions.of(lang=lang, detail=not args.summary)
    sys.stdout.writelines(render_parts(reports, fmt=args.format, options=shown))
    for report in reports:
        if report.error:
            print(f"rightsizer: {report.policy}: NOT evaluated: {report.error}", file=sys.stderr)


def exit_code(reports: Sequence[AgencyReport], *, fail_under: float | None) -> int:
    if any(report.error for report in reports):
        return EXIT_SOURCE
    if fail_under is not None:
        for report in reports:
            card = report.summary.card if report.summary else None
            if card is not None and card.score < fail_under:
                return EXIT_BELOW
    return EXIT_OK
