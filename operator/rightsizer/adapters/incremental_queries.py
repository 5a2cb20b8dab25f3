"""Pure PromQL builders for incremental evaluation: a fixed list per batch of agencies, each
a dict of parts, sent as one query per part (measured: Prometheus joins parts merged with
``or`` step by step, which made a one-hour delta five times dearer than its parts alone).

- ``live_parts`` (instant): what must be fresh every cycle and costs little: samples in the
  last 6 hours (the sample interval) and freshness.
- ``delta_parts`` (range, at the CPU resolution step, only over the steps since the last
  cycle): each step's CPU rate (as the full path's subquery reads it), each step's memory
  peak, sum and count, and each step's throttled and total CFS periods (non-overlapping
  ranges one millisecond short of the step).
- ``seed_cpu_parts`` / ``seed_memory_parts`` (range, one point per UTC midnight): each closed
  day's summary, to rebuild the state when there is none (the memory query also carries the
  day's throttled and total CFS periods).

CPU throttling is kept in the state as sums of periods, so no query scans the whole window
each cycle; the window's ratio is Σ throttled / Σ periods, as the full path's ``increase``.
"""

from __future__ import annotations

from collections.abc import Sequence

from rightsizer.adapters.promql import (
    CADVISOR_FILTER,
    POD_KEYS,
    RECENT,
    Resolution,
    cpu_rate_subquery,
)

CPU = "container_cpu_usage_seconds_total"
MEMORY = "container_memory_working_set_bytes"
THROTTLED = "container_cpu_cfs_throttled_periods_total"
PERIODS = "container_cpu_cfs_periods_total"
DAY_RANGE = "86399s"  # a day without its first instant: consecutive days never share a sample


def _rate(ns: str, resolution: Resolution) -> str:
    return f"sum by ({POD_KEYS}) (rate({CPU}{{{ns},{CADVISOR_FILTER}}}[{resolution.rate_window}]))"


def _increase(metric: str, ns: str, span: str) -> str:
    return f"sum by ({POD_KEYS}) (increase({metric}{{{ns},{CADVISOR_FILTER}}}[{span}]))"


def live_parts(ns: str, *, stale_after: str) -> dict[str, str]:
    sel = f"{{{ns},{CADVISOR_FILTER}}}"
    return {
        "cpu_recent": f"max by ({POD_KEYS}) (count_over_time({CPU}{sel}[{RECENT}]))",
        "mem_fresh": f"max by ({POD_KEYS}) (count_over_time({MEMORY}{sel}[{stale_after}]))",
    }


def delta_parts(ns: str, *, resolution: Resolution, step_seconds: int) -> dict[str, str]:
    span = f"{step_seconds * 1000 - 1}ms"
    sel = f"{MEMORY}{{{ns},{CADVISOR_FILTER}}}[{span}]"
    return {
        "d_cpu": _rate(ns, resolution),
        "d_mem_max": f"max by ({POD_KEYS}) (max_over_time({sel}))",
        "d_mem_sum": f"max by ({POD_KEYS}) (sum_over_time({sel}))",
        "d_mem_count": f"max by ({POD_KEYS}) (count_over_time({sel}))",
        "d_thr": _increase(THROTTLED, ns, span),
        "d_per": _increase(PERIODS, ns, span),
    }


def seed_cpu_parts(ns: str, *, resolution: Resolution, levels: Sequence[float]) -> dict[str, str]:
    """Each day's CPU summary, taken per series and then per container (as the full path's
    ``cpu_stat_query``: no aggregation inside the subquery, half of Prometheus' work)."""
    steps = cpu_rate_subquery(ns, window=DAY_RANGE, resolution=resolution)
    parts = {
        f"s_cpu_q{i}": f"max by ({POD_KEYS}) (quantile_over_time({q:g}, {steps}))"
        for i, q in enumerate(levels)
    }
    parts.update(
        {
            "s_cpu_max": f"max by ({POD_KEYS}) (max_over_time({steps}))",
            "s_cpu_sum": f"sum by ({POD_KEYS}) (sum_over_time({steps}))",
            "s_cpu_count": f"sum by ({POD_KEYS}) (count_over_time({steps}))",
        }
    )
    return parts


def seed_memory_parts(ns: str, *, levels: Sequence[float] | None) -> dict[str, str]:
    """Each day's memory summary, and the day's throttled and total CFS periods (in this
    query rather than one of their own: one query less per rebuilding batch)."""
    sel = f"{MEMORY}{{{ns},{CADVISOR_FILTER}}}[{DAY_RANGE}]"
    parts = {
        "s_mem_max": f"max by ({POD_KEYS}) (max_over_time({sel}))",
        "s_mem_sum": f"max by ({POD_KEYS}) (sum_over_time({sel}))",
        "s_mem_count": f"max by ({POD_KEYS}) (count_over_time({sel}))",
        "s_thr": _increase(THROTTLED, ns, DAY_RANGE),
        "s_per": _increase(PERIODS, ns, DAY_RANGE),
    }
    for i, q in enumerate(levels or ()):
        parts[f"s_mem_q{i}"] = f"max by ({POD_KEYS}) (quantile_over_time({q:g}, {sel}))"
    return parts
