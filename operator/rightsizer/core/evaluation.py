"""One workload, evaluated: data checks, score and grade, rules, recommendations, savings."""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

from rightsizer.core.model import (
    Frozen,
    Resource,
    UsageSummary,
    Workload,
    WorkloadRef,
    trusted,
)
from rightsizer.core.policy import DAY, PolicySpec, duration_seconds
from rightsizer.core.recommendation import ContainerRecommendation, recommend_container
from rightsizer.core.rules import RuleMatch, evaluate_rules
from rightsizer.core.savings import ZERO, Amounts
from rightsizer.core.scoring import ScoreCard, score_workload
from rightsizer.core.units import human

Outcome = Literal["evaluated", "insufficient-data", "not-graded", "stale", "implausible"]
WorkloadAction = Literal["upsize", "reclaim", "downsize", "keep", "none"]
JOB_KINDS = ("CronJob", "Job")
_ACTION_ORDER: tuple[WorkloadAction, ...] = ("upsize", "reclaim", "downsize")
_NO_NAMES: frozenset[str] = frozenset()  # shared by the many evaluations without OOM kills
_NOT_GRADED = "not graded: no container has a request or limit with usage measured"


class WorkloadEvaluation(Frozen):
    """A workload's evaluation for one window: what was found and what is proposed."""

    ref: WorkloadRef
    project: str | None
    replicas: float
    outcome: Outcome
    card: ScoreCard | None = None
    action: WorkloadAction = "none"
    matches: tuple[RuleMatch, ...] = ()
    containers: tuple[ContainerRecommendation, ...] = ()
    requested: Amounts = Amounts()  # what its requests reserve (x replicas x duty cycle)
    released: Amounts = Amounts()  # proposed downsizes
    added: Amounts = Amounts()  # proposed upsizes
    reclaimable: Amounts = Amounts()  # everything, when the workload is a reclaim candidate
    history_days: float = 0.0
    oom_containers: frozenset[str] = frozenset()  # OOM-killed in the window
    oom_at_size: frozenset[str] = frozenset()  # ... with a peak at their current size
    reasons: tuple[str, ...] = ()

    @property
    def grade(self) -> str | None:
        return self.card.grade if self.card else None

    @property
    def score(self) -> float | None:
        return self.card.score if self.card else None


def evaluate_workload(
    workload: Workload, usage: UsageSummary, policy: PolicySpec
) -> WorkloadEvaluation:
    """Check the data, then score, grade, match rules and recommend; never raises on data."""
    scale = workload.replicas * (usage.duty_cycle if workload.ref.kind in JOB_KINDS else 1.0)
    requested = requested_amounts(workload, usage, scale=scale)
    days = history_days(usage)
    problem = data_problem(workload, usage, policy, days=days)
    card = score_workload(workload, usage, policy) if problem is None else None
    if problem is None and card is None:
        problem = "not-graded", _NOT_GRADED
    proposal = (
        _decide_action(workload, usage, policy, requested=requested, scale=scale)
        if problem is None
        else _Proposal(reasons=(problem[1],))
    )
    return trusted(
        WorkloadEvaluation,
        ref=workload.ref,
        project=workload.project,
        replicas=workload.replicas,
        outcome="evaluated" if problem is None else problem[0],
        card=card,
        action=proposal.action,
        matches=proposal.matches,
        containers=proposal.containers,
        requested=requested,
        released=proposal.released,
        added=proposal.added,
        reclaimable=proposal.reclaimable,
        history_days=days,
        oom_containers=oom_killed(usage),
        oom_at_size=oom_at_current_size(workload, usage),
        reasons=proposal.reasons,
    )


class _Proposal(NamedTuple):
    """What the rules and recommendations propose for a workload (none when not evaluated)."""

    action: WorkloadAction = "none"
    matches: tuple[RuleMatch, ...] = ()
    containers: tuple[ContainerRecommendation, ...] = ()
    released: Amounts = ZERO
    added: Amounts = ZERO
    reclaimable: Amounts = ZERO
    reasons: tuple[str, ...] = ()


def _decide_action(
    workload: Workload,
    usage: UsageSummary,
    policy: PolicySpec,
    *,
    requested: Amounts,
    scale: float,
) -> _Proposal:
    matches: list[RuleMatch] = []
    recommendations: list[ContainerRecommendation] = []
    for container in workload.containers:
        measured = usage.containers.get(container.name)
        found = evaluate_rules(policy.rules, container, measured)
        matches.extend(found)
        if container.in_template:
            recommendations.append(
                recommend_container(
                    container,
                    measured,
                    policy.recommendation,
                    matches=found,
                    resources=policy.resources,
                )
            )
    action = workload_action(matches, workload, recommendations)
    released = added = reclaimable = ZERO
    if action == "reclaim":
        reclaimable = requested
        recommendations = [_held_for_reclaim(c) for c in recommendations]
    else:
        released, added = _moved_amounts(recommendations, scale)
    reasons = tuple(match.describe() for match in matches) or ("no rule holds",)
    return _Proposal(
        action=action,
        matches=tuple(matches),
        containers=tuple(recommendations),
        released=released,
        added=added,
        reclaimable=reclaimable,
        reasons=reasons,
    )


def _moved_amounts(
    recommendations: list[ContainerRecommendation], scale: float
) -> tuple[Amounts, Amounts]:
    """What the proposed changes release and add, x ``scale``, summed in order."""
    released: dict[Resource, float] = {"cpu": 0.0, "memory": 0.0, "storage": 0.0, "gpu": 0.0}
    added = dict(released)
    for rec in (r for c in recommendations for r in c.changes):
        delta = rec.delta
        if delta > 0:
            released[rec.resource] += delta * scale
        else:
            added[rec.resource] += -delta * scale
    return _amounts(released), _amounts(added)


def _amounts(totals: dict[Resource, float]) -> Amounts:
    """Float totals as Amounts: the shared ``ZERO`` when they are all zero."""
    if not any(totals.values()):
        return ZERO
    return trusted(
        Amounts,
        cpu=totals["cpu"],
        memory=totals["memory"],
        storage=totals["storage"],
        gpu=totals["gpu"],
    )


def _held_for_reclaim(container: ContainerRecommendation) -> ContainerRecommendation:
    """A reclaim candidate is reported for a human to shut down, never resized meanwhile."""
    held = {
        resource: rec.model_copy(
            update={
                "change": "none",
                "request": rec.current_request,
                "limit": rec.current_limit,
                "reasons": (*rec.reasons, "reclaim candidate: reported, not resized"),
            }
        )
        if rec.change != "none"
        else rec
        for resource, rec in container.resources.items()
    }
    return container.model_copy(update={"resources": held})


def workload_action(
    matches: list[RuleMatch], workload: Workload, recommendations: list[ContainerRecommendation]
) -> WorkloadAction:
    """Upsize if any container needs it; reclaim if every container is a candidate; else
    downsize if a change is proposed; else keep."""
    changes = [rec for c in recommendations for rec in c.changes]
    if any(rec.change == "up" for rec in changes):
        return "upsize"
    reclaim = {m.container for m in matches if m.action == "reclaim"}
    if workload.containers and reclaim >= {c.name for c in workload.containers}:
        return "reclaim"
    if any(rec.change == "down" for rec in changes):
        return "downsize"
    return "keep"


def oom_killed(usage: UsageSummary) -> frozenset[str]:
    """Containers OOM-killed in the window."""
    return frozenset(n for n, c in usage.containers.items() if c.oom_kills > 0) or _NO_NAMES


OOM_AT_SIZE = 0.95  # a peak within 5% of the limit (or request) is "at" it


def oom_at_current_size(workload: Workload, usage: UsageSummary) -> frozenset[str]:
    """Containers OOM-killed in the window whose memory peak reached their CURRENT limit
    (the request where there is none): the size they have now still fails."""
    current = {c.name: c.reference_limit("memory") for c in workload.containers}
    found = set()
    for name, measured in usage.containers.items():
        if measured.oom_kills <= 0:
            continue
        stats = measured.resources.get("memory")
        peak = max(measured.oom_memory or 0.0, (stats.stat("max") if stats else None) or 0.0)
        size = current.get(name)
        if size is None or peak == 0.0 or peak >= OOM_AT_SIZE * size:
            found.add(name)  # when in doubt, the OOM counts
    return frozenset(found) if found else _NO_NAMES


def history_days(usage: UsageSummary) -> float:
    return max(
        (stats.history_days for c in usage.containers.values() for stats in c.resources.values()),
        default=0.0,
    )


def data_problem(
    workload: Workload, usage: UsageSummary, policy: PolicySpec, *, days: float | None = None
) -> tuple[Outcome, str] | None:
    """Why the data cannot support an evaluation, or None when it can. ``days``: the usage's
    ``history_days``, when the caller has it already."""
    if usage.implausible:
        return "implausible", "implausible metrics: " + "; ".join(usage.implausible)
    bad = implausible_values(usage) + beyond_any_node(usage, policy.implausible_above_node)
    if bad:
        return "implausible", "implausible metrics: " + "; ".join(bad)
    if not usage.containers:
        return "insufficient-data", "no usage metrics for any container"
    stale = [name for name, c in usage.containers.items() if not c.fresh]
    if stale and len(stale) == len(usage.containers):
        return "stale", f"no samples within {policy.stale_after} of the evaluation"
    if workload.ref.kind in JOB_KINDS:
        samples = max(
            (s.samples for c in usage.containers.values() for s in c.resources.values()), default=0
        )
        if samples < policy.min_job_samples:
            return "insufficient-data", (
                f"{samples} samples of running jobs, {policy.min_job_samples} needed"
            )
        return None
    if days is None:
        days = history_days(usage)
    needed = duration_seconds(policy.min_history) / DAY
    if days + 1e-9 < needed:
        return "insufficient-data", f"{days:.1f} days of history, {needed:g} needed"
    return None


def implausible_values(usage: UsageSummary) -> list[str]:
    found: list[str] = []
    for name, container in usage.containers.items():
        for resource, stats in container.resources.items():
            for stat, value in stats.values.items():
                if not math.isfinite(value) or value < 0:
                    found.append(f"{name} {resource} {stat} = {value}")
    return found


def beyond_any_node(usage: UsageSummary, factor: float) -> list[str]:
    """Usage no node could give: above ``factor`` x the largest node's allocatable."""
    found: list[str] = []
    for name, container in usage.containers.items():
        for resource, stats in container.resources.items():
            capacity = usage.node_capacity.get(resource)
            peak = stats.stat("max")
            if capacity and peak is not None and peak > factor * capacity:
                found.append(
                    f"{name} {resource} max {human(resource, peak)} above the largest node's "
                    f"{human(resource, capacity)}"
                )
    return found


def requested_amounts(workload: Workload, usage: UsageSummary, *, scale: float = 1.0) -> Amounts:
    """Per replica: container requests (limit where no request), PVC capacity; x ``scale``."""
    totals = {"cpu": 0.0, "memory": 0.0, "gpu": 0.0}
    for container in workload.containers:
        for resource in ("cpu", "memory", "gpu"):
            reference, _ = container.reference(resource)
            if reference:
                totals[resource] += reference
    storage = float(sum(volume.capacity for volume in usage.volumes))
    replicas = max(workload.replicas, 1.0)
    return trusted(
        Amounts,
        cpu=totals["cpu"] * scale,
        memory=totals["memory"] * scale,
        storage=storage / replicas * scale,
        gpu=totals["gpu"] * scale,
    )
