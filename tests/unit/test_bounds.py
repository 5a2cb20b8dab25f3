"""Guarantees 2, 4 and 5 in the pure core: bounded output (LimitRange, largest node), budgeted
disruption (per evaluation, per replica, per window; PDB gate) and single owner (VPA); and
the adapter's translation of the API objects they come from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from core_factories import GIB, MIB, container, policy, steady, summary, usage_of, workload

from rightsizer.adapters.guards import (
    cluster_bounds,
    disruption_budgets,
    namespace_bounds,
    vpa_targets,
)
from rightsizer.core.bounds import Bounds, ClusterBounds, NamespaceBounds, bound_change
from rightsizer.core.budget import (
    DisruptionBudget,
    blocking_budgets,
    budget_changes,
    changes_in_window,
)
from rightsizer.core.decision import Decision, ResourceChange, WorkloadState, decide
from rightsizer.core.evaluation import evaluate_workload
from rightsizer.core.policy import LabelSelector, SafetyPolicy

NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
NS = "fin-prod"


def cpu_change(before: float, after: float, *, limit: float | None = None) -> ResourceChange:
    ratio = None if limit is None else limit / before
    return ResourceChange(
        container="app",
        resource="cpu",
        request_from=before,
        request_to=after,
        limit_from=limit,
        limit_to=None if ratio is None else after * ratio,
    )


def lr(**limits: dict[str, float]) -> NamespaceBounds:
    return NamespaceBounds(namespace=NS, **limits)


# (case, change, namespace bounds, node allocatable, policy cpu min,
#  expected request, expected limit (or None), a phrase of the reason)
BOUNDED: list[tuple[str, ResourceChange, NamespaceBounds | None, dict[str, float], str, Any]] = [
    ("no bounds", cpu_change(4, 6, limit=8), None, {}, "10m", (6, 12, None)),
    (
        "LimitRange max clamps request and limit",
        cpu_change(4, 6, limit=8),
        lr(max={"cpu": 5}),
        {},
        "10m",
        (5, 5, "clamped to LimitRange max 5 cores in namespace fin-prod"),
    ),
    (
        "the largest node is smaller than the LimitRange max",
        cpu_change(4, 6),
        lr(max={"cpu": 5}),
        {"cpu": 4.5},
        "10m",
        (4.5, None, "clamped to the largest node's allocatable 4.5 cores"),
    ),
    (
        "node allocatable is rounded down to millicores",
        cpu_change(2, 4),
        None,
        {"cpu": 3.9996},
        "10m",
        (3.999, None, "largest node"),
    ),
    (
        "LimitRange min raises a downsize",
        cpu_change(4, 2),
        lr(min={"cpu": 3}),
        {},
        "10m",
        (3, None, "raised to LimitRange min 3 cores"),
    ),
    (
        "maxLimitRequestRatio raises the request",
        cpu_change(4, 2, limit=8),
        lr(max_ratio={"cpu": 1.5}),
        {},
        "10m",
        (2.667, 4, "maxLimitRequestRatio 1.5"),
    ),
]
REFUSED: list[tuple[str, ResourceChange, NamespaceBounds | None, dict[str, float], str, str]] = [
    (
        "policy min above the LimitRange max",
        cpu_change(4, 2),
        lr(max={"cpu": 2}),
        {},
        "3",
        "the policy's min 3 cores exceeds the LimitRange max 2 cores in namespace fin-prod",
    ),
    (
        "an upsize the LimitRange max turns into a downsize",
        cpu_change(4, 6),
        lr(max={"cpu": 3}),
        {},
        "10m",
        "no increase is possible",
    ),
    (
        "a downsize the LimitRange min forbids",
        cpu_change(4, 2),
        lr(min={"cpu": 4}),
        {},
        "10m",
        "no decrease is possible",
    ),
    (
        "the clamp would exceed the max step",
        cpu_change(8, 4),
        lr(max={"cpu": 2}),
        {},
        "10m",
        "would exceed the max step",
    ),
]


@pytest.mark.parametrize(
    ("case", "change", "namespace", "nodes", "minimum", "expected"),
    BOUNDED,
    ids=[b[0] for b in BOUNDED],
)
def test_a_change_is_clamped_to_every_bound_and_says_which(
    case: str,
    change: ResourceChange,
    namespace: NamespaceBounds | None,
    nodes: dict[str, float],
    minimum: str,
    expected: tuple[float, float | None, str | None],
) -> None:
    spec = policy(
        recommendation={"cpu": {"stat": "p95", "headroom": 0.15, "min": minimum, "max": "16"}}
    )
    bounds = Bounds(namespace=namespace, cluster=ClusterBounds(allocatable=nodes))
    result = bound_change(change, policy=spec, bounds=bounds)
    assert result.change is not None, result.reasons
    request, limit, phrase = expected
    assert result.change.request_to == pytest.approx(request, abs=1e-3)
    assert result.change.limit_to == (None if limit is None else pytest.approx(limit, abs=1e-3))
    if phrase is None:
        assert result.reasons == ()
    else:
        assert any(phrase in reason for reason in result.reasons), result.reasons


@pytest.mark.parametrize(
    ("case", "change", "namespace", "nodes", "minimum", "phrase"),
    REFUSED,
    ids=[r[0] for r in REFUSED],
)
def test_a_change_no_bound_admits_is_not_made_and_says_why(
    case: str,
    change: ResourceChange,
    namespace: NamespaceBounds | None,
    nodes: dict[str, float],
    minimum: str,
    phrase: str,
) -> None:
    spec = policy(
        recommendation={"cpu": {"stat": "p95", "headroom": 0.15, "min": minimum, "max": "16"}}
    )
    bounds = Bounds(namespace=namespace, cluster=ClusterBounds(allocatable=nodes))
    result = bound_change(change, policy=spec, bounds=bounds)
    assert result.change is None
    assert any(phrase in reason for reason in result.reasons), result.reasons


def test_memory_is_clamped_to_whole_mebibytes_below_the_node() -> None:
    change = ResourceChange(
        container="app",
        resource="memory",
        request_from=2 * GIB,
        request_to=4 * GIB,
        limit_from=None,
        limit_to=None,
    )
    allocatable = 3.5 * GIB + 123
    bounds = Bounds(cluster=ClusterBounds(allocatable={"memory": allocatable}))
    result = bound_change(change, policy=policy(), bounds=bounds)
    assert result.change is not None
    assert result.change.request_to == 3.5 * GIB
    assert result.change.request_to % MIB == 0


# -- in decide(): bounds, VPA ------------------------------------------------------------
def decided(
    *, bounds: Bounds | None = None, vpa: frozenset[str] = frozenset(), **safety: Any
) -> Decision:
    """A clear cpu and memory downsize of a 2-replica Deployment (4 CPU, 4 GiB)."""
    spec = policy(safety={"noticeEvaluations": 1, **safety})
    target = workload(container(cpu=4.0, memory=4 * GIB, memory_limit=8 * GIB))
    target = target.model_copy(update={"vpa_resources": vpa})
    cpu_stats, memory_stats = steady(0.08, 0.1, cpu=4.0, memory=4 * GIB)
    evaluation = evaluate_workload(
        target, summary(target, usage_of(cpu=cpu_stats, memory=memory_stats)), spec
    )
    return decide(
        evaluation,
        target,
        WorkloadState(),
        policy=spec,
        policy_name="finance",
        mode="apply",
        now=NOW,
        bounds=bounds,
    )


def test_decide_applies_the_clamped_value_and_remembers_it() -> None:
    free = decided()
    cpu = next(c for c in free.changes if c.resource == "cpu")
    assert cpu.request_to <= 2.0  # the unbounded downsize: at most half of 4 CPU (max step)
    bounded = decided(bounds=Bounds(namespace=lr(min={"cpu": 3})))
    cpu = next(c for c in bounded.changes if c.resource == "cpu")
    assert cpu.request_to == 3
    assert bounded.state.last_applied["app/cpu"] == 3
    assert any(
        r.startswith("app/cpu: request raised to LimitRange min 3 cores in namespace fin-prod")
        for r in bounded.reasons
    ), bounded.reasons


def test_decide_skips_what_no_bound_admits_with_the_code_bounds() -> None:
    spec_min_above = Bounds(namespace=lr(max={"memory": 32 * MIB}))  # policy min is 64Mi
    decision = decided(bounds=spec_min_above)
    assert decision.skipped.get("app/memory") == "bounds"
    assert any("exceeds the LimitRange max 32Mi" in r for r in decision.reasons)
    assert "app/memory" not in decision.state.last_applied
    assert {c.resource for c in decision.changes} == {"cpu"}


@pytest.mark.parametrize(
    ("owned", "skipped"),
    [
        (frozenset(), set()),
        (frozenset({"memory"}), {"app/memory"}),
        (frozenset({"cpu", "memory"}), {"app/cpu", "app/memory"}),
    ],
)
def test_a_resource_a_vpa_sizes_is_recommend_only(owned: frozenset[str], skipped: set[str]) -> None:
    decision = decided(vpa=owned)
    assert {k for k, code in decision.skipped.items() if code == "vpa"} == skipped
    assert {c.key for c in decision.changes} == {"app/cpu", "app/memory"} - skipped
    for key in skipped:
        assert any(r.startswith(key) and "VerticalPodAutoscaler" in r for r in decision.reasons)


# -- budgets ------------------------------------------------------------------------------
def applying(name: str, priority: float = 0.0) -> Decision:
    change = cpu_change(2, 1)
    return Decision(
        workload=f"Deployment/{NS}/{name}",
        action="apply",
        changes=(change,),
        reasons=("app/cpu: 2 -> 1",),
        priority=priority,
    )


# (case, safety, replicas per workload, changes already in the window, expected codes)
BUDGETS: list[tuple[str, dict[str, Any], dict[str, float], int, dict[str, str]]] = [
    ("all fit", {}, {}, 0, {}),
    ("per evaluation", {"maxChangesPerEvaluation": 2}, {}, 0, {"c": "cap"}),
    ("per window", {"maxChangesPerWindow": 5}, {}, 4, {"b": "windowCap", "c": "windowCap"}),
    ("window used up", {"maxChangesPerWindow": 5}, {}, 7, {n: "windowCap" for n in "abc"}),
    (
        "replicas: the next that fits still goes",
        {"maxReplicasChangedPerEvaluation": 4},
        {"a": 3, "b": 3, "c": 1},
        0,
        {"b": "replicaCap"},
    ),
    (
        "one workload too large",
        {"maxReplicasChangedPerEvaluation": 4},
        {"a": 9},
        0,
        {"a": "replicaCap"},
    ),
]


@pytest.mark.parametrize(
    ("case", "safety", "replicas", "recent", "expected"), BUDGETS, ids=[b[0] for b in BUDGETS]
)
def test_budgets_hold_back_the_lowest_ranked_changes_with_their_reason(
    case: str,
    safety: dict[str, Any],
    replicas: dict[str, float],
    recent: int,
    expected: dict[str, str],
) -> None:
    decisions = [applying("a", 3), applying("b", 2), applying("c", 1)]
    sizes = {f"Deployment/{NS}/{n}": replicas.get(n, 1.0) for n in "abc"}
    result = budget_changes(
        decisions, SafetyPolicy.model_validate(safety), replicas=sizes, recent=recent
    )
    codes = {d.workload.rsplit("/", 1)[1]: d.skipped.get("app/cpu") for d in result}
    assert {n: c for n, c in codes.items() if c} == expected
    for decision in result:
        if decision.workload.rsplit("/", 1)[1] in expected:
            assert decision.action == "recommend" and decision.changes == ()
            assert "cap of" in decision.reasons[-1]


def test_an_oom_upsize_goes_first_under_the_window_cap() -> None:
    urgent = applying("oom", 1e12)
    result = budget_changes(
        [applying("a", 5), urgent],
        SafetyPolicy(max_changes_per_window=3),
        replicas={},
        recent=2,
    )
    assert [d.action for d in result] == ["recommend", "apply"]


STATES = [
    ("nothing changed", [WorkloadState()], 0),
    ("one change inside", [WorkloadState(last_change=NOW - timedelta(hours=3))], 1),
    ("one change outside", [WorkloadState(last_change=NOW - timedelta(hours=30))], 0),
    (
        "OOM upsizes count, the same moment once",
        [
            WorkloadState(
                last_change=NOW - timedelta(hours=1),
                oom_upsizes=(NOW - timedelta(hours=5), NOW - timedelta(hours=1)),
            ),
            WorkloadState(last_change=NOW - timedelta(hours=23)),
        ],
        3,
    ),
]


@pytest.mark.parametrize(("case", "states", "count"), STATES, ids=[s[0] for s in STATES])
def test_changes_in_the_window_are_counted_from_the_state(
    case: str, states: list[WorkloadState], count: int
) -> None:
    assert changes_in_window(states, now=NOW, window_seconds=86400) == count


def pdb(name: str, allowed: int, selector: dict[str, str] | None) -> DisruptionBudget:
    chosen = None if selector is None else LabelSelector(match_labels=selector)
    return DisruptionBudget(name=name, selector=chosen, disruptions_allowed=allowed)


PDBS = [
    ("no PDB", [], ()),
    ("a PDB allowing a disruption", [pdb("web", 1, {"app": "web"})], ()),
    ("a PDB allowing none", [pdb("web", 0, {"app": "web"})], ("web",)),
    ("a PDB of other pods", [pdb("db", 0, {"app": "db"})], ()),
    ("an empty selector selects every pod", [pdb("all", 0, {})], ("all",)),
    ("a null selector selects none", [pdb("none", 0, None)], ()),
]


@pytest.mark.parametrize(("case", "budgets", "blockers"), PDBS, ids=[p[0] for p in PDBS])
def test_a_pdb_with_no_disruption_left_holds_an_in_place_resize(
    case: str, budgets: list[DisruptionBudget], blockers: tuple[str, ...]
) -> None:
    assert blocking_budgets({"app": "web", "tier": "front"}, budgets) == blockers


# -- the adapter's translation ---------------------------------------------------------------
def test_limit_ranges_combine_to_the_strictest_container_bounds() -> None:
    items = [
        {"spec": {"limits": [
            {"type": "Container", "max": {"cpu": "2", "memory": "4Gi"}, "min": {"cpu": "50m"}},
            {"type": "Pod", "max": {"cpu": "1"}},
        ]}},
        {"spec": {"limits": [
            {"type": "Container", "max": {"cpu": "3"}, "min": {"cpu": "100m"},
             "maxLimitRequestRatio": {"memory": "2"}},
        ]}},
    ]  # fmt: skip
    bounds = namespace_bounds(NS, items)
    assert bounds.max == {"cpu": 2, "memory": 4 * GIB}
    assert bounds.min == {"cpu": 0.1}
    assert bounds.max_ratio == {"memory": 2}


def test_the_largest_node_bounds_each_resource() -> None:
    nodes: list[dict[str, Any]] = [
        {"status": {"allocatable": {"cpu": "3500m", "memory": "30Gi"}}},
        {"status": {"allocatable": {"cpu": "7910m", "memory": "16Gi"}}},
        {"status": {}},
    ]
    assert cluster_bounds(nodes).allocatable == {"cpu": 7.91, "memory": 30 * GIB}
    assert cluster_bounds([]).allocatable == {}


def vpa(name: str, **spec: Any) -> dict[str, Any]:
    return {"spec": {"targetRef": {"kind": "Deployment", "name": name}, **spec}}


VPAS = [
    ("default: cpu and memory", vpa("w"), {"cpu", "memory"}),
    (
        "controlledResources",
        vpa(
            "w",
            resourcePolicy={
                "containerPolicies": [{"containerName": "*", "controlledResources": ["memory"]}]
            },
        ),
        {"memory"},
    ),
    ("updateMode Off only recommends", vpa("w", updatePolicy={"updateMode": "Off"}), set()),
    (
        "every container policy Off",
        vpa("w", resourcePolicy={"containerPolicies": [{"containerName": "*", "mode": "Off"}]}),
        set(),
    ),
]


@pytest.mark.parametrize(("case", "item", "owned"), VPAS, ids=[v[0] for v in VPAS])
def test_a_vpa_owns_its_controlled_resources(
    case: str, item: dict[str, Any], owned: set[str]
) -> None:
    assert vpa_targets([item]).get(("Deployment", "w"), frozenset()) == owned


def test_pdbs_read_their_selector_and_disruptions_allowed() -> None:
    items: list[dict[str, Any]] = [
        {"metadata": {"name": "a"}, "spec": {"selector": {"matchLabels": {"app": "x"}}},
         "status": {"disruptionsAllowed": 2}},
        {"metadata": {"name": "b"}, "spec": {}},
    ]  # fmt: skip
    first, second = disruption_budgets(items)
    assert first.disruptions_allowed == 2 and first.selector is not None
    assert first.selector.matches({"app": "x"})
    assert second.disruptions_allowed == 0 and second.selector is None
