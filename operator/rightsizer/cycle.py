"""One operator evaluation of one policy: fetch, evaluate, decide, act, record.

The same core as the CLI, with the Kubernetes API as the source of truth for workloads (their
templates, opt-outs, HPAs) and Prometheus for usage. It never raises for a data or API
problem: the result says what happened, and status and events say why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from rightsizer.adapters.eventbudget import EventBudget
from rightsizer.adapters.kubernetes import (
    REVERT,
    ClusterError,
    ClusterWorkload,
    Conflict,
    KubernetesCluster,
    involved_object,
)
from rightsizer.api import annotations as notes
from rightsizer.api.status import failed_status, policy_status, report_object
from rightsizer.api.v1alpha1 import PolicyStatus
from rightsizer.core.bounds import Bounds
from rightsizer.core.budget import budget_changes, changes_in_window, window_seconds
from rightsizer.core.decision import Decision, Mode, WorkloadState, decide, held
from rightsizer.core.evaluation import WorkloadEvaluation, evaluate_workload
from rightsizer.core.model import UsageSummary, Workload
from rightsizer.core.report import AgencyReport, build_agency_report, failed_agency_report
from rightsizer.ports import Collection, SourceUnavailable, UsageSource
from rightsizer.revert import restore
from rightsizer.service import NamedPolicy, collection_request


@dataclass(frozen=True)
class CycleSettings:
    apply_enabled: bool = False  # the operator-wide kill switch over every policy's apply mode
    max_events: int = 100  # per evaluation; the rest are counted in one summary event
    event_budget: EventBudget | None = None  # operator-wide; refused ones join that summary


@dataclass
class CycleResult:
    status: PolicyStatus
    report: AgencyReport | None = None
    decisions: list[Decision] = field(default_factory=list)
    applied: int = 0
    events: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> CycleResult:
        """This result without what only the evaluation itself needed, for a caller that
        keeps the results of many policies: the report keeps its summaries but not its
        per-workload evaluations, a decision its action, changes and skipped codes but not its
        reasons or states (the workloads' annotations and the report object hold those)."""
        report = self.report.model_copy(update={"workloads": ()}) if self.report else None
        return replace(self, report=report, decisions=[_bare(d) for d in self.decisions])


def _bare(decision: Decision) -> Decision:
    return decision.model_copy(update={"reasons": (), "state": _NO_STATE, "held_state": None})


_NO_STATE = WorkloadState()


def run_policy(
    policy: NamedPolicy,
    *,
    generation: int | None,
    source: UsageSource,
    cluster: KubernetesCluster,
    now: datetime,
    settings: CycleSettings,
) -> CycleResult:
    """Evaluate ``policy`` now and act on it as its mode and the safety rules allow."""
    try:
        namespaces = agency_namespaces(policy, cluster)
        targets = cluster.workloads(namespaces)
    except ClusterError as error:
        return _failed(f"Kubernetes API: {error}", "KubernetesUnavailable", now, generation)
    collected = source.collect([collection_request(policy, tuple(namespaces))], end=now)[0]
    if isinstance(collected, SourceUnavailable):
        return _failed(str(collected), "PrometheusUnavailable", now, generation)
    evaluations = [
        evaluate_workload(t.workload, usage, policy.spec)
        for t, usage in join_usage(targets, collected, policy=policy, now=now)
    ]
    report = build_agency_report(
        policy.name, policy.spec, evaluations, end=now, queries=collected.queries
    )
    mode: Mode = policy.spec.mode if settings.apply_enabled else "recommend"
    actor = _Actor(cluster, policy, generation=generation, now=now, settings=settings)
    result = actor.act(targets, evaluations, mode=mode)
    applied = sum(1 for d in result if d.action == "apply")
    status = policy_status(
        report, result, now=now, generation=generation, applied=applied, warnings=actor.failures
    )
    try:
        cluster.write_report(
            report_object(report, result, now=now, applied=applied).model_dump(
                mode="json", by_alias=True, exclude_none=True
            )
        )
    except ClusterError as error:
        actor.failures.append(f"report not written: {error}")
    return CycleResult(
        status=status,
        report=report,
        decisions=result,
        applied=applied,
        events=actor.events,
        failures=actor.failures,
    )


def _failed(message: str, reason: str, now: datetime, generation: int | None) -> CycleResult:
    status = failed_status(message, reason=reason, now=now, generation=generation)
    return CycleResult(status=status, failures=[message])


def agency_namespaces(policy: NamedPolicy, cluster: KubernetesCluster) -> list[str]:
    """Listed namespaces plus those the selector matches, by their labels in the API."""
    found = set(policy.spec.namespaces)
    selector = policy.spec.namespace_selector
    if selector is not None:
        found.update(
            ns for ns, labels in cluster.namespace_labels().items() if selector.matches(labels)
        )
    return sorted(found)


def join_usage(
    targets: Sequence[ClusterWorkload],
    collected: Collection,
    *,
    policy: NamedPolicy,
    now: datetime,
) -> list[tuple[ClusterWorkload, UsageSummary]]:
    """Pair each API workload with its usage; containers seen only in the metrics (injected
    sidecars) count for the score but are never changed."""
    usage = {o.workload.ref.key: o for o in collected.observations}
    paired = []
    for target in targets:
        observed = usage.get(target.ref.key)
        if observed is None:
            empty = UsageSummary(ref=target.ref, end=now, window_seconds=policy.spec.window_seconds)
            paired.append((target, empty))
            continue
        template = {c.name for c in target.workload.containers}
        injected = tuple(
            c.model_copy(update={"in_template": False})
            for c in observed.workload.containers
            if c.name not in template
        )
        workload = target.workload.model_copy(
            update={
                "containers": (*target.workload.containers, *injected),
                "project": _project(target, policy) or observed.workload.project,
            }
        )
        paired.append((_replace(target, workload), observed.usage))
    return paired


def _project(target: ClusterWorkload, policy: NamedPolicy) -> str | None:
    return target.labels.get(policy.spec.project_label)


def _replace(target: ClusterWorkload, workload: Workload) -> ClusterWorkload:
    return replace(target, workload=workload)


class _Actor:
    """Turns decisions into API writes and events, within the event budget."""

    def __init__(
        self,
        cluster: KubernetesCluster,
        policy: NamedPolicy,
        *,
        generation: int | None,
        now: datetime,
        settings: CycleSettings,
    ) -> None:
        self.cluster, self.policy, self.generation = cluster, policy, generation
        self.now, self.settings = now, settings
        self.events = 0
        self.suppressed = 0
        self.failures: list[str] = []

    def act(
        self,
        targets: Sequence[ClusterWorkload],
        evaluations: Sequence[WorkloadEvaluation],
        *,
        mode: Mode,
    ) -> list[Decision]:
        by_key = {t.ref.key: t for t in targets}
        bounds = self._bounds(targets) if mode == "apply" else {}
        if bounds is None:
            mode, bounds = "recommend", {}  # bounds unknown: nothing is applied
        decisions = []
        states: list[WorkloadState] = []
        for evaluation in evaluations:
            target = by_key[evaluation.ref.key]
            state, problem = notes.decode_state(target.annotations.get(notes.STATE))
            if problem:
                self.failures.append(f"{target.ref}: {problem}")
            states.append(state)
            decisions.append(
                decide(
                    evaluation,
                    target.workload,
                    state,
                    policy=self.policy.spec,
                    policy_name=self.policy.name,
                    mode=mode,
                    now=self.now,
                    bounds=bounds.get(target.ref.namespace),
                )
            )
        safety = self.policy.spec.safety
        decisions = budget_changes(
            decisions,
            safety,
            replicas={t.ref.key: t.workload.replicas for t in targets},
            recent=changes_in_window(states, now=self.now, window_seconds=window_seconds(safety)),
        )
        done = []
        evaluated = {e.ref.key: e for e in evaluations}
        for decision in decisions:
            target = by_key[decision.workload]
            if target.annotations.get(REVERT) == "true":
                done.append(self._revert(target, decision))
                continue
            done.append(self._carry_out(target, evaluated[decision.workload], decision))
        if self.suppressed:
            self._event(
                None,
                "EventsSuppressed",
                f"{self.suppressed} more events this evaluation were not posted",
            )
        return done

    def _carry_out(
        self, target: ClusterWorkload, evaluation: WorkloadEvaluation, decision: Decision
    ) -> Decision:
        if not decision.writes:
            return decision
        if "notConverging" in decision.skipped.values():
            self._not_converging(target, decision)
        if decision.action == "apply":
            try:
                self._resize(target, evaluation, decision)
            except ClusterError as error:
                if not self._landed(target, decision, error):
                    decision = held(decision, "apiError", f"not applied: {error}")
                    self.failures.append(f"{target.ref}: {error}")
                    self._event(target, "ResizeSkipped", str(error), warning=True)
                    self._annotate(target, evaluation, decision)
                    return decision
            self._event(target, "Resized", "; ".join(decision.reasons))
            return self._resize_pods(target, decision)
        self._annotate(target, evaluation, decision)
        return decision

    def _landed(self, target: ClusterWorkload, decision: Decision, error: ClusterError) -> bool:
        """After a resize whose answer never came (a timeout, a lost connection: status 0)
        the patch may have landed: read back the state annotation it carried. Without this,
        a landed change would be recorded as not made (and its state overwritten)."""
        if error.status != 0:
            return False
        try:
            current = self.cluster.read(target.ref)
        except ClusterError:
            return False
        return current.annotations.get(notes.STATE) == notes.encode_state(decision.state)

    def _not_converging(self, target: ClusterWorkload, decision: Decision) -> None:
        """The convergence breaker tripped: a warning in the status at every evaluation, and
        one Warning event when this evaluation tripped it."""
        tries = self.policy.spec.safety.max_tries
        message = (
            f"applied values were undone {decision.state.undone} times (a GitOps controller, a "
            f"webhook?): stopped after {tries} tries; remove the {notes.STATE} annotation to "
            "try again"
        )
        self.failures.append(f"{target.ref}: {message}")
        before, _ = notes.decode_state(target.annotations.get(notes.STATE))
        if before.undone < tries:
            self._event(target, "NotConverging", message, warning=True)

    def _annotations(
        self, evaluation: WorkloadEvaluation, decision: Decision
    ) -> dict[str, str | None]:
        return notes.evaluation_annotations(
            evaluation, decision, policy=self.policy.name, generation=self.generation
        )

    def _annotate(
        self, target: ClusterWorkload, evaluation: WorkloadEvaluation, decision: Decision
    ) -> None:
        wanted = self._annotations(evaluation, decision)
        changed = target.annotations.get(notes.RECOMMENDATION) != wanted[notes.RECOMMENDATION]
        try:
            self.cluster.annotate(target, wanted)
        except ClusterError as error:
            self.failures.append(f"{target.ref}: annotations not written: {error}")
            return
        if changed and evaluation.action in ("downsize", "upsize", "reclaim"):
            self._event(
                target,
                "Recommended",
                f"{evaluation.action}: "
                + "; ".join(decision.reasons[:4] or evaluation.reasons[:4]),
            )

    def _resize(
        self, target: ClusterWorkload, evaluation: WorkloadEvaluation, decision: Decision
    ) -> None:
        """The conditional patch; on a conflict, read again and retry while the values we
        decided from are still there."""
        for attempt in range(self.cluster.retries + 1):
            wanted: dict[str, str | None] = {
                k: v for k, v in self._annotations(evaluation, decision).items() if v
            }
            wanted[notes.PREVIOUS] = notes.previous_resources(
                target.workload, list(decision.changes)
            )
            try:
                self.cluster.resize(target, decision.changes, wanted)
                return
            except Conflict:
                if attempt == self.cluster.retries:
                    raise
                target = self.cluster.read(target.ref)
                if not _still_as_read(target, decision):
                    raise Conflict(f"{target.ref} changed since it was read") from None

    def _bounds(self, targets: Sequence[ClusterWorkload]) -> dict[str, Bounds] | None:
        """Per namespace: its LimitRanges and the largest node; None when unreadable."""
        try:
            cluster, namespaces = self.cluster.bounds([t.ref.namespace for t in targets])
        except ClusterError as error:
            self.failures.append(f"bounds unknown, nothing applied: {error}")
            return None
        return {ns: Bounds(namespace=b, cluster=cluster) for ns, b in namespaces.items()}

    def _resize_pods(self, target: ClusterWorkload, decision: Decision) -> Decision:
        """With ``safety.inPlaceResize``: the running pods too, never instead of the template;
        a pod whose PodDisruptionBudget allows no disruption now is held, and the reason
        says so."""
        if not self.policy.spec.safety.in_place_resize or target.ref.kind in ("CronJob", "Job"):
            return decision
        try:
            budgets = self.cluster.disruption_budgets(target.ref.namespace)
            result = self.cluster.resize_pods(target, decision.changes, budgets=budgets)
        except ClusterError as error:
            self.failures.append(f"{target.ref}: pods not resized in place: {error}")
            return decision
        if result.resized:
            self._event(target, "ResizedInPlace", f"{result.resized} running pods resized in place")
        if not result.held:
            return decision
        pdbs = sorted({name for names in result.held.values() for name in names})
        reason = (
            f"{len(result.held)} pods not resized in place: PodDisruptionBudget "
            f"{', '.join(pdbs)} allows no disruption now (they change at their next restart)"
        )
        self._event(target, "ResizeInPlaceHeld", reason)
        return decision.model_copy(update={"reasons": (*decision.reasons, reason)})

    def _revert(self, target: ClusterWorkload, decision: Decision) -> Decision:
        try:
            message = restore(self.cluster, target, now=self.now, reason="revert annotation")
        except ClusterError as error:
            self.failures.append(f"{target.ref}: revert failed: {error}")
            return decision
        self._event(target, "Reverted", message)
        return decision.model_copy(update={"action": "skip", "changes": (), "reasons": (message,)})

    def _may_post(self) -> bool:
        """Within this evaluation's events and the operator-wide budget."""
        if self.events >= self.settings.max_events:
            return False
        budget = self.settings.event_budget
        return budget is None or budget.take()

    def _event(
        self, target: ClusterWorkload | None, reason: str, message: str, *, warning: bool = False
    ) -> None:
        if target is not None and not self._may_post():
            self.suppressed += 1
            return
        involved = (
            involved_object(target)
            if target
            else {
                "kind": "EfficiencyPolicy",
                "name": self.policy.name,
                "namespace": "default",
                "apiVersion": "rightsizer.io/v1alpha1",
            }
        )
        try:
            self.cluster.event(
                involved, reason=reason, message=message, warning=warning, now=self.now
            )
            self.events += 1
        except ClusterError as error:
            self.failures.append(f"event {reason} not posted: {error}")


def _still_as_read(target: ClusterWorkload, decision: Decision) -> bool:
    """The values decided from are still there, and nothing since forbids the change (an
    opt-out, an HPA or a VPA on that resource)."""
    workload = target.workload
    if workload.excluded or any(
        c.resource in (workload.hpa_resources | workload.vpa_resources) for c in decision.changes
    ):
        return False
    current = {c.name: c for c in target.workload.containers}
    for change in decision.changes:
        container = current.get(change.container)
        if container is None or container.requests.get(change.resource) != change.request_from:
            return False
        if container.limits.get(change.resource) != change.limit_from:
            return False  # the new limit was computed from the old one
    return True


__all__ = [
    "CycleResult",
    "CycleSettings",
    "agency_namespaces",
    "failed_agency_report",
    "run_policy",
]
