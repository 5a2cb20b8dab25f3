"""What the core builds without validation (``trusted``) is what validation would build."""

import copy
import pickle

import pytest
from core_factories import END, GIB, container, policy, stats, steady, summary, usage_of, workload

from rightsizer.core.evaluation import WorkloadEvaluation, evaluate_workload
from rightsizer.core.indicators import Measurement
from rightsizer.core.model import trusted
from rightsizer.core.report import AgencyReport, build_agency_report
from rightsizer.core.savings import Amounts

MEASURED = {
    "resource": "cpu",
    "stat": "p95",
    "utilisation": 0.5,
    "usage": 1.0,
    "reference": 2.0,
    "basis": "request",
}


def evaluations() -> list[WorkloadEvaluation]:
    """One evaluation of each shape: downsize, reclaim, keep, upsize after OOM kills,
    not graded and short of history."""
    shapes = [(0.08, 0.1, 0), (0.005, 0.04, 0), (0.6, 0.6, 0), (0.3, 0.6, 3)]
    found = []
    for cpu_fraction, memory_fraction, oom_kills in shapes:
        cpu, memory = steady(cpu_fraction, memory_fraction, cpu=2.0, memory=4 * GIB)
        target = workload(container(cpu=2.0, memory=4 * GIB, memory_limit=8 * GIB))
        usage = summary(target, usage_of(cpu=cpu, memory=memory, oom_kills=oom_kills))
        found.append(evaluate_workload(target, usage, policy()))
    ungraded = workload(container(cpu=None, memory=None))
    found.append(
        evaluate_workload(ungraded, summary(ungraded, usage_of(cpu=stats(avg=0.1))), policy())
    )
    short = workload()
    found.append(
        evaluate_workload(short, summary(short, usage_of(cpu=stats(2, avg=0.1))), policy())
    )
    return found


def test_evaluations_are_what_validation_makes_of_them() -> None:
    found = evaluations()
    assert {e.action for e in found} >= {"downsize", "reclaim", "keep", "upsize", "none"}
    assert {e.outcome for e in found} == {"evaluated", "not-graded", "insufficient-data"}
    for evaluation in found:
        validated = WorkloadEvaluation.model_validate(evaluation.model_dump())
        assert validated == evaluation
        assert repr(validated.model_dump()) == repr(evaluation.model_dump())
        assert validated.model_dump_json() == evaluation.model_dump_json()


def test_reports_are_what_validation_makes_of_them() -> None:
    report = build_agency_report("p", policy(), evaluations(), end=END)
    validated = AgencyReport.model_validate(report.model_dump())
    assert validated.model_dump_json() == report.model_dump_json()


def test_a_trusted_model_behaves_as_a_validated_one() -> None:
    built, validated = trusted(Measurement, **MEASURED), Measurement(**MEASURED)
    assert built == validated
    assert hash(built) == hash(validated)
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set
    assert pickle.loads(pickle.dumps(built)) == validated
    assert copy.deepcopy(built) == validated
    moved = built.model_copy(update={"basis": "limit"})
    assert (moved.basis, built.basis) == ("limit", "request")
    assert trusted(Measurement, **MEASURED).model_fields_set == set(MEASURED)


@pytest.mark.parametrize(
    "values",
    [
        {"cpu": 1.0},
        {"memory": 1.0, "cpu": 1.0, "storage": 0.0, "gpu": 0.0},
        {"cpu": 1.0, "memory": 1.0, "storage": 0.0, "gpu": 0.0, "tpu": 1.0},
    ],
    ids=["missing", "out of order", "unknown"],
)
def test_trusted_takes_every_field_in_order(values: dict[str, float]) -> None:
    with pytest.raises(TypeError, match="cpu, memory, storage, gpu"):
        trusted(Amounts, **values)
