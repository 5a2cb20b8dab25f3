"""The Kubernetes API: discover workloads, annotate them, patch their requests, post events,
write reports. Errors become ``ClusterError``; conflicts are retried from a fresh read.

Pod-template changes are RFC 6902 JSON patches that first ``test`` the container names and
the request and limit values that were read: a concurrent edit makes the patch fail instead
of being overwritten (conditional writes), and the change and the state annotations land in
one patch, so a crash never leaves a workload half-changed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from rightsizer.adapters import guards
from rightsizer.core.bounds import ClusterBounds, NamespaceBounds
from rightsizer.core.budget import DisruptionBudget, blocking_budgets
from rightsizer.core.decision import ResourceChange
from rightsizer.core.model import (
    ContainerResources,
    Resource,
    Workload,
    WorkloadKind,
    WorkloadRef,
)
from rightsizer.core.units import format_quantity, parse_quantity

PREFIX = "rightsizer.io/"
EXCLUDE = PREFIX + "exclude"
PREVIOUS = PREFIX + "previous-resources"
REVERT = PREFIX + "revert"
_KINDS: dict[WorkloadKind, tuple[str, str]] = {  # kind -> (api, plural)
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "DaemonSet": ("apps", "daemonsets"),
    "CronJob": ("batch", "cronjobs"),
    "Job": ("batch", "jobs"),
}
_QUANTITY_NAMES: dict[str, Resource] = {"cpu": "cpu", "memory": "memory", "nvidia.com/gpu": "gpu"}
T = TypeVar("T")


class ClusterError(Exception):
    """The API server refused or could not be reached; ``status`` is the HTTP status (0: none)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Conflict(ClusterError):
    """What was read is no longer what is there."""


@dataclass(frozen=True)
class ClusterWorkload:
    """A workload as read from the API: the core's view plus what a patch needs."""

    workload: Workload
    uid: str
    resource_version: str
    annotations: dict[str, str]  # rightsizer's own (rightsizer.io/...); others are not kept
    annotated: bool  # it has annotations at all (rightsizer's or anyone's)
    labels: dict[str, str]
    template_path: str  # JSON pointer to the pod spec
    container_index: dict[str, int]
    raw_resources: dict[str, dict[str, dict[str, str]]]  # container -> requests/limits -> name
    selector: dict[str, str] = field(default_factory=dict)  # the pods' matchLabels

    @property
    def ref(self) -> WorkloadRef:
        return self.workload.ref


@dataclass
class PodResizes:
    """Running pods resized in place, and those a PodDisruptionBudget held (pod -> PDBs)."""

    resized: int = 0
    held: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class KubernetesCluster:
    """Thin wrapper over the official client; everything it returns is plain data.

    ``api`` (the reader) reads, annotates and writes rightsizer's own objects; ``actuator``,
    when given, is the only client that changes resources (``resize``, ``resize_pods``):
    the chart's actuator identity (adapters/identity.py). Without it ``api`` does both."""

    api: client.ApiClient
    actuator: client.ApiClient | None = None
    component: str = "rightsizer"
    retries: int = 3
    timeout: float = 30.0  # seconds to wait for an answer: a hung API server is an error
    max_retry_after: float = 30.0  # a 429 asking for a longer wait is an error, not a nap
    calls: int = 0
    _events: int = field(default=0, init=False)
    _apps: client.AppsV1Api = field(init=False)
    _batch: client.BatchV1Api = field(init=False)
    _core: client.CoreV1Api = field(init=False)
    _custom: client.CustomObjectsApi = field(init=False)
    _autoscaling: client.AutoscalingV2Api = field(init=False)
    _writers: dict[str, Any] = field(init=False)  # api group -> the actuator's API

    def __post_init__(self) -> None:
        writer = self.actuator or self.api
        self._writers = {
            "apps": client.AppsV1Api(writer),
            "batch": client.BatchV1Api(writer),
            "": client.CoreV1Api(writer),
        }
        self._apps = client.AppsV1Api(self.api)
        self._batch = client.BatchV1Api(self.api)
        self._core = client.CoreV1Api(self.api)
        self._custom = client.CustomObjectsApi(self.api)
        self._autoscaling = client.AutoscalingV2Api(self.api)

    # -- calls -----------------------------------------------------------------------------
    def _call(self, what: str, send: Callable[[], T]) -> T:
        """One API call; a 429 (the request was not processed) is sent again after the
        Retry-After the API server gave, up to ``retries`` times and ``max_retry_after``
        seconds a wait."""
        for attempt in range(self.retries + 1):
            self.calls += 1
            try:
                return send()
            except ApiException as error:
                wait = _retry_after(error)
                if wait is not None and attempt < self.retries and wait <= self.max_retry_after:
                    time.sleep(wait)
                    continue
                reason = _api_reason(error)
                kind = Conflict if error.status == 409 else ClusterError
                raise kind(f"{what}: {error.status} {reason}", status=error.status or 0) from error
            except (HTTPError, OSError) as error:
                raise ClusterError(f"{what}: API server unreachable: {error}") from error
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    # -- discovery -------------------------------------------------------------------------
    def namespace_labels(self) -> dict[str, dict[str, str]]:
        found = self._call(
            "list namespaces",
            lambda: self._core.list_namespace(
                _preload_content=False, _request_timeout=self.timeout
            ),
        )
        return {
            item["metadata"]["name"]: item["metadata"].get("labels") or {} for item in _items(found)
        }

    def workloads(self, namespaces: Sequence[str]) -> list[ClusterWorkload]:
        """Deployments, StatefulSets, DaemonSets, CronJobs and bare Jobs in ``namespaces``."""
        found: list[ClusterWorkload] = []
        for namespace in sorted(set(namespaces)):
            hpas = self._hpa_targets(namespace)
            vpas = self._vpa_targets(namespace)
            for kind in _KINDS:
                for item in self._list(kind, namespace):
                    if kind == "Job" and _owned(item):
                        continue  # Jobs of a CronJob are evaluated as the CronJob
                    found.append(read_workload(kind, item, hpas, vpas))
        return found

    def _list(self, kind: WorkloadKind, namespace: str) -> Iterator[dict[str, Any]]:
        api = self._batch if _KINDS[kind][0] == "batch" else self._apps
        method = getattr(api, f"list_namespaced_{_snake(kind)}")
        answer = self._call(
            f"list {kind} in {namespace}",
            lambda: method(namespace, _preload_content=False, _request_timeout=self.timeout),
        )
        yield from _items(answer)

    def _hpa_targets(self, namespace: str) -> dict[tuple[str, str], frozenset[Resource]]:
        answer = self._call(
            f"list HPAs in {namespace}",
            lambda: self._autoscaling.list_namespaced_horizontal_pod_autoscaler(
                namespace, _preload_content=False, _request_timeout=self.timeout
            ),
        )
        return hpa_targets(_items(answer))

    def read(self, ref: WorkloadRef) -> ClusterWorkload:
        api = self._batch if _KINDS[ref.kind][0] == "batch" else self._apps
        method = getattr(api, f"read_namespaced_{_snake(ref.kind)}")
        answer = self._call(
            f"read {ref}",
            lambda: method(
                ref.name, ref.namespace, _preload_content=False, _request_timeout=self.timeout
            ),
        )
        return read_workload(
            ref.kind,
            json.loads(answer.data),
            self._hpa_targets(ref.namespace),
            self._vpa_targets(ref.namespace),
        )

    # -- guards: VPAs, LimitRanges, nodes, PDBs (read only) -------------------------------
    def _vpa_targets(self, namespace: str) -> dict[tuple[str, str], frozenset[Resource]]:
        """Workloads a VerticalPodAutoscaler sizes; without the VPA CRD (404) there are none."""
        try:
            answer = self._call(
                f"list VPAs in {namespace}",
                lambda: self._custom.list_namespaced_custom_object(
                    guards.VPA_GROUP,
                    guards.VPA_VERSION,
                    namespace,
                    guards.VPA_PLURAL,
                    _preload_content=False,
                    _request_timeout=self.timeout,
                ),
            )
        except ClusterError as error:
            if error.status == 404:
                return {}
            raise
        return guards.vpa_targets(_items(answer))

    def bounds(self, namespaces: Sequence[str]) -> tuple[ClusterBounds, dict[str, NamespaceBounds]]:
        """The largest node's allocatable (one list of nodes) and each namespace's
        LimitRanges: what the API server and the scheduler would admit."""
        nodes = self._call(
            "list nodes",
            lambda: self._core.list_node(_preload_content=False, _request_timeout=self.timeout),
        )
        per_namespace = {}
        for namespace in sorted(set(namespaces)):
            answer = self._call(
                f"list LimitRanges in {namespace}",
                lambda ns=namespace: self._core.list_namespaced_limit_range(  # type: ignore[misc]
                    ns, _preload_content=False, _request_timeout=self.timeout
                ),
            )
            per_namespace[namespace] = guards.namespace_bounds(namespace, _items(answer))
        return guards.cluster_bounds(_items(nodes)), per_namespace

    def disruption_budgets(self, namespace: str) -> list[DisruptionBudget]:
        answer = self._call(
            f"list PDBs in {namespace}",
            lambda: client.PolicyV1Api(self.api).list_namespaced_pod_disruption_budget(
                namespace, _preload_content=False, _request_timeout=self.timeout
            ),
        )
        return guards.disruption_budgets(_items(answer))

    # -- writes ----------------------------------------------------------------------------
    def annotate(self, target: ClusterWorkload, annotations: dict[str, str | None]) -> None:
        """Merge-patch annotations (None removes one); nothing in the pod template changes."""
        if all(target.annotations.get(k) == v for k, v in annotations.items()):
            return  # nothing to write: no API call
        body = {"metadata": {"annotations": annotations}}
        self._patch(target.ref, body, what="annotate", content_type="application/merge-patch+json")

    def resize(
        self,
        target: ClusterWorkload,
        changes: Sequence[ResourceChange],
        annotations: dict[str, str | None],
    ) -> None:
        """Change requests (and limits) and write ``annotations`` (None removes one) in one
        conditional patch."""
        operations = resize_operations(target, changes, annotations)
        try:
            self._patch(
                target.ref,
                operations,
                what="resize",
                content_type="application/json-patch+json",
                actuator=True,
            )
        except ClusterError as error:
            if error.status == 422:  # the API server's answer to a failed "test" op
                raise Conflict(str(error), status=422) from error
            raise

    def _patch(
        self, ref: WorkloadRef, body: Any, *, what: str, content_type: str, actuator: bool = False
    ) -> Any:
        """The patch; returns the API server's answer (the object as written)."""
        group = _KINDS[ref.kind][0]
        readers = {"apps": self._apps, "batch": self._batch}
        api = self._writers[group] if actuator else readers[group]
        method = getattr(api, f"patch_namespaced_{_snake(ref.kind)}")
        return self._call(
            f"{what} {ref}",
            lambda: method(
                ref.name,
                ref.namespace,
                body,
                _content_type=content_type,
                _preload_content=False,
                _request_timeout=self.timeout,
            ),
        )

    def resize_pods(
        self,
        target: ClusterWorkload,
        changes: Sequence[ResourceChange],
        *,
        budgets: Sequence[DisruptionBudget] = (),
    ) -> PodResizes:
        """In-place resize (Kubernetes 1.33+) of the workload's running pods, through the
        pods/resize subresource: immediate relief, the template change having been made.
        A pod selected by a PDB of ``budgets`` that allows no disruption now is held.
        A pod that refuses is left to its next restart."""
        result = PodResizes()
        if not target.selector:
            return result
        selector = ",".join(f"{k}={v}" for k, v in sorted(target.selector.items()))
        answer = self._call(
            f"list pods of {target.ref}",
            lambda: self._core.list_namespaced_pod(
                target.ref.namespace,
                label_selector=selector,
                _preload_content=False,
                _request_timeout=self.timeout,
            ),
        )
        for pod in _items(answer):
            if (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            operations = pod_resize_operations(pod, changes)
            if not operations:
                continue
            blockers = blocking_budgets((pod.get("metadata") or {}).get("labels") or {}, budgets)
            if blockers:
                result.held[pod["metadata"]["name"]] = blockers
                continue
            try:
                self._resize_pod(target.ref.namespace, pod["metadata"]["name"], operations)
                result.resized += 1
            except ClusterError:
                continue  # e.g. a kubelet or API server without in-place resize
        return result

    def _resize_pod(self, namespace: str, name: str, operations: list[dict[str, Any]]) -> None:
        self._call(
            f"resize pod {name}",
            lambda: self._writers[""].patch_namespaced_pod_resize(
                name,
                namespace,
                operations,
                _content_type="application/json-patch+json",
                _preload_content=False,
                _request_timeout=self.timeout,
            ),
        )

    def event(
        self,
        involved: dict[str, str],
        *,
        reason: str,
        message: str,
        warning: bool = False,
        now: datetime,
    ) -> None:
        """A core/v1 Event about ``involved`` (kind, name, namespace, uid, apiVersion)."""
        namespace = involved.get("namespace") or "default"
        stamp = now.isoformat().replace("+00:00", "Z")
        self._events += 1
        name = f"{involved['name']}.{int(now.timestamp() * 1e6):x}{self._events:04x}"[-253:]
        body: Any = {
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self._call(
            f"event {reason}",
            lambda: self._core.create_namespaced_event(
                namespace, body, _preload_content=False, _request_timeout=self.timeout
            ),
        )

    def write_report(self, report: dict[str, Any]) -> None:
        """Replace the EfficiencyReport's spec, or create it when there is none: one call
        a cycle once it exists (creating first cost two from the second cycle on). Created
        meanwhile by another writer: patched once more."""
        name = report["metadata"]["name"]
        patch = {
            "spec": report["spec"],
            "metadata": {"labels": report["metadata"].get("labels", {})},
        }

        def update() -> None:
            self._call(
                f"update report {name}",
                lambda: self._custom.patch_cluster_custom_object(
                    "rightsizer.io",
                    "v1alpha1",
                    "efficiencyreports",
                    name,
                    patch,
                    _content_type="application/merge-patch+json",
                    _preload_content=False,
                    _request_timeout=self.timeout,
                ),
            )

        try:
            update()
            return
        except ClusterError as error:
            if error.status != 404:
                raise
        try:
            self._call(
                f"create report {name}",
                lambda: self._custom.create_cluster_custom_object(
                    "rightsizer.io",
                    "v1alpha1",
                    "efficiencyreports",
                    report,
                    _preload_content=False,
                    _request_timeout=self.timeout,
                ),
            )
        except Conflict:
            update()

    def write_policy_status(self, name: str, status: dict[str, Any]) -> None:
        self._call(
            f"status of {name}",
            lambda: self._custom.patch_cluster_custom_object_status(
                "rightsizer.io",
                "v1alpha1",
                "efficiencypolicies",
                name,
                {"status": status},
                _content_type="application/merge-patch+json",
                _preload_content=False,
                _request_timeout=self.timeout,
            ),
        )


def hpa_targets(items: Sequence[dict[str, Any]]) -> dict[tuple[str, str], frozenset[Resource]]:
    """(kind, name) -> the resources an HPA of ``items`` scales on."""
    targets: dict[tuple[str, str], frozenset[Resource]] = {}
    for item in items:
        spec = item.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        names = {
            (m.get("resource") or {}).get("name")
            for m in spec.get("metrics") or []
            if m.get("type") == "Resource"
        }
        if not spec.get("metrics"):
            names = {"cpu"}  # an HPA without metrics scales on CPU (the API's default)
        resources = frozenset(r for r in ("cpu", "memory") if r in names)
        targets[(ref.get("kind", ""), ref.get("name", ""))] = resources  # type: ignore[assignment]
    return targets


def read_workload(
    kind: WorkloadKind,
    item: dict[str, Any],
    hpas: dict[tuple[str, str], frozenset[Resource]],
    vpas: dict[tuple[str, str], frozenset[Resource]] | None = None,
) -> ClusterWorkload:
    """One API object -> the core's Workload and what a patch needs."""
    meta = item.get("metadata") or {}
    template_path = (
        "/spec/jobTemplate/spec/template/spec" if kind == "CronJob" else ("/spec/template/spec")
    )
    pod_spec = _at(item, template_path)
    containers = list(pod_spec.get("containers") or [])
    # native sidecars (init containers with restartPolicy Always) are containers too
    sidecars = [
        c for c in pod_spec.get("initContainers") or [] if c.get("restartPolicy") == ("Always")
    ]
    raw = {
        c["name"]: {
            part: dict((c.get("resources") or {}).get(part) or {})
            for part in ("requests", "limits")
        }
        for c in containers
    }
    every_annotation = meta.get("annotations") or {}
    annotations = {k: v for k, v in every_annotation.items() if k.startswith(PREFIX)}
    labels = dict(meta.get("labels") or {})
    ref = WorkloadRef(kind=kind, namespace=meta.get("namespace", ""), name=meta.get("name", ""))
    workload = Workload(
        ref=ref,
        project=None,  # the policy's project label says which: joined later
        replicas=_replicas(kind, item),
        containers=tuple(
            _container(c, in_template=c in containers) for c in [*containers, *sidecars]
        ),
        hpa_resources=hpas.get((kind, ref.name), frozenset()),
        vpa_resources=(vpas or {}).get((kind, ref.name), frozenset()),
        excluded="true" in (labels.get(EXCLUDE), annotations.get(EXCLUDE)),
        generation=meta.get("generation"),
    )
    return ClusterWorkload(
        workload=workload,
        uid=meta.get("uid", ""),
        resource_version=meta.get("resourceVersion", ""),
        annotations=annotations,
        annotated=bool(every_annotation),
        labels=labels,
        template_path=template_path,
        container_index={c["name"]: i for i, c in enumerate(containers)},
        raw_resources=raw,
        selector=dict(((item.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}),
    )


def _container(raw: dict[str, Any], *, in_template: bool) -> ContainerResources:
    resources = raw.get("resources") or {}
    return ContainerResources(
        name=raw.get("name", ""),
        requests=_quantities(resources.get("requests") or {}),
        limits=_quantities(resources.get("limits") or {}),
        in_template=in_template,
    )


def _quantities(values: dict[str, Any]) -> dict[Resource, float]:
    found: dict[Resource, float] = {}
    for name, value in values.items():
        resource = _QUANTITY_NAMES.get(name)
        if resource is not None:
            try:
                found[resource] = parse_quantity(value)
            except ValueError:
                continue  # the API server would not store it; leave it out
    return found


def resize_operations(
    target: ClusterWorkload,
    changes: Sequence[ResourceChange],
    annotations: dict[str, str | None],
) -> list[dict[str, Any]]:
    """The JSON patch: test what was read, then set requests, limits and annotations."""
    operations: list[dict[str, Any]] = []
    for change in changes:
        index = target.container_index[change.container]
        base = f"{target.template_path}/containers/{index}"
        operations.append({"op": "test", "path": f"{base}/name", "value": change.container})
        raw = target.raw_resources.get(change.container, {})
        if not (raw.get("requests") or raw.get("limits")):
            operations.append({"op": "add", "path": f"{base}/resources", "value": {}})
        for part, old, new in (
            ("requests", change.request_from, change.request_to),
            ("limits", change.limit_from, change.limit_to),
        ):
            operations.extend(
                _quantity_operations(base, raw, part, change.resource, old=old, new=new)
            )
    if not target.annotated:
        operations.append({"op": "add", "path": "/metadata/annotations", "value": {}})
    for name, value in sorted(annotations.items()):
        path = f"/metadata/annotations/{_pointer(name)}"
        if value is None:  # remove it (an "add" of null would leave it, as "" or null)
            if name in target.annotations:
                operations.append({"op": "remove", "path": path})
            continue
        operations.append({"op": "add", "path": path, "value": value})
    return operations


def pod_resize_operations(
    pod: dict[str, Any], changes: Sequence[ResourceChange]
) -> list[dict[str, Any]]:
    """The JSON patch that resizes a running pod's containers as ``changes`` say, testing
    each container's name and current value first."""
    containers = ((pod.get("spec") or {}).get("containers")) or []
    index = {c.get("name"): i for i, c in enumerate(containers)}
    operations: list[dict[str, Any]] = []
    for change in changes:
        position = index.get(change.container)
        if position is None:
            continue
        base = f"/spec/containers/{position}"
        raw = {
            part: dict((containers[position].get("resources") or {}).get(part) or {})
            for part in ("requests", "limits")
        }
        found = _quantity_operations(
            base, raw, "requests", change.resource, old=change.request_from, new=change.request_to
        )
        found += _quantity_operations(
            base, raw, "limits", change.resource, old=change.limit_from, new=change.limit_to
        )
        if found:
            operations.append({"op": "test", "path": f"{base}/name", "value": change.container})
            operations.extend(found)
    return operations


def _quantity_operations(
    base: str,
    raw: dict[str, dict[str, str]],
    part: str,
    resource: Resource,
    *,
    old: float | None,
    new: float | None,
) -> list[dict[str, Any]]:
    values = raw.get(part) or {}
    path = f"{base}/resources/{part}"
    operations: list[dict[str, Any]] = []
    if resource in values:
        operations.append({"op": "test", "path": f"{path}/{resource}", "value": values[resource]})
    elif old is not None:
        return []  # the value we read is gone: leave it to the next evaluation
    if new is None:
        if resource in values:
            operations.append({"op": "remove", "path": f"{path}/{resource}"})
        return operations
    if not values:
        operations.append({"op": "add", "path": path, "value": {}})
    operations.append(
        {"op": "add", "path": f"{path}/{resource}", "value": format_quantity(resource, new)}
    )
    return operations


def _pointer(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _at(item: dict[str, Any], pointer: str) -> dict[str, Any]:
    node: Any = item
    for part in pointer.strip("/").split("/"):
        node = (node or {}).get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _replicas(kind: WorkloadKind, item: dict[str, Any]) -> float:
    spec, status = item.get("spec") or {}, item.get("status") or {}
    if kind == "DaemonSet":
        return float(status.get("desiredNumberScheduled") or 1)
    if kind in ("CronJob", "Job"):
        job_spec = (spec.get("jobTemplate") or {}).get("spec") or spec
        return float(job_spec.get("parallelism") or 1)
    replicas = spec.get("replicas")
    return float(1 if replicas is None else replicas)


def _owned(item: dict[str, Any]) -> bool:
    owners = (item.get("metadata") or {}).get("ownerReferences") or []
    return any(owner.get("kind") == "CronJob" for owner in owners)


def _items(answer: Any) -> list[dict[str, Any]]:
    data = json.loads(answer.data) if hasattr(answer, "data") else answer
    return list((data or {}).get("items") or [])


def _snake(kind: str) -> str:
    return {
        "Deployment": "deployment",
        "StatefulSet": "stateful_set",
        "DaemonSet": "daemon_set",
        "CronJob": "cron_job",
        "Job": "job",
    }[kind]


def _retry_after(error: ApiException) -> float | None:
    """Seconds to wait before sending a refused request again: a 429's Retry-After (1 s
    when it has none); None for any other answer."""
    if error.status != 429:
        return None
    value = (error.headers or {}).get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else 1.0
    except ValueError:
        return 1.0


def _api_reason(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except (ValueError, AttributeError):
        return str(error.reason)


def involved_object(target: ClusterWorkload) -> dict[str, str]:
    group = _KINDS[target.ref.kind][0]
    return {
        "kind": target.ref.kind,
        "name": target.ref.name,
        "namespace": target.ref.namespace,
        "uid": target.uid,
        "apiVersion": f"{group}/v1",
    }
