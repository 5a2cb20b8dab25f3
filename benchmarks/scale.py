"""Scale benchmark: evaluate 300 agencies x 50 workloads (14 days, 5-minute samples) against a
real Prometheus, and print wall time, peak memory of the evaluating process, PromQL queries,
time in Prometheus vs in our code, and the server's own CPU seconds (its
process_cpu_seconds_total). Prints figures; asserts nothing on time.

    python benchmarks/scale.py                      # the Hainan-scale cloud (cached after once)
    python benchmarks/scale.py --agencies 20        # smaller, quicker
    python benchmarks/scale.py --backend victoriametrics   # the same cloud in VictoriaMetrics
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from common import cloud_parser
    from rightsizer.adapters.prometheus import PrometheusConfig

    parser = cloud_parser(__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument(
        "--agencies-per-batch",
        type=int,
        nargs="+",
        default=[PrometheusConfig.agencies_per_batch],  # the evaluation's own default
    )
    parser.add_argument("--step", default="10m")
    parser.add_argument(
        "--backend", choices=["prometheus", "victoriametrics"], default="prometheus"
    )
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from common import server_cpu_seconds, single_pod_cloud

    dataset = single_pod_cloud(
        args.agencies, args.workloads_per_agency, args.days, files=args.agencies // 25
    )
    print(
        f"{'workers':>7} {'batch':>5} {'wall s':>7} {'prom s':>7} {'ours s':>7} "
        f"{'srv cpu':>7} {'queries':>7} {'peak MiB':>8} {'workloads':>9} {'complete':>8}"
    )
    with server_for(dataset, args.backend) as server:
        for workers in args.workers:
            for batch in args.agencies_per_batch:
                cpu = server_cpu_seconds(server.url)
                figures = run_child(
                    server.url, dataset.spec.end.isoformat(), workers, batch, args.step
                )
                served = server.query_count()
                print(
                    f"{workers:>7} {batch:>5} {figures['wall']:>7.1f} "
                    f"{figures['prometheusWall']:>7.1f} {figures['ours']:>7.1f} "
                    f"{server_cpu_seconds(server.url) - cpu:>7.1f} {figures['queries']:>7} "
                    f"{figures['peakMiB']:>8.0f} {figures['workloads']:>9} "
                    f"{figures['complete']:>8}  (server total {served})"
                )


def server_for(dataset: Any, backend: str) -> Any:
    """A real server on loopback holding the dataset: Prometheus, or VictoriaMetrics fed
    through its import API (generated and imported once, then cached)."""
    from rightsizer.localprom import LocalPrometheus

    if backend == "prometheus":
        return LocalPrometheus(dataset.data_dir)
    from rightsizer.localvm import LocalVictoriaMetrics, cached_victoria

    started = time.monotonic()
    imported = cached_victoria(dataset.spec)
    print(
        f"VictoriaMetrics storage: {imported.samples:,} samples, ready in "
        f"{time.monotonic() - started:.1f}s ({imported.root})"
    )
    return LocalVictoriaMetrics(seed=imported.storage_dir)


def run_child(url: str, end: str, workers: int, batch: int, step: str) -> dict[str, Any]:
    from common import child_figures

    return child_figures(
        __file__,
        "--url",
        url,
        "--end",
        end,
        "--workers",
        str(workers),
        "--agencies-per-batch",
        str(batch),
        "--step",
        step,
    )[1]


def child(args: argparse.Namespace) -> None:
    """One evaluation in a fresh process, so peak memory is the evaluator's own."""
    from datetime import datetime

    from rightsizer.process import tune_garbage_collector

    tune_garbage_collector()  # as the CLI and the operator do

    from rightsizer.adapters.files import load_policies
    from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
    from rightsizer.adapters.promql import Resolution
    from rightsizer.service import NamedPolicy, evaluate_policies, expand_by_label

    end = datetime.fromisoformat(args.end)
    [policy] = [p for p in load_policies([ROOT / "policies"]) if p.name == "default"]
    source = PrometheusSource(
        PrometheusConfig(
            url=args.url,
            workers=args.workers[0],
            agencies_per_batch=args.agencies_per_batch[0],
            resolution=Resolution(step=args.step),
        )
    )
    started = time.perf_counter()
    policies = expand_by_label(
        [NamedPolicy(policy.name, policy.spec)], source, label="rightsizer.io/agency", end=end
    )
    reports = evaluate_policies(policies, source, end=end)
    wall = time.perf_counter() - started
    in_prometheus = union_seconds(source.query_spans)
    print(
        json.dumps(
            {
                "wall": wall,
                "prometheusWall": in_prometheus,  # while at least one query was in flight
                "prometheusSum": source.query_seconds,
                "ours": wall - in_prometheus,  # assembly, scoring, rules, recommendations
                "queries": source.queries,
                "peakMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "workloads": sum(len(r.workloads) for r in reports),
                "complete": all(r.complete for r in reports),
            }
        )
    )


def union_seconds(spans: list[tuple[float, float]]) -> float:
    """The length of the union of time intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


if __name__ == "__main__":
    main()
