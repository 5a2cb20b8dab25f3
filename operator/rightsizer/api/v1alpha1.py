"""The ``rightsizer.io/v1alpha1`` API objects: the one source of the CRD schemas.

``EfficiencyPolicy`` wraps the core's ``PolicySpec``; ``crds/`` is generated from these
models (``python -m rightsizer.api.crdgen``) and a test fails when the two drift.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    status: dict[str, Any] | None = None

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
