"""`rightsizer demo`: a synthetic government cloud, a real Prometheus, one evaluation.

Generates (once, cached) a seeded cloud of a few agencies, backfills it into a Prometheus
started on 127.0.0.1, evaluates it with the shipped default policy as a template for every
agency, prints the summary, writes the HTML/JSON/CSV reports, and stops the Prometheus.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

DEFAULT_POLICY = Path(__file__).resolve().parents[3] / "policies" / "default.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="report folder")
    parser.add_argument("--agencies", type=int, default=4)
    parser.add_argument("--workloads-per-agency", type=int, default=60)
    parser.add_argument("--days", type=float, default=14)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--policy", type=Path, help="policy template (default: the shipped one)")
    parser.add_argument("--lang", choices=["en", "zh"], default="zh")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rightsizer.cli import main
    from rightsizer.localprom import LocalPrometheus, cached_dataset
    from rightsizer.simulate import CloudSpec

    spec = CloudSpec(
        agencies=args.agencies,
        workloads_per_agency=args.workloads_per_agency,
        days=args.days,
        seed=args.seed,
    )
    started = time.monotonic()
    _say(
        f"1/3 synthetic cloud: {spec.agencies} agencies x {spec.workloads_per_agency} "
        f"workloads, {spec.days:g} days (generated and backfilled once, then cached)"
    )
    dataset = cached_dataset(spec, files=2)
    _say(f"    ready in {time.monotonic() - started:.1f}s: {dataset.root}")
    args.out.mkdir(parents=True, exist_ok=True)
    policy = args.policy or _policy_file(args.out)
    with LocalPrometheus(dataset.data_dir) as prometheus:
        _say(f"2/3 Prometheus {prometheus.url} (stopped at the end)")
        _say("3/3 rightsizer evaluate")
        code = main(
            [
                "evaluate",
                "--prometheus-url",
                prometheus.url,
                "--policy",
                str(policy),
                "--agency-label",
                "rightsizer.io/agency",
                "--at",
                spec.end.isoformat(),
                "--lang",
                args.lang,
                "--summary",
                "--no-progress",
                "-o",
                str(args.out / "report.html"),
                "-o",
                str(args.out / "report.json"),
                "-o",
                str(args.out / "workloads.csv"),
            ]
        )
    _say(f"done in {time.monotonic() - started:.1f}s; open {args.out / 'report.html'}")
    return code


def _policy_file(out: Path) -> Path:
    """The shipped default policy; outside a checkout, the same defaults written out."""
    if DEFAULT_POLICY.is_file():
        return DEFAULT_POLICY
    from rightsizer.api.v1alpha1 import EfficiencyPolicy
    from rightsizer.core.policy import LabelSelector, PolicySpec

    spec = PolicySpec(
        agency="default",
        namespace_selector=LabelSelector(match_labels={"rightsizer.io/agency": "default"}),
    )
    policy = EfficiencyPolicy(metadata={"name": "default"}, spec=spec)
    path = out / "default-policy.yaml"
    path.write_text(
        yaml.safe_dump(
            policy.model_dump(mode="json", by_alias=True, exclude_none=True), allow_unicode=True
        )
    )
    return path


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
