"""The reference strategies reproduce their published arithmetic on hand-computed series."""

import math

import numpy as np
import pytest

from rightsizer.backtest.references import (
    CPU_HISTOGRAM,
    MEMORY_HISTOGRAM,
    daily_peaks,
    decay_weights,
    krr_like,
    oracle,
    vpa_like,
)

DAY = 86400.0


def test_histogram_buckets_grow_by_five_percent_from_ten_millicores() -> None:
    # bucket i starts at 0.01 * (1.05^i - 1) / 0.05: 0, 0.01, 0.0205, 0.031525, ...
    assert [round(CPU_HISTOGRAM.start(i), 6) for i in range(4)] == [0.0, 0.01, 0.0205, 0.031525]
    assert CPU_HISTOGRAM.bucket(np.array([0.0, 0.009, 0.01, 0.02, 0.021])).tolist() == [
        0,
        0,
        1,
        1,
        2,
    ]


def test_percentile_is_the_upper_edge_of_the_bucket_reached() -> None:
    # 0.5 cores: 0.5 * 0.05 / 0.01 + 1 = 3.5; log(3.5)/log(1.05) = 25.68 -> bucket 25,
    # whose upper edge is 0.01 * (1.05^26 - 1) / 0.05 = 0.511135
    values = np.full(100, 0.5)
    edge = CPU_HISTOGRAM.percentile(values, np.ones(100), 0.9)
    assert edge == pytest.approx(0.01 * (1.05**26 - 1) / 0.05)
    assert edge == pytest.approx(0.511135, abs=1e-6)


def test_decay_halves_the_weight_every_24_hours() -> None:
    now = 10 * DAY
    weights = decay_weights(np.array([now, now - DAY, now - 2 * DAY]), now)
    assert weights.tolist() == pytest.approx([1.0, 0.5, 0.25])


def test_recent_samples_outweigh_old_ones() -> None:
    # 1 core a day ago (weight 1/2), 0.1 core now (weight 1): 90% of 1.5 = 1.35 falls in
    # the 1-core bucket (36, edge 0.2 * (1.05^37 - 1) = 1.01762); 50% (0.75) in the 0.1-core
    # bucket (8, edge 0.2 * (1.05^9 - 1) = 0.110266)
    now = 5 * DAY
    times, values = np.array([now - DAY, now]), np.array([1.0, 0.1])
    weights = decay_weights(times, now)
    p90 = CPU_HISTOGRAM.percentile(values, weights, 0.9)
    p50 = CPU_HISTOGRAM.percentile(values, weights, 0.5)
    assert p90 == pytest.approx(0.2 * (1.05**37 - 1))
    assert p50 == pytest.approx(0.2 * (1.05**9 - 1))


def test_vpa_like_adds_a_15_percent_margin_and_respects_minimums() -> None:
    now = 14 * DAY
    times = np.arange(0, now, 600.0)
    cpu = np.full(times.size, 0.5)
    day_times, peaks = daily_peaks(times, np.full(times.size, 2.0 * 2**30))
    cpu_target, memory_target = vpa_like(times, cpu, day_times, peaks, now=now)
    assert cpu_target == pytest.approx(0.511135 * 1.15, rel=1e-5)
    memory_edge = MEMORY_HISTOGRAM.percentile(peaks, np.ones(peaks.size), 0.9)
    assert memory_edge is not None
    assert memory_target == pytest.approx(memory_edge * 1.15)
    tiny_cpu, tiny_memory = vpa_like(
        times, np.full(times.size, 0.001), day_times, np.full(peaks.size, 1e6), now=now
    )
    assert tiny_cpu == pytest.approx(0.025)  # VPA's minimum
    assert tiny_memory == pytest.approx(250 * 2**20)


def test_krr_like_is_cpu_p95_and_memory_max_plus_15_percent() -> None:
    cpu = np.arange(1, 101, dtype=float)  # 1..100: the 95th percentile (linear) is 95.05
    memory = np.array([100.0, 200.0, 150.0])
    assert krr_like(cpu, memory) == pytest.approx((95.05, 230.0))


def test_oracle_is_the_future_p99_and_maximum() -> None:
    cpu = np.arange(1, 101, dtype=float)  # p99 (linear) = 99.01
    assert oracle(cpu, np.array([5.0, 9.0])) == pytest.approx((99.01, 9.0))
    assert oracle(np.empty(0), np.empty(0)) == (None, None)


def test_daily_peaks_take_each_utc_day_maximum() -> None:
    times = np.array([0.5 * DAY, 0.9 * DAY, 1.2 * DAY, 2.7 * DAY])
    ends, peaks = daily_peaks(times, np.array([3.0, 7.0, 1.0, 4.0]))
    assert ends.tolist() == [DAY, 2 * DAY, 3 * DAY]
    assert peaks.tolist() == [7.0, 1.0, 4.0]
    assert math.isfinite(float(peaks.sum()))
