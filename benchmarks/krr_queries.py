"""KRR's Prometheus load on the scale cloud, on this machine: the yardstick of issue 6's "a tenth
of KRR's time on the same data and machine".

KRR is not installable here (no PyPI release, no network), so this sends what its default
``simple`` strategy sends Prometheus: for every workload, four instant queries over its history
(robusta-dev/krr, ``core/integrations/prometheus/metrics/{cpu,memory}.py`` and
``strategies/simple.py``; defaults ``history_duration`` 336 h, ``timeframe_duration`` 1.25 min,
``max_workers`` 6):

- ``quantile_over_time(0.95, max(rate(cpu{sel}[75s])) by (container, pod, job)[14d:75s])``
- ``max_over_time(max(memory{sel}) by (container, pod, job)[14d:75s])``
- ``count_over_time(max(cpu{sel}) by (container, pod, job)[14d:75s])``
- ``count_over_time(max(memory{sel}) by (container, pod, job)[14d:75s])``

with ``sel`` = ``namespace="…", pod=~"<the workload's pods>", container="…"``. The time measured
is Prometheus answering them, with KRR's six queries in flight: KRR also lists workloads and pods
from the Kubernetes API and computes in Python, so its whole run takes at least this long. The
workloads come from the dataset in one query, outside the timing.

    python benchmarks/krr_queries.py                  # all 15,000 workloads (~10 min here)
    python benchmarks/krr_queries.py --workloads 600  # a sample, and the figure scaled to all
    python benchmarks/krr_queries.py --step 15m       # KRR's older default step
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

CPU = "container_cpu_usage_seconds_total"
MEMORY = "container_memory_working_set_bytes"
KEYS = "container, pod, job"


def main() -> None:
    from common import cloud_parser, server_cpu_seconds, single_pod_cloud
    from rightsizer.localprom import LocalPrometheus

    parser = cloud_parser(__doc__)
    parser.add_argument("--workloads", type=int, help="replay a random sample of this size")
    parser.add_argument("--workers", type=int, default=6, help="KRR's max_workers")
    parser.add_argument("--step", default="75s", help="KRR's timeframe_duration")
    parser.add_argument("--history", default="14d", help="KRR's history_duration")
    args = parser.parse_args()
    dataset = single_pod_cloud(
        args.agencies, args.workloads_per_agency, args.days, files=args.agencies // 25
    )
    at = dataset.spec.end.timestamp()
    with LocalPrometheus(dataset.data_dir) as server:
        containers = listed_containers(server.url, at=at, history=args.history)
        chosen = sample(containers, args.workloads)
        queries = [
            expr
            for namespace, pod, container in chosen
            for expr in krr_queries(namespace, pod, container, history=args.history, step=args.step)
        ]
        cpu_before, served_before = server_cpu_seconds(server.url), server.query_count()
        started = time.perf_counter()
        answered = replay(server.url, queries, at=at, workers=args.workers)
        wall = time.perf_counter() - started
        cpu = server_cpu_seconds(server.url) - cpu_before
        served = server.query_count() - served_before
    report(
        wall=wall,
        cpu=cpu,
        served=served,
        answered=answered,
        replayed=len(chosen),
        total=len(containers),
    )


def listed_containers(url: str, *, at: float, history: str) -> list[tuple[str, str, str]]:
    """Every (namespace, pod, container) with memory samples in the history: KRR's workloads
    here (single-pod, single-container workloads)."""
    expr = (
        f'max by (namespace, pod, container) (last_over_time({MEMORY}{{container!=""}}[{history}]))'
    )
    rows = query(http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc), expr, at=at)
    return sorted(
        (r["metric"]["namespace"], r["metric"]["pod"], r["metric"]["container"]) for r in rows
    )


def sample(containers: list[tuple[str, str, str]], size: int | None) -> list[tuple[str, str, str]]:
    if size is None or size >= len(containers):
        return containers
    return random.Random(6).sample(containers, size)


def krr_queries(namespace: str, pod: str, container: str, *, history: str, step: str) -> list[str]:
    """The four queries KRR's simple strategy sends for one workload."""
    sel = f'namespace="{namespace}", pod=~"{pod}", container="{container}"'
    cpu, memory = f"{CPU}{{{sel}}}", f"{MEMORY}{{{sel}}}"
    return [
        f"quantile_over_time(0.95, max(rate({cpu}[{step}])) by ({KEYS})[{history}:{step}])",
        f"max_over_time(max({memory}) by ({KEYS})[{history}:{step}])",
        f"count_over_time(max({cpu}) by ({KEYS})[{history}:{step}])",
        f"count_over_time(max({memory}) by ({KEYS})[{history}:{step}])",
    ]


def replay(url: str, queries: list[str], *, at: float, workers: int) -> dict[int, int]:
    """Send ``queries`` with ``workers`` in flight (one kept-alive connection each); the number
    of answers with data, by position of the query in KRR's four."""
    local = threading.local()
    host = urllib.parse.urlsplit(url).netloc

    def send(position: int) -> bool:
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(host)
        return bool(query(local.connection, queries[position], at=at))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        answers = list(pool.map(send, range(len(queries))))
    with_data: dict[int, int] = {kind: 0 for kind in range(4)}
    for position, found in enumerate(answers):
        with_data[position % 4] += found
    return with_data


def query(connection: http.client.HTTPConnection, expr: str, *, at: float) -> list[Any]:
    body = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
    connection.request(
        "POST",
        "/api/v1/query",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    answer = json.loads(connection.getresponse().read())
    if answer.get("status") != "success":
        raise RuntimeError(f"{expr}: {answer}")
    return list(answer["data"]["result"])


def report(
    *, wall: float, cpu: float, served: int, answered: dict[int, int], replayed: int, total: int
) -> None:
    names = ["cpu p95", "memory max", "cpu samples", "memory samples"]
    print(f"workloads replayed: {replayed:,} of {total:,}; queries served: {served:,}")
    print(f"wall {wall:.1f} s; Prometheus CPU {cpu:.1f} s")
    print("answers with data: " + ", ".join(f"{n} {answered[k]:,}" for k, n in enumerate(names)))
    if replayed < total:
        scale = total / replayed
        print(
            f"scaled to all {total:,} workloads: wall {wall * scale:.0f} s, "
            f"Prometheus CPU {cpu * scale:.0f} s, {served * scale:,.0f} queries"
        )


if __name__ == "__main__":
    main()
