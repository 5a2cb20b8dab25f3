"""The evaluation policy: what an agency measures, how it grades, when and how it resizes.

This model is the single source of the ``EfficiencyPolicy`` spec: the CRD schema in
``crds/`` is generated from it and ``rightsizer validate`` checks files with it. Field
names are camelCase on the wire. Every value has a documented default
(``policies/default.yaml`` states every one); no threshold, weight, band, window or price
lives in code.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from rightsizer.core.model import Resource
from rightsizer.core.schedule import parse_cron
from rightsizer.core.units import parse_quantity

DAY = 86400.0
# ASCII digits only, as the CRD's pattern in the API server (Go's \d); found by fuzzing
_DURATION = re.compile(r"^(\d{1,5})(s|m|h|d|w)$", re.ASCII)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
STAT_PATTERN = r"^(avg|max|p[1-9][0-9]?)$"
_CHANGE_WINDOW = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)(?:-(Mon|Tue|Wed|Thu|Fri|Sat|Sun))? "
    r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$"
)
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
LABEL_KEY_PATTERN = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"


@lru_cache(maxsize=256)
def duration_seconds(text: str) -> float:
    """'14d' -> 1209600.0. Units: s, m, h, d, w. (Cached: the same few durations are read
    for every workload; only valid ones, a few characters long, are kept.)"""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (expected e.g. '30m', '24h', '14d', '2w')")
    return float(int(match.group(1)) * _DURATION_UNITS[match.group(2)])


def _check_duration(text: str) -> str:
    duration_seconds(text)
    return text


def _check_quantity(value: Any) -> str:
    """A quantity as the CRD's int-or-string takes it: a whole number or a string (the API
    server refuses a fraction such as 0.5 or even 2.0: '500m' and '2' say the same)."""
    if isinstance(value, float):
        raise ValueError(
            f"{value} is not a quantity the API server takes: a quantity must be a whole "
            "number or a string such as '500m' or '512Mi'"
        )
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("a quantity must be a number or a string such as '250m' or '512Mi'")
    parse_quantity(value)
    return str(value)


def _check_schedule(text: str) -> str:
    parse_cron(text)
    return text


def _check_change_window(text: str) -> str:
    match = _CHANGE_WINDOW.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a change window (expected e.g. 'Sat 00:00-06:00')")
    start = int(match.group(3)) * 60 + int(match.group(4))
    end = int(match.group(5)) * 60 + int(match.group(6))
    if end <= start:
        raise ValueError(f"{text!r}: the window must end after it starts")
    return text


Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    WithJsonSchema({"type": "string", "pattern": _DURATION.pattern, "maxLength": 8}),
]
Quantity = Annotated[
    str,
    BeforeValidator(_check_quantity),
    WithJsonSchema({"x-kubernetes-int-or-string": True, "maxLength": 32}),
]


def json_number(value: Decimal) -> int | float:
    """A decimal as the JSON number policies give it as (a whole number as an integer).
    Pydantic would write text, which a policy refuses as a number and the CRD's schema types
    as a number: a dumped policy must read back."""
    return int(value) if value == value.to_integral_value() else float(value)


AsJsonNumber = PlainSerializer(json_number, when_used="json")
Money = Annotated[
    Decimal,
    Field(ge=0, le=Decimal("1e9")),
    AsJsonNumber,
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1e9}),
]
Fraction = Annotated[float, Field(ge=0, le=1)]
Stat = Annotated[str, Field(pattern=STAT_PATTERN, max_length=4)]
ChangeWindow = Annotated[
    str,
    AfterValidator(_check_change_window),
    WithJsonSchema({"type": "string", "maxLength": 24}),
]


_NUMBERS = (int, float, Decimal)


def _is_number(annotation: Any) -> bool:
    """int, float or Decimal, optional or annotated."""
    return _is_one_of(annotation, _NUMBERS)


def _is_one_of(annotation: Any, kinds: frozenset[Any] | tuple[Any, ...]) -> bool:
    """Whether ``annotation`` (optional or annotated) is one of ``kinds``."""
    if get_origin(annotation) is Annotated:
        return _is_one_of(get_args(annotation)[0], kinds)
    if get_origin(annotation) in (Union, UnionType):
        return any(_is_one_of(a, kinds) for a in get_args(annotation) if a is not type(None))
    return annotation in kinds


class PolicyModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """YAML's true is not 1, nor "45" 45, nor "yes" true: a number field refuses booleans
        and strings and a boolean field anything but a boolean, as the API server does
        (pydantic alone would convert them; found by fuzzing against the API server)."""
        field = cls.model_fields.get(info.field_name or "")
        if field is None:
            return value
        if _is_one_of(field.annotation, (bool,)):
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"must be true or false, not {value!r}")
            return value
        if not _is_number(field.annotation):
            return value
        if isinstance(value, bool):
            raise ValueError("must be a number, not true or false")
        if isinstance(value, str):
            raise ValueError(f"must be a number, not the text {value!r}")
        return value


class LabelSelectorRequirement(PolicyModel):
    key: Annotated[str, Field(max_length=317, pattern=LABEL_KEY_PATTERN)]
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: Annotated[list[Annotated[str, Field(max_length=63)]], Field(max_length=64)] = []

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelector(PolicyModel):
    match_labels: Annotated[
        dict[str, Annotated[str, Field(max_length=63)]], Field(max_length=32)
    ] = {}
    match_expressions: Annotated[list[LabelSelectorRequirement], Field(max_length=32)] = []

    def matches(self, labels: dict[str, str]) -> bool:
        if any(labels.get(key) != value for key, value in self.match_labels.items()):
            return False
        return all(_requirement_holds(req, labels) for req in self.match_expressions)


def _requirement_holds(requirement: LabelSelectorRequirement, labels: dict[str, str]) -> bool:
    present = requirement.key in labels
    if requirement.operator == "Exists":
        return present
    if requirement.operator == "DoesNotExist":
        return not present
    inside = present and labels[requirement.key] in requirement.values
    return inside if requirement.operator == "In" else not inside


class Band(PolicyModel):
    """Utilisation at or above ``min`` (a fraction: 0.6 = 60%) earns ``score``."""

    min: Annotated[float, Field(ge=0, le=10)]
    score: Annotated[float, Field(ge=0, le=100)]


class Indicator(PolicyModel):
    """A second-level indicator: one statistic of one resource's utilisation, scored by bands."""

    name: Annotated[str, Field(max_length=63, pattern=NAME_PATTERN)]
    resource: Resource
    stat: Stat = "avg"
    weight: Annotated[float, Field(ge=0, le=100)]
    bands: Annotated[list[Band], Field(min_length=1, max_length=20)]

    @model_validator(mode="after")
    def _bands_are_a_hill(self) -> Indicator:
        mins = [band.min for band in self.bands]
        if len(set(mins)) != len(mins):
            raise ValueError("bands: two bands have the same min")
        ordered = sorted(self.bands, key=lambda band: band.min)
        if ordered[0].min != 0:
            raise ValueError("bands: one band must start at min 0 so every utilisation scores")
        scores = [band.score for band in ordered]
        peak = scores.index(max(scores))
        rising, falling = scores[: peak + 1], scores[peak:]
        if rising != sorted(rising) or falling != sorted(falling, reverse=True):
            raise ValueError(
                "bands: scores must rise with utilisation up to the best band and fall above it"
            )
        return self


class Grade(PolicyModel):
    """A total score at or above ``min`` earns this grade (names are the agency's own)."""

    name: Annotated[str, Field(min_length=1, max_length=32)]
    min: Annotated[float, Field(ge=0, le=100)]


class Condition(PolicyModel):
    """Either a utilisation condition (resource, stat, op, value) or a signal.

    Signals: ``oomKilled`` (any OOM kill in the window), ``cpuThrottled`` (throttled share
    of CFS periods above ``value``), ``idleFor`` (daily mean CPU utilisation below ``value``
    for the trailing ``duration``).
    """

    resource: Resource | None = None
    stat: Stat | None = None
    op: Literal["<", "<=", ">", ">="] | None = None
    value: Annotated[float, Field(ge=0, le=100)] | None = None
    signal: Literal["oomKilled", "cpuThrottled", "idleFor"] | None = None
    duration: Duration | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        if self.signal is None:
            missing = [n for n in ("resource", "stat", "op", "value") if getattr(self, n) is None]
            if missing:
                raise ValueError(
                    "a utilisation condition needs resource, stat, op and value "
                    f"(missing: {', '.join(missing)}); or give a signal"
                )
            return self
        if self.resource is not None or self.stat is not None or self.op is not None:
            raise ValueError("a signal condition takes no resource, stat or op")
        if self.signal in ("cpuThrottled", "idleFor") and self.value is None:
            raise ValueError(f"signal {self.signal} needs a value (a fraction, e.g. 0.25)")
        if self.signal == "idleFor" and self.duration is None:
            raise ValueError("signal idleFor needs a duration (e.g. '14d')")
        return self

    def resources(self) -> tuple[Resource, ...]:
        if self.resource is not None:
            return (self.resource,)
        signal_resources: dict[str, tuple[Resource, ...]] = {
            "oomKilled": ("memory",),
            "cpuThrottled": ("cpu",),
        }
        return signal_resources.get(self.signal or "", ("cpu", "memory"))


Action = Literal["downsize", "upsize", "reclaim"]


class Rule(PolicyModel):
    """Over the window, when the conditions hold, propose ``action`` for ``resources``."""

    name: Annotated[str, Field(max_length=63, pattern=NAME_PATTERN)]
    action: Action
    all: Annotated[list[Condition], Field(max_length=16)] = []
    any: Annotated[list[Condition], Field(max_length=16)] = []
    resources: Annotated[list[Literal["cpu", "memory"]], Field(max_length=2)] = []

    @model_validator(mode="after")
    def _has_conditions(self) -> Rule:
        if not self.all and not self.any:
            raise ValueError("a rule needs at least one condition under 'all' or 'any'")
        return self

    def target_resources(self) -> tuple[Resource, ...]:
        """Which resources the action adjusts: explicit, else the ones its conditions name."""
        if self.resources:
            return tuple(self.resources)
        named: list[Resource] = []
        for condition in [*self.all, *self.any]:
            named.extend(r for r in condition.resources() if r not in named)
        return tuple(r for r in named if r in ("cpu", "memory")) or ("cpu", "memory")


class ResourceRecommendationPolicy(PolicyModel):
    """How a target is estimated for one resource: stat -> trend -> headroom -> clamp."""

    stat: Stat
    headroom: Annotated[float, Field(ge=0, le=10)]
    min: Quantity
    max: Quantity
    trend: bool = False  # extrapolate daily peaks over the next evaluation interval

    @model_validator(mode="after")
    def _min_below_max(self) -> ResourceRecommendationPolicy:
        if parse_quantity(self.min) > parse_quantity(self.max):
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


def _default_cpu_recommendation() -> ResourceRecommendationPolicy:
    # tuned with the backtest (README, Backtest); 10% keeps a resized workload's p95 under
    # the default hot-upsize rule's 90%
    return ResourceRecommendationPolicy(stat="p95", headroom=0.10, min="10m", max="16")


def _default_memory_recommendation() -> ResourceRecommendationPolicy:
    return ResourceRecommendationPolicy(
        stat="max", headroom=0.10, min="64Mi", max="64Gi", trend=True
    )


class RecommendationPolicy(PolicyModel):
    cpu: ResourceRecommendationPolicy = Field(default_factory=_default_cpu_recommendation)
    memory: ResourceRecommendationPolicy = Field(default_factory=_default_memory_recommendation)
    max_step_down: Annotated[float, Field(ge=0, le=1)] = 0.5
    max_step_up: Annotated[float, Field(ge=0, le=100)] = 1.0
    min_change: Annotated[float, Field(ge=0, le=1)] = 0.10
    limits: Literal["keepRatio", "equalRequests", "unset"] = "keepRatio"
    confidence: Annotated[float, Field(ge=0, le=10)] = 0.5
    trend_horizon: Duration = "7d"
    oom_bump: Annotated[float, Field(ge=1, le=10)] = 1.2
    throttled_floor: Fraction = 0.10

    def for_resource(self, resource: Resource) -> ResourceRecommendationPolicy:
        return self.cpu if resource == "cpu" else self.memory


class SafetyPolicy(PolicyModel):
    notice_evaluations: Annotated[int, Field(ge=1, le=52)] = 2
    cooldown: Duration = "24h"
    max_changes_per_evaluation: Annotated[int, Field(ge=0, le=10000)] = 20
    # replicas restarted by the changes of one evaluation (a workload counts its replicas)
    max_replicas_changed_per_evaluation: Annotated[int, Field(ge=0, le=100000)] = 200
    # workloads changed within the trailing budgetWindow (counted from their state annotations)
    max_changes_per_window: Annotated[int, Field(ge=0, le=100000)] = 50
    budget_window: Duration = "24h"
    change_windows: Annotated[list[ChangeWindow], Field(max_length=14)] = []
    timezone: Annotated[str, Field(pattern=r"^[+-](0[0-9]|1[0-4]):[0-5][0-9]$")] = "+08:00"
    hpa: Literal["recommendOnly", "ignore"] = "recommendOnly"
    allow_single_replica: bool = True
    in_place_resize: bool = False
    max_tries: Annotated[int, Field(ge=1, le=20)] = 3


class PriceCatalogue(PolicyModel):
    """Monthly list prices per unit (a month is 730 hours) and the tender discount."""

    currency: Annotated[str, Field(max_length=8)] = "CNY"
    cpu_core_month: Money = Decimal("45")
    memory_gib_month: Annotated[Money, Field(alias="memoryGiBMonth")] = Decimal("12")
    storage_gib_month: Annotated[Money, Field(alias="storageGiBMonth")] = Decimal("0.35")
    gpu_month: Money = Decimal("3000")
    discount: Annotated[
        Decimal,
        Field(gt=0, le=1),
        AsJsonNumber,
        WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1}),
    ] = Decimal("1")


def _band(min_: float, score: float) -> Band:
    return Band(min=min_, score=score)


def default_indicators() -> list[Indicator]:
    """Wenzhou-style second-level indicators; weights add up to 100 (documented defaults)."""
    average = [
        _band(0, 0),
        _band(0.05, 20),
        _band(0.1, 40),
        _band(0.2, 60),
        _band(0.4, 80),
        _band(0.5, 100),
        _band(0.8, 80),
        _band(0.9, 60),
    ]
    peak = [
        _band(0, 0),
        _band(0.1, 30),
        _band(0.3, 60),
        _band(0.5, 80),
        _band(0.7, 100),
        _band(0.9, 70),
        _band(0.97, 40),
    ]
    return [
        Indicator(name="cpu-average", resource="cpu", stat="avg", weight=25, bands=average),
        Indicator(name="cpu-p95", resource="cpu", stat="p95", weight=15, bands=peak),
        Indicator(name="memory-average", resource="memory", stat="avg", weight=25, bands=average),
        Indicator(name="memory-peak", resource="memory", stat="max", weight=15, bands=peak),
        Indicator(name="storage-used", resource="storage", stat="max", weight=10, bands=average),
        Indicator(name="gpu-average", resource="gpu", stat="avg", weight=10, bands=average),
    ]


def default_grades() -> list[Grade]:
    """The Ministry of Finance performance bands (财预〔2020〕10号)."""
    return [
        Grade(name="优", min=90),
        Grade(name="良", min=80),
        Grade(name="中", min=60),
        Grade(name="差", min=0),
    ]


def _util(resource: Resource, stat: str, op: Any, value: float) -> Condition:
    return Condition(resource=resource, stat=stat, op=op, value=value)


def default_rules() -> list[Rule]:
    return [
        Rule(name="oom-upsize", action="upsize", any=[Condition(signal="oomKilled")]),
        Rule(
            name="hot-upsize",
            action="upsize",
            any=[_util("cpu", "p95", ">", 0.9), _util("memory", "max", ">", 0.9)],
        ),
        Rule(
            name="throttled-upsize",
            action="upsize",
            any=[Condition(signal="cpuThrottled", value=0.25)],
        ),
        Rule(
            name="zombie",
            action="reclaim",
            all=[_util("cpu", "max", "<", 0.02), _util("memory", "max", "<", 0.1)],
        ),
        Rule(
            name="cpu-downsize",
            action="downsize",
            all=[_util("cpu", "avg", "<", 0.2), _util("cpu", "p95", "<", 0.5)],
        ),
        Rule(
            name="memory-downsize",
            action="downsize",
            all=[_util("memory", "avg", "<", 0.2), _util("memory", "max", "<", 0.5)],
        ),
    ]


class PolicySpec(PolicyModel):
    """The spec of an EfficiencyPolicy: one agency's evaluation policy."""

    agency: Annotated[str, Field(min_length=1, max_length=63, pattern=NAME_PATTERN)]
    display_name: Annotated[str, Field(max_length=128)] | None = None
    namespace_selector: LabelSelector | None = None
    namespaces: Annotated[
        list[Annotated[str, Field(max_length=63, pattern=NAME_PATTERN)]], Field(max_length=1000)
    ] = []
    project_label: Annotated[str, Field(max_length=317, pattern=LABEL_KEY_PATTERN)] = (
        "app.kubernetes.io/part-of"
    )
    window: Duration = "14d"
    min_history: Duration = "7d"
    min_job_samples: Annotated[int, Field(ge=1, le=100000)] = 12
    stale_after: Duration = "1h"
    # usage above this multiple of the largest node's allocatable is a measuring error
    implausible_above_node: Annotated[float, Field(ge=1, le=100)] = 1.0
    schedule: Annotated[str, Field(max_length=64), AfterValidator(_check_schedule)] = "0 2 * * 1"
    mode: Literal["recommend", "apply"] = "recommend"
    resources: Annotated[list[Resource], Field(max_length=4)] = ["cpu", "memory", "storage", "gpu"]
    indicators: Annotated[list[Indicator], Field(min_length=1, max_length=32)] = Field(
        default_factory=default_indicators
    )
    grades: Annotated[list[Grade], Field(min_length=1, max_length=10)] = Field(
        default_factory=default_grades
    )
    rules: Annotated[list[Rule], Field(max_length=32)] = Field(default_factory=default_rules)
    recommendation: RecommendationPolicy = Field(default_factory=RecommendationPolicy)
    safety: SafetyPolicy = Field(default_factory=SafetyPolicy)
    prices: PriceCatalogue = Field(default_factory=PriceCatalogue)
    report_language: Literal["en", "zh"] = "en"

    @model_validator(mode="after")
    def _consistent(self) -> PolicySpec:
        if self.namespace_selector is None and not self.namespaces:
            raise ValueError(
                "give namespaceSelector or namespaces: which namespaces are the agency"
            )
        _check_names_unique("indicators", [i.name for i in self.indicators])
        _check_names_unique("grades", [g.name for g in self.grades])
        _check_names_unique("rules", [r.name for r in self.rules])
        total = sum(i.weight for i in self.indicators)
        if abs(total - 100) > 1e-6:
            raise ValueError(f"indicators: weights must add up to 100 (they add up to {total:g})")
        if not any(g.min == 0 for g in self.grades):
            raise ValueError("grades: one grade must start at min 0 so every score has a grade")
        if duration_seconds(self.min_history) > duration_seconds(self.window):
            raise ValueError(
                f"minHistory ({self.min_history}) is longer than window ({self.window})"
            )
        for rule in self.rules:
            for condition in [*rule.all, *rule.any]:
                if (
                    condition.duration
                    and duration_seconds(condition.duration) > self.window_seconds
                ):
                    raise ValueError(
                        f"rules: {rule.name}: idleFor {condition.duration} is longer than "
                        f"window {self.window}"
                    )
        return self

    @property
    def window_seconds(self) -> float:
        return duration_seconds(self.window)

    def required_stats(self) -> dict[Resource, set[str]]:
        """Every statistic any indicator, rule or estimator reads, per resource."""
        needed: dict[Resource, set[str]] = {r: {"avg", "max"} for r in self.resources}
        for indicator in self.indicators:
            needed.setdefault(indicator.resource, {"avg", "max"}).add(indicator.stat)
        for rule in self.rules:
            for condition in [*rule.all, *rule.any]:
                if condition.resource and condition.stat:
                    needed.setdefault(condition.resource, {"avg", "max"}).add(condition.stat)
        for resource in ("cpu", "memory"):
            needed.setdefault(resource, {"avg", "max"}).add(
                self.recommendation.for_resource(resource).stat
            )
        return needed


def _check_names_unique(field: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{field}: the name {name!r} is used twice")
        seen.add(name)
