"""Evaluate policies over their agencies: resolve namespaces, collect, evaluate, report.

It reads like a script and holds no arithmetic: the core decides, adapters fetch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from rightsizer.core.evaluation import evaluate_workload
from rightsizer.core.policy import LabelSelector, PolicySpec, duration_seconds
from rightsizer.core.report import AgencyReport, build_agency_report, failed_agency_report
from rightsizer.ports import (
    Collection,
    CollectionRequest,
    Progress,
    SourceUnavailable,
    UsageSource,
)

CHUNK = 50  # agencies collected and evaluated together
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class NamedPolicy:
    name: str
    spec: PolicySpec


def evaluate_policies(
    policies: Sequence[NamedPolicy],
    source: UsageSource,
    *,
    end: datetime,
    progress: Progress | None = None,
) -> list[AgencyReport]:
    """One report per policy, in order; a policy whose data could not be read gets an
    error report and no numbers."""
    try:
        namespaces = resolve_namespaces(policies, source, end=end)
    except SourceUnavailable as error:
        return [failed_agency_report(p.name, p.spec, end=end, error=str(error)) for p in policies]
    requests = [collection_request(p, ns) for p, ns in zip(policies, namespaces, strict=True)]
    chunks = [slice(first, first + CHUNK) for first in range(0, len(policies), CHUNK)]

    def collect(chunk: slice) -> list[Collection | SourceUnavailable]:
        return source.collect(
            requests[chunk], end=end, progress=_offset(progress, chunk.start, len(policies))
        )

    reports: list[AgencyReport] = []
    for chunk, results in one_ahead(chunks, collect):
        reports.extend(
            report_for(policy, result, end=end, namespaces=request.namespaces)
            for policy, request, result in zip(
                policies[chunk], requests[chunk], results, strict=True
            )
        )
    return reports


def one_ahead(chunks: Sequence[T], collect: Callable[[T], R]) -> Iterator[tuple[T, R]]:
    """Each chunk with what ``collect`` made of it, the next one collected while the caller
    works on this one (the backend works while we score); at most two are held at once."""
    with ThreadPoolExecutor(max_workers=1) as ahead:
        pending = [ahead.submit(collect, chunk) for chunk in chunks[:1]]
        for position, chunk in enumerate(chunks):
            result = pending.pop().result()
            pending.extend(ahead.submit(collect, c) for c in chunks[position + 1 : position + 2])
            yield chunk, result


def _offset(progress: Progress | None, first: int, total: int) -> Progress | None:
    """Progress of a chunk's queries as progress over all agencies."""
    if progress is None:
        return None

    def report(done: int, tasks: int) -> None:
        progress(first + round(done / max(tasks, 1) * min(CHUNK, total - first)), total)

    return report


def evaluate_agency(policy: NamedPolicy, source: UsageSource, *, end: datetime) -> AgencyReport:
    return evaluate_policies([policy], source, end=end)[0]


def resolve_namespaces(
    policies: Sequence[NamedPolicy], source: UsageSource, *, end: datetime
) -> list[tuple[str, ...]]:
    """Each policy's namespaces: those listed plus those its selector matches."""
    selectors: list[LabelSelector] = [
        p.spec.namespace_selector for p in policies if p.spec.namespace_selector is not None
    ]
    window = max((p.spec.window for p in policies), key=duration_seconds, default="14d")
    matched = iter(source.namespaces_matching(selectors, end=end, window=window))
    resolved = []
    for policy in policies:
        found = set(policy.spec.namespaces)
        if policy.spec.namespace_selector is not None:
            found.update(next(matched))
        resolved.append(tuple(sorted(found)))
    return resolved


def collection_request(policy: NamedPolicy, namespaces: tuple[str, ...]) -> CollectionRequest:
    spec = policy.spec
    return CollectionRequest(
        key=policy.name,
        namespaces=namespaces,
        window=spec.window,
        stale_after=spec.stale_after,
        project_label=spec.project_label,
        stats={resource: frozenset(stats) for resource, stats in spec.required_stats().items()},
    )


def report_for(
    policy: NamedPolicy,
    result: Collection | SourceUnavailable,
    *,
    end: datetime,
    namespaces: tuple[str, ...],
) -> AgencyReport:
    if isinstance(result, SourceUnavailable):
        return failed_agency_report(policy.name, policy.spec, end=end, error=str(result))
    if not namespaces:
        return failed_agency_report(
            policy.name,
            policy.spec,
            end=end,
            error="the namespace selector matched no namespace (is the label in "
            "kube-state-metrics' --metric-labels-allowlist?)",
        )
    evaluations = [evaluate_workload(o.workload, o.usage, policy.spec) for o in result.observations]
    return build_agency_report(
        policy.name, policy.spec, evaluations, end=end, queries=result.queries
    )


def expand_by_label(
    templates: Sequence[NamedPolicy], source: UsageSource, *, label: str, end: datetime
) -> list[NamedPolicy]:
    """One policy per agency found: each value of the namespace ``label`` becomes an agency
    evaluated with each template (named ``<template>-<agency>``)."""
    if not templates:
        return []
    window = max((t.spec.window for t in templates), key=duration_seconds)
    try:
        groups = source.namespace_groups(label, end=end, window=window)
    except SourceUnavailable:
        return list(templates)  # evaluation reports the outage for each policy
    expanded = []
    for template in templates:
        for agency, group in groups.items():
            name = agency_name(agency)
            display = group.display_name or (agency if agency != name else None)
            spec = template.spec.model_copy(
                update={
                    "agency": name,
                    "namespaces": list(group.namespaces),
                    "namespace_selector": None,
                    "display_name": display or template.spec.display_name,
                }
            )
            expanded.append(NamedPolicy(name=f"{template.name}-{name}", spec=spec))
    return expanded


def agency_name(label_value: str) -> str:
    """A label value as an agency name (lower case, DNS-label characters, at most 63)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", label_value.lower()).strip("-")
    return cleaned[:63].strip("-") or "agency"
