"""Pure PromQL builders for incremental evaluation: a fixed list per batch of agencies.

- ``live_query`` (instant): what must be fresh every cycle and costs little: samples in the
  last 6 hours (the sample interval), freshness and CPU throttling.
- ``delta_query`` (range, at the CPU resolution step, only over the steps since the last
  cycle): each step's CPU rate (as the full path's subquery reads it) and each step's memory
  peak, sum and count (non-overlapping ranges one millisecond short of the step).
- ``seed_cpu_query`` / ``seed_memory_query`` (range, one point per UTC midnight): each closed
  day's summary, to rebuild the state when there is none.
"""

from __future__ import annotations

from collections.abc import Sequence

from rightsizer.adapters.promql import (
    CADVISOR_FILTER,
    POD_KEYS,
    RECENT,
    Resolution,
    cpu_rate_subquery,
    tagged,
)

CPU = "container_cpu_usage_seconds_total"
MEMORY = "container_memory_working_set_bytes"
DAY_RANGE = "86399s"  # a day without its first instant: consecutive days never share a sample


def _rate(ns: str, resolution: Resolution) -> str:
    return f"sum by ({POD_KEYS}) (rate({CPU}{{{ns},{CADVISOR_FILTER}}}[{resolution.rate_window}]))"


def live_query(ns: str, *, window: str, stale_after: str) -> str:
    sel = f"{{{ns},{CADVISOR_FILTER}}}"
    return tagged(
        {
            "cpu_recent": f"max by ({POD_KEYS}) (count_over_time({CPU}{sel}[{RECENT}]))",
            "mem_fresh": f"max by ({POD_KEYS}) (count_over_time({MEMORY}{sel}[{stale_after}]))",
            "throttled": f"sum by ({POD_KEYS}) (increase("
            f"container_cpu_cfs_throttled_periods_total{sel}[{window}]))"
            f" / sum by ({POD_KEYS}) (increase(container_cpu_cfs_periods_total{sel}[{window}]))",
        }
    )


def delta_query(ns: str, *, resolution: Resolution, step_seconds: int) -> str:
    sel = f"{MEMORY}{{{ns},{CADVISOR_FILTER}}}[{step_seconds * 1000 - 1}ms]"
    return tagged(
        {
            "d_cpu": _rate(ns, resolution),
            "d_mem_max": f"max by ({POD_KEYS}) (max_over_time({sel}))",
            "d_mem_sum": f"max by ({POD_KEYS}) (sum_over_time({sel}))",
            "d_mem_count": f"max by ({POD_KEYS}) (count_over_time({sel}))",
        }
    )


def seed_cpu_query(ns: str, *, resolution: Resolution, levels: Sequence[float]) -> str:
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
    return tagged(parts)


def seed_memory_query(ns: str, *, levels: Sequence[float] | None) -> str:
    sel = f"{MEMORY}{{{ns},{CADVISOR_FILTER}}}[{DAY_RANGE}]"
    parts = {
        "s_mem_max": f"max by ({POD_KEYS}) (max_over_time({sel}))",
        "s_mem_sum": f"max by ({POD_KEYS}) (sum_over_time({sel}))",
        "s_mem_count": f"max by ({POD_KEYS}) (count_over_time({sel}))",
    }
    for i, q in enumerate(levels or ()):
        parts[f"s_mem_q{i}"] = f"max by ({POD_KEYS}) (quantile_over_time({q:g}, {sel}))"
    return tagged(parts)
