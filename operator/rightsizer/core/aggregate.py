"""From per-pod statistics to a workload's per-container statistics.

Metrics come per pod; a workload's container is every pod's copy of it over the window
(replicas, and old pods before a rollout). Averages and percentiles are weighted by how
long each pod ran, maxima are the largest, daily series are merged day by day, and the
history is the number of days with any data.
"""

from __future__ import annotations

from collections.abc import Sequence

from rightsizer.core.model import Frozen, ResourceStats, trusted


class PodStats(Frozen):
    """One pod's container's statistics for one resource, as read from the metrics."""

    values: dict[str, float]
    samples: int
    seconds: float  # how long the pod ran within the window
    daily_peaks: dict[int, float] = {}  # day index (0 = oldest day of the window) -> value
    daily_totals: dict[int, float] = {}  # e.g. CPU seconds used that day


def estimate_interval(
    recent_counts: Sequence[float], recent_seconds: float, *, fallback: float
) -> float:
    """The sample interval, from the series with the most samples over a recent span.

    A span holds span/interval samples, or one more when both of its ends fall on a sample
    (Prometheus 2 ranges are closed): dividing by count - 0.5 keeps the error within half
    a sample either way (under 1% for a 5-minute interval over 6 hours).
    """
    most = max((count for count in recent_counts if count >= 2), default=0.0)
    return recent_seconds / (most - 0.5) if most else fallback


def combine(pods: Sequence[PodStats], *, days: int) -> ResourceStats:
    """One container's statistics across all of its pods."""
    weights = [max(pod.seconds, 1.0) for pod in pods]
    total_weight = sum(weights)
    values: dict[str, float] = {}
    names = {name for pod in pods for name in pod.values}
    for name in names:
        present = [
            (pod.values[name], w)
            for pod, w in zip(pods, weights, strict=True)
            if name in pod.values
        ]
        if name == "max":
            values[name] = max(value for value, _ in present)
        else:
            weight = sum(w for _, w in present)
            values[name] = sum(value * w for value, w in present) / weight
    peaks = _merge_days(pods, days, peaks=True)
    means = _merge_days(pods, days, peaks=False)
    covered = {day for pod in pods for day in (*pod.daily_peaks, *pod.daily_totals)}
    history = float(len(covered)) if covered else min(total_weight / 86400.0, float(days))
    return trusted(
        ResourceStats,
        values=values,
        samples=sum(pod.samples for pod in pods),
        history_days=history,
        daily_peaks=peaks,
        daily_means=means,
    )


def _merge_days(pods: Sequence[PodStats], days: int, *, peaks: bool) -> tuple[float, ...]:
    """Per day: the largest peak, or the per-pod mean of the day's totals (per second)."""
    if len(pods) == 1:  # most workloads: one pod's days, as they are
        [pod] = pods
        found_one = sorted((pod.daily_peaks if peaks else pod.daily_totals).items())
        return tuple(
            value if peaks else value / 86400.0 for day, value in found_one if 0 <= day < days
        )
    found: dict[int, list[float]] = {}
    for pod in pods:
        for day, value in (pod.daily_peaks if peaks else pod.daily_totals).items():
            if 0 <= day < days:
                found.setdefault(day, []).append(value)
    return tuple(
        max(values) if peaks else sum(values) / len(values) / 86400.0
        for _, values in sorted(found.items())
    )
