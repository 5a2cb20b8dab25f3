"""Invariants of the core, for any input hypothesis can find."""

from core_factories import END, GIB, container, policy, stats, summary, usage_of, workload
from hypothesis import given, settings
from hypothesis import strategies as st

from rightsizer.core.evaluation import evaluate_workload
from rightsizer.core.policy import Band, Indicator
from rightsizer.core.report import build_agency_report
from rightsizer.core.scoring import band_score
from rightsizer.core.units import parse_quantity

fractions = st.floats(min_value=0, max_value=3, allow_nan=False)


@st.composite
def hills(draw: st.DrawFn) -> list[Band]:
    """Valid band lists: a rising then falling sequence of scores over distinct mins."""
    mins = sorted(draw(st.sets(st.floats(0.001, 2, allow_nan=False), min_size=1, max_size=8)))
    rising = sorted(
        draw(st.lists(st.floats(0, 100), min_size=len(mins) + 1, max_size=len(mins) + 1))
    )
    peak = draw(st.integers(0, len(mins)))
    falling = sorted(rising[peak:], reverse=True)
    scores = rising[:peak] + falling
    return [Band(min=m, score=s) for m, s in zip([0.0, *mins], scores, strict=True)]


@given(hills(), fractions, fractions)
def test_score_never_rises_when_utilisation_falls_below_the_best_band(
    bands: list[Band], a: float, b: float
) -> None:
    Indicator(name="x", resource="cpu", weight=100, bands=bands)  # the policy accepts it
    best = max(bands, key=lambda band: (band.score, -band.min)).min
    low, high = sorted((a, b))
    if high <= best:
        assert band_score(bands, low) <= band_score(bands, high)


requests = st.floats(min_value=0.05, max_value=8)
usage_fraction = st.floats(min_value=0, max_value=2.5)


@settings(max_examples=300, deadline=None)
@given(requests, requests, usage_fraction, usage_fraction, st.integers(0, 3), st.floats(0, 1))
def test_recommendations_stay_within_bounds_and_the_max_step(
    cpu_request: float,
    memory_gib: float,
    cpu_use: float,
    mem_use: float,
    ooms: int,
    throttled: float,
) -> None:
    spec = policy()
    rec_policy = spec.recommendation
    target = workload(
        container(
            cpu=cpu_request,
            memory=memory_gib * GIB,
            memory_limit=memory_gib * GIB * 1.5,
            cpu_limit=cpu_request * 2,
        )
    )
    cpu = stats(
        avg=cpu_use * cpu_request * 0.7, p95=cpu_use * cpu_request, max=cpu_use * cpu_request * 1.2
    )
    memory = stats(avg=mem_use * memory_gib * GIB * 0.8, max=mem_use * memory_gib * GIB)
    evaluation = evaluate_workload(
        target,
        summary(target, usage_of(cpu=cpu, memory=memory, oom_kills=ooms, throttled=throttled)),
        spec,
    )
    for rec in (r for c in evaluation.containers for r in c.changes):
        settings_ = rec_policy.for_resource(rec.resource)
        assert rec.current_request is not None and rec.request is not None
        low = max(
            parse_quantity(settings_.min), rec.current_request * (1 - rec_policy.max_step_down)
        )
        high = max(parse_quantity(settings_.max), rec.current_request)
        step_high = rec.current_request * (1 + rec_policy.max_step_up)
        slack = 1.001 + (
            0.001 / rec.current_request if rec.resource == "cpu" else 2**20 / rec.current_request
        )
        assert rec.request >= low / 1.001
        assert rec.request <= min(high, step_high) * slack
        assert (
            abs(rec.request - rec.current_request)
            >= rec_policy.min_change * rec.current_request * 0.999
        )
        if rec.limit is not None:
            assert rec.request <= rec.limit


@settings(max_examples=150, deadline=None)
@given(st.floats(0, 6.99), usage_fraction, usage_fraction)
def test_no_change_is_ever_proposed_on_insufficient_data(
    days: float, cpu_use: float, mem_use: float
) -> None:
    target = workload(container())
    usage = summary(
        target,
        usage_of(
            cpu=stats(days=days, avg=cpu_use * 0.5, p95=cpu_use, max=cpu_use),
            memory=stats(days=days, avg=mem_use * GIB * 0.5, max=mem_use * GIB),
            oom_kills=1,
        ),
    )
    evaluation = evaluate_workload(target, usage, policy())
    assert evaluation.outcome == "insufficient-data"
    assert all(not c.changes for c in evaluation.containers)
    assert evaluation.released.cpu == 0 and evaluation.added.memory == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            usage_fraction, usage_fraction, st.integers(1, 5), st.sampled_from(["a", "b", "c"])
        ),
        min_size=1,
        max_size=12,
    )
)
def test_savings_add_up_across_workloads_projects_and_agency(
    shapes: list[tuple[float, float, int, str]],
) -> None:
    spec = policy()
    evaluations = []
    for index, (cpu_use, mem_use, replicas, project) in enumerate(shapes):
        target = workload(
            container(cpu=1.0, memory=2 * GIB), name=f"w{index}", replicas=replicas, project=project
        )
        usage = summary(
            target,
            usage_of(
                cpu=stats(avg=cpu_use * 0.6, p95=cpu_use, max=cpu_use * 1.1),
                memory=stats(avg=mem_use * GIB, max=mem_use * 2 * GIB),
            ),
        )
        evaluations.append(evaluate_workload(target, usage, spec))
    report = build_agency_report("finance", spec, evaluations, end=END)
    assert report.summary is not None
    for field in ("released", "added", "reclaimable", "requested"):
        agency = getattr(report.summary, field)
        by_project = [getattr(p, field) for p in report.projects]
        by_workload = [getattr(e, field) for e in evaluations]
        for resource in ("cpu", "memory"):
            assert abs(
                agency.get(resource) - sum(a.get(resource) for a in by_project)
            ) < 1e-6 * max(1, agency.get(resource))
            assert abs(
                agency.get(resource) - sum(a.get(resource) for a in by_workload)
            ) < 1e-6 * max(1, agency.get(resource))
    assert report.summary.money_released == sum(p.money_released for p in report.projects)
