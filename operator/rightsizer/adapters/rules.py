"""Recording rules that pre-aggregate what the evaluation reads, and the queries reading them.

One source of truth: ``charts/rightsizer/templates/prometheusrule.yaml`` (a
``PrometheusRule`` for the Prometheus Operator) and ``charts/rightsizer/files/recording-rules.yaml``
(a plain rules file) are generated from ``RULES`` by ``rightsizer.adapters.rulesgen``.

The rules drop cAdvisor's extra labels (``id``, ``image``, ``name``, ``instance``...) and
evaluate the CPU rate once per interval, so the 14-day CPU subquery becomes a plain read of
one recorded sample every 10 minutes. They are evaluated every ``INTERVAL``, which equals the
default ``Resolution`` (a rate over 10 minutes, read every 10 minutes): the recorded
percentiles are then the subquery's, up to the rule group's evaluation offset.

Recorded series are only used when they cover the whole window (``coverage_query``); a rule
installed yesterday cannot answer for 14 days, so the plan falls back to raw series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from rightsizer.adapters import promql
from rightsizer.core.policy import duration_seconds

GROUP = "rightsizer.rules"
INTERVAL = "10m"  # = Resolution().step = Resolution().rate_window
RESOLUTION = promql.Resolution(step=INTERVAL, rate_window=INTERVAL)
CPU_RATE = "rightsizer:container_cpu_usage_cores:rate10m"
MEMORY_MAX = "rightsizer:container_memory_working_set_bytes:max10m"
MEMORY_AVG = "rightsizer:container_memory_working_set_bytes:avg10m"
Mode = Literal["auto", "on", "off"]
MODES: tuple[Mode, ...] = ("auto", "on", "off")


@dataclass(frozen=True)
class Rule:
    record: str
    expr: str
    reads: str  # what the evaluation reads from it (documentation in the generated files)


def _cadvisor(metric: str) -> str:
    return f"{metric}{{{promql.CADVISOR_FILTER}}}"


RULES: tuple[Rule, ...] = (
    Rule(
        CPU_RATE,
        f"sum by ({promql.POD_KEYS}) "
        f"(rate({_cadvisor('container_cpu_usage_seconds_total')}[{INTERVAL}]))",
        "CPU percentiles and maximum (replaces the rate subquery)",
    ),
    Rule(
        MEMORY_MAX,
        f"max by ({promql.POD_KEYS}) "
        f"(max_over_time({_cadvisor('container_memory_working_set_bytes')}[{INTERVAL}]))",
        "memory peak over the window and per day",
    ),
    Rule(
        MEMORY_AVG,
        f"max by ({promql.POD_KEYS}) "
        f"(avg_over_time({_cadvisor('container_memory_working_set_bytes')}[{INTERVAL}]))",
        "memory average over the window",
    ),
)


def rule_groups() -> dict[str, object]:
    """The rules as Prometheus' rule-file document (``groups:``)."""
    return {
        "groups": [
            {
                "name": GROUP,
                "interval": INTERVAL,
                "rules": [{"record": rule.record, "expr": rule.expr} for rule in RULES],
            }
        ]
    }


# -- which series a collection reads -------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Whether a collection reads the recorded series, and why (shown in notes and logs)."""

    recorded: bool
    reason: str

    @property
    def note(self) -> str:
        kind = "recorded series" if self.recorded else "raw series"
        return f"recording rules: {kind} ({self.reason})"


def coverage_query(*, window: str) -> str:
    """How many recorded series have a sample at the window's start and at its end.

    Two short reads per rule (two intervals each), whatever the window or the cluster size.
    """
    span = 2 * duration_seconds(INTERVAL)
    back = max(0.0, duration_seconds(window) - span)
    parts: dict[str, str] = {}
    for rule in RULES:
        reach = f"last_over_time({rule.record}[{span:.0f}s]"
        parts[f"start {rule.record}"] = f"count({reach} offset {back:.0f}s))"
        parts[f"end {rule.record}"] = f"count({reach}))"
    return promql.tagged(parts)


def plan_from_coverage(counts: Mapping[str, float], *, window: str) -> Plan:
    """Recorded series only if every rule has samples at both ends of the window."""
    missing = [
        f"{edge} {rule.record}"
        for rule in RULES
        for edge in ("start", "end")
        if counts.get(f"{edge} {rule.record}", 0.0) <= 0
    ]
    if not missing:
        return Plan(True, f"they cover the {window} window")
    if not any(value > 0 for value in counts.values()):
        return Plan(False, "no recorded series: the rules are not installed")
    return Plan(False, f"they do not cover the {window} window (none at the {_edges(missing)})")


def _edges(missing: Sequence[str]) -> str:
    edges = sorted({item.split(" ", 1)[0] for item in missing}, reverse=True)
    return " and ".join(edges)


def plan_for(mode: Mode, resolution: promql.Resolution) -> Plan | None:
    """The plan decided without asking Prometheus, or None when it must be probed."""
    if mode == "off":
        return Plan(False, "turned off")
    if resolution != RESOLUTION:
        return Plan(False, f"the CPU resolution differs from the rules' {INTERVAL}")
    if mode == "on":
        return Plan(True, "turned on")
    return None


# -- the queries reading them ------------------------------------------------------------


def cpu_stat_query(ns: str, *, stat: str, window: str) -> str:
    """A CPU percentile or maximum, read from the recorded rate (no subquery)."""
    sel = f"{CPU_RATE}{{{ns}}}[{window}]"
    if stat == "max":
        return f"max_over_time({sel})"
    quantile = promql.quantile_of(stat)
    if quantile is None:
        raise ValueError(f"no recorded CPU series for stat {stat!r}")
    return f"quantile_over_time({quantile:g}, {sel})"


_RECORDED_MEMORY = {"max": ("max_over_time", MEMORY_MAX), "avg": ("avg_over_time", MEMORY_AVG)}


def memory_query(ns: str, *, window: str, stale_after: str, stats: Sequence[str]) -> str:
    """As ``promql.memory_query``; the average and maximum come from the recorded series
    (sample counts and percentiles still from the raw series)."""
    sel = f"container_memory_working_set_bytes{{{ns},{promql.CADVISOR_FILTER}}}"
    keys = promql.POD_KEYS
    parts = {
        "mem_samples": f"max by ({keys}) (count_over_time({sel}[{window}]))",
        "mem_fresh": f"max by ({keys}) (count_over_time({sel}[{stale_after}]))",
    }
    for stat in sorted(set(stats)):
        if stat in _RECORDED_MEMORY:
            function, record = _RECORDED_MEMORY[stat]
            parts[f"memstat_{stat}"] = f"max by ({keys}) ({function}({record}{{{ns}}}[{window}]))"
        else:
            parts[f"memstat_{stat}"] = promql.memory_stat_expr(sel, stat=stat, window=window)
    return promql.tagged(parts)


def daily_query(ns: str) -> str:
    """As ``promql.daily_query``; each day's memory peak from the recorded maxima."""
    keys = promql.POD_KEYS
    return promql.tagged(
        {
            "mem_day_peak": f"max by ({keys}) (max_over_time({MEMORY_MAX}{{{ns}}}[1d]))",
            "cpu_day_seconds": f"sum by ({keys}) (increase(container_cpu_usage_seconds_total"
            f"{{{ns},{promql.CADVISOR_FILTER}}}[1d]))",
        }
    )
