"""Decisions: what is done with a workload's recommendations, and why, given its history.

``decide`` is pure: evaluation + workload facts + recorded state + policy + mode + now ->
``Decision``. The safety rules of DESIGN.md live here, each with a skip reason code:

  excluded          the workload opted out: nothing is written at all
  <outcome>         insufficient-data / stale / implausible / not-graded: no change
  recommendMode     the policy (or the operator's kill switch) only recommends
  job               a bare Job's template cannot change
  hpa               an HPA scales on that resource: recommend only
  vpa               a VerticalPodAutoscaler (not "Off") also sizes that resource: recommend only
  singleReplica     one replica and the policy does not allow it
  notice            the recommendation has not held for noticeEvaluations yet
  cooldown          the workload changed less than cooldown ago
  changeWindow      outside the policy's change windows
  bumpLoop          repeated OOM upsizes without effect: stop and ask a human
  notConverging     applied values keep being undone (GitOps, webhook): stop
  cap               the policy's maxChangesPerEvaluation is used up (see ``cap_changes``)
  bounds            no value within the LimitRange, the largest node and the max step at once
                    (see core/bounds.py); clamped values say which bound clamped them

An OOM upsize skips notice, cooldown and change windows, but keeps the caps, the bounds and
the bump-loop guard. The value applied is the most conservative (largest) target of the
last ``noticeEvaluations`` that agreed in direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field

from rightsizer.core.bounds import BOUNDS_SKIP, Bounds, bound_change
from rightsizer.core.evaluation import WorkloadEvaluation
from rightsizer.core.model import Frozen, Resource, Workload
from rightsizer.core.policy import PolicySpec, duration_seconds
from rightsizer.core.recommendation import ResourceRecommendation, follow_limit
from rightsizer.core.schedule import in_change_window

DecisionAction = Literal["apply", "recommend", "none", "skip"]
Mode = Literal["recommend", "apply"]
STATE_VERSION = 1


class Streak(Frozen):
    """Consecutive evaluations recommending the same direction for one container resource."""

    direction: Literal["up", "down"]
    count: int
    targets: tuple[float, ...]


class WorkloadState(Frozen):
    """What rightsizer remembers about a workload between evaluations (kept on the workload)."""

    version: int = STATE_VERSION
    policy: str | None = None
    streaks: dict[str, Streak] = Field(default_factory=dict)  # "container/resource"
    last_change: datetime | None = None
    last_applied: dict[str, float] = Field(default_factory=dict)  # "container/resource"
    undone: int = 0  # evaluations that found an applied value undone
    oom_upsizes: tuple[datetime, ...] = ()


class ResourceChange(Frozen):
    container: str
    resource: Resource
    request_from: float
    request_to: float
    limit_from: float | None
    limit_to: float | None
    urgent: bool = False

    @property
    def key(self) -> str:
        return f"{self.container}/{self.resource}"


class Decision(Frozen):
    """What to do with one workload now; ``state`` is what to remember for next time."""

    workload: str
    action: DecisionAction
    changes: tuple[ResourceChange, ...] = ()
    skipped: dict[str, str] = Field(default_factory=dict)  # "container/resource" -> reason code
    reasons: tuple[str, ...] = ()
    state: WorkloadState = WorkloadState()
    held_state: WorkloadState | None = None  # what to remember if the changes are not made
    urgent: bool = False
    priority: float = 0.0  # higher goes first under the cap

    @property
    def writes(self) -> bool:
        return self.action != "skip"


def decide(
    evaluation: WorkloadEvaluation,
    workload: Workload,
    state: WorkloadState,
    *,
    policy: PolicySpec,
    policy_name: str,
    mode: Mode,
    now: datetime,
    bounds: Bounds | None = None,
) -> Decision:
    """One workload's decision under the policy's safety rules, its changes kept within
    ``bounds`` (the namespace's LimitRange, the largest node) when given."""
    key = workload.ref.key
    if workload.excluded:
        return Decision(
            workload=key,
            action="skip",
            reasons=("excluded: opted out",),
            state=state,
            skipped={"*": "excluded"},
        )
    if evaluation.outcome != "evaluated":
        reset = state.model_copy(update={"streaks": {}, "policy": policy_name})
        return Decision(
            workload=key,
            action="none",
            reasons=evaluation.reasons,
            state=reset,
            skipped={"*": evaluation.outcome},
        )
    undone = _undone(state, workload)
    proposals = _proposals(evaluation)
    streaks = _streaks(state, proposals, keep=policy.safety.notice_evaluations)
    base_state = state.model_copy(
        update={
            "policy": policy_name,
            "streaks": streaks,
            "undone": state.undone + 1 if undone else state.undone,
        }
    )
    if not proposals:
        return Decision(
            workload=key, action="none", reasons=("no change proposed",), state=base_state
        )
    gates = _Gates(
        policy=policy,
        workload=workload,
        state=base_state,
        mode=mode,
        now=now,
        evaluation=evaluation,
    )
    changes: list[ResourceChange] = []
    skipped: dict[str, str] = {}
    reasons: list[str] = []
    for container, rec in proposals:
        change_key = f"{container}/{rec.resource}"
        urgent = (
            rec.resource == "memory"
            and rec.change == "up"
            and _oom_is_news(container, evaluation, base_state, policy=policy, now=now)
        )
        reason = gates.blocked(container, rec, streaks[change_key], urgent=urgent)
        if reason is not None:
            skipped[change_key] = reason[0]
            reasons.append(f"{change_key}: {reason[1]}")
            continue
        change = _change(container, rec, streaks[change_key], policy, urgent=urgent)
        if bounds is not None:
            bounded = bound_change(change, policy=policy, bounds=bounds)
            reasons.extend(f"{change_key}: {reason}" for reason in bounded.reasons)
            if bounded.change is None:
                skipped[change_key] = BOUNDS_SKIP
                continue
            change = bounded.change
        changes.append(change)
    return _finish(
        key,
        changes,
        skipped=skipped,
        reasons=reasons,
        state=base_state,
        evaluation=evaluation,
        now=now,
    )


def _oom_is_news(
    container: str,
    evaluation: WorkloadEvaluation,
    state: WorkloadState,
    *,
    policy: PolicySpec,
    now: datetime,
) -> bool:
    """An OOM kill calls for an urgent upsize unless rightsizer already answered it: with no
    OOM upsize in the window every kill in it is news; after one, only a container that
    still peaks at its (raised) size is. A kill the data cannot place counts as news."""
    if container not in evaluation.oom_containers:
        return False
    window_start = now - timedelta(seconds=policy.window_seconds)
    answered = any(moment >= window_start for moment in state.oom_upsizes)
    return not answered or container in evaluation.oom_at_size


def _proposals(evaluation: WorkloadEvaluation) -> list[tuple[str, ResourceRecommendation]]:
    return [(c.container, rec) for c in evaluation.containers for rec in c.changes]


def _streaks(
    state: WorkloadState, proposals: list[tuple[str, ResourceRecommendation]], *, keep: int
) -> dict[str, Streak]:
    """Extend the streaks that continue in the same direction; start the others afresh.
    Resources with no proposal this time lose their streak. A count stops at ``keep`` (the
    notice period, all the gate asks): a streak held long enough no longer changes the state
    at each evaluation, so its annotation is not written again."""
    streaks: dict[str, Streak] = {}
    for container, rec in proposals:
        key = f"{container}/{rec.resource}"
        previous = state.streaks.get(key)
        direction: Literal["up", "down"] = "up" if rec.change == "up" else "down"
        if previous is not None and previous.direction == direction:
            streaks[key] = Streak(
                direction=direction,
                count=min(previous.count + 1, max(keep, 1)),
                targets=(*previous.targets, rec.target)[-keep:],
            )
        else:
            streaks[key] = Streak(direction=direction, count=1, targets=(rec.target,))
    return streaks


def _undone(state: WorkloadState, workload: Workload) -> bool:
    """An applied value is no longer in the template: something undid our change."""
    current = {f"{c.name}/{r}": v for c in workload.containers for r, v in c.requests.items()}
    return any(
        key in current and abs(current[key] - value) > 1e-9 * max(1.0, value)
        for key, value in state.last_applied.items()
    )


class _Gates:
    """The safety rules, checked in order for one proposed change."""

    def __init__(
        self,
        *,
        policy: PolicySpec,
        workload: Workload,
        state: WorkloadState,
        mode: Mode,
        now: datetime,
        evaluation: WorkloadEvaluation,
    ) -> None:
        self.policy, self.workload, self.state = policy, workload, state
        self.mode, self.now, self.evaluation = mode, now, evaluation

    def blocked(
        self, container: str, rec: ResourceRecommendation, streak: Streak, *, urgent: bool
    ) -> tuple[str, str] | None:
        del container
        safety = self.policy.safety
        if self.mode != "apply":
            return "recommendMode", "recommend mode: recommended, not applied"
        if self.workload.ref.kind == "Job":
            return "job", "a bare Job's template cannot change: recommend only"
        if rec.resource in self.workload.hpa_resources and safety.hpa == "recommendOnly":
            return "hpa", f"an HPA scales on {rec.resource}: recommend only"
        if rec.resource in self.workload.vpa_resources:
            return "vpa", f"a VerticalPodAutoscaler also sizes {rec.resource}: recommend only"
        if (
            self.workload.replicas <= 1
            and not safety.allow_single_replica
            and (self.workload.ref.kind != "CronJob")
        ):
            return "singleReplica", "single replica: needs allowSingleReplica"
        if self.state.undone >= safety.max_tries:
            return "notConverging", (
                f"applied values were undone {self.state.undone} times: stopped"
            )
        if urgent:
            return self._bump_loop()
        if streak.count < safety.notice_evaluations:
            return "notice", (
                f"held {streak.count} of {safety.notice_evaluations} evaluations "
                "needed before it is applied"
            )
        if self._cooling_down():
            return "cooldown", f"changed less than {safety.cooldown} ago"
        if not in_change_window(safety.change_windows, self.now, utc_offset=safety.timezone):
            return "changeWindow", "outside the change windows " + ", ".join(safety.change_windows)
        return None

    def _cooling_down(self) -> bool:
        last = self.state.last_change
        cooldown = timedelta(seconds=duration_seconds(self.policy.safety.cooldown))
        return last is not None and self.now - last < cooldown

    def _bump_loop(self) -> tuple[str, str] | None:
        safety = self.policy.safety
        horizon = self.now - timedelta(seconds=max(duration_seconds(safety.cooldown), 86400.0))
        recent = [t for t in self.state.oom_upsizes if t >= horizon]
        if len(recent) >= safety.max_tries:
            return "bumpLoop", (
                f"{len(recent)} OOM upsizes since {horizon:%Y-%m-%d %H:%M} "
                "did not stop the OOM kills: stopped, needs a human"
            )
        return None


def _change(
    container: str,
    rec: ResourceRecommendation,
    streak: Streak,
    policy: PolicySpec,
    *,
    urgent: bool,
) -> ResourceChange:
    """The change to make: the most conservative target of the streak, limit following."""
    assert rec.current_request is not None  # proposals always have a current request
    request = rec.target if urgent else max(streak.targets)
    limit = follow_limit(
        policy.recommendation,
        rec.resource,
        current_request=rec.current_request,
        current_limit=rec.current_limit,
        request=request,
    )
    return ResourceChange(
        container=container,
        resource=rec.resource,
        request_from=rec.current_request,
        request_to=request,
        limit_from=rec.current_limit,
        limit_to=limit,
        urgent=urgent,
    )


def _finish(
    key: str,
    changes: list[ResourceChange],
    *,
    skipped: dict[str, str],
    reasons: list[str],
    state: WorkloadState,
    evaluation: WorkloadEvaluation,
    now: datetime,
) -> Decision:
    urgent = any(change.urgent for change in changes)
    if not changes:
        return Decision(
            workload=key,
            action="recommend",
            skipped=skipped,
            reasons=tuple(reasons) or evaluation.reasons,
            state=state,
        )
    applied = dict(state.last_applied)
    applied.update({change.key: change.request_to for change in changes})
    streaks = {k: v for k, v in state.streaks.items() if k not in {c.key for c in changes}}
    remembered = state.model_copy(
        update={
            "last_change": now,
            "last_applied": applied,
            "streaks": streaks,
            "oom_upsizes": (*state.oom_upsizes[-9:], now) if urgent else state.oom_upsizes,
        }
    )
    described = [f"{c.key}: {c.request_from:g} -> {c.request_to:g}" for c in changes]
    money = evaluation.released.cpu + evaluation.released.memory / 2**30
    # under a cap: OOM upsizes, then other upsizes (a short workload is a risk), then savings
    upsize = any((c.request_to or 0.0) > (c.request_from or 0.0) for c in changes)
    return Decision(
        workload=key,
        action="apply",
        changes=tuple(changes),
        skipped=skipped,
        reasons=(*described, *reasons),
        state=remembered,
        held_state=state,
        urgent=urgent,
        priority=(1e12 if urgent else 1e9 if upsize else 0.0) + money,
    )


def cap_changes(decisions: Sequence[Decision], limit: int) -> list[Decision]:
    """At most ``limit`` workloads are changed: OOM upsizes first, then other upsizes, then
    by what they release.
    The others keep recommending, with the reason 'cap'; their streaks carry on."""
    ranked = sorted((d for d in decisions if d.action == "apply"), key=lambda d: -d.priority)
    allowed = {d.workload for d in ranked[:limit]}
    return [
        d
        if d.action != "apply" or d.workload in allowed
        else held(d, "cap", f"cap of {limit} changes per evaluation reached")
        for d in decisions
    ]


def held(decision: Decision, code: str, reason: str) -> Decision:
    """The decision with its changes not made (capped, or refused by the API server)."""
    skipped = dict(decision.skipped)
    skipped.update({change.key: code for change in decision.changes})
    return decision.model_copy(
        update={
            "action": "recommend",
            "changes": (),
            "skipped": skipped,
            "reasons": (*decision.reasons, reason),
            "state": decision.held_state or decision.state,
            "held_state": None,
        }
    )
