"""Backtest benchmark: 1,000 workloads over 90 days in 7-day steps, against a real Prometheus.
Prints wall time, peak memory of the backtesting process, PromQL queries, and every
strategy's savings and risk. Prints figures; asserts nothing on time.

    python benchmarks/backtest.py                   # 20 agencies x 50 workloads, 90 days
    python benchmarks/backtest.py --agencies 4      # smaller
    python benchmarks/backtest.py --policy continuous   # another shipped policy (policies/)
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from common import cloud_parser

    parser = cloud_parser(__doc__, agencies=20, days=90)
    parser.add_argument("--step", type=int, default=7, help="days between evaluations")
    parser.add_argument("--policy", default="default", help="a policy's name in policies/")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from common import child_figures, single_pod_cloud
    from rightsizer.localprom import LocalPrometheus

    # the policy's 14-day window needs history before the first step
    dataset = single_pod_cloud(
        args.agencies, args.workloads_per_agency, args.days + 14, files=args.agencies // 5
    )
    with LocalPrometheus(dataset.data_dir) as server:
        lines, figures = child_figures(
            __file__,
            "--url",
            server.url,
            "--end",
            dataset.spec.end.isoformat(),
            "--days",
            str(args.days),
            "--step",
            str(args.step),
            "--policy",
            args.policy,
        )
    print("\n".join(lines))
    print(
        f"wall {figures['wall']:.1f}s, peak {figures['peakMiB']:.0f} MiB, "
        f"{figures['queries']} queries, {figures['steps']} steps, "
        f"{figures['workloads']} workloads"
    )


def child(args: argparse.Namespace) -> None:
    from rightsizer.adapters.files import load_policies
    from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
    from rightsizer.backtest.render import render_table
    from rightsizer.backtest.run import run_backtest
    from rightsizer.service import NamedPolicy, expand_by_label

    end = datetime.fromisoformat(args.end)
    start = end - timedelta(days=args.days)
    [policy] = [p for p in load_policies([ROOT / "policies"]) if p.name == args.policy]
    source = PrometheusSource(PrometheusConfig(url=args.url))
    began = time.perf_counter()
    policies = expand_by_label(
        [NamedPolicy(policy.name, policy.spec)], source, label="rightsizer.io/agency", end=end
    )
    result = run_backtest(policies, source, start=start, end=end, step=timedelta(days=args.step))
    wall = time.perf_counter() - began
    total = [r for r in result.rows if r.scope == "total"]
    print(render_table(result).split("Backtest agency:")[0].rstrip())
    print(
        json.dumps(
            {
                "wall": wall,
                "peakMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "queries": result.queries,
                "steps": result.steps,
                "workloads": max((r.workloads for r in total), default=0),
            }
        )
    )


if __name__ == "__main__":
    main()
