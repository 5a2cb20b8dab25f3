"""The ports the service talks through, and the domain errors adapters raise."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from rightsizer.core.model import Frozen, Resource, UsageSummary, Workload
from rightsizer.core.policy import LabelSelector

Progress = Callable[[int, int], None]


class SourceUnavailable(Exception):
    """The metrics source could not answer completely; nothing may be concluded."""


class CollectionRequest(Frozen):
    """Which namespaces to read, over which window, and which statistics the policy needs."""

    key: str
    namespaces: tuple[str, ...]
    window: str
    stale_after: str
    project_label: str
    stats: dict[Resource, frozenset[str]]

    def batch_key(self) -> tuple[object, ...]:
        """Requests with the same key can share one query."""
        stats = tuple(sorted((r, tuple(sorted(s))) for r, s in self.stats.items()))
        return (self.window, self.stale_after, self.project_label, stats)


class NamespaceGroup(Frozen):
    """The namespaces sharing one value of a label: one agency, and its display name."""

    namespaces: tuple[str, ...]
    display_name: str | None = None


class Observation(Frozen):
    workload: Workload
    usage: UsageSummary


class Collection(Frozen):
    key: str
    observations: tuple[Observation, ...]
    queries: int
    notes: tuple[str, ...] = ()  # how the source read it (e.g. recorded or raw series)


class UsageSource(Protocol):
    def namespaces_matching(
        self, selectors: Sequence[LabelSelector], *, end: datetime, window: str
    ) -> list[list[str]]:
        """For each selector, the namespaces whose labels it matches."""

    def namespace_groups(
        self, label: str, *, end: datetime, window: str
    ) -> dict[str, NamespaceGroup]:
        """Namespaces grouped by their value of ``label`` (namespaces without it left out),
        with the display name from the annotation ``rightsizer.io/display-name``."""

    def collect(
        self,
        requests: Sequence[CollectionRequest],
        *,
        end: datetime,
        progress: Progress | None = None,
    ) -> list[Collection | SourceUnavailable]:
        """One result per request, in order; a request that failed gets its error."""


class NamespacesThrough:
    """For wrappers of a ``UsageSource`` (in ``self.source``) that change how usage is
    collected, not how namespaces are found: the look-ups pass straight through."""

    source: UsageSource

    def namespaces_matching(
        self, selectors: Sequence[LabelSelector], *, end: datetime, window: str
    ) -> list[list[str]]:
        return self.source.namespaces_matching(selectors, end=end, window=window)

    def namespace_groups(
        self, label: str, *, end: datetime, window: str
    ) -> dict[str, NamespaceGroup]:
        return self.source.namespace_groups(label, end=end, window=window)


class StateUnavailable(Exception):
    """The incremental state could not be read or written (it is rebuilt, never trusted)."""


class StateStore(Protocol):
    """Where incremental evaluation keeps its per-agency state between cycles (opaque bytes;
    the state carries its own schema version and checksum)."""

    def load(self, key: str) -> bytes | None:
        """The bytes saved under ``key``, or None when there are none."""

    def save(self, key: str, blob: bytes) -> None:
        """Replace what is saved under ``key``."""
