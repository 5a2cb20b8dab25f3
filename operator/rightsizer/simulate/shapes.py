"""Usage shapes: utilisation (usage / request) over time, and what each shape should score.

Every generator returns utilisation per sample, where a sample describes the interval that
ends at its timestamp. Noise is bounded (uniform), so the statistics stay inside their
ranges for every seed; ``tests/unit/test_simulate.py`` checks them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rightsizer.simulate.spec import DAY, SHANGHAI_OFFSET, IntArray

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
HOUR = 3600
OOM_LIMIT_RATIO = 1.25
AT_CAPACITY_CPU_LIMIT_RATIO = 2.0


@dataclass(frozen=True)
class ShapeInfo:
    """The design values of a shape over a 14-day window and what the default policy gives."""

    name: str
    cpu: tuple[float, float, float]  # avg, p95 (of 10-minute rates), max
    memory: tuple[float, float]  # avg, max
    storage_used: float  # max of used / capacity, for StatefulSets
    grade: str
    action: str
    rollout: bool = False  # stationary enough for a mid-window rollout

    def nominal(self) -> dict[str, dict[str, float]]:
        avg, p95, peak = self.cpu
        return {
            "cpu": {"avg": avg, "p95": p95, "max": peak},
            "memory": {"avg": self.memory[0], "max": self.memory[1]},
        }


SHAPES: Mapping[str, ShapeInfo] = {
    info.name: info
    for info in (
        ShapeInfo("idle", (0.005, 0.0064, 0.007), (0.025, 0.03), 0.02, "差", "reclaim", True),
        ShapeInfo(
            "overprovisioned", (0.075, 0.134, 0.141), (0.14, 0.17), 0.075, "差", "downsize", True
        ),
        ShapeInfo("rightsized", (0.6, 0.755, 0.79), (0.6, 0.74), 0.6, "优", "keep", True),
        ShapeInfo("diurnal", (0.287, 0.815, 0.84), (0.44, 0.58), 0.45, "中", "keep"),
        ShapeInfo("batch", (0.675, 0.805, 0.835), (0.54, 0.605), 0.0, "优", "keep"),
        ShapeInfo("bursty", (0.169, 0.815, 0.84), (0.447, 0.54), 0.45, "中", "keep"),
        ShapeInfo("memory-growth", (0.55, 0.635, 0.66), (0.585, 0.812), 0.6, "优", "keep"),
        ShapeInfo("at-capacity", (0.85, 1.205, 1.277), (0.7, 0.8), 0.7, "良", "upsize"),
        ShapeInfo("oom-killed", (0.3, 0.403, 0.43), (1.02, OOM_LIMIT_RATIO), 0.3, "差", "upsize"),
    )
}

# The standard mix: shares of workloads per shape (batch workloads are CronJobs).
STANDARD_MIX: Mapping[str, float] = {
    "idle": 0.08,
    "overprovisioned": 0.24,
    "rightsized": 0.18,
    "diurnal": 0.13,
    "batch": 0.10,
    "bursty": 0.09,
    "memory-growth": 0.06,
    "at-capacity": 0.06,
    "oom-killed": 0.06,
}


@dataclass(frozen=True, eq=False)
class Usage:
    cpu: FloatArray
    memory: FloatArray
    kills: BoolArray  # True where the container is OOM-killed (its memory is at the limit)


@dataclass(frozen=True, eq=False)
class ShapeContext:
    """Inputs of a shape generator for one container of one pod."""

    times: IntArray
    interval: int
    window: tuple[int, int]  # the cloud's first and last sample times
    workload_seed: Sequence[int]  # seeds schedules shared by the workload's pods
    rng: np.random.Generator  # this series' own noise

    def noise(self, amplitude: float) -> FloatArray:
        return self.rng.uniform(-amplitude, amplitude, self.times.size)

    def daily(self, phase_hours: float = 0.0) -> FloatArray:
        """cos(...) peaking at 14:00 Asia/Shanghai (+ phase), over the interval midpoints."""
        local = self.times - self.interval / 2 + SHANGHAI_OFFSET - (14 + phase_hours) * HOUR
        return np.cos(2 * np.pi * (local % DAY) / DAY)

    def workload_rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([*self.workload_seed, stream])


def _steady(
    ctx: ShapeContext, cpu: tuple[float, float, float], memory: tuple[float, float, float]
) -> Usage:
    """level + amplitude * daily cosine + bounded noise, for cpu and memory."""
    phase = ctx.workload_rng(1).uniform(-1.0, 1.0)
    daily = ctx.daily(phase)
    cpu_util = cpu[0] + cpu[1] * daily + ctx.noise(cpu[2])
    mem_util = memory[0] + memory[1] * daily + ctx.noise(memory[2])
    return Usage(cpu_util, mem_util, np.zeros(ctx.times.size, dtype=np.bool_))


def idle(ctx: ShapeContext) -> Usage:
    return _steady(ctx, (0.005, 0.0, 0.002), (0.025, 0.0, 0.005))


def overprovisioned(ctx: ShapeContext) -> Usage:
    return _steady(ctx, (0.075, 0.06, 0.006), (0.14, 0.02, 0.01))


def rightsized(ctx: ShapeContext) -> Usage:
    return _steady(ctx, (0.6, 0.15, 0.04), (0.6, 0.12, 0.02))


def office_hours(times: IntArray, interval: int) -> BoolArray:
    """Mon-Fri 08:30-17:30 Asia/Shanghai, judged at each interval's midpoint."""
    local = times - interval // 2 + SHANGHAI_OFFSET
    weekday = (local // DAY + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    second = local % DAY
    return (weekday < 5) & (second >= 8.5 * HOUR) & (second < 17.5 * HOUR)


def diurnal(ctx: ShapeContext) -> Usage:
    day = office_hours(ctx.times, ctx.interval)
    cpu = np.where(day, 0.8, 0.1) + ctx.noise(0.04)
    memory = np.where(day, 0.55, 0.4) + ctx.noise(0.03)
    return Usage(cpu, memory, np.zeros(ctx.times.size, dtype=np.bool_))


def batch(ctx: ShapeContext) -> Usage:
    """One run of a nightly job: the pod's samples are the running samples."""
    span = max(int(ctx.times[-1] - ctx.times[0]), 1)
    progress = (ctx.times - ctx.times[0]) / span
    cpu = 0.5 + 0.32 * progress + ctx.noise(0.02)
    memory = 0.48 + 0.12 * progress + ctx.noise(0.01)
    return Usage(cpu, memory, np.zeros(ctx.times.size, dtype=np.bool_))


BURSTS_PER_DAY = 4
BURST_MINUTES = ((30, 30, 30, 30), (20, 25, 35, 40), (25, 30, 30, 35), (20, 30, 30, 40))


def burst_mask(ctx: ShapeContext) -> BoolArray:
    """4 bursts a day, 20-40 minutes each, 120 minutes a day in all (8.3% of the time)."""
    rng = ctx.workload_rng(2)
    first_day = (ctx.window[0] + SHANGHAI_OFFSET) // DAY - 1
    days = (ctx.window[1] - ctx.window[0]) // DAY + 3
    combos = np.array(BURST_MINUTES, dtype=np.int64)[rng.integers(0, len(BURST_MINUTES), days)]
    duration = rng.permuted(combos, axis=1) * 60
    slot = DAY // BURSTS_PER_DAY
    start = (rng.random((days, BURSTS_PER_DAY)) * (slot - duration) // 300) * 300
    local = ctx.times - ctx.interval // 2 + SHANGHAI_OFFSET
    day = np.clip(local // DAY - first_day, 0, days - 1)
    index = (local % DAY) // slot
    offset = local % DAY - index * slot - start[day, index]
    inside: BoolArray = (offset >= 0) & (offset < duration[day, index])
    return inside


def bursty(ctx: ShapeContext) -> Usage:
    inside = burst_mask(ctx)
    cpu = np.where(inside, 0.82, 0.11) + ctx.noise(0.02)
    memory = 0.44 + 0.08 * inside + ctx.noise(0.02)
    return Usage(cpu, memory, np.zeros(ctx.times.size, dtype=np.bool_))


def memory_growth(ctx: ShapeContext) -> Usage:
    """Memory rises linearly 0.35 -> 0.80 over the window, with a small daily sawtooth."""
    start, end = ctx.window
    progress = (ctx.times - start) / max(end - start, 1)
    sawtooth = ((ctx.times + SHANGHAI_OFFSET) % DAY) / DAY
    cpu = 0.55 + 0.08 * ctx.daily() + ctx.noise(0.03)
    memory = 0.35 + 0.45 * progress + 0.02 * sawtooth + ctx.noise(0.005)
    return Usage(cpu, memory, np.zeros(ctx.times.size, dtype=np.bool_))


def at_capacity(ctx: ShapeContext) -> Usage:
    return _steady(ctx, (0.85, 0.35, 0.08), (0.7, 0.08, 0.02))


def throttled_share(cpu: FloatArray, *, at_capacity: bool) -> FloatArray:
    """Share of CFS periods throttled: ~0.3 at capacity, ~0 otherwise."""
    if at_capacity:
        return np.clip(0.3 + 0.5 * (cpu - 0.85), 0.02, 0.9)
    return 0.002 * np.clip(cpu, 0.0, 1.0)


def oom_killed(ctx: ShapeContext) -> Usage:
    """Memory climbs from 0.6 to the limit (1.25) in 40-52 hours, is killed, restarts."""
    rng = ctx.rng
    count = ctx.times.size
    lengths = np.maximum(3, np.round(rng.uniform(40, 52, count // 2 + 4) * HOUR / ctx.interval))
    lengths = lengths.astype(np.int64)
    offset = int(rng.integers(0, lengths[0]))
    ends = np.cumsum(lengths)
    position = np.arange(count, dtype=np.int64) + offset
    cycle = np.searchsorted(ends, position, side="right")
    starts = ends - lengths
    step = position - starts[cycle]
    tau = step * ctx.interval
    length_seconds = lengths[cycle] * ctx.interval
    memory = 0.6 + 0.2 * (1 - np.exp(-tau / HOUR)) + 0.45 * tau / length_seconds
    memory = np.minimum(memory + ctx.noise(0.01), OOM_LIMIT_RATIO - 0.01)
    kills = step == lengths[cycle] - 1
    memory[kills] = OOM_LIMIT_RATIO
    cpu = 0.3 + 0.1 * ctx.daily() + ctx.noise(0.03)
    return Usage(cpu, memory, kills)


def gpu_utilisation(ctx: ShapeContext) -> IntArray:
    """DCGM GPU utilisation in percent, ~60 on average."""
    percent = 60 + 10 * ctx.daily() + ctx.noise(5)
    return np.clip(np.round(percent), 0, 100).astype(np.int64)


GENERATORS: Mapping[str, Callable[[ShapeContext], Usage]] = {
    "idle": idle,
    "overprovisioned": overprovisioned,
    "rightsized": rightsized,
    "diurnal": diurnal,
    "batch": batch,
    "bursty": bursty,
    "memory-growth": memory_growth,
    "at-capacity": at_capacity,
    "oom-killed": oom_killed,
}
