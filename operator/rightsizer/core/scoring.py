"""Indicator scores, weighted scores and grades, each with the reason it was given."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rightsizer.core.indicators import Measurement, measure
from rightsizer.core.model import Frozen, UsageSummary, Workload, trusted
from rightsizer.core.policy import Band, Grade, Indicator, PolicySpec


class IndicatorScore(Frozen):
    name: str
    weight: float
    score: float
    measurement: Measurement

    def describe(self) -> str:
        return f"{self.name}: {self.measurement.describe()} scores {self.score:g}"


class ScoreCard(Frozen):
    """A workload's (or project's, or agency's) score and grade, with how they came about."""

    score: float
    grade: str
    indicators: tuple[IndicatorScore, ...] = ()
    reasons: tuple[str, ...] = ()


def band_score(bands: Sequence[Band], utilisation: float) -> float:
    """The score of the highest band whose ``min`` the utilisation reaches."""
    best: Band | None = None
    for band in bands:
        if utilisation >= band.min and (best is None or band.min > best.min):
            best = band
    return best.score if best is not None else 0.0


def grade_for(grades: Sequence[Grade], score: float) -> str:
    """The grade with the highest ``min`` the score reaches."""
    reached = [grade for grade in grades if score >= grade.min]
    return max(reached, key=lambda grade: grade.min).name


def score_indicator(
    indicator: Indicator, workload: Workload, usage: UsageSummary
) -> IndicatorScore | None:
    measurement = measure(workload, usage, indicator.resource, indicator.stat)
    if measurement is None:
        return None
    return trusted(
        IndicatorScore,
        name=indicator.name,
        weight=indicator.weight,
        score=band_score(indicator.bands, measurement.utilisation),
        measurement=measurement,
    )


def score_workload(workload: Workload, usage: UsageSummary, policy: PolicySpec) -> ScoreCard | None:
    """Weighted indicator scores, renormalised over the indicators that could be measured."""
    scored = [
        result
        for indicator in policy.indicators
        if indicator.resource in policy.resources and indicator.weight > 0
        for result in [score_indicator(indicator, workload, usage)]
        if result is not None
    ]
    total_weight = sum(item.weight for item in scored)
    if total_weight <= 0:
        return None
    score = sum(item.weight * item.score for item in scored) / total_weight
    grade = grade_for(policy.grades, score)
    reasons = tuple(item.describe() for item in scored)
    return trusted(
        ScoreCard,
        score=round(score, 2),
        grade=grade,
        indicators=tuple(scored),
        reasons=reasons,
    )


def combine_scores(
    parts: Iterable[tuple[ScoreCard, float]], grades: Sequence[Grade]
) -> ScoreCard | None:
    """A project's or agency's score: its parts' scores weighted by their monthly cost."""
    weighted = [(card, cost) for card, cost in parts if cost > 0]
    total = sum(cost for _, cost in weighted)
    if total <= 0:
        return None
    score = sum(card.score * cost for card, cost in weighted) / total
    return ScoreCard(
        score=round(score, 2),
        grade=grade_for(grades, score),
        reasons=(f"cost-weighted over {len(weighted)} workloads",),
    )
