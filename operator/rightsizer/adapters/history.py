"""Raw usage history for backtests: per pod and container, CPU and memory on a time grid.

Two range queries per batch of namespaces and time chunk (CPU rate, memory peak), plus one
owner query per batch: the count grows with agencies and time, never with workloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from rightsizer.adapters import promql
from rightsizer.adapters.assemble import BatchSeries, owners
from rightsizer.adapters.prometheus import PrometheusSource
from rightsizer.core.model import WorkloadRef

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]
MAX_POINTS_PER_QUERY = 10_000  # Prometheus refuses more than 11,000 points per series


@dataclass(frozen=True)
class Grid:
    start: float  # unix seconds of the first point
    step: int  # seconds
    points: int

    def index(self, moment: datetime) -> int:
        return round((moment.timestamp() - self.start) / self.step)

    def time(self, index: int) -> float:
        return self.start + index * self.step


@dataclass
class PodSeries:
    """One pod's copy of a container, from grid index ``offset`` on (NaN where it did not
    run): kept only over the pod's own life, so short-lived pods cost little."""

    pod: str
    offset: int
    cpu: FloatArray  # cores, the average over each step
    memory: FloatArray  # bytes, the peak within each step

    def window(self, first: int, last: int) -> tuple[FloatArray, FloatArray]:
        """Values for grid indexes [first, last), clipped to the pod's life."""
        low = max(first - self.offset, 0)
        high = max(min(last - self.offset, len(self.cpu)), low)
        return self.cpu[low:high], self.memory[low:high]


@dataclass
class UsageHistory:
    grid: Grid
    containers: dict[tuple[WorkloadRef, str], list[PodSeries]] = field(default_factory=dict)


def fetch_history(
    source: PrometheusSource,
    namespaces: Sequence[str],
    *,
    start: datetime,
    end: datetime,
    resolution_seconds: int = 600,
) -> UsageHistory:
    """CPU and memory of every container in ``namespaces`` from ``start`` to ``end``."""
    points = int((end - start).total_seconds() // resolution_seconds) + 1
    grid = Grid(start=start.timestamp(), step=resolution_seconds, points=points)
    ns = promql.namespace_matcher(namespaces)
    selector = f"{{{ns},{promql.CADVISOR_FILTER}}}"
    window = f"{resolution_seconds}s"
    queries = {
        "cpu": f"sum by ({promql.POD_KEYS}) (rate(container_cpu_usage_seconds_total"
        f"{selector}[{window}]))",
        "memory": f"max by ({promql.POD_KEYS}) (max_over_time(container_memory_working_set_bytes"
        f"{selector}[{window}]))",
    }
    pieces: dict[tuple[str, str, str], dict[str, list[tuple[IntArray, FloatArray]]]] = {}
    for name, expr in queries.items():
        for chunk_start, chunk_end in _chunks(start, end, resolution_seconds):
            rows = source.query_range_rows(
                expr, start=chunk_start, end=chunk_end, step_seconds=resolution_seconds
            )
            for row in rows:
                labels = row["metric"]
                key = (
                    labels.get("namespace", ""),
                    labels.get("pod", ""),
                    labels.get("container", ""),
                )
                placed = _place(row["values"], grid)
                if placed is not None:
                    pieces.setdefault(key, {}).setdefault(name, []).append(placed)
    series = {key: _trim(parts) for key, parts in pieces.items() if len(parts) == 2}
    return UsageHistory(
        grid=grid, containers=_by_workload(source, ns, series, start=start, end=end)
    )


def _trim(
    parts: dict[str, list[tuple[IntArray, FloatArray]]],
) -> tuple[int, FloatArray, FloatArray]:
    """Both metrics on the pod's own stretch of the grid."""
    indexes = np.concatenate([i for chunks in parts.values() for i, _ in chunks])
    low, high = int(indexes.min()), int(indexes.max()) + 1
    arrays = []
    for name in ("cpu", "memory"):
        values = np.full(high - low, np.nan, dtype=np.float32)
        for index, data in parts[name]:
            values[index - low] = data
        arrays.append(values)
    return low, arrays[0], arrays[1]


def _chunks(start: datetime, end: datetime, step: int) -> list[tuple[datetime, datetime]]:
    span = timedelta(seconds=step * MAX_POINTS_PER_QUERY)
    found, cursor = [], start
    while cursor <= end:
        last = min(end, cursor + span - timedelta(seconds=step))
        found.append((cursor, last))
        cursor = last + timedelta(seconds=step)
    return found


def _place(values: list[list[object]], grid: Grid) -> tuple[IntArray, FloatArray] | None:
    if not values:
        return None
    count = len(values)
    times = np.fromiter((float(v[0]) for v in values), dtype=np.float64, count=count)  # type: ignore[arg-type]
    data = np.fromiter((float(v[1]) for v in values), dtype=np.float32, count=count)  # type: ignore[arg-type]
    index = np.rint((times - grid.start) / grid.step).astype(np.int32)
    keep = (index >= 0) & (index < grid.points)
    return index[keep], data[keep]


def _by_workload(
    source: PrometheusSource,
    ns: str,
    series: dict[tuple[str, str, str], tuple[int, FloatArray, FloatArray]],
    *,
    start: datetime,
    end: datetime,
) -> dict[tuple[WorkloadRef, str], list[PodSeries]]:
    span = f"{int((end - start).total_seconds()) + 3600}s"
    expr = promql.tagged(
        {
            "pod_owner": "max by (namespace, pod, owner_kind, owner_name) "
            f"(last_over_time(kube_pod_owner{{{ns}}}[{span}]))",
            "rs_owner": "max by (namespace, replicaset, owner_kind, owner_name) "
            f"(last_over_time(kube_replicaset_owner{{{ns}}}[{span}]))",
            "job_owner": "max by (namespace, job_name, owner_kind, owner_name) "
            f"(last_over_time(kube_job_owner{{{ns}}}[{span}]))",
        }
    )
    batch = BatchSeries()
    for labels, value in source.query(expr, at=end):
        part = labels.get(promql.PART)
        if part:
            batch.instant[part].append((labels, value))
    workload_of = owners(batch)
    grouped: dict[tuple[WorkloadRef, str], list[PodSeries]] = {}
    for (namespace, pod, container), (offset, cpu, memory) in sorted(series.items()):
        ref = workload_of.get((namespace, pod))
        if ref is not None:
            grouped.setdefault((ref, container), []).append(
                PodSeries(pod=pod, offset=offset, cpu=cpu, memory=memory)
            )
    return grouped
