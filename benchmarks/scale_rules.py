"""Recording rules at scale: the full evaluation of the scale benchmark's cloud (300 agencies
x 50 workloads, 14 days of 5-minute samples) with and without rightsizer's recorded series,
on one Prometheus holding both. Prints figures; asserts nothing on time.

    python benchmarks/scale_rules.py                  # backfills the rules once (cached)
    python benchmarks/scale_rules.py --agencies 20    # smaller, quicker

The rules are backfilled with ``promtool tsdb create-blocks-from rules`` (as after installing
them) and merged into the data by Prometheus' own compaction before anything is measured.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODES = ("off", "auto")


def measure_rules(
    agencies: int = 300,
    workloads_per_agency: int = 50,
    days: float = 14,
    *,
    workers: int = 2,
    agencies_per_batch: int = 5,
    repeats: int = 2,
) -> dict[str, Any]:
    """Backfill the rules (cached), then evaluate ``repeats`` times in each mode, alternating."""
    from common import single_pod_cloud
    from rightsizer.localprom import LocalPrometheus
    from rightsizer.localrules import cached_rules_dataset

    dataset = single_pod_cloud(agencies, workloads_per_agency, days, files=max(1, agencies // 25))
    started = time.monotonic()
    rules = cached_rules_dataset(dataset, compact=True)
    print(
        f"rules: backfill {rules.backfill_seconds:.0f}s, compaction {rules.compact_seconds:.0f}s "
        f"(when built; ready in {time.monotonic() - started:.1f}s now) ({rules.root})"
    )
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    print(
        f"{'mode':>5} {'wall s':>7} {'prom s':>7} {'ours s':>7} {'queries':>7} "
        f"{'peak MiB':>8} {'workloads':>9} {'complete':>8}  plan"
    )
    with LocalPrometheus(rules.data_dir) as server:
        for _ in range(repeats):
            for mode in MODES:
                figures = _child(
                    server.url, dataset.spec.end.isoformat(), mode, workers, agencies_per_batch
                )
                runs[mode].append(figures)
                print(
                    f"{mode:>5} {figures['wall']:>7.1f} {figures['prometheusWall']:>7.1f} "
                    f"{figures['ours']:>7.1f} {figures['queries']:>7} {figures['peakMiB']:>8.0f} "
                    f"{figures['workloads']:>9} {figures['complete']!s:>8}  {figures['plan']}",
                    flush=True,
                )
    return {
        "backfillSeconds": rules.backfill_seconds,
        "compactSeconds": rules.compact_seconds,
        "runs": runs,
    }


def _child(url: str, end: str, mode: str, workers: int, batch: int) -> dict[str, Any]:
    from common import child_figures

    arguments = ["--url", url, "--end", end, "--mode", mode, "--workers", str(workers)]
    return child_figures(__file__, *arguments, "--agencies-per-batch", str(batch))[1]


def child(args: argparse.Namespace) -> None:
    """One evaluation in a fresh process, so peak memory is the evaluator's own."""
    from datetime import datetime

    from rightsizer.process import tune_garbage_collector

    tune_garbage_collector()  # as the CLI and the operator do

    from rightsizer.adapters.files import load_policies
    from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
    from rightsizer.service import NamedPolicy, evaluate_policies, expand_by_label
    from scale import union_seconds

    end = datetime.fromisoformat(args.end)
    [policy] = [p for p in load_policies([ROOT / "policies"]) if p.name == "default"]
    source = PrometheusSource(
        PrometheusConfig(
            url=args.url,
            workers=args.workers,
            agencies_per_batch=args.agencies_per_batch,
            recording_rules=args.mode,
        )
    )
    started = time.perf_counter()
    policies = expand_by_label(
        [NamedPolicy(policy.name, policy.spec)], source, label="rightsizer.io/agency", end=end
    )
    reports = evaluate_policies(policies, source, end=end)
    wall = time.perf_counter() - started
    in_prometheus = union_seconds(source.query_spans)
    plans = sorted({plan.note for _, plan in source.plans.values()}) or [f"mode {args.mode}"]
    print(
        json.dumps(
            {
                "wall": wall,
                "prometheusWall": in_prometheus,
                "prometheusSum": source.query_seconds,
                "ours": wall - in_prometheus,
                "queries": source.queries,
                "peakMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "workloads": sum(len(r.workloads) for r in reports),
                "complete": all(r.complete for r in reports),
                "plan": "; ".join(plans),
            }
        )
    )


def main() -> None:
    from common import cloud_parser

    parser = cloud_parser(__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--agencies-per-batch", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--mode", choices=(*MODES, "on"), default="auto", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    measure_rules(
        args.agencies,
        args.workloads_per_agency,
        args.days,
        workers=args.workers,
        agencies_per_batch=args.agencies_per_batch,
        repeats=args.repeats,
    )


if __name__ == "__main__":
    main()
