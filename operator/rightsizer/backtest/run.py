"""The backtest: what a policy would have done, replayed on history, beside the references.

At each step time t the policy is evaluated exactly as the operator would (the same PromQL,
at time t: no sample after t is read), its decisions taken with the real safety rules
(notice, cooldown, caps, windows) against the requests it would have set so far, and the
next step's real usage replayed against those requests. The references are computed from the
raw samples before t (the oracle from the replay window itself).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from rightsizer.adapters.history import PodSeries, UsageHistory, fetch_history
from rightsizer.adapters.prometheus import PrometheusSource
from rightsizer.backtest import references
from rightsizer.backtest.counterfactual import LimitChange, kills, limits_in_force, with_kills
from rightsizer.backtest.ledger import Ledger, Replay, StrategyResult, TraceLine, summarise
from rightsizer.backtest.references import Floats
from rightsizer.core.budget import budget_changes, changes_in_window, window_seconds
from rightsizer.core.decision import WorkloadState, decide
from rightsizer.core.estimators import EstimationFacts, build_estimator
from rightsizer.core.evaluation import evaluate_workload
from rightsizer.core.model import ContainerResources, Resource, UsageSummary, Workload
from rightsizer.core.policy import PolicySpec
from rightsizer.ports import Collection, SourceUnavailable
from rightsizer.service import NamedPolicy, collection_request, resolve_namespaces

Progress = Callable[[int, int], None]
Requests = dict[tuple[str, Resource], float | None]  # (container, resource) -> value


@dataclass
class _Simulated:
    """What the policy would have set by now, per workload: requests, limits, state."""

    requests: dict[str, Requests] = field(default_factory=dict)
    limits: dict[str, Requests] = field(default_factory=dict)
    states: dict[str, WorkloadState] = field(default_factory=dict)
    previous: dict[tuple[str, str], dict[str, float | None]] = field(default_factory=dict)
    # (strategy, workload, container) -> the memory limits it set, for counterfactual OOMs
    memory_limits: dict[tuple[str, str, str], list[LimitChange]] = field(default_factory=dict)

    def set_memory_limit(
        self, strategy: str, workload: str, container: str, change: LimitChange
    ) -> None:
        self.memory_limits.setdefault((strategy, workload, container), []).append(change)


@dataclass(frozen=True)
class BacktestResult:
    start: datetime
    end: datetime
    step_seconds: int
    steps: int
    rows: list[StrategyResult]
    queries: int
    trace: list[TraceLine]


def run_backtest(
    policies: Sequence[NamedPolicy],
    source: PrometheusSource,
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    resolution_seconds: int = 600,
    progress: Progress | None = None,
) -> BacktestResult:
    """Replay each policy (one agency each) from ``start`` to ``end`` in steps of ``step``.
    Money uses the first policy's price catalogue."""
    if not policies:
        raise ValueError("no policy to backtest")
    all_namespaces = resolve_namespaces(policies, source, end=end)
    histories = {}
    for policy, namespaces in zip(policies, all_namespaces, strict=True):
        if not namespaces:
            raise SourceUnavailable(f"{policy.name}: no namespace matches the policy")
        window = timedelta(seconds=policy.spec.window_seconds)
        histories[policy.name] = fetch_history(
            source, namespaces, start=start - window, end=end, resolution_seconds=resolution_seconds
        )
    ledger, simulated = Ledger(), _Simulated()
    requests = [collection_request(p, ns) for p, ns in zip(policies, all_namespaces, strict=True)]
    times = _steps(start, end, step)
    for index, moment in enumerate(times):
        replay_end = min(moment + step, end)
        collections = source.collect(requests, end=moment)
        for policy, collected in zip(policies, collections, strict=True):
            if isinstance(collected, SourceUnavailable):
                raise collected
            _step(
                policy,
                collected,
                histories[policy.name],
                ledger,
                simulated,
                moment=moment,
                replay_end=replay_end,
                window=timedelta(seconds=policy.spec.window_seconds),
            )
        if progress:
            progress(index + 1, len(times))
    seconds = (end - start).total_seconds()
    rows = summarise(ledger, seconds=seconds, prices=policies[0].spec.prices)
    return BacktestResult(
        start=start,
        end=end,
        step_seconds=int(step.total_seconds()),
        steps=len(times),
        rows=rows,
        queries=source.queries,
        trace=ledger.trace,
    )


def _steps(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    found, moment = [], start
    while moment < end:
        found.append(moment)
        moment += step
    return found


def _step(
    policy: NamedPolicy,
    collected: Collection,
    history: UsageHistory,
    ledger: Ledger,
    simulated: _Simulated,
    *,
    moment: datetime,
    replay_end: datetime,
    window: timedelta,
) -> None:
    spec = policy.spec
    grid = history.grid
    # as PromQL at t: the evaluation sees [t - window, t]; the replay is (t, t + step]
    first, now_index, last = (
        grid.index(moment - window),
        grid.index(moment) + 1,
        grid.index(replay_end) + 1,
    )
    trainings = {
        o.workload.ref.key: _trainings(o.workload, history, first, now_index)
        for o in collected.observations
    }
    workloads = {
        o.workload.ref.key: _as_simulated(o.workload, simulated) for o in collected.observations
    }
    decisions = []
    for observation in collected.observations:
        key = observation.workload.ref.key
        usage = _counterfactual(
            "policy", observation.workload, observation.usage, trainings[key], simulated
        )
        evaluation = evaluate_workload(workloads[key], usage, spec)
        decisions.append(
            decide(
                evaluation,
                workloads[key],
                simulated.states.get(key, WorkloadState()),
                policy=spec,
                policy_name=policy.name,
                mode="apply",
                now=moment,
            )
        )
    budgeted = budget_changes(
        decisions,
        spec.safety,
        replicas={key: workload.replicas for key, workload in workloads.items()},
        recent=changes_in_window(
            (simulated.states[key] for key in workloads if key in simulated.states),
            now=moment,
            window_seconds=window_seconds(spec.safety),
        ),
    )
    for decision in budgeted:
        simulated.states[decision.workload] = decision.state
        for change in decision.changes:
            slot = (change.container, change.resource)
            simulated.requests[decision.workload][slot] = change.request_to
            simulated.limits[decision.workload][slot] = change.limit_to
            if change.resource == "memory":
                simulated.set_memory_limit(
                    "policy",
                    decision.workload,
                    change.container,
                    LimitChange(at=moment.timestamp(), limit=change.limit_to),
                )
        scopes = _scopes(policy, workloads[decision.workload])
        for _ in {change.container for change in decision.changes}:
            ledger.count_change("policy", scopes)  # per container, as for the references
    for observation in collected.observations:
        real = observation.workload
        key = real.ref.key
        usage = _counterfactual("estimator", real, observation.usage, trainings[key], simulated)
        estimates = _estimates(spec, usage, real)
        _remember_estimator_limits(real, estimates, simulated, at=moment.timestamp())
        ledger_changes = _estimator_changes(estimates, simulated, real)
        for _ in range(ledger_changes):
            ledger.count_change("estimator", _scopes(policy, real))
        _replay_workload(
            real,
            _as_simulated(real, simulated),  # with this step's decisions made
            history,
            ledger,
            simulated,
            scopes=_scopes(policy, real),
            estimates=estimates,
            trainings=trainings[key],
            indexes=(now_index, last),
            seconds=(replay_end - moment).total_seconds(),
            now=moment.timestamp(),
        )


def _trainings(
    workload: Workload, history: UsageHistory, first: int, last: int
) -> dict[str, _Training]:
    """Each template container's samples in [first, last) of the grid."""
    grid = history.grid
    found = {}
    for container in workload.containers:
        pods = history.containers.get((workload.ref, container.name))
        if pods and container.in_template:
            found[container.name] = _window(pods, first, last, grid.start, grid.step)
    return found


def _counterfactual(
    strategy: str,
    workload: Workload,
    usage: UsageSummary,
    trainings: dict[str, _Training],
    simulated: _Simulated,
) -> UsageSummary:
    """The usage with the OOM kills the strategy's own limits would have caused."""
    found = {}
    for container in workload.containers:
        train = trainings.get(container.name)
        if train is None:
            continue
        changes = simulated.memory_limits.get((strategy, workload.ref.key, container.name), [])
        limits = limits_in_force(train.memory_times, container.limits.get("memory"), changes)
        found[container.name] = kills(train.memory, limits)
    return with_kills(usage, found)


def _remember_estimator_limits(
    workload: Workload,
    estimates: dict[str, tuple[float | None, float | None]],
    simulated: _Simulated,
    *,
    at: float,
) -> None:
    """The ungated estimator sets its memory target, and the real limit ratio, each step."""
    for container in workload.containers:
        memory = estimates.get(container.name, (None, None))[1]
        ratio = _limit_ratio(container)
        if memory is not None:
            simulated.set_memory_limit(
                "estimator",
                workload.ref.key,
                container.name,
                LimitChange(at=at, limit=memory * ratio if ratio else None),
            )


def _estimates(
    spec: PolicySpec, usage: UsageSummary, workload: Workload
) -> dict[str, tuple[float | None, float | None]]:
    """The policy's estimator alone, per container: no rules, no step, no minimum change."""
    found: dict[str, tuple[float | None, float | None]] = {}
    for container in workload.containers:
        measured = usage.containers.get(container.name)
        targets: list[float | None] = []
        for resource in ("cpu", "memory"):
            stats = measured.resources.get(resource) if measured else None
            if stats is None or measured is None:
                targets.append(None)
                continue
            facts = EstimationFacts(
                resource=resource,
                stats=stats,
                current_limit=container.limits.get(resource),
                oom_kills=measured.oom_kills,
                oom_memory=measured.oom_memory,
            )
            estimate = build_estimator(spec.recommendation, resource).estimate(facts)
            targets.append(None if estimate is None else estimate.value)
        found[container.name] = (targets[0], targets[1])
    return found


def _estimator_changes(
    estimates: dict[str, tuple[float | None, float | None]],
    simulated: _Simulated,
    workload: Workload,
) -> int:
    """Containers whose ungated estimate moved by 10% or more since the previous step."""
    by_name = {c.name: c for c in workload.containers}
    return sum(
        _moved(simulated, f"{workload.ref.key}/{name}", "estimator", by_name.get(name), targets)
        for name, targets in estimates.items()
    )


def _moved(
    simulated: _Simulated,
    container_key: str,
    strategy: str,
    container: ContainerResources | None,
    targets: tuple[float | None, float | None],
    *,
    threshold: float = 0.10,
) -> bool:
    """Did the strategy's target move by ``threshold`` or more since its previous one (or
    from the real request, the first time)? Remembers the new targets."""
    key = (container_key, strategy)
    before = simulated.previous.get(key) or {
        "cpu": container.requests.get("cpu") if container else None,
        "memory": container.requests.get("memory") if container else None,
    }
    now = {"cpu": targets[0], "memory": targets[1]}
    simulated.previous[key] = now
    return any(
        old is not None and new is not None and abs(new - old) >= threshold * old
        for old, new in ((before[r], now[r]) for r in ("cpu", "memory"))
    )


def _as_simulated(workload: Workload, simulated: _Simulated) -> Workload:
    """The workload with the requests and limits the policy would have set by now."""
    key = workload.ref.key
    requests = simulated.requests.setdefault(key, {})
    limits = simulated.limits.setdefault(key, {})
    containers = []
    resources: tuple[Resource, ...] = ("cpu", "memory")
    for container in workload.containers:
        new_requests = dict(container.requests)
        new_limits = dict(container.limits)
        for resource in resources:
            slot = (container.name, resource)
            if slot not in requests:
                requests[slot] = container.requests.get(resource)
                limits[slot] = container.limits.get(resource)
            request, limit = requests[slot], limits[slot]
            if request is not None:
                new_requests[resource] = request
            if limit is None:
                new_limits.pop(resource, None)
            else:
                new_limits[resource] = limit
        containers.append(
            container.model_copy(update={"requests": new_requests, "limits": new_limits})
        )
    return workload.model_copy(update={"containers": tuple(containers)})


def _scopes(policy: NamedPolicy, workload: Workload) -> tuple[str, ...]:
    agency = policy.spec.agency
    return (
        "total",
        f"agency:{agency}",
        f"project:{agency}/{workload.project or '(none)'}",
        f"workload:{workload.ref.key}",
    )


def _replay_workload(
    real: Workload,
    sim: Workload,
    history: UsageHistory,
    ledger: Ledger,
    simulated: _Simulated,
    *,
    scopes: tuple[str, ...],
    estimates: dict[str, tuple[float | None, float | None]],
    trainings: dict[str, _Training],
    indexes: tuple[int, int],
    seconds: float,
    now: float,
) -> None:
    now_index, last = indexes
    sim_by_name = {c.name: c for c in sim.containers}
    for container in real.containers:
        pods = history.containers.get((real.ref, container.name))
        train = trainings.get(container.name)
        if not pods or train is None:
            continue
        cpu, memory = _values(pods, now_index, last)
        replay = Replay(
            workload=real.ref.key,
            scopes=scopes,
            cpu=cpu,
            memory=memory,
            real_cpu=container.requests.get("cpu"),
            real_memory=container.requests.get("memory"),
            replicas=real.replicas,
            seconds=seconds,
        )
        policy_side = sim_by_name[container.name]
        _record(
            ledger,
            "policy",
            replay,
            container.name,
            now=now,
            cpu=policy_side.requests.get("cpu"),
            memory=policy_side.requests.get("memory"),
            memory_limit=policy_side.limits.get("memory"),
        )
        cpu_estimate, memory_estimate = estimates.get(container.name, (None, None))
        ratio = _limit_ratio(container)
        _record(
            ledger,
            "estimator",
            replay,
            container.name,
            now=now,
            cpu=cpu_estimate,
            memory=memory_estimate,
            memory_limit=memory_estimate * ratio if memory_estimate and ratio else None,
        )
        _references(container, train, replay, ledger, simulated, now=now)


def _record(
    ledger: Ledger,
    strategy: str,
    replay: Replay,
    container: str,
    *,
    now: float,
    cpu: float | None,
    memory: float | None,
    memory_limit: float | None,
) -> None:
    ledger.record(strategy, replay, cpu=cpu, memory=memory, memory_limit=memory_limit)
    ledger.trace.append(
        TraceLine(
            step=now,
            strategy=strategy,
            workload=replay.workload,
            container=container,
            cpu=cpu,
            memory=memory,
        )
    )


@dataclass(frozen=True)
class _Training:
    cpu_times: Floats
    cpu: Floats
    memory_times: Floats
    memory: Floats


def _window(
    pods: Sequence[PodSeries], first: int, last: int, grid_start: float, grid_step: int
) -> _Training:
    cpu_parts, cpu_times, memory_parts, memory_times = [], [], [], []
    for pod in pods:
        cpu, memory = pod.window(first, last)
        start = max(first, pod.offset)
        stamps = grid_start + (start + np.arange(cpu.size)) * grid_step
        cpu_parts.append(cpu)
        memory_parts.append(memory)
        cpu_times.append(stamps)
        memory_times.append(stamps)
    cpu_all, memory_all = np.concatenate(cpu_parts), np.concatenate(memory_parts)
    cpu_stamps, memory_stamps = np.concatenate(cpu_times), np.concatenate(memory_times)
    cpu_ok, memory_ok = ~np.isnan(cpu_all), ~np.isnan(memory_all)
    return _Training(
        cpu_stamps[cpu_ok],
        cpu_all[cpu_ok].astype(np.float64),
        memory_stamps[memory_ok],
        memory_all[memory_ok].astype(np.float64),
    )


def _values(pods: Sequence[PodSeries], first: int, last: int) -> tuple[Floats, Floats]:
    parts = [pod.window(first, last) for pod in pods]
    return (
        np.concatenate([cpu for cpu, _ in parts]).astype(np.float64),
        np.concatenate([memory for _, memory in parts]).astype(np.float64),
    )


def _references(
    container: ContainerResources,
    train: _Training,
    replay: Replay,
    ledger: Ledger,
    simulated: _Simulated,
    *,
    now: float,
) -> None:
    ratio = _limit_ratio(container)
    day_times, day_peaks = references.daily_peaks(train.memory_times, train.memory)
    cpu_replay, memory_replay = (
        replay.cpu[~np.isnan(replay.cpu)],
        replay.memory[~np.isnan(replay.memory)],
    )
    targets = {
        "vpa-like": references.vpa_like(train.cpu_times, train.cpu, day_times, day_peaks, now=now),
        "krr-like": references.krr_like(train.cpu, train.memory),
        "oracle": references.oracle(cpu_replay, memory_replay),
    }
    for strategy, (cpu, memory) in targets.items():
        limit = None
        if memory is not None:
            limit = (
                memory
                if strategy == "krr-like"
                else (memory * ratio if ratio is not None and strategy == "vpa-like" else None)
            )
        _record(
            ledger,
            strategy,
            replay,
            container.name,
            now=now,
            cpu=cpu,
            memory=memory,
            memory_limit=limit,
        )
        if _moved(
            simulated, f"{replay.workload}/{container.name}", strategy, container, (cpu, memory)
        ):
            ledger.count_change(strategy, replay.scopes)


def _limit_ratio(container: ContainerResources) -> float | None:
    request, limit = container.requests.get("memory"), container.limits.get("memory")
    return limit / request if request and limit else None
