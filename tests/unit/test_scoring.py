"""Scores and grades: bands, weights, renormalisation, request- and cost-weighting."""

import pytest
from core_factories import GIB, container, policy, stats, steady, summary, usage_of, workload

from rightsizer.core.policy import Band, Grade, default_grades, default_indicators
from rightsizer.core.scoring import band_score, combine_scores, grade_for, score_workload

AVERAGE = default_indicators()[0].bands


@pytest.mark.parametrize(
    ("utilisation", "score"),
    [
        (0.0, 0),
        (0.049, 0),
        (0.05, 20),
        (0.15, 40),
        (0.3, 60),
        (0.45, 80),
        (0.5, 100),
        (0.79, 100),
        (0.85, 80),
        (0.95, 60),
        (3.0, 60),
    ],
)
def test_band_score_rises_to_the_best_band_and_falls_above_it(
    utilisation: float, score: float
) -> None:
    assert band_score(AVERAGE, utilisation) == score


@pytest.mark.parametrize(
    ("score", "grade"),
    [(100, "优"), (90, "优"), (89.99, "良"), (80, "良"), (60, "中"), (59.9, "差"), (0, "差")],
)
def test_mof_grade_bands(score: float, grade: str) -> None:
    assert grade_for(default_grades(), score) == grade


def test_a_policy_may_rename_and_move_grades() -> None:
    grades = [Grade(name="合格", min=50), Grade(name="不合格", min=0)]
    assert grade_for(grades, 55) == "合格"
    assert grade_for(grades, 49) == "不合格"


def test_workload_score_is_the_weighted_mean_renormalised_over_measured_indicators() -> None:
    cpu, memory = stats(avg=0.6, p95=0.75, max=0.8), stats(avg=0.6 * GIB, max=0.72 * GIB)
    target = workload(container())
    card = score_workload(target, summary(target, usage_of(cpu=cpu, memory=memory)), policy())
    assert card is not None
    assert {i.name for i in card.indicators} == {
        "cpu-average",
        "cpu-p95",
        "memory-average",
        "memory-peak",
    }  # no PVC, no GPU
    assert card.score == 100
    assert card.grade == "优"


def test_containers_are_weighted_by_their_requests() -> None:
    big, small = container("app", cpu=3.0), container("sidecar", cpu=1.0)
    target = workload(big, small)
    usage = summary(
        target,
        usage_of("app", cpu=stats(avg=1.5), memory=stats(avg=0.6 * GIB)),  # 50% of 3 cores
        usage_of("sidecar", cpu=stats(avg=0.1), memory=stats(avg=0.6 * GIB)),  # 10% of 1 core
    )
    card = score_workload(
        target,
        usage,
        policy(
            indicators=[
                {
                    "name": "cpu",
                    "resource": "cpu",
                    "stat": "avg",
                    "weight": 100,
                    "bands": [{"min": 0, "score": 0}, {"min": 0.4, "score": 100}],
                }
            ]
        ),
    )
    assert card is not None
    measured = card.indicators[0].measurement
    assert measured.utilisation == pytest.approx(1.6 / 4.0)  # request-weighted, not 30% mean
    assert card.score == 100


def test_a_workload_without_requests_or_limits_is_not_graded() -> None:
    target = workload(container(cpu=None, memory=None))
    usage = summary(target, usage_of(cpu=stats(avg=0.2), memory=stats(avg=GIB)))
    assert score_workload(target, usage, policy()) is None


def test_limit_is_the_reference_where_there_is_no_request() -> None:
    target = workload(container(cpu=None, memory=None, cpu_limit=2.0, memory_limit=2 * GIB))
    usage = summary(target, usage_of(cpu=stats(avg=1.2, p95=1.5), memory=stats(avg=GIB, max=GIB)))
    card = score_workload(target, usage, policy())
    assert card is not None
    assert all(i.measurement.basis == "limit" for i in card.indicators)


def test_agency_scores_weigh_workloads_by_monthly_cost() -> None:
    good = score_workload(*_scored(0.6), policy())
    bad = score_workload(*_scored(0.01), policy())
    assert good and bad
    combined = combine_scores([(good, 900.0), (bad, 100.0)], default_grades())
    assert combined is not None
    assert combined.score == pytest.approx(0.9 * good.score + 0.1 * bad.score, abs=0.01)


def test_parts_without_cost_do_not_count() -> None:
    good = score_workload(*_scored(0.6), policy())
    assert good
    assert combine_scores([(good, 0.0)], default_grades()) is None


def _scored(fraction: float):  # type: ignore[no-untyped-def]
    cpu, memory = steady(fraction, fraction)
    target = workload(container())
    return target, summary(target, usage_of(cpu=cpu, memory=memory))


def test_band_score_of_unsorted_bands() -> None:
    bands = [Band(min=0.5, score=100), Band(min=0, score=10)]
    assert band_score(bands, 0.7) == 100
    assert band_score(bands, 0.1) == 10
