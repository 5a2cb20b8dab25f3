"""EfficiencyPolicy handlers: validate on change, evaluate on schedule. They only wire:
parse, ask the cycle, write what it returns."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client, config

from rightsizer.adapters.cache import CachedCluster
from rightsizer.adapters.eventbudget import EventBudget
from rightsizer.adapters.identity import TokenSource, actuator_client
from rightsizer.adapters.incremental import IncrementalSource
from rightsizer.adapters.prometheus import PrometheusSource
from rightsizer.adapters.statestore import ConfigMapStateStore
from rightsizer.api.status import failed_status, status_patch
from rightsizer.api.v1alpha1 import PolicyError, parse_policy
from rightsizer.core.schedule import is_due, jitter_seconds
from rightsizer.cycle import CycleResult, CycleSettings, run_policy
from rightsizer.handlers import logs, peering
from rightsizer.handlers.config import OperatorConfig
from rightsizer.handlers.metrics import OperatorMetrics
from rightsizer.ports import UsageSource
from rightsizer.process import release_memory_every, tune_garbage_collector
from rightsizer.service import NamedPolicy

GROUP, VERSION, PLURAL = "rightsizer.io", "v1alpha1", "efficiencypolicies"
# kopf fixes a timer's interval when the module is imported: read it from the environment.
TICK_SECONDS = float(os.environ.get("RIGHTSIZER_TICK_SECONDS") or 60)
log = logs.logger("rightsizer.operator")


@kopf.on.startup()
def startup(*, settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    operator_config = OperatorConfig.from_environment()
    logs.configure(operator_config.log_format)
    tune_garbage_collector()
    memo.releasing_memory = release_memory_every(operator_config.release_memory_seconds)
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="rightsizer.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="rightsizer.io", key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = operator_config.evaluations_at_once
    peering_config = peering.PeeringConfig.from_environment()
    peering.configure(settings, peering_config)
    memo.config = operator_config
    reader = kubernetes_client()
    memo.cluster = CachedCluster(
        api=reader,
        actuator=actuator(reader, operator_config),
        timeout=operator_config.kubernetes_timeout,
        cache_seconds=operator_config.cache_seconds,
    )
    memo.event_budget = EventBudget(operator_config.events_per_minute)
    memo.state = (
        ConfigMapStateStore(api=reader, namespace=operator_config.state_namespace)
        if operator_config.state == "configmap"
        else None
    )
    memo.state_cache = {}  # encoded incremental state, kept between evaluations
    # RIGHTSIZER_PROMETHEUS_WORKERS bounds the queries in flight of all evaluations together
    memo.queries_in_flight = threading.BoundedSemaphore(max(1, operator_config.workers))
    memo.metrics = OperatorMetrics()
    memo.metrics.serve(operator_config.metrics_port)
    log.info(
        "operator_started",
        prometheus=operator_config.prometheus_url,
        apply_enabled=operator_config.apply_enabled,
        actuator=operator_config.actuator if operator_config.apply_enabled else None,
        tick_seconds=TICK_SECONDS,
        peering=peering_config.name,
        peering_priority=peering_config.priority if peering_config.name else None,
    )


@kopf.on.cleanup()
def cleanup(*, memo: kopf.Memo, **_: Any) -> None:
    """The memory release thread stops with the operator (tests start many in one process)."""
    releasing = getattr(memo, "releasing_memory", None)
    if releasing is not None:
        releasing.set()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere: $KUBECONFIG, read now (the kubernetes
    client's own default is fixed when it is imported)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def kubernetes_client() -> client.ApiClient:
    """In a pod: the service account; elsewhere: the kubeconfig ($KUBECONFIG, read now)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
        config.load_kube_config(config_file=path)  # type: ignore[no-untyped-call]
    return client.ApiClient()


def actuator(reader: client.ApiClient, operator_config: OperatorConfig) -> client.ApiClient | None:
    """In apply mode with the chart's actuator: the client of resize patches, with tokens of
    the actuator from the TokenRequest API. Otherwise None: the reader's identity does all."""
    if not (operator_config.apply_enabled and operator_config.actuator):
        return None
    source = TokenSource(
        reader,
        namespace=operator_config.actuator_namespace,
        name=operator_config.actuator,
        seconds=operator_config.actuator_token_seconds,
    )
    return actuator_client(source)


def _parse(name: str, spec: Any) -> NamedPolicy | PolicyError:
    document = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EfficiencyPolicy",
        "metadata": {"name": name},
        "spec": dict(spec),
    }
    try:
        return NamedPolicy(name=name, spec=parse_policy(document, source=name).spec)
    except PolicyError as error:
        return error


def _status(model: Any, old: Any) -> dict[str, Any]:
    """None values are sent as nulls, so a merge patch removes stale fields; so are the keys
    of status maps (changesSkipped, byOutcome...) this evaluation no longer has."""
    return status_patch(model.model_dump(mode="json", by_alias=True), old)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def check_policy(
    *, name: str, spec: Any, meta: Any, status: Any, body: Any, patch: kopf.Patch, **_: Any
) -> None:
    """An invalid policy gets Degraded with every field path, and an event; nothing else."""
    parsed = _parse(name, spec)
    if isinstance(parsed, PolicyError):
        message = "; ".join(parsed.problems)
        patch.status.update(
            _status(
                failed_status(
                    message,
                    reason="InvalidPolicy",
                    now=datetime.now(UTC),
                    generation=meta.get("generation"),
                ),
                status,
            )
        )
        kopf.event(body, type="Warning", reason="InvalidPolicy", message=message[:1024])
        log.warning("policy_invalid", policy=name, problems=parsed.problems)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK_SECONDS, sharp=False)
def evaluate(
    *,
    name: str,
    spec: Any,
    status: Any,
    meta: Any,
    body: Any,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """When the schedule (or a new generation) says so, run one evaluation."""
    parsed = _parse(name, spec)
    if isinstance(parsed, PolicyError):
        return  # check_policy has said why; an invalid policy changes nothing
    now = datetime.now(UTC)
    if not _due(parsed, status, meta, now=now, config=memo.config):
        return
    if (status or {}).get("observedGeneration") not in (None, meta.get("generation")):
        memo.cluster.invalidate()  # a human changed the policy: evaluate what is there now
    settings = CycleSettings(
        apply_enabled=memo.config.apply_enabled,
        max_events=memo.config.max_events,
        event_budget=memo.event_budget,
    )
    started = time.monotonic()
    result = run_policy(
        parsed,
        generation=meta.get("generation"),
        source=usage_source(memo),
        cluster=memo.cluster,
        now=now,
        settings=settings,
    )
    patch.status.update(_status(result.status, status))
    memo.metrics.record(name, result, time.monotonic() - started)
    _tell(name, parsed, result, body, seconds=time.monotonic() - started)


def usage_source(memo: kopf.Memo) -> UsageSource:
    """Prometheus with credentials read now; incremental when the state has a store."""
    source = PrometheusSource(memo.config.prometheus(), in_flight=memo.queries_in_flight)
    if getattr(memo, "state", None) is None:
        return source
    return IncrementalSource(source, memo.state, cache=memo.state_cache)


RETRYABLE = ("PrometheusUnavailable", "KubernetesUnavailable")


def _due(
    policy: NamedPolicy, status: Any, meta: Any, *, now: datetime, config: OperatorConfig
) -> bool:
    status = status or {}
    last_text = status.get("lastEvaluation")
    last = datetime.fromisoformat(last_text.replace("Z", "+00:00")) if last_text else None
    if status.get("observedGeneration") != meta.get("generation"):
        return True  # a new or changed policy is evaluated at once
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    failed = ready.get("status") == "False" and ready.get("reason") in RETRYABLE
    return is_due(
        policy.spec.schedule,
        last=last,
        now=now,
        offset_seconds=jitter_seconds(policy.name, config.jitter_seconds),
        utc_offset=policy.spec.safety.timezone,
        failed=failed,
        retry_seconds=config.retry_seconds,
    )


def _tell(
    name: str, policy: NamedPolicy, result: CycleResult, body: Any, *, seconds: float
) -> None:
    """Logs with stable keys, and one event on the policy."""
    agency = policy.spec.agency
    for decision in result.decisions:
        for change in decision.changes:
            log.info(
                "decision_applied",
                agency=agency,
                policy=name,
                workload=decision.workload,
                container=change.container,
                resource=change.resource,
                request_from=change.request_from,
                request_to=change.request_to,
            )
    ready = next((c for c in result.status.conditions if c.type == "Ready"), None)
    if ready is not None and ready.status != "True":
        kopf.event(body, type="Warning", reason=ready.reason, message=ready.message[:1024])
        log.warning(
            "evaluation_degraded",
            agency=agency,
            policy=name,
            reason=ready.reason,
            message=ready.message,
        )
        return
    summary = result.status.summary or ""
    kopf.event(
        body,
        type="Normal",
        reason="Evaluated",
        message=f"{result.status.workloads} workloads, {summary}, "
        f"{result.applied} changed, {seconds:.1f}s",
    )
    log.info(
        "evaluation_done",
        agency=agency,
        policy=name,
        workloads=result.status.workloads,
        grade=result.status.grade,
        score=result.status.score,
        applied=result.applied,
        seconds=round(seconds, 2),
        failures=len(result.failures),
    )
