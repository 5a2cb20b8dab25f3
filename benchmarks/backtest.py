"""Backtest benchmark: 1,000 workloads over 90 days in 7-day steps, against a real Prometheus.
Prints wall time, peak memory of the backtesting process, PromQL queries, and every
strategy's savings and risk. Prints figures; asserts nothing on time.

    python benchmarks/backtest.py                   # 20 agencies x 50 workloads, 90 days
    python benchmarks/backtest.py --agencies 4      # smaller
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agencies", type=int, default=20)
    parser.add_argument("--workloads-per-agency", type=int, default=50)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--step", type=int, default=7, help="days between evaluations")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--end", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from rightsizer.localprom import LocalPrometheus, cached_dataset
    from rightsizer.simulate import CloudSpec

    # the policy's 14-day window needs history before the first step
    spec = CloudSpec(
        agencies=args.agencies,
        workloads_per_agency=args.workloads_per_agency,
        days=args.days + 14,
        single_pod=True,
        pod_level_series=False,
    )
    started = time.monotonic()
    dataset = cached_dataset(spec, files=max(1, args.agencies // 5))
    print(
        f"dataset: {spec.agencies} agencies x {spec.workloads_per_agency} workloads, "
        f"{spec.days:g} days at {spec.interval_seconds}s; ready in "
        f"{time.monotonic() - started:.1f}s"
    )
    with LocalPrometheus(dataset.data_dir) as server:
        command = [
            sys.executable,
            __file__,
            "--child",
            "--url",
            server.url,
            "--end",
            spec.end.isoformat(),
            "--days",
            str(args.days),
            "--step",
            str(args.step),
        ]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    lines = output.strip().splitlines()
    figures = json.loads(lines[-1])
    print("\n".join(lines[:-1]))
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
    [policy] = [p for p in load_policies([ROOT / "policies"]) if p.name == "default"]
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
