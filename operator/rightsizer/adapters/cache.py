"""One read of the cluster's workloads for every policy of a cycle: a shared view with a
bounded lifetime.

Without it each evaluation lists every workload kind, HPAs and VPAs in each of its
namespaces: seven calls per namespace and policy. ``CachedCluster`` lists each of them once
for the whole cluster, in pages of ``page_size`` (following ``continue``; an expired token,
410, starts the list again), keeps the parsed workloads (never the raw objects: each page is
parsed as it arrives and let go, so a listing never holds the whole cluster's raw objects),
each packed as it is read (pickled: one bytes object instead of some twenty small ones, so
15,000 workloads take 29 MiB instead of 72; an evaluation unpacks only its namespaces'),
and lists a kind again when its listing is older than ``cache_seconds`` (the stale listing
is let go first, never held beside the new one). The namespaces' labels are kept the same
way. List calls per cycle thus depend on the cycle's length and the cluster's size (pages),
not on the number of policies or namespaces.

Its own writes keep it current: a patch's answer (the object as written) replaces the cached
object, and so does every ``read`` (the conflict and lost-answer paths read afresh). A write
answered by a conflict (409, 422) or not answered at all drops that kind's listing, so the
next evaluation lists it again. Other clients' changes are seen within ``cache_seconds``,
except by a resize: it reads the workload first and treats any change since the listing as a
conflict (the cycle then decides again from the fresh read), so an opt-out, an HPA or a VPA
added since is always honoured before a spec changes.
"""

from __future__ import annotations

import json
import pickle
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from rightsizer.adapters import guards
from rightsizer.adapters.kubernetes import (
    _KINDS,
    ClusterError,
    ClusterWorkload,
    Conflict,
    KubernetesCluster,
    _owned,
    _snake,
    hpa_targets,
    read_workload,
)
from rightsizer.core.decision import ResourceChange
from rightsizer.core.model import Resource, WorkloadKind, WorkloadRef

R = TypeVar("R")
Targets = dict[tuple[str, str], frozenset[Resource]]
Kept = dict[str, dict[str, bytes]]  # namespace -> name -> workload, packed


@dataclass
class _Listing:
    """What one cluster-wide list found, and when (the cache's clock)."""

    taken: float
    workloads: Kept = field(default_factory=dict)
    targets: dict[str, Targets] = field(default_factory=dict)  # namespace -> HPA/VPA targets
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # namespace -> labels


@dataclass
class CachedCluster(KubernetesCluster):
    """``KubernetesCluster`` whose discovery reads come from cluster-wide lists shared by
    every policy (see the module's docstring). ``cache_seconds`` 0 lists at every read."""

    cache_seconds: float = 60.0
    page_size: int = 500
    clock: Callable[[], float] = time.monotonic
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _listings: dict[str, _Listing] = field(default_factory=dict, init=False, repr=False)

    # -- discovery, from the shared listings ----------------------------------------------
    def namespace_labels(self) -> dict[str, dict[str, str]]:
        with self._lock:
            return dict(self._listing("namespaces", self._list_namespaces).labels)

    def workloads(self, namespaces: Sequence[str]) -> list[ClusterWorkload]:
        """Deployments, StatefulSets, DaemonSets, CronJobs and bare Jobs in ``namespaces``,
        in the order of ``KubernetesCluster.workloads``."""
        with self._lock:
            kinds = {kind: self._listing(kind, self._lister(kind)).workloads for kind in _KINDS}
            hpas = self._listing("hpas", self._list_hpas).targets
            vpas = self._listing("vpas", self._list_vpas).targets
            return [
                _guarded(_unpacked(packed), hpas.get(namespace, {}), vpas.get(namespace, {}))
                for namespace in sorted(set(namespaces))
                for kind in _KINDS
                for packed in kinds[kind].get(namespace, {}).values()
            ]

    def invalidate(self) -> None:
        """Forget every listing: the next read lists afresh."""
        with self._lock:
            self._listings.clear()

    # -- reads and writes keep it current ---------------------------------------------------
    def read(self, ref: WorkloadRef) -> ClusterWorkload:
        found = super().read(ref)
        self._remember(found)
        return found

    def resize(
        self,
        target: ClusterWorkload,
        changes: Sequence[ResourceChange],
        annotations: dict[str, str | None],
    ) -> None:
        """A change to a workload's spec is never made from the shared listing alone: the
        workload is read first, and anything changed since (its spec: a new generation, a
        human's edit of its resources or replicas; an opt-out; an HPA or a VPA; the object
        recreated) is a conflict, which the cycle answers from the fresh read. A status
        write alone (a rollout's progress: a new resourceVersion, the same generation) is
        not: the patch itself still tests the values it changes."""
        fresh = self.read(target.ref)
        if fresh.uid != target.uid or fresh.workload != target.workload:
            raise Conflict(f"{target.ref} changed since it was listed", status=409)
        super().resize(fresh, changes, annotations)

    def _patch(
        self, ref: WorkloadRef, body: Any, *, what: str, content_type: str, actuator: bool = False
    ) -> Any:
        try:
            answer = super()._patch(
                ref, body, what=what, content_type=content_type, actuator=actuator
            )
        except ClusterError as error:
            if error.status in (0, 409, 422):  # it may have landed, or we read it wrong
                self._forget(ref.kind)
            raise
        try:
            item = json.loads(answer.data)
            self._remember(read_workload(ref.kind, item, {}, {}))
        except (AttributeError, TypeError, ValueError):
            self._forget(ref.kind)  # an answer we cannot read: list the kind again
        return answer

    def _remember(self, workload: ClusterWorkload) -> None:
        with self._lock:
            listing = self._listings.get(workload.ref.kind)
            if listing is not None:
                kept = listing.workloads.setdefault(workload.ref.namespace, {})
                kept[workload.ref.name] = _packed(workload)

    def _forget(self, name: str) -> None:
        with self._lock:
            self._listings.pop(name, None)

    # -- the lists ----------------------------------------------------------------------------
    def _listing(self, name: str, load: Callable[[], _Listing]) -> _Listing:
        listing = self._listings.get(name)
        if listing is not None and self.clock() - listing.taken < self.cache_seconds:
            return listing
        del listing
        self._listings.pop(name, None)  # stale: let go before the new one is read
        self._listings[name] = load()
        return self._listings[name]

    def _lister(self, kind: WorkloadKind) -> Callable[[], _Listing]:
        api = self._batch if _KINDS[kind][0] == "batch" else self._apps
        method = getattr(api, f"list_{_snake(kind)}_for_all_namespaces")

        def read(item: dict[str, Any]) -> tuple[WorkloadRef, bytes] | None:
            """Packed as it is read: a listing never holds its workloads unpacked."""
            if kind == "Job" and _owned(item):
                return None  # Jobs of a CronJob are evaluated as the CronJob
            workload = read_workload(kind, item, {}, {})
            return workload.ref, _packed(workload)

        def load() -> _Listing:
            listing = _Listing(taken=self.clock())
            for found in self._list_all(f"list {kind}", method, read):
                if found is not None:
                    ref, packed = found
                    listing.workloads.setdefault(ref.namespace, {})[ref.name] = packed
            return listing

        return load

    def _list_hpas(self) -> _Listing:
        listing = _Listing(taken=self.clock())
        method = self._autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces
        for namespace, items in _by_namespace(self._list_all("list HPAs", method, _spec)).items():
            listing.targets[namespace] = hpa_targets(items)
        return listing

    def _list_vpas(self) -> _Listing:
        """Without the VPA CRD (404) there are none."""
        listing = _Listing(taken=self.clock())

        def method(**options: Any) -> Any:
            return self._custom.list_cluster_custom_object(
                guards.VPA_GROUP, guards.VPA_VERSION, guards.VPA_PLURAL, **options
            )

        try:
            items = self._list_all("list VPAs", method, _spec)
        except ClusterError as error:
            if error.status == 404:
                return listing
            raise
        for namespace, found in _by_namespace(items).items():
            listing.targets[namespace] = guards.vpa_targets(found)
        return listing

    def _list_namespaces(self) -> _Listing:
        listing = _Listing(taken=self.clock())
        for name, labels in self._list_all("list namespaces", self._core.list_namespace, _labels):
            listing.labels[name] = labels
        return listing

    def _list_all(
        self, what: str, method: Callable[..., Any], read: Callable[[dict[str, Any]], R]
    ) -> list[R]:
        """``read`` of every item of a list, page by page: a page is read as it arrives and
        let go (only what ``read`` keeps stays); an expired ``continue`` token (410 Gone)
        starts the list again, once."""
        for attempt in range(2):
            found: list[R] = []
            token: str | None = None
            try:
                while True:
                    answer = self._call(what, lambda t=token: self._page(method, t))  # type: ignore[misc]
                    page = json.loads(answer.data)
                    found.extend(read(item) for item in page.get("items") or [])
                    token = (page.get("metadata") or {}).get("continue") or None
                    del answer, page
                    if token is None:
                        return found
            except ClusterError as error:
                if error.status != 410 or attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _page(self, method: Callable[..., Any], token: str | None) -> Any:
        options: dict[str, Any] = {"limit": self.page_size}
        if token:
            options["_continue"] = token
        return method(**options, _preload_content=False, _request_timeout=self.timeout)


def _spec(item: dict[str, Any]) -> dict[str, Any]:
    """What an HPA or a VPA is read for: its namespace and its spec."""
    meta = item.get("metadata") or {}
    return {"metadata": {"namespace": meta.get("namespace", "")}, "spec": item.get("spec") or {}}


def _labels(item: dict[str, Any]) -> tuple[str, dict[str, str]]:
    meta = item.get("metadata") or {}
    return meta.get("name", ""), dict(meta.get("labels") or {})


def _by_namespace(items: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        found.setdefault((item.get("metadata") or {}).get("namespace", ""), []).append(item)
    return found


def _packed(workload: ClusterWorkload) -> bytes:
    return pickle.dumps(workload, protocol=pickle.HIGHEST_PROTOCOL)


def _unpacked(packed: bytes) -> ClusterWorkload:
    """A workload this cache packed itself (never bytes from elsewhere)."""
    workload: ClusterWorkload = pickle.loads(packed)
    return workload


def _guarded(workload: ClusterWorkload, hpas: Targets, vpas: Targets) -> ClusterWorkload:
    """The cached workload with the HPAs and VPAs that target it now."""
    key = (workload.ref.kind, workload.ref.name)
    hpa, vpa = hpas.get(key, frozenset()), vpas.get(key, frozenset())
    if workload.workload.hpa_resources == hpa and workload.workload.vpa_resources == vpa:
        return workload
    changed = workload.workload.model_copy(update={"hpa_resources": hpa, "vpa_resources": vpa})
    return replace(workload, workload=changed)


__all__ = ["CachedCluster"]
