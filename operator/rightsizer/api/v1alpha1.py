"""The ``rightsizer.io/v1alpha1`` API objects: the one source of the CRD schemas.

``EfficiencyPolicy`` wraps the core's ``PolicySpec``; ``crds/`` is generated from these
models (``python -m rightsizer.api.crdgen``) and a test fails when the two drift.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from rightsizer.core.policy import NAME_PATTERN, PolicySpec

GROUP = "rightsizer.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class ObjectMeta(BaseModel):
    """The parts of metadata rightsizer reads; everything else is kept as it is."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=NAME_PATTERN)]
    generation: int | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class EfficiencyPolicy(BaseModel):
    """A cluster-scoped evaluation policy for one agency."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    api_version: Literal["rightsizer.io/v1alpha1"] = Field(
        "rightsizer.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["EfficiencyPolicy"] = "EfficiencyPolicy"
    metadata: ObjectMeta
    spec: PolicySpec
    status: PolicyStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name


class PolicyError(ValueError):
    """A policy that cannot be used, with every problem as 'field.path: reason'."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def field_path(location: tuple[int | str, ...]) -> str:
    """('spec', 'indicators', 2, 'weight') -> 'spec.indicators[2].weight'."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(root)"


def describe_errors(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        location = tuple(part for part in item["loc"] if not _is_union_branch(part))
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{field_path(location)}: {message}")
    return problems


def _is_union_branch(part: int | str) -> bool:
    return isinstance(part, str) and (part.startswith("function-") or "[" in part)


def parse_policy(document: Any, *, source: str = "policy") -> EfficiencyPolicy:
    """Validate one document; raise ``PolicyError`` listing every problem with its path."""
    if not isinstance(document, dict):
        raise PolicyError(
            source, ["(root): a policy must be a mapping (an EfficiencyPolicy object)"]
        )
    try:
        return EfficiencyPolicy.model_validate(document)
    except ValidationError as error:
        raise PolicyError(source, describe_errors(error)) from None


class ApiModel(BaseModel):
    """camelCase on the wire, like every Kubernetes object."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ApiModel):
    """A Kubernetes-style condition: Ready or Degraded, with a machine reason."""

    type: Annotated[str, Field(max_length=64)]
    status: ConditionStatus
    reason: Annotated[str, Field(max_length=64)]
    message: Annotated[str, Field(max_length=2048)] = ""
    last_transition_time: Annotated[str, Field(max_length=64)] | None = None
    observed_generation: int | None = None


class Totals(ApiModel):
    """Resources and money per month: proposed releases, additions, reclaimable, applied."""

    currency: Annotated[str, Field(max_length=8)] = "CNY"
    requested_cpu_cores: float = 0
    requested_memory_gib: float = 0
    released_cpu_cores: float = 0
    released_memory_gib: float = 0
    added_cpu_cores: float = 0
    added_memory_gib: float = 0
    reclaimable_cpu_cores: float = 0
    reclaimable_memory_gib: float = 0
    reclaimable_storage_gib: float = 0
    monthly_cost: Annotated[str, Field(max_length=32)] = "0"
    money_released: Annotated[str, Field(max_length=32)] = "0"
    money_reclaimable: Annotated[str, Field(max_length=32)] = "0"
    money_applied: Annotated[str, Field(max_length=32)] = "0"


class PolicyStatus(ApiModel):
    """What the last evaluation found; status is the lasting record, events are hints."""

    observed_generation: int | None = None
    conditions: Annotated[list[Condition], Field(max_length=8)] = []
    last_evaluation: Annotated[str, Field(max_length=64)] | None = None
    next_evaluation: Annotated[str, Field(max_length=64)] | None = None
    score: float | None = None
    grade: Annotated[str, Field(max_length=32)] | None = None
    workloads: int = 0
    by_grade: Annotated[dict[str, int], Field(max_length=16)] = {}
    by_action: Annotated[dict[str, int], Field(max_length=16)] = {}
    by_outcome: Annotated[dict[str, int], Field(max_length=16)] = {}
    changes_applied: int = 0
    changes_skipped: Annotated[dict[str, int], Field(max_length=32)] = {}
    totals: Totals | None = None
    report: Annotated[str, Field(max_length=253)] | None = None
    summary: Annotated[str, Field(max_length=256)] | None = None  # for the printer column


class ProjectLine(ApiModel):
    name: Annotated[str, Field(max_length=253)]
    score: float | None = None
    grade: Annotated[str, Field(max_length=32)] | None = None
    workloads: int = 0
    by_grade: Annotated[dict[str, int], Field(max_length=16)] = {}
    released_cpu_cores: float = 0
    released_memory_gib: float = 0
    money_released: Annotated[str, Field(max_length=32)] = "0"


class WorkloadLine(ApiModel):
    workload: Annotated[str, Field(max_length=512)]  # Kind/namespace/name
    project: Annotated[str, Field(max_length=253)] | None = None
    score: float | None = None
    grade: Annotated[str, Field(max_length=32)] | None = None
    action: Annotated[str, Field(max_length=16)]
    reason: Annotated[str, Field(max_length=512)] = ""
    money_released: Annotated[str, Field(max_length=32)] = "0"


class ReportSpec(ApiModel):
    """One policy's self-evaluation for one period (a calendar quarter in Asia/Shanghai)."""

    policy: Annotated[str, Field(max_length=253)]
    agency: Annotated[str, Field(max_length=63)]
    display_name: Annotated[str, Field(max_length=128)] | None = None
    period: Annotated[str, Field(max_length=16)]  # e.g. 2026-q4
    window: Annotated[str, Field(max_length=8)]
    evaluated_at: Annotated[str, Field(max_length=64)]
    evaluations: int = 1
    score: float | None = None
    grade: Annotated[str, Field(max_length=32)] | None = None
    workloads: int = 0
    by_grade: Annotated[dict[str, int], Field(max_length=16)] = {}
    by_action: Annotated[dict[str, int], Field(max_length=16)] = {}
    projects: Annotated[list[ProjectLine], Field(max_length=200)] = []
    top_offenders: Annotated[list[WorkloadLine], Field(max_length=20)] = []
    proposed_changes: Annotated[list[WorkloadLine], Field(max_length=50)] = []
    proposed_change_count: int = 0
    applied_change_count: int = 0
    totals: Totals = Totals()


class EfficiencyReport(BaseModel):
    """A namespaced-by-nothing (cluster-scoped) report object: ``<policy>-<period>``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    api_version: Literal["rightsizer.io/v1alpha1"] = Field(
        "rightsizer.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["EfficiencyReport"] = "EfficiencyReport"
    metadata: ObjectMeta
    spec: ReportSpec
