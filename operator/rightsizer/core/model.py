"""Plain data the core reads: workloads, their current resources and their measured usage.

Everything is frozen. Amounts are absolute: CPU in cores, memory and storage in bytes,
GPU in devices. Utilisation (usage / request) is computed by the core, never stored here.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Resource = Literal["cpu", "memory", "storage", "gpu"]
COMPUTE_RESOURCES: tuple[Resource, ...] = ("cpu", "memory")
RESOURCES: tuple[Resource, ...] = ("cpu", "memory", "storage", "gpu")
WorkloadKind = Literal["Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"]
WORKLOAD_KINDS: tuple[WorkloadKind, ...] = (
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "CronJob",
    "Job",
)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


F = TypeVar("F", bound=Frozen)
_set = object.__setattr__


def trusted(model: type[F], /, **values: Any) -> F:
    """``model`` built from values the core computed itself: known valid and already of the
    types validation would give (floats, tuples, frozensets), so not validated again. Data
    from users, policies and adapters goes through the model itself.

    This is what ``model.model_construct(**values)`` does (it sets the same four slots)
    less its generality (aliases, defaults, extras, private attributes: the core's results
    have none). Every field is given, in the order the model declares them (checked: it is
    the JSON's order). The instances share their model's fields set: a frozen model never
    changes it in place (``model_copy`` copies it first), and an evaluation's many small
    results then leave the garbage collector one object fewer each to scan. Measured on
    15,000 workloads: the core takes 3.2 s so, 5.2 s with ``model_construct`` (most of the
    difference is the collector). ``tests/unit/test_trusted.py`` holds it to what
    validation builds (equality, hash, dumps, pickle, copies), so a pydantic release that
    moved these slots fails there, not in production.
    """
    if tuple(values) != _field_order(model):
        order = ", ".join(_field_order(model))
        raise TypeError(f"{model.__name__} takes every field, in this order: {order}")
    instance = model.__new__(model)
    _set(instance, "__dict__", values)
    _set(instance, "__pydantic_fields_set__", _shared_fields_set(model))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


@cache
def _shared_fields_set(model: type[Frozen]) -> set[str]:
    """The names of all of ``model``'s fields: one set per model, shared by its instances."""
    return set(model.model_fields)


@cache
def _field_order(model: type[Frozen]) -> tuple[str, ...]:
    """The model's fields in order, once it is known to be one ``trusted`` can build."""
    special = model.__private_attributes__ or model.__pydantic_post_init__
    if special or model.model_config.get("extra") == "allow":
        raise TypeError(f"{model.__name__} needs model_construct (private or extra fields)")
    return tuple(model.model_fields)


class WorkloadRef(Frozen):
    """A workload owner: the object whose pod template rightsizer would change."""

    kind: WorkloadKind
    namespace: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return self.key


class ContainerResources(Frozen):
    """A container's current requests and limits (absolute amounts per replica)."""

    name: str
    requests: dict[Resource, float] = Field(default_factory=dict)
    limits: dict[Resource, float] = Field(default_factory=dict)
    in_template: bool = True  # False for injected containers (e.g. service-mesh proxies)

    def reference_limit(self, resource: Resource) -> float | None:
        """What the container may use at most: its limit, else its request."""
        return self.limits.get(resource) or self.requests.get(resource)

    def reference(self, resource: Resource) -> tuple[float | None, str]:
        """What utilisation is measured against: the request, else the limit."""
        request = self.requests.get(resource)
        if request:
            return request, "request"
        limit = self.limits.get(resource)
        if limit:
            return limit, "limit"
        return None, "none"


class ResourceStats(Frozen):
    """One container's usage of one resource over the evaluation window (absolute units).

    ``values`` holds the statistics the policy asked for: "avg", "max", "p95", ...
    ``daily_peaks`` and ``daily_means`` are per calendar day of the window, oldest first.
    """

    values: dict[str, float] = Field(default_factory=dict)
    samples: int = 0
    history_days: float = 0.0
    daily_peaks: tuple[float, ...] = ()
    daily_means: tuple[float, ...] = ()

    def stat(self, name: str) -> float | None:
        return self.values.get(name)


class ContainerUsage(Frozen):
    """Measured facts about one container across all pods of its workload."""

    container: str
    resources: dict[Resource, ResourceStats] = Field(default_factory=dict)
    throttled_ratio: float | None = None
    oom_kills: int = 0
    oom_memory: float | None = None  # working set or limit at the last OOM kill
    fresh: bool = True  # a sample within the policy's staleAfter bound


class VolumeUsage(Frozen):
    """A PVC used by the workload: capacity and used bytes over the window."""

    claim: str
    capacity: float
    used: ResourceStats


class Workload(Frozen):
    """A workload as it is now: its kind, project, replicas and containers."""

    ref: WorkloadRef
    project: str | None = None
    replicas: float = 1.0
    containers: tuple[ContainerResources, ...] = ()
    hpa_resources: frozenset[Resource] = frozenset()
    vpa_resources: frozenset[Resource] = frozenset()  # a VerticalPodAutoscaler sizes these
    excluded: bool = False
    generation: int | None = None


class UsageSummary(Frozen):
    """What the metrics say about one workload over one window ending at ``end``."""

    ref: WorkloadRef
    end: datetime
    window_seconds: float
    containers: dict[str, ContainerUsage] = Field(default_factory=dict)
    volumes: tuple[VolumeUsage, ...] = ()
    duty_cycle: float = 1.0  # share of the window the workload ran (Jobs and CronJobs)
    pods: int = 0
    implausible: tuple[str, ...] = ()  # reasons the data cannot be trusted (negative, NaN, ...)
    # the largest node's allocatable, when the source knows it: no container can use more
    node_capacity: dict[Resource, float] = Field(default_factory=dict)
