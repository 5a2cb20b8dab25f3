"""A workload's evaluation: outcomes, actions, directions, limits and savings."""

from decimal import Decimal

import pytest
from core_factories import END, GIB, container, policy, stats, steady, summary, usage_of, workload

from rightsizer.core.evaluation import evaluate_workload
from rightsizer.core.model import ResourceStats, VolumeUsage
from rightsizer.core.report import build_agency_report
from rightsizer.core.savings import Amounts, monthly_cost


def evaluate(fraction_cpu: float, fraction_memory: float, **options: object):  # type: ignore[no-untyped-def]
    cpu, memory = steady(fraction_cpu, fraction_memory, cpu=2.0, memory=4 * GIB)
    target = workload(container(cpu=2.0, memory=4 * GIB, memory_limit=8 * GIB))
    usage = summary(target, usage_of(cpu=cpu, memory=memory, **options))  # type: ignore[arg-type]
    return evaluate_workload(target, usage, policy())


ACTIONS = [
    ("over-provisioned", 0.08, 0.1, {}, "downsize"),
    ("idle", 0.005, 0.04, {}, "reclaim"),
    ("right-sized", 0.6, 0.6, {}, "keep"),
    ("hot", 0.85, 0.7, {}, "upsize"),
    ("oom-killed", 0.3, 0.6, {"oom_kills": 3}, "upsize"),
]


@pytest.mark.parametrize(
    ("case", "cpu", "memory", "options", "action"), ACTIONS, ids=[a[0] for a in ACTIONS]
)
def test_action_per_shape(
    case: str, cpu: float, memory: float, options: dict[str, object], action: str
) -> None:
    evaluation = evaluate(cpu, memory, **options)
    assert evaluation.outcome == "evaluated"
    assert evaluation.action == action, evaluation.reasons


def test_downsize_lowers_within_the_step_and_keeps_the_limit_ratio() -> None:
    evaluation = evaluate(0.08, 0.1)
    [app] = evaluation.containers
    memory = app.resources["memory"]
    assert memory.change == "down"
    assert memory.request is not None and memory.limit is not None
    assert memory.request >= 2 * GIB  # at most halved in one change
    assert memory.limit == pytest.approx(2 * memory.request, rel=0.01)  # limit/request kept at 2
    assert memory.request <= memory.limit
    assert any("rule memory-downsize" in reason for reason in memory.reasons)
    assert evaluation.released.memory == pytest.approx((4 * GIB - memory.request) * 2)  # x replicas


def test_upsize_after_oom_raises_memory_above_the_limit_it_died_at() -> None:
    evaluation = evaluate(0.3, 0.6, oom_kills=3)
    memory = evaluation.containers[0].resources["memory"]
    assert memory.change == "up"
    assert memory.request is not None
    assert memory.request >= min(8 * GIB * 1.2, 8 * GIB)  # the step caps at 2x = 8Gi
    assert evaluation.added.memory > 0
    assert evaluation.released == Amounts()


def test_a_downsize_rule_never_raises_and_nothing_changes_without_a_rule() -> None:
    right = evaluate(0.6, 0.6)
    assert all(rec.change == "none" for c in right.containers for rec in c.resources.values())
    assert right.released == Amounts() and right.added == Amounts()


@pytest.mark.parametrize(
    ("days", "outcome"),
    [(3, "insufficient-data"), (6.9, "insufficient-data"), (7, "evaluated")],
)
def test_too_little_history_is_an_outcome_not_a_change(days: float, outcome: str) -> None:
    cpu, memory = steady(0.05, 0.05, days=days)
    target = workload(container())
    evaluation = evaluate_workload(
        target, summary(target, usage_of(cpu=cpu, memory=memory)), policy()
    )
    assert evaluation.outcome == outcome
    if outcome != "evaluated":
        assert evaluation.action == "none"
        assert evaluation.containers == ()
        assert "days of history" in evaluation.reasons[0]


def test_cronjobs_need_samples_while_running_not_days() -> None:
    target = workload(container(), kind="CronJob", replicas=1)
    few = usage_of(
        cpu=stats(days=14, samples=5, avg=0.5, p95=0.6, max=0.7),
        memory=stats(days=14, samples=5, avg=0.5 * GIB, max=0.6 * GIB),
    )
    evaluation = evaluate_workload(target, summary(target, few, duty_cycle=0.04), policy())
    assert evaluation.outcome == "insufficient-data"
    assert "samples of running jobs" in evaluation.reasons[0]


@pytest.mark.parametrize(
    ("usage", "outcome"),
    [
        (
            usage_of(cpu=stats(avg=float("nan"), p95=0.1, max=0.1), memory=stats(avg=GIB, max=GIB)),
            "implausible",
        ),
        (
            usage_of(cpu=stats(avg=-0.5, p95=0.1, max=0.1), memory=stats(avg=GIB, max=GIB)),
            "implausible",
        ),
        (
            usage_of(
                cpu=stats(avg=0.1, p95=0.1, max=0.1), memory=stats(avg=GIB, max=GIB), fresh=False
            ),
            "stale",
        ),
    ],
)
def test_data_that_cannot_be_trusted_gives_no_change(usage: object, outcome: str) -> None:
    target = workload(container())
    evaluation = evaluate_workload(target, summary(target, usage), policy())  # type: ignore[arg-type]
    assert evaluation.outcome == outcome
    assert evaluation.containers == ()


NODE = {"cpu": 8.0, "memory": 32 * GIB}  # the largest node's allocatable


@pytest.mark.parametrize(
    ("cpu_max", "memory_max", "factor", "outcome"),
    [
        (7.9, 31 * GIB, 1.0, "evaluated"),
        (40.0, 1 * GIB, 1.0, "implausible"),  # a counter reset: 40 cores on an 8-core node
        (1.0, 64 * GIB, 1.0, "implausible"),
        (10.0, 1 * GIB, 1.5, "evaluated"),  # the policy tolerates 1.5x
    ],
)
def test_usage_no_node_could_give_is_implausible(
    cpu_max: float, memory_max: float, factor: float, outcome: str
) -> None:
    target = workload(container(cpu=4.0, memory=8 * GIB))
    usage = usage_of(
        cpu=stats(avg=1.0, p95=1.5, max=cpu_max), memory=stats(avg=GIB, max=memory_max)
    )
    observed = summary(target, usage).model_copy(update={"node_capacity": NODE})
    spec = policy().model_copy(update={"implausible_above_node": factor})
    evaluation = evaluate_workload(target, observed, spec)
    assert evaluation.outcome == outcome
    if outcome == "implausible":
        assert "above the largest node's" in evaluation.reasons[0]
        assert evaluation.containers == ()


def test_no_request_means_recommendation_only() -> None:
    target = workload(container(cpu=None, memory=None, cpu_limit=4.0, memory_limit=4 * GIB))
    cpu, memory = steady(0.05, 0.05, cpu=4.0, memory=4 * GIB)
    evaluation = evaluate_workload(
        target, summary(target, usage_of(cpu=cpu, memory=memory)), policy()
    )
    recs = evaluation.containers[0].resources
    assert all(rec.change == "none" for rec in recs.values())
    assert any("QoS class kept" in reason for reason in recs["cpu"].reasons)


def test_injected_containers_are_never_recommended() -> None:
    proxy = container("istio-proxy").model_copy(update={"in_template": False})
    target = workload(container(), proxy)
    cpu, memory = steady(0.05, 0.05)
    evaluation = evaluate_workload(
        target,
        summary(
            target,
            usage_of(cpu=cpu, memory=memory),
            usage_of("istio-proxy", cpu=cpu, memory=memory),
        ),
        policy(),
    )
    assert [c.container for c in evaluation.containers] == ["app"]


def test_reclaim_counts_the_whole_request_as_reclaimable_and_proposes_no_resize() -> None:
    evaluation = evaluate(0.005, 0.04)
    assert evaluation.reclaimable == evaluation.requested
    assert evaluation.released == Amounts()
    assert all(not c.changes for c in evaluation.containers)  # reported, never resized
    assert any(
        "reclaim candidate" in r
        for c in evaluation.containers
        for rec in c.resources.values()
        for r in rec.reasons
    )
    assert evaluation.requested.cpu == pytest.approx(4.0)  # 2 cores x 2 replicas


def test_storage_is_graded_from_pvc_usage() -> None:
    target = workload(container(), kind="StatefulSet")
    cpu, memory = steady(0.6, 0.6)
    volume = VolumeUsage(
        claim="data-web-0",
        capacity=100 * GIB,
        used=ResourceStats(values={"avg": 2 * GIB, "max": 3 * GIB}),
    )
    evaluation = evaluate_workload(
        target, summary(target, usage_of(cpu=cpu, memory=memory), volumes=(volume,)), policy()
    )
    assert evaluation.card is not None
    storage = [i for i in evaluation.card.indicators if i.name == "storage-used"]
    assert storage and storage[0].measurement.utilisation == pytest.approx(0.03)


def test_money_is_exact_and_uses_the_discount() -> None:
    prices = policy(prices={"cpuCoreMonth": 45, "memoryGiBMonth": 12, "discount": 0.55}).prices
    cost = monthly_cost(Amounts(cpu=2.0, memory=3 * GIB), prices)
    assert cost == Decimal("0.55") * (2 * 45 + 3 * 12)


def test_savings_add_up_across_workloads_projects_and_agency() -> None:
    spec = policy()
    evaluations = []
    for index, (cpu_f, mem_f) in enumerate([(0.08, 0.1), (0.05, 0.12), (0.6, 0.6), (0.01, 0.03)]):
        cpu, memory = steady(cpu_f, mem_f)
        target = workload(container(), name=f"w{index}", project=f"p{index % 2}")
        evaluations.append(
            evaluate_workload(target, summary(target, usage_of(cpu=cpu, memory=memory)), spec)
        )
    report = build_agency_report("finance", spec, evaluations, end=END)
    assert report.summary is not None
    total = report.summary.released
    assert total.cpu == pytest.approx(sum(p.released.cpu for p in report.projects))
    assert total.memory == pytest.approx(sum(e.released.memory for e in evaluations))
    assert report.summary.money_released == sum(p.money_released for p in report.projects)
    assert report.summary.by_action == {"downsize": 2, "keep": 1, "reclaim": 1}
