"""Budgeted disruption: how much one evaluation (and one time window) may change.

``budget_changes`` extends ``cap_changes``: at most ``maxChangesPerEvaluation`` workloads,
at most ``maxReplicasChangedPerEvaluation`` replicas among them (each changed workload rolls
all its replicas), and at most ``maxChangesPerWindow`` workloads in the trailing
``budgetWindow``, counting the changes already made. Those are counted from the workloads'
own state annotations (``changes_in_window``): each change and its state land in one
conditional patch, so the count survives restarts and cannot disagree with what was done.

``blocking_budgets`` is the PodDisruptionBudget gate of in-place resize: a pod selected by a
PDB that allows no disruption right now is not resized.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from rightsizer.core.decision import Decision, WorkloadState, held
from rightsizer.core.model import Frozen
from rightsizer.core.policy import LabelSelector, SafetyPolicy, duration_seconds


def changes_in_window(
    states: Iterable[WorkloadState], *, now: datetime, window_seconds: float
) -> int:
    """Changes made in the trailing window: each workload's last change and OOM upsizes."""
    start = now - timedelta(seconds=window_seconds)
    total = 0
    for state in states:
        moments = set(state.oom_upsizes)
        if state.last_change is not None:
            moments.add(state.last_change)
        total += sum(1 for moment in moments if start < moment <= now)
    return total


def budget_changes(
    decisions: Sequence[Decision],
    safety: SafetyPolicy,
    *,
    replicas: Mapping[str, float],
    recent: int,
) -> list[Decision]:
    """The decisions within the budgets: OOM upsizes first, then other upsizes, then by what
    they release. The
    others keep recommending, with the reason (cap, replicaCap or windowCap)."""
    window_left = max(0, safety.max_changes_per_window - recent)
    ranked = sorted((d for d in decisions if d.action == "apply"), key=lambda d: -d.priority)
    refused: dict[str, tuple[str, str]] = {}
    count, rolled = 0, 0.0
    for decision in ranked:
        size = max(replicas.get(decision.workload, 1.0), 0.0)
        if count >= safety.max_changes_per_evaluation:
            refused[decision.workload] = (
                "cap",
                f"cap of {safety.max_changes_per_evaluation} changes per evaluation reached",
            )
        elif count >= window_left:
            refused[decision.workload] = (
                "windowCap",
                f"cap of {safety.max_changes_per_window} changes per {safety.budget_window} "
                f"reached ({recent} made in the last {safety.budget_window})",
            )
        elif rolled + size > safety.max_replicas_changed_per_evaluation:
            refused[decision.workload] = (
                "replicaCap",
                f"cap of {safety.max_replicas_changed_per_evaluation} replicas changed per "
                f"evaluation: {size:g} more would make {rolled + size:g}",
            )
        else:
            count, rolled = count + 1, rolled + size
    return [held(d, *refused[d.workload]) if d.workload in refused else d for d in decisions]


def window_seconds(safety: SafetyPolicy) -> float:
    return duration_seconds(safety.budget_window)


class DisruptionBudget(Frozen):
    """A PodDisruptionBudget as the gate needs it; ``selector`` None selects no pod."""

    name: str
    selector: LabelSelector | None
    disruptions_allowed: int


def blocking_budgets(
    pod_labels: Mapping[str, str], budgets: Sequence[DisruptionBudget]
) -> tuple[str, ...]:
    """The PDBs that select the pod and allow no disruption now (sorted names)."""
    return tuple(
        sorted(
            b.name
            for b in budgets
            if b.selector is not None
            and b.disruptions_allowed <= 0
            and b.selector.matches(dict(pod_labels))
        )
    )
