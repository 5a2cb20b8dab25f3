"""The safety rules of apply mode, one at a time: every skip has a reason code."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from core_factories import GIB, container, policy, steady, summary, usage_of, workload

from rightsizer.core.decision import Decision, WorkloadState, cap_changes, decide
from rightsizer.core.evaluation import evaluate_workload

NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)  # Saturday 09:00 in Asia/Shanghai


def run(
    *,
    cpu: float = 0.08,
    memory: float = 0.1,
    state: WorkloadState | None = None,
    mode: str = "apply",
    now: datetime = NOW,
    oom: int = 0,
    safety: dict[str, Any] | None = None,
    **facts: Any,
) -> Decision:
    spec = policy(safety={"noticeEvaluations": 1, **(safety or {})})
    target = workload(
        container(cpu=2.0, memory=4 * GIB, memory_limit=8 * GIB),
        **{k: v for k, v in facts.items() if k in ("kind", "replicas")},
    )
    target = target.model_copy(
        update={k: v for k, v in facts.items() if k in ("excluded", "hpa_resources")}
    )
    cpu_stats, memory_stats = steady(cpu, memory, cpu=2.0, memory=4 * GIB)
    usage = summary(target, usage_of(cpu=cpu_stats, memory=memory_stats, oom_kills=oom))
    evaluation = evaluate_workload(target, usage, spec)
    return decide(
        evaluation,
        target,
        state or WorkloadState(),
        policy=spec,
        policy_name="finance",
        mode=mode,
        now=now,
    )  # type: ignore[arg-type]


def test_apply_mode_applies_a_downsize_with_its_reasons() -> None:
    decision = run()
    assert decision.action == "apply"
    assert {c.resource for c in decision.changes} == {"cpu", "memory"}
    memory = next(c for c in decision.changes if c.resource == "memory")
    assert memory.request_to < memory.request_from
    assert memory.limit_to == pytest.approx(2 * memory.request_to, rel=0.01)
    assert decision.state.last_change == NOW
    assert decision.state.last_applied["app/memory"] == memory.request_to


SKIPS = [
    ("recommend mode", {"mode": "recommend"}, "recommendMode"),
    ("bare job", {"kind": "Job", "replicas": 1}, "job"),
    ("single replica", {"replicas": 1, "safety": {"allowSingleReplica": False}}, "singleReplica"),
    ("notice", {"safety": {"noticeEvaluations": 3}}, "notice"),
    ("cooldown", {"state": WorkloadState(last_change=NOW - timedelta(hours=2))}, "cooldown"),
    ("change window", {"safety": {"changeWindows": ["Sun 00:00-06:00"]}}, "changeWindow"),
    ("not converging", {"state": WorkloadState(undone=3)}, "notConverging"),
]


@pytest.mark.parametrize(("case", "options", "code"), SKIPS, ids=[s[0] for s in SKIPS])
def test_each_safety_rule_holds_back_a_change_and_says_why(
    case: str, options: dict[str, Any], code: str
) -> None:
    decision = run(**options)
    assert decision.action == "recommend"
    assert decision.changes == ()
    assert set(decision.skipped.values()) == {code}
    assert decision.reasons


def test_hpa_resource_is_recommend_only_but_the_other_is_applied() -> None:
    decision = run(hpa_resources=frozenset({"cpu"}))
    assert decision.action == "apply"
    assert [c.resource for c in decision.changes] == ["memory"]
    assert decision.skipped == {"app/cpu": "hpa"}


def test_excluded_workloads_get_no_writes_at_all() -> None:
    decision = run(excluded=True)
    assert decision.action == "skip"
    assert not decision.writes


def test_insufficient_data_resets_the_notice_count() -> None:
    state = WorkloadState(
        streaks={
            "app/cpu": {
                "direction": "down",
                "count": 5,  # type: ignore[dict-item]
                "targets": (1.0,),
            }
        }
    )
    spec = policy()
    target = workload(container())
    cpu_stats, memory_stats = steady(0.05, 0.05, days=2)
    evaluation = evaluate_workload(
        target, summary(target, usage_of(cpu=cpu_stats, memory=memory_stats)), spec
    )
    decision = decide(
        evaluation, target, state, policy=spec, policy_name="p", mode="apply", now=NOW
    )
    assert decision.action == "none"
    assert decision.state.streaks == {}
    assert decision.skipped == {"*": "insufficient-data"}


def test_notice_counts_consecutive_evaluations_and_applies_the_most_conservative_target() -> None:
    first = run(safety={"noticeEvaluations": 2})
    assert first.skipped == {"app/cpu": "notice", "app/memory": "notice"}
    streak = first.state.streaks["app/memory"]
    assert (streak.direction, streak.count) == ("down", 1)
    bigger = first.state.model_copy(
        update={
            "streaks": {
                **first.state.streaks,
                "app/memory": streak.model_copy(update={"targets": (streak.targets[0] * 1.3,)}),
            }
        }
    )
    second = run(safety={"noticeEvaluations": 2}, state=bigger)
    assert second.action == "apply"
    memory = next(c for c in second.changes if c.resource == "memory")
    assert memory.request_to == pytest.approx(streak.targets[0] * 1.3)  # the larger one


def test_a_streak_breaks_when_the_direction_changes() -> None:
    up = WorkloadState(
        streaks={
            "app/cpu": {
                "direction": "up",
                "count": 4,  # type: ignore[dict-item]
                "targets": (3.0,),
            }
        }
    )
    decision = run(state=up, safety={"noticeEvaluations": 2})
    assert decision.state.streaks["app/cpu"].count == 1


def test_oom_upsize_skips_notice_cooldown_and_change_window() -> None:
    state = WorkloadState(last_change=NOW - timedelta(minutes=5))
    decision = run(
        cpu=0.3,
        memory=0.6,
        oom=2,
        state=state,
        safety={"noticeEvaluations": 4, "changeWindows": ["Sun 00:00-01:00"]},
    )
    assert decision.action == "apply"
    assert decision.urgent
    [memory] = [c for c in decision.changes if c.resource == "memory"]
    assert memory.request_to > memory.request_from
    assert decision.state.oom_upsizes == (NOW,)


def test_repeated_oom_upsizes_stop_as_a_bump_loop() -> None:
    """Three OOM upsizes in a day and it still dies at its (raised) limit: stop."""
    spec = policy(safety={"noticeEvaluations": 1})
    target = workload(container(cpu=2.0, memory=4 * GIB, memory_limit=8 * GIB))
    cpu_stats, memory_stats = steady(0.3, 1.5, cpu=2.0, memory=4 * GIB, memory_peak=2.0)
    usage = summary(target, usage_of(cpu=cpu_stats, memory=memory_stats, oom_kills=4))
    evaluation = evaluate_workload(target, usage, spec)
    state = WorkloadState(oom_upsizes=tuple(NOW - timedelta(hours=h) for h in (1, 5, 9)))
    decision = decide(
        evaluation, target, state, policy=spec, policy_name="p", mode="apply", now=NOW
    )
    assert decision.action == "recommend"
    assert decision.skipped == {"app/memory": "bumpLoop"}


def test_an_undone_change_is_counted() -> None:
    state = WorkloadState(last_applied={"app/cpu": 0.5})  # the template says 2 cores again
    decision = run(state=state, mode="recommend")
    assert decision.state.undone == 1


def test_the_cap_keeps_oom_upsizes_first_then_the_biggest_releases() -> None:
    decisions = [run(cpu=0.08, memory=0.1), run(cpu=0.3, memory=0.6, oom=1)]
    decisions = [d.model_copy(update={"workload": f"w{i}"}) for i, d in enumerate(decisions)]
    capped = cap_changes(decisions, 1)
    assert [d.action for d in capped] == ["recommend", "apply"]
    assert set(capped[0].skipped.values()) == {"cap"}
    assert capped[0].state.last_change is None  # as if nothing happened
    assert capped[0].state.streaks  # the notice count carries on


def test_the_cap_lets_a_hot_workload_grow_before_others_shrink() -> None:
    """Savings wait: a capped evaluation must not leave a workload short of CPU while it
    releases capacity elsewhere (found by the backtest: CPU above request under a cap)."""
    decisions = [run(cpu=0.08, memory=0.1), run(cpu=0.98, memory=0.6)]
    decisions = [d.model_copy(update={"workload": f"w{i}"}) for i, d in enumerate(decisions)]
    assert [d.action for d in decisions] == ["apply", "apply"]
    capped = cap_changes(decisions, 1)
    assert [d.action for d in capped] == ["recommend", "apply"]
    assert all(c.request_to > c.request_from for c in capped[1].changes)


def test_an_oom_kill_from_before_an_upsize_is_not_urgent_again() -> None:
    """Killed at 8Gi (the limit then); the limit is now 12Gi: the OOM is history, so the
    next memory upsize waits for its cooldown like any other change."""
    spec = policy(safety={"noticeEvaluations": 1})
    raised = workload(container(cpu=2.0, memory=6 * GIB, memory_limit=12 * GIB))
    cpu_stats, memory_stats = steady(
        0.3, 1.2, cpu=2.0, memory=6 * GIB, memory_peak=8 / 6
    )  # peaked at 8Gi, the old limit
    usage = summary(raised, usage_of(cpu=cpu_stats, memory=memory_stats, oom_kills=3))
    evaluation = evaluate_workload(raised, usage, spec)
    assert evaluation.oom_containers == frozenset({"app"})
    assert evaluation.oom_at_size == frozenset()  # the peak is well below today's limit
    state = WorkloadState(
        last_change=NOW - timedelta(hours=1), oom_upsizes=(NOW - timedelta(hours=1),)
    )
    decision = decide(
        evaluation, raised, state, policy=spec, policy_name="p", mode="apply", now=NOW
    )
    assert decision.changes == ()
    assert "cooldown" in decision.skipped.values()


def test_an_oom_kill_at_the_current_limit_is_urgent() -> None:
    spec = policy()
    same = workload(container(cpu=2.0, memory=6 * GIB, memory_limit=8 * GIB))
    cpu_stats, memory_stats = steady(0.3, 1.2, cpu=2.0, memory=6 * GIB, memory_peak=8 / 6)
    usage = summary(same, usage_of(cpu=cpu_stats, memory=memory_stats, oom_kills=1))
    evaluation = evaluate_workload(same, usage, spec)
    assert evaluation.oom_at_size == frozenset({"app"})
    answered = WorkloadState(
        last_change=NOW - timedelta(hours=1), oom_upsizes=(NOW - timedelta(hours=1),)
    )
    decision = decide(
        evaluation, same, answered, policy=spec, policy_name="p", mode="apply", now=NOW
    )
    assert decision.urgent  # still dying at this size: upsize again at once


def test_a_held_streak_stops_counting_so_its_state_stops_changing() -> None:
    """Once a recommendation has held for the notice period, the next evaluations with the
    same data leave the state as it was: nothing to write on the workload."""
    notice = {"noticeEvaluations": 3}
    states = [WorkloadState()]
    for _ in range(5):
        states.append(run(mode="recommend", safety=notice, state=states[-1]).state)
    counts = [s.streaks["app/memory"].count for s in states[1:]]
    assert counts == [1, 2, 3, 3, 3]
    assert states[3] == states[4] == states[5]
    old = states[5].model_copy(
        update={
            "streaks": {k: v.model_copy(update={"count": 9}) for k, v in states[5].streaks.items()}
        }
    )
    assert run(mode="recommend", safety=notice, state=old).state == states[5]  # capped again
    held = run(safety=notice, state=states[5])
    assert held.action == "apply"  # the cap still lets the held change through
