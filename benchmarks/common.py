"""What the benchmarks share: the cached single-pod cloud, and a child process that reports
its figures as JSON on its last line (so peak memory is the measured process's own)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from rightsizer.localprom import Dataset, cached_dataset
from rightsizer.simulate import CloudSpec


def single_pod_cloud(
    agencies: int, workloads_per_agency: int, days: float, *, files: int
) -> Dataset:
    """The benchmark cloud (single-pod workloads, no pod-level series), built once."""
    spec = CloudSpec(
        agencies=agencies,
        workloads_per_agency=workloads_per_agency,
        days=days,
        single_pod=True,
        pod_level_series=False,
    )
    started = time.monotonic()
    dataset = cached_dataset(spec, files=max(1, files))
    print(
        f"dataset: {spec.agencies} agencies x {spec.workloads_per_agency} workloads, "
        f"{spec.days:g} days at {spec.interval_seconds}s; ready in "
        f"{time.monotonic() - started:.1f}s ({dataset.root})"
    )
    return dataset


def child_figures(script: str, *arguments: str) -> tuple[list[str], dict[str, Any]]:
    """Run ``script --child ARGUMENTS``: its printed lines and the JSON on its last line."""
    command = [sys.executable, script, "--child", *arguments]
    lines = (
        subprocess.run(command, check=True, capture_output=True, text=True)
        .stdout.strip()
        .splitlines()
    )
    return lines[:-1], json.loads(lines[-1])


def server_cpu_seconds(url: str) -> float:
    """The CPU seconds the server (Prometheus or VictoriaMetrics) has used so far, from its
    own ``process_cpu_seconds_total``: what a cycle costs the backend, beside its wall time."""
    found = server_metrics(url, ("process_cpu_seconds_total",))["process_cpu_seconds_total"]
    if not found:
        raise RuntimeError(f"{url}/metrics has no process_cpu_seconds_total")
    return found[0][1]


def server_queries(url: str) -> float:
    """The queries (instant and range) the server has answered so far, by its own request
    metrics (Prometheus' ``prometheus_http_requests_total``, VictoriaMetrics'
    ``vm_http_requests_total``)."""
    names = ("prometheus_http_requests_total", "vm_http_requests_total")
    found = server_metrics(url, names)
    return sum(
        value
        for name in names
        for labels, value in found[name]
        if 'handler="/api/v1/query' in labels or 'path="/api/v1/query' in labels
    )


def server_metrics(url: str, names: tuple[str, ...]) -> dict[str, list[tuple[str, float]]]:
    """The samples of ``names`` on the server's own ``/metrics``: (labels text, value)."""
    import urllib.request

    found: dict[str, list[tuple[str, float]]] = {name: [] for name in names}
    with urllib.request.urlopen(f"{url.rstrip('/')}/metrics", timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            series, _, value = line.rpartition(" ")
            name, _, labels = series.partition("{")
            if name in found:
                found[name].append((labels, float(value)))
    return found


def cloud_parser(
    description: str | None, *, agencies: int = 300, days: float = 14
) -> argparse.ArgumentParser:
    """The options every benchmark shares: the cloud's size, and the child's connection
    (``--child --url --end``, hidden: the parent passes them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--agencies", type=int, default=agencies)
    parser.add_argument("--workloads-per-agency", type=int, default=50)
    parser.add_argument("--days", type=type(days), default=days)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--end", help=argparse.SUPPRESS)
    return parser
