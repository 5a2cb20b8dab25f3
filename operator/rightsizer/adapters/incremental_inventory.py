"""The inventory kept in the incremental state, so a steady cycle reads only what is new.

The full path reads the inventory (owners, projects, requests, limits, replicas, PVCs, OOM
kills, restarts) with ``last_over_time`` over the whole window: 14 days of kube-state-metrics
in every cycle, most of a steady cycle's Prometheus time. Here each kept row (its labels,
value and the time it was last seen) lives in the agency's state; a steady cycle asks for
the same parts over the time since the state's end only and merges them: a row seen again
takes the new value, a row not seen since the window's start is forgotten. A rebuild reads
them once per UTC midnight over the window (``seed_parts``).

Restarts are a counter: the state keeps each container's last value and the increases per
UTC day (a reset counts its new value), and the window's restarts are the sum of the days
that overlap it. What must be fresh every cycle and costs little is read fresh: the pods
alive now, the HPAs (both over ``staleAfter``) and the largest node.

Tolerance: a kept row counts as seen at the end of the cycle that read it, so a series that
stopped reporting stays in the window up to one cycle longer than the full path keeps it;
restarts before the window's first midnight are not counted.
"""

from __future__ import annotations

from rightsizer.adapters.assemble import BatchSeries, Instant, Labels, Ranged
from rightsizer.adapters.promql import PART, POD_KEYS, inventory_parts
from rightsizer.adapters.statecodec import KeptInventory, LabelKey, label_key
from rightsizer.core.sketch import DAY_SECONDS

KEPT = (  # kept in the state, merged each cycle
    "pod_owner",
    "rs_owner",
    "job_owner",
    "pod_project",
    "request",
    "limit",
    "replicas",
    "pvc",
    "oom",
)
# read each cycle as they are: over staleAfter (cheap, and must be current), and the node
FRESH = ("alive", "hpa", "hpa_metric", "node")
COUNTER = "i_restarts"  # the restart counter's last value, per container
RESTARTS = "kube_pod_container_status_restarts_total"


def delta_parts(
    ns: str, *, span_seconds: int, window: str, stale_after: str, project_label: str
) -> dict[str, str]:
    """Instant, at the cycle's end: the kept parts over the time since the state's end, the
    fresh parts, the largest node over the window, and the restart counters."""
    span = f"{max(1, span_seconds)}s"
    recent = inventory_parts(ns, window=span, stale_after=stale_after, project_label=project_label)
    whole = inventory_parts(ns, window=window, stale_after=stale_after, project_label=project_label)
    parts = {name: recent[name] for name in (*KEPT, *FRESH)}
    parts["node"] = whole["node"]  # cluster-wide, over the window: a few series
    parts[COUNTER] = _counter(ns, span)
    return parts


def seed_parts(ns: str, *, project_label: str) -> dict[str, str]:
    """Range, one point per UTC midnight: the kept parts over the day before it, and the
    restart counters' last values."""
    day = f"{DAY_SECONDS}s"
    whole = inventory_parts(ns, window=day, stale_after=day, project_label=project_label)
    parts = {name: whole[name] for name in KEPT}
    parts[COUNTER] = _counter(ns, day)
    return parts


def _counter(ns: str, span: str) -> str:
    return f"max by ({POD_KEYS}) (last_over_time({RESTARTS}{{{ns}}}[{span}]))"


def seed(kept: KeptInventory, rows: Ranged) -> None:
    """Rows of ``seed_parts`` (one point per midnight) into ``kept``."""
    for labels, points in rows:
        if not points:
            continue
        ordered = sorted(points)
        if labels.get(PART) == COUNTER:
            for at, value in ordered:
                _count(kept, labels, value, at=at, day=int(at // DAY_SECONDS) - 1)
        else:
            at, value = ordered[-1]
            kept.rows[label_key(labels)] = (labels, value, at)


def fold(kept: KeptInventory, rows: Instant, *, at: float) -> None:
    """Rows of ``delta_parts`` (kept parts and counters only) read at ``at`` into ``kept``."""
    day = int(at // DAY_SECONDS)
    for labels, value in rows:
        part = labels.get(PART)
        if part == COUNTER:
            _count(kept, labels, value, at=at, day=day)
        elif part in KEPT:
            kept.rows[label_key(labels)] = (labels, value, at)


def _count(kept: KeptInventory, labels: Labels, value: float, *, at: float, day: int) -> None:
    key = label_key(labels)
    before = kept.counters.get(key)
    kept.counters[key] = (labels, value, at)
    if before is None:
        return  # its first value: the full path's ``increase`` does not count it either
    increase = value if value < before[1] else value - before[1]  # a reset counts anew
    if increase > 0:
        days = kept.restarts.setdefault(key, {})
        days[day] = days.get(day, 0.0) + increase


def forget(kept: KeptInventory, start: float) -> None:
    """Drop what was last seen before the window's ``start``."""
    kept.rows = {k: v for k, v in kept.rows.items() if v[2] > start}
    kept.counters = {k: v for k, v in kept.counters.items() if v[2] > start}
    first_day = start // DAY_SECONDS  # the day the window starts in still counts
    restarts: dict[LabelKey, dict[int, float]] = {}
    for key, days in kept.restarts.items():
        left = {d: n for d, n in days.items() if d >= first_day}
        if left and key in kept.counters:
            restarts[key] = left
    kept.restarts = restarts


def emit(kept: KeptInventory, series: BatchSeries) -> None:
    """The kept rows as the full path's inventory query returns them."""
    for labels, value, _ in kept.rows.values():
        series.instant[labels[PART]].append((labels, value))
    restarts = series.instant["restarts"]
    for key, (labels, _, _) in kept.counters.items():
        days = kept.restarts.get(key)
        restarts.append(({**labels, PART: "restarts"}, sum(days.values()) if days else 0.0))


def is_fresh(part: str) -> bool:
    """Parts of ``delta_parts`` that go to the evaluation as they are, not into the state."""
    return part in FRESH
