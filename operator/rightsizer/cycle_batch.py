"""Policies due together, evaluated together: their PromQL batched across agencies.

``run_policies`` resolves each policy's namespaces (from the cluster's shared listing), has
the usage source collect a chunk of policies in one call — ``PrometheusSource`` groups their
agencies into shared queries — and then runs each policy's cycle exactly as ``run_policy``
does, its usage answered from what was collected. The next chunk is collected while this
one's policies run (the backend works while we score and patch); memory stays bounded:
at most two chunks' usage is held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rightsizer.adapters.kubernetes import ClusterError, KubernetesCluster
from rightsizer.cycle import CycleResult, CycleSettings, agency_namespaces, run_policy
from rightsizer.ports import (
    Collection,
    CollectionRequest,
    NamespacesThrough,
    Progress,
    SourceUnavailable,
    UsageSource,
)
from rightsizer.service import NamedPolicy, collection_request, one_ahead

CHUNK = 25  # policies collected together: 25 hold half the usage of 50, for the same queries
Result = Collection | SourceUnavailable


def _key(request: CollectionRequest, end: datetime) -> tuple[object, ...]:
    return (request.key, request.namespaces, request.batch_key(), end)


@dataclass
class PrefetchedSource(NamespacesThrough):
    """A usage source that answers a request from a result collected beforehand for the
    same request and end (once), and passes anything else to ``source``."""

    source: UsageSource
    _kept: dict[tuple[object, ...], Result] = field(default_factory=dict)

    def prefetch(self, requests: Sequence[CollectionRequest], *, end: datetime) -> None:
        if requests:
            results = self.source.collect(requests, end=end)
            for request, result in zip(requests, results, strict=True):
                self._kept[_key(request, end)] = result

    def collect(
        self,
        requests: Sequence[CollectionRequest],
        *,
        end: datetime,
        progress: Progress | None = None,
    ) -> list[Result]:
        found = {i: self._kept.pop(_key(r, end), None) for i, r in enumerate(requests)}
        missing = [i for i, result in found.items() if result is None]
        if missing:
            fetched = self.source.collect([requests[i] for i in missing], end=end)
            found.update(zip(missing, fetched, strict=True))
        return [result for _, result in sorted(found.items()) if result is not None]


def run_policies(
    policies: Sequence[tuple[NamedPolicy, int | None]],
    *,
    source: UsageSource,
    cluster: KubernetesCluster,
    now: datetime,
    settings: CycleSettings,
    chunk: int = CHUNK,
) -> list[CycleResult]:
    """``run_policy`` for each (policy, generation), in order, their usage collected a
    chunk of policies at a time. Each result is its ``CycleResult.summary()``: what one
    policy's evaluation needed (its evaluations, its decisions' reasons and states) is let go
    as soon as the policy is done, so memory does not grow with the number of policies."""
    size = max(chunk, 1)
    parts = [policies[first : first + size] for first in range(0, len(policies), size)]
    results: list[CycleResult] = []
    for part, batched in one_ahead(
        parts, lambda part: _prefetched(part, source=source, cluster=cluster, now=now)
    ):
        results.extend(
            run_policy(
                policy,
                generation=generation,
                source=batched,
                cluster=cluster,
                now=now,
                settings=settings,
            ).summary()
            for policy, generation in part
        )
    return results


def _prefetched(
    part: Sequence[tuple[NamedPolicy, int | None]],
    *,
    source: UsageSource,
    cluster: KubernetesCluster,
    now: datetime,
) -> PrefetchedSource:
    """A source holding the usage of ``part``'s policies, collected in one call."""
    batched = PrefetchedSource(source)
    requests = []
    for policy, _ in part:
        try:
            namespaces = agency_namespaces(policy, cluster)
        except ClusterError:
            continue  # run_policy finds it again and says so
        requests.append(collection_request(policy, tuple(namespaces)))
    batched.prefetch(requests, end=now)
    return batched


__all__ = ["PrefetchedSource", "run_policies"]
