"""Reference strategies for backtests: small, documented reimplementations, labelled as such.

VPA-like (after the Kubernetes Vertical Pod Autoscaler recommender, not the real thing):
  CPU: every sample goes into a histogram with exponential buckets (first bucket 0.01 cores,
  each 5% wider), weighted by 2^(age / 24h half-life) so recent samples count more; the
  target is the 90th percentile, reported as the upper edge of its bucket, plus a 15% margin.
  Memory: the same for each day's peak (first bucket 1e7 bytes). Minimums: 25m CPU, 250Mi.
KRR-like (after robusta-dev/krr's "simple" strategy): CPU request = the 95th percentile of
  the samples; memory request (and limit) = the maximum + 15%.
Oracle: hindsight, the ceiling no strategy can beat: the replay window's own CPU p99 and
  memory maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.floating]
HALF_LIFE_SECONDS = 24 * 3600.0
VPA_MARGIN = 0.15
VPA_MIN_CPU = 0.025
VPA_MIN_MEMORY = 250 * 2**20
KRR_MEMORY_BUFFER = 0.15


@dataclass(frozen=True)
class Histogram:
    """Exponential buckets: bucket i spans [first * (ratio^i - 1) / (ratio - 1), ...)."""

    first_bucket: float
    ratio: float = 1.05

    def bucket(self, values: Floats) -> npt.NDArray[np.int64]:
        scaled = np.maximum(values, 0) * (self.ratio - 1) / self.first_bucket + 1
        # + 1e-9: a value on a bucket's edge belongs to the bucket it starts (float error)
        return np.floor(np.log(scaled) / math.log(self.ratio) + 1e-9).astype(np.int64)

    def start(self, index: int) -> float:
        return self.first_bucket * (self.ratio**index - 1) / (self.ratio - 1)

    def percentile(self, values: Floats, weights: Floats, q: float) -> float | None:
        """VPA's rule: the upper edge of the bucket where the cumulative weight reaches q."""
        if values.size == 0 or float(weights.sum()) <= 0:
            return None
        buckets = self.bucket(values)
        totals = np.bincount(buckets, weights=weights)
        cumulative = np.cumsum(totals)
        index = int(np.searchsorted(cumulative, q * cumulative[-1] - 1e-12))
        return self.start(index + 1)


CPU_HISTOGRAM = Histogram(first_bucket=0.01)
MEMORY_HISTOGRAM = Histogram(first_bucket=1e7)


def decay_weights(times: Floats, now: float, half_life: float = HALF_LIFE_SECONDS) -> Floats:
    """2^((t - now) / half-life): 1 for a sample at ``now``, 1/2 a half-life earlier."""
    weights: Floats = np.exp2((times - now) / half_life)
    return weights


def vpa_like(
    cpu_times: Floats, cpu: Floats, day_times: Floats, day_peaks: Floats, *, now: float
) -> tuple[float | None, float | None]:
    """(CPU request, memory request) in cores and bytes."""
    cpu_p90 = CPU_HISTOGRAM.percentile(cpu, decay_weights(cpu_times, now), 0.9)
    memory_p90 = MEMORY_HISTOGRAM.percentile(day_peaks, decay_weights(day_times, now), 0.9)
    cpu_target = None if cpu_p90 is None else max(cpu_p90 * (1 + VPA_MARGIN), VPA_MIN_CPU)
    memory_target = (
        None if memory_p90 is None else max(memory_p90 * (1 + VPA_MARGIN), VPA_MIN_MEMORY)
    )
    return cpu_target, memory_target


def krr_like(cpu: Floats, memory: Floats) -> tuple[float | None, float | None]:
    cpu_target = float(np.percentile(cpu, 95)) if cpu.size else None
    memory_target = float(memory.max()) * (1 + KRR_MEMORY_BUFFER) if memory.size else None
    return cpu_target, memory_target


def oracle(cpu: Floats, memory: Floats) -> tuple[float | None, float | None]:
    cpu_target = float(np.percentile(cpu, 99)) if cpu.size else None
    memory_target = float(memory.max()) if memory.size else None
    return cpu_target, memory_target


def daily_peaks(times: Floats, values: Floats, *, day: float = 86400.0) -> tuple[Floats, Floats]:
    """Each calendar day's (UTC) peak and the day's end time."""
    if values.size == 0:
        return np.empty(0), np.empty(0)
    days = np.floor(times / day).astype(np.int64)
    unique, inverse = np.unique(days, return_inverse=True)
    peaks = np.full(unique.size, -np.inf)
    np.maximum.at(peaks, inverse, values)
    return (unique + 1) * day, peaks
