"""The estimator stack: each stage alone, then the policy's stack."""

import pytest
from core_factories import GIB, MIB, policy

from rightsizer.core.estimators import (
    Clamp,
    Confidence,
    Estimate,
    EstimationFacts,
    Headroom,
    MinChange,
    OomFloor,
    StepLimit,
    ThrottleFloor,
    Trend,
    build_estimator,
    least_squares_slope,
)
from rightsizer.core.model import ResourceStats


def facts(resource: str = "cpu", request: float | None = 1.0, **extra: object) -> EstimationFacts:
    base: dict[str, object] = {
        "resource": resource,
        "current_request": request,
        "stats": ResourceStats(values={"max": 0.5}, history_days=14),
    }
    base.update(extra)
    return EstimationFacts.model_validate(base)


START = Estimate(value=0.4)

STAGES = [
    ("headroom", Headroom(0.15), facts(), 0.46),
    ("confidence 14d", Confidence(1.0), facts(), 0.4 * (1 + 1 / 14)),
    ("confidence 2d", Confidence(1.0), facts(stats=ResourceStats(values={}, history_days=2)), 0.6),
    ("clamp low", Clamp(0.5, 4), facts(), 0.5),
    ("clamp high", Clamp(0.01, 0.3), facts(), 0.3),
    ("clamp to ceiling", Clamp(0.01, 4), facts(ceiling=0.35), 0.35),
    ("step down", StepLimit(down=0.5, up=1.0), facts(request=2.0), 1.0),
    ("step up", StepLimit(down=0.5, up=1.0), facts(request=0.1), 0.2),
    ("no step without request", StepLimit(down=0.5, up=1.0), facts(request=None), 0.4),
    ("min change keeps", MinChange(0.1), facts(request=0.42), 0.42),
    ("min change lets go", MinChange(0.1), facts(request=0.5), 0.4),
    (
        "oom floor",
        OomFloor(1.2),
        facts("memory", request=GIB, current_limit=GIB, oom_kills=2),
        1.2 * GIB,
    ),
    (
        "oom floor from the killed pod's limit, not the raised one",
        OomFloor(1.2),
        facts("memory", request=2 * GIB, current_limit=2 * GIB, oom_kills=1, oom_memory=GIB),
        1.2 * GIB,
    ),
    ("oom floor ignores cpu", OomFloor(1.2), facts(oom_kills=2), 0.4),
    ("throttled cpu not lowered", ThrottleFloor(0.1), facts(throttled_ratio=0.3), 1.0),
    ("unthrottled cpu free", ThrottleFloor(0.1), facts(throttled_ratio=0.05), 0.4),
]


@pytest.mark.parametrize(("name", "stage", "given", "expected"), STAGES, ids=[s[0] for s in STAGES])
def test_stage(name: str, stage: object, given: EstimationFacts, expected: float) -> None:
    result = stage(START, given)  # type: ignore[operator]
    assert result.value == pytest.approx(expected)
    assert (len(result.reasons) > 0) == (result.value != START.value)


def test_trend_projects_growing_daily_peaks() -> None:
    peaks = tuple(100 * MIB + day * 10 * MIB for day in range(14))
    given = facts(
        "memory", request=GIB, stats=ResourceStats(values={"max": peaks[-1]}, daily_peaks=peaks)
    )
    result = Trend(horizon_days=7)(Estimate(value=peaks[-1]), given)
    assert result.value == pytest.approx(peaks[-1] + 70 * MIB)
    assert "grow" in result.reasons[-1]


def test_trend_leaves_flat_or_falling_peaks_alone() -> None:
    falling = tuple(float(500 - day) for day in range(14))
    given = facts("memory", stats=ResourceStats(values={}, daily_peaks=falling))
    assert Trend(7)(Estimate(value=500.0), given).value == 500.0


def test_least_squares_slope() -> None:
    assert least_squares_slope([1.0, 3.0, 5.0]) == pytest.approx(2.0)
    assert least_squares_slope([1.0, 2.0]) is None


def test_policy_stack_runs_percentile_headroom_confidence_clamp_step_min_change() -> None:
    estimator = build_estimator(policy().recommendation, "cpu")
    given = facts(request=2.0, stats=ResourceStats(values={"p95": 0.3}, history_days=14))
    result = estimator.estimate(given)
    assert result is not None
    # p95 0.3 -> +10% -> x(1+0.5/14) = 0.342, below the step floor of 1.0: the step wins
    assert result.value == pytest.approx(1.0)
    assert result.reasons[0].startswith("cpu p95")
    assert any("step limited" in reason for reason in result.reasons)


def test_missing_statistic_gives_no_estimate() -> None:
    estimator = build_estimator(policy().recommendation, "cpu")
    assert estimator.estimate(facts(stats=ResourceStats(values={"avg": 0.1}))) is None
