"""Incremental evaluation at scale: build the state at T-1h (a rebuild from Prometheus), then
one incremental cycle to T, each in a fresh process (the second reads the state from files,
as after a restart). Prints wall time, Prometheus time (wall, and the server's own CPU),
queries, peak MiB, state bytes.

    .venv/bin/python benchmarks/scale_incremental.py [--agencies 300 --workloads-per-agency 50]
    .venv/bin/python benchmarks/scale_incremental.py --backend victoriametrics
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def measure_incremental(
    url: str,
    end: datetime,
    state: Path,
    *,
    workers: int = 2,
    batch: int | None = None,
    processes: int = 1,
) -> dict[str, Any]:
    """One evaluation of every agency at ``end`` through the incremental source (in
    ``processes`` processes: then queries are counted by the server, and the time in
    Prometheus, spent in the other processes, is not known here)."""
    if processes > 1:
        return measure_in_processes(
            url, end, state, workers=workers, batch=batch, processes=processes
        )
    from rightsizer.adapters.incremental import IncrementalSource
    from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
    from rightsizer.adapters.statestore import FileStateStore
    from rightsizer.service import evaluate_policies
    from scale import union_seconds

    prometheus = PrometheusSource(PrometheusConfig(url=url, workers=workers))
    source = IncrementalSource(prometheus, FileStateStore(state), incremental_config(batch))
    started = time.perf_counter()
    policies = agencies(prometheus, end)
    reports = evaluate_policies(policies, source, end=end)
    wall = time.perf_counter() - started
    in_prometheus = union_seconds(prometheus.query_spans)
    return {
        "wall": wall,
        "prometheusWall": in_prometheus,
        "ours": wall - in_prometheus,
        "queries": prometheus.queries,
        "peakMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **outcome(reports),
        "rebuilt": len(source.rebuilt),
        **state_figures(list(source.state_bytes.values())),
    }


def measure_in_processes(
    url: str, end: datetime, state: Path, *, workers: int, batch: int | None, processes: int
) -> dict[str, Any]:
    from common import server_queries
    from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
    from rightsizer.parallel import SourceRecipe, evaluate_in_processes
    from rightsizer.process import set_up_command_line

    config = PrometheusConfig(url=url, workers=workers)
    recipe = SourceRecipe(config, state=state, incremental=incremental_config(batch))
    kept_before = {path.name for path in state.glob("*.state")}
    queries = server_queries(url)
    started = time.perf_counter()
    policies = agencies(PrometheusSource(config), end)
    reports = evaluate_in_processes(
        policies, recipe, end=end, processes=processes, prepare=set_up_command_line
    )
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "prometheusWall": None,
        "ours": None,
        "queries": round(server_queries(url) - queries),
        "peakMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "childPeakMiB": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        **outcome(reports),
        "rebuilt": len(policies) - len(kept_before),  # those with no state before
        **state_figures([path.stat().st_size for path in state.glob("*.state")]),
    }


def agencies(prometheus: Any, end: datetime) -> Any:
    """The default policy as one policy per agency found."""
    from rightsizer.adapters.files import load_policies
    from rightsizer.service import NamedPolicy, expand_by_label

    [policy] = [p for p in load_policies([ROOT / "policies"]) if p.name == "default"]
    template = NamedPolicy(policy.name, policy.spec)
    return expand_by_label([template], prometheus, label="rightsizer.io/agency", end=end)


def incremental_config(batch: int | None) -> Any:
    from rightsizer.adapters.incremental import IncrementalConfig

    return IncrementalConfig() if batch is None else IncrementalConfig(agencies_per_batch=batch)


def outcome(reports: list[Any]) -> dict[str, Any]:
    return {
        "workloads": sum(len(r.workloads) for r in reports),
        "complete": all(r.complete for r in reports),
    }


def state_figures(sizes: list[int]) -> dict[str, int]:
    return {
        "stateBytes": sum(sizes),
        "largestAgencyBytes": max(sizes, default=0),
        # ConfigMap objects at 512 KiB of base64 each (the operator's store)
        "shards": sum(-(-(size * 4 // 3) // (512 * 1024)) for size in sizes),
    }


def main() -> None:
    from common import cloud_parser

    parser = cloud_parser(__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--agencies-per-batch", type=int, help="default: IncrementalConfig's")
    parser.add_argument(
        "--processes", type=int, help="evaluating processes (default: evaluate --state's auto)"
    )
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument(
        "--backend", choices=["prometheus", "victoriametrics"], default="prometheus"
    )
    args = parser.parse_args()
    if args.child:
        from rightsizer.process import tune_garbage_collector

        tune_garbage_collector()  # as the CLI and the operator do
        figures = measure_incremental(
            args.url,
            datetime.fromisoformat(args.end),
            Path(args.state),
            workers=args.workers,
            batch=args.agencies_per_batch,
            processes=args.processes,
        )
        print(json.dumps(figures))
        return
    from common import child_figures, server_cpu_seconds, single_pod_cloud
    from rightsizer.cli.evaluate import processes_for
    from scale import server_for

    processes = args.processes or processes_for("auto", incremental=True)

    dataset = single_pod_cloud(
        args.agencies, args.workloads_per_agency, args.days, files=args.agencies // 25
    )
    state = Path(tempfile.mkdtemp(prefix="rightsizer-state-"))
    print(
        f"{'cycle':>12} {'wall s':>7} {'prom s':>7} {'srv cpu':>7} {'ours s':>7} {'queries':>7} "
        f"{'peak MiB':>8} {'workloads':>9} {'rebuilt':>7} {'state MB':>8} {'shards':>6}"
    )
    with server_for(dataset, args.backend) as server:
        end = dataset.spec.end
        for label, at in (("rebuild T-1h", end - timedelta(hours=1)), ("incremental", end)):
            cpu = server_cpu_seconds(server.url)
            _, f = child_figures(
                __file__,
                "--url",
                server.url,
                "--end",
                at.isoformat(),
                "--state",
                str(state),
                "--workers",
                str(args.workers),
                "--processes",
                str(processes),
                *(
                    ["--agencies-per-batch", str(args.agencies_per_batch)]
                    if args.agencies_per_batch
                    else []
                ),
            )
            peak = f"{f['peakMiB']:.0f}" + (
                f"+{f['childPeakMiB']:.0f}" if "childPeakMiB" in f else ""
            )
            print(
                f"{label:>12} {f['wall']:>7.1f} {seconds(f['prometheusWall'])} "
                f"{server_cpu_seconds(server.url) - cpu:>7.1f} {seconds(f['ours'])} "
                f"{f['queries']:>7} {peak:>8} {f['workloads']:>9} {f['rebuilt']:>7} "
                f"{f['stateBytes'] / 1e6:>8.1f} {f['shards']:>6}  complete={f['complete']}"
            )
    print(
        f"{processes} evaluating process(es); peak: this process' (+ the largest other's); "
        "prom s and ours s: one process only (the others' time in Prometheus is not known)"
    )


def seconds(value: float | None) -> str:
    return f"{value:>7.1f}" if value is not None else f"{'—':>7}"


if __name__ == "__main__":
    main()
