"""What synthetic cloud to generate: the spec, its validation and the sample-time grids."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

# A Monday 08:00 in Asia/Shanghai; in the past on purpose: queries pass an explicit time.
DEFAULT_END = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)
SHANGHAI_OFFSET = 8 * 3600
DAY = 86400

SHAPE_NAMES: tuple[str, ...] = (
    "idle",
    "overprovisioned",
    "rightsized",
    "diurnal",
    "batch",
    "bursty",
    "memory-growth",
    "at-capacity",
    "oom-killed",
)

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CloudSpec:
    """A seeded description of a synthetic government cloud (the same spec, the same bytes)."""

    agencies: int = 4
    workloads_per_agency: int = 60
    days: float = 14
    interval_seconds: int = 300
    ksm_interval_seconds: int = 1800
    seed: int = 42
    end: datetime = DEFAULT_END
    pod_level_series: bool = True
    shapes: tuple[str, ...] | None = None
    single_pod: bool = False

    def __post_init__(self) -> None:
        _check_positive("agencies", self.agencies)
        _check_positive("workloads_per_agency", self.workloads_per_agency)
        _check_positive("interval_seconds", self.interval_seconds)
        _check_positive("ksm_interval_seconds", self.ksm_interval_seconds)
        if self.days * DAY < self.interval_seconds:
            raise ValueError(f"days={self.days} is shorter than one sample interval")
        if self.end.tzinfo is None or self.end.utcoffset() is None:
            raise ValueError("end must be timezone-aware (e.g. 2026-11-16T00:00:00+00:00)")
        if self.shapes is not None:
            _check_shapes(self.shapes, single_pod=self.single_pod)

    @property
    def end_timestamp(self) -> int:
        return int(self.end.timestamp())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["end"] = iso(self.end_timestamp)
        data["shapes"] = list(self.shapes) if self.shapes is not None else None
        return data


def _check_positive(name: str, value: float) -> None:
    if value < 1:
        raise ValueError(f"{name} must be at least 1 (got {value})")


def _check_shapes(shapes: tuple[str, ...], *, single_pod: bool) -> None:
    if not shapes:
        raise ValueError("shapes: give at least one shape, or None for the standard mix")
    unknown = [shape for shape in shapes if shape not in SHAPE_NAMES]
    if unknown:
        raise ValueError(f"unknown shapes {unknown}; known: {', '.join(SHAPE_NAMES)}")
    if single_pod and "batch" in shapes:
        raise ValueError("single_pod makes every workload a Deployment: it has no batch shape")


def iso(timestamp: int) -> str:
    """1794787200 -> '2026-11-16T00:00:00Z'."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def grid(end: int, span: float, step: int) -> IntArray:
    """Sample times every ``step`` seconds, the last exactly at ``end``, covering ``span``."""
    count = int(span // step)
    return end - step * np.arange(count, -1, -1, dtype=np.int64)
