"""What rightsizer writes on a workload, and reads back: pure encoders and decoders.

rightsizer.io/grade, rightsizer.io/score     the evaluation's grade and score
rightsizer.io/recommendation                 JSON: action, per container and resource the
                                             current and proposed request/limit, reasons
rightsizer.io/state                          JSON: notice streaks, last change, applied values
rightsizer.io/previous-resources             JSON: the resources before the last change
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from rightsizer.core.decision import Decision, ResourceChange, WorkloadState
from rightsizer.core.evaluation import WorkloadEvaluation
from rightsizer.core.model import Workload
from rightsizer.core.recommendation import ResourceRecommendation
from rightsizer.core.units import format_quantity

GRADE = "rightsizer.io/grade"
SCORE = "rightsizer.io/score"
RECOMMENDATION = "rightsizer.io/recommendation"
STATE = "rightsizer.io/state"
PREVIOUS = "rightsizer.io/previous-resources"
MAX_REASONS = 6


def _quantity(resource: str, value: float | None) -> str | None:
    return None if value is None else format_quantity(resource, value)


def recommendation_annotation(
    evaluation: WorkloadEvaluation, decision: Decision, *, policy: str, generation: int | None
) -> str:
    """Compact JSON: stable for equal content, so an unchanged recommendation writes nothing."""
    containers: dict[str, Any] = {}
    changes = {change.key: change for change in decision.changes}
    for container in evaluation.containers:
        containers[container.container] = {
            resource: {
                "current": _quantity(resource, rec.current_request),
                "request": _quantity(resource, _made(changes, key, rec)[0]),
                "currentLimit": _quantity(resource, rec.current_limit),
                "limit": _quantity(resource, _made(changes, key, rec)[1]),
                "change": rec.change,
                "skipped": decision.skipped.get(key),
                "reasons": list((*rec.reasons, *_bounded(decision, key))[-MAX_REASONS:]),
            }
            for resource, rec in container.resources.items()
            for key in (f"{container.container}/{resource}",)
        }
    body = {
        "policy": policy,
        "generation": generation,
        "outcome": evaluation.outcome,
        "action": evaluation.action,
        "decision": decision.action,
        "reasons": list(evaluation.reasons[:MAX_REASONS]),
        "containers": containers,
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _made(
    changes: dict[str, ResourceChange], key: str, rec: ResourceRecommendation
) -> tuple[float | None, float | None]:
    """The request and limit applied (within the cluster's bounds), else those proposed."""
    change = changes.get(key)
    return (rec.request, rec.limit) if change is None else (change.request_to, change.limit_to)


def _bounded(decision: Decision, key: str) -> list[str]:
    """The decision's reasons about the bounds of ``key`` (a clamp, or why it was not made)."""
    prefix = f"{key}: "
    found = [r[len(prefix) :] for r in decision.reasons if r.startswith(prefix)]
    return [r for r in found if any(word in r for word in _BOUND_WORDS)]


_BOUND_WORDS = ("LimitRange", "allocatable", "within the bounds", "max step")  # core/bounds.py


def evaluation_annotations(
    evaluation: WorkloadEvaluation, decision: Decision, *, policy: str, generation: int | None
) -> dict[str, str | None]:
    return {
        GRADE: evaluation.grade,
        SCORE: None if evaluation.score is None else f"{evaluation.score:g}",
        RECOMMENDATION: recommendation_annotation(
            evaluation, decision, policy=policy, generation=generation
        ),
        STATE: encode_state(decision.state),
    }


def encode_state(state: WorkloadState) -> str:
    return state.model_dump_json(exclude_defaults=True)


def decode_state(text: str | None) -> tuple[WorkloadState, str | None]:
    """The recorded state, or a fresh one with the reason it could not be read."""
    if not text:
        return WorkloadState(), None
    try:
        return WorkloadState.model_validate_json(text), None
    except (ValidationError, ValueError) as error:
        return WorkloadState(), f"state annotation unreadable, started afresh: {error!s:.120}"


def previous_resources(workload: Workload, changes: list[ResourceChange]) -> str:
    """The requests and limits of the changed containers as they are now, for revert."""
    names = {change.container for change in changes}
    body: dict[str, Any] = {}
    for container in workload.containers:
        if container.name in names:
            body[container.name] = {
                part: {r: format_quantity(r, v) for r, v in values.items()}
                for part, values in (("requests", container.requests), ("limits", container.limits))
            }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def decode_previous(text: str | None) -> dict[str, dict[str, dict[str, str]]] | None:
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
