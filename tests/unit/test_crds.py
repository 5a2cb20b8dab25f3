"""The CRDs in crds/ (and the chart's copy): generated from the API models, structural,
and agreeing with the models on what a valid policy is.

The JSON-schema view below reads an openAPIV3Schema the way kube-apiserver does with
strict field validation (kubectl's default): ``nullable``, int-or-string and unknown
fields included. CEL rules (``x-kubernetes-validations``) are not evaluated here; they were
checked against a real kube-apiserver 1.34, and this file checks that every field a rule
names exists.
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, Field, WithJsonSchema

from rightsizer.api import crdgen
from rightsizer.api.v1alpha1 import (
    Condition,
    EfficiencyReport,
    ObjectMeta,
    PolicyError,
    PolicyStatus,
    ProjectLine,
    ReportSpec,
    Totals,
    WorkloadLine,
    parse_policy,
)

REPO = Path(__file__).resolve().parents[2]
CRD_DIRS = (REPO / "crds", REPO / "charts" / "rightsizer" / "crds")
REGENERATE = "python -m rightsizer.api.crdgen crds charts/rightsizer/crds"
POLICY_FILES = sorted((REPO / "policies").glob("*.yaml"))


def load_crd(filename: str) -> dict[str, Any]:
    document = yaml.safe_load((REPO / "crds" / filename).read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def schema_of(filename: str) -> dict[str, Any]:
    (version,) = load_crd(filename)["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


POLICY_CRD = "efficiencypolicies.yaml"
REPORT_CRD = "efficiencyreports.yaml"


# --- drift ---------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", CRD_DIRS, ids=lambda p: str(p.relative_to(REPO)))
def test_committed_crds_equal_a_fresh_generation(folder: Path) -> None:
    generated = crdgen.generate()
    present = sorted(p.name for p in folder.glob("*.yaml"))
    assert present == sorted(generated), (
        f"{folder.relative_to(REPO)} holds {present}, the models give {sorted(generated)}; "
        f"regenerate with: {REGENERATE}"
    )
    for filename, text in generated.items():
        committed = (folder / filename).read_text(encoding="utf-8")
        assert committed == text, (
            f"{folder.relative_to(REPO) / filename} differs from the API models; "
            f"regenerate with: {REGENERATE}"
        )


def test_generation_is_deterministic() -> None:
    assert crdgen.generate() == crdgen.generate()


def test_main_writes_every_crd(tmp_path: Path) -> None:
    assert crdgen.main([str(tmp_path)]) == 0
    for filename, text in crdgen.generate().items():
        written = (tmp_path / filename).read_text(encoding="utf-8")
        assert written == text
        assert written.startswith(crdgen.HEADER)
        assert "do not edit" in written.splitlines()[0]


# --- structural ----------------------------------------------------------------------------


def schema_nodes(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node: properties, items, additionalProperties (and anything odd)."""
    found = [(path, node)]
    for name, child in node.get("properties", {}).items():
        found += schema_nodes(child, f"{path}.{name}")
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            found += schema_nodes(node[key], f"{path}[{key}]")
    for key in ("anyOf", "allOf", "oneOf"):
        for index, child in enumerate(node.get(key, [])):
            found += schema_nodes(child, f"{path}<{key}{index}>")
    return found


def all_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for child in value.values() for k in all_keys(child)}
    if isinstance(value, list):
        return {k for child in value for k in all_keys(child)}
    return set()


@pytest.mark.parametrize("filename", [POLICY_CRD, REPORT_CRD])
def test_schema_is_structural(filename: str) -> None:
    schema = schema_of(filename)
    assert not {"$ref", "$defs", "const", "title", "oneOf", "allOf"} & all_keys(schema)
    problems = []
    for path, node in schema_nodes(schema):
        where = path or "(root)"
        if any(b == {"type": "null"} for b in node.get("anyOf", [])):
            problems.append(f"{where}: anyOf with null")
        if "anyOf" in node:
            problems.append(f"{where}: anyOf")
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            if key in node and not isinstance(node[key], bool):
                problems.append(f"{where}: {key} must be a boolean in OpenAPI 3.0")
        if node.get("additionalProperties") is False:
            problems.append(f"{where}: additionalProperties false")
        if node.get("x-kubernetes-int-or-string"):
            if "type" in node:
                problems.append(f"{where}: int-or-string with a type")
        elif not node.get("x-kubernetes-preserve-unknown-fields") and "type" not in node:
            problems.append(f"{where}: no type")
        kind = node.get("type")
        if kind == "array":
            if "items" not in node:
                problems.append(f"{where}: an array without items")
            if "maxItems" not in node:
                problems.append(f"{where}: an array without maxItems")
        if kind == "string" and "maxLength" not in node and path not in (".apiVersion", ".kind"):
            problems.append(f"{where}: a string without maxLength")
        if isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
            problems.append(f"{where}: a map without maxProperties")
        if "default" in node:
            problems += default_problems(where, node)
    assert not problems, "\n".join(problems)
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert schema["properties"]["apiVersion"]["type"] == "string"
    assert schema["properties"]["kind"]["type"] == "string"
    assert not schema_of(POLICY_CRD)["properties"]["status"].get(
        "x-kubernetes-preserve-unknown-fields"
    ), "a precise status schema: kopf keeps its state in annotations"


def default_problems(where: str, node: dict[str, Any]) -> list[str]:
    value = node["default"]
    expected: dict[str, type | tuple[type, ...]] = {
        "number": (int, float),
        "integer": int,
        "string": str,
        "boolean": bool,
        "object": dict,
        "array": list,
    }
    kind = node.get("type")
    if value is None:
        return [f"{where}: a null default"]
    if kind in expected and (
        not isinstance(value, expected[kind]) or (kind != "boolean" and isinstance(value, bool))
    ):
        return [f"{where}: default {value!r} is not a JSON {kind}"]
    return []


def test_decimal_defaults_are_numbers() -> None:
    prices = schema_of(POLICY_CRD)["properties"]["spec"]["properties"]["prices"]["properties"]
    assert prices["cpuCoreMonth"]["default"] == 45
    assert prices["storageGiBMonth"]["default"] == 0.35
    assert prices["discount"]["default"] == 1


def test_quantities_are_int_or_string() -> None:
    spec = schema_of(POLICY_CRD)["properties"]["spec"]["properties"]
    for resource in ("cpu", "memory"):
        for bound in ("min", "max"):
            node = spec["recommendation"]["properties"][resource]["properties"][bound]
            assert node["x-kubernetes-int-or-string"] is True
            assert "type" not in node
            assert node["maxLength"] == 32


# --- the CRD objects -------------------------------------------------------------------------


def test_policy_crd_names_scope_and_columns() -> None:
    crd = load_crd(POLICY_CRD)
    assert crd["metadata"]["name"] == "efficiencypolicies.rightsizer.io"
    spec = crd["spec"]
    assert spec["group"] == "rightsizer.io"
    assert spec["scope"] == "Cluster"
    assert spec["names"] == {
        "kind": "EfficiencyPolicy",
        "listKind": "EfficiencyPolicyList",
        "plural": "efficiencypolicies",
        "singular": "efficiencypolicy",
        "shortNames": ["effpol"],
        "categories": ["rightsizer"],
    }
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: (c["jsonPath"], c["type"]) for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Agency": (".spec.agency", "string"),
        "Mode": (".spec.mode", "string"),
        "Grade": (".status.grade", "string"),
        "Score": (".status.score", "number"),
        "Workloads": (".status.workloads", "integer"),
        "Savings": (".status.totals.moneyReleased", "string"),
        "Ready": ('.status.conditions[?(@.type=="Ready")].status', "string"),
        "Last-Evaluation": (".status.lastEvaluation", "date"),
        "Age": (".metadata.creationTimestamp", "date"),
    }


def test_report_crd_names_scope_and_columns() -> None:
    crd = load_crd(REPORT_CRD)
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "efficiencyreports.rightsizer.io"
    assert spec["scope"] == "Cluster"
    assert spec["names"]["kind"] == "EfficiencyReport"
    assert spec["names"]["listKind"] == "EfficiencyReportList"
    assert spec["names"]["shortNames"] == ["effrep"]
    assert spec["names"]["categories"] == ["rightsizer"]
    (version,) = spec["versions"]
    assert "subresources" not in version, "reports are written in spec; no status"
    assert "status" not in version["schema"]["openAPIV3Schema"]["properties"]
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names == ["Policy", "Agency", "Period", "Grade", "Score", "Workloads", "Released", "Age"]


def resolve_column(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in re.sub(r"\[\?\(.*?\)\]", ".[]", json_path).strip(".").split("."):
        if node is None:
            return None
        if part == "[]":
            node = node.get("items")
        elif part == "metadata":
            return {"type": "object"}
        else:
            node = node.get("properties", {}).get(part)
    return node


@pytest.mark.parametrize("filename", [POLICY_CRD, REPORT_CRD])
def test_printer_columns_point_at_fields(filename: str) -> None:
    (version,) = load_crd(filename)["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]
    for column in version["additionalPrinterColumns"]:
        assert resolve_column(schema, column["jsonPath"]) is not None, column


# --- CEL rules -------------------------------------------------------------------------------


def cel_rules(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        (path, node, rule)
        for path, node in schema_nodes(schema)
        for rule in node.get("x-kubernetes-validations", [])
    ]


def test_cel_rules_name_existing_fields() -> None:
    rules = cel_rules(schema_of(POLICY_CRD))
    assert len(rules) >= 10
    for path, node, rule in rules:
        fields = set(re.findall(r"\bself\.(\w+)\b(?!\()", rule["rule"]))  # not methods
        assert fields <= set(node.get("properties", {})), (path, rule["rule"])
        assert rule["message"]
        if "fieldPath" in rule:
            assert rule["fieldPath"].lstrip(".") in node["properties"], (path, rule)


def test_cel_rules_cover_what_the_schema_cannot_say() -> None:
    by_path: dict[str, list[str]] = {}
    for path, _node, validation in cel_rules(schema_of(POLICY_CRD)):
        by_path.setdefault(path, []).append(validation["rule"])
    spec = " ".join(by_path[".spec"])
    assert (
        "has(self.namespaceSelector) || (has(self.namespaces) && size(self.namespaces) > 0)" in spec
    )
    for resource in ("cpu", "memory"):
        (rule,) = by_path[f".spec.recommendation.{resource}"]
        assert "quantity(string(self.min)).compareTo(quantity(string(self.max))) <= 0" in rule
        for bound in ("min", "max"):
            assert "isQuantity" in by_path[f".spec.recommendation.{resource}.{bound}"][0]
    for kind in ("all", "any"):
        assert len(by_path[f".spec.rules[items].{kind}[items]"]) == 3


def test_named_lists_are_maps_keyed_by_name() -> None:
    spec = schema_of(POLICY_CRD)["properties"]["spec"]["properties"]
    for name in ("indicators", "grades", "rules"):
        assert spec[name]["x-kubernetes-list-type"] == "map"
        assert spec[name]["x-kubernetes-list-map-keys"] == ["name"]
        assert "name" in spec[name]["items"]["required"]


# --- the JSON-schema view agrees with the models ---------------------------------------------


def json_schema_view(node: dict[str, Any]) -> dict[str, Any]:
    """An openAPIV3Schema as a Draft 4 JSON schema, read as kube-apiserver reads it."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "description", "default"):
            continue
        if key == "properties":
            out[key] = {name: json_schema_view(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = json_schema_view(value)
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if "properties" in node and "additionalProperties" not in node:
        out["additionalProperties"] = False  # strict field validation: unknown fields fail
    if node.get("nullable"):
        out["type"] = [*([out["type"]] if isinstance(out["type"], str) else out["type"]), "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def validator(filename: str) -> jsonschema.Draft4Validator:
    view = json_schema_view(schema_of(filename))
    jsonschema.Draft4Validator.check_schema(view)
    return jsonschema.Draft4Validator(view)


def errors(filename: str, document: Any) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(filename).iter_errors(document)
    ]


def load_policy(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_there_are_shipped_policies() -> None:
    assert len(POLICY_FILES) >= 3


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_shipped_policies_validate_against_the_crd(path: Path) -> None:
    document = load_policy(path)
    parse_policy(document, source=path.name)  # the model accepts it ...
    assert errors(POLICY_CRD, document) == []  # ... and so does the CRD


def _set(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    node: Any = changed
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return changed


BAD_POLICIES = {
    "wrong enum (mode)": ("spec.mode", "gitops"),
    "wrong enum (rule action)": ("spec.rules.0.action", "delete"),
    "string too long": ("spec.displayName", "x" * 200),
    "unknown resource": ("spec.resources", ["cpu", "disk"]),
    "unknown indicator resource": ("spec.indicators.0.resource", "network"),
    "unknown field": ("spec.recommendation.cpu.percentile", 95),
    "not a duration": ("spec.window", "2 wk"),
    "weight above 100": ("spec.indicators.0.weight", 150),
    "not a statistic": ("spec.indicators.0.stat", "p100"),
    "quantity of the wrong type": ("spec.recommendation.cpu.min", True),
    "too many namespaces": ("spec.namespaces", [f"ns-{i}" for i in range(1001)]),
    "bad agency name": ("spec.agency", "Finance Bureau"),
}


@pytest.mark.parametrize("change", BAD_POLICIES.values(), ids=list(BAD_POLICIES))
def test_crd_rejects_what_the_model_rejects(change: tuple[str, Any]) -> None:
    path, value = change
    document = _set(load_policy(REPO / "policies" / "default.yaml"), path, value)
    with pytest.raises(PolicyError):
        parse_policy(document)
    assert errors(POLICY_CRD, document), f"the CRD accepts {path}={value!r}"


def sample_status() -> PolicyStatus:
    return PolicyStatus(
        observed_generation=3,
        conditions=[
            Condition(type="Ready", status="True", reason="Evaluated", message="ok"),
            Condition(type="Degraded", status="False", reason="AsExpected"),
        ],
        last_evaluation="2026-11-23T02:00:00+08:00",
        score=81.5,
        grade="良",
        workloads=12,
        by_grade={"优": 3, "良": 9},
        by_action={"downsize": 4},
        changes_skipped={"cooldown": 1},
        totals=Totals(released_cpu_cores=2.5, money_released="112.50"),
        report="default-2026-q4",
    )


def sample_report() -> EfficiencyReport:
    line = WorkloadLine(workload="Deployment/fin-prod/web", project="tax", action="downsize")
    return EfficiencyReport(
        metadata=ObjectMeta(name="default-2026-q4"),
        spec=ReportSpec(
            policy="default",
            agency="default",
            period="2026-q4",
            window="14d",
            evaluated_at="2026-11-23T02:00:00+08:00",
            score=81.5,
            grade="良",
            workloads=12,
            projects=[ProjectLine(name="tax", score=80, grade="良", workloads=12)],
            top_offenders=[line],
            proposed_changes=[line],
        ),
    )


@pytest.mark.parametrize("exclude_none", [False, True])
def test_what_the_operator_writes_validates(exclude_none: bool) -> None:
    policy = load_policy(REPO / "policies" / "default.yaml")
    policy["status"] = sample_status().model_dump(
        by_alias=True, mode="json", exclude_none=exclude_none
    )
    assert errors(POLICY_CRD, policy) == []
    report = sample_report().model_dump(by_alias=True, mode="json", exclude_none=exclude_none)
    report.pop("metadata")
    report["metadata"] = {"name": "default-2026-q4"}
    assert errors(REPORT_CRD, report) == []


# --- the transformation on small models ------------------------------------------------------


class _Inner(BaseModel):
    count: Annotated[int, Field(gt=0, lt=10)] = 1
    price: Annotated[Decimal, WithJsonSchema({"type": "number", "minimum": 0})] = Decimal("2.50")
    kind: Literal["fixed"] = "fixed"
    note: Annotated[str, Field(max_length=8)] | None = None


class _Root(BaseModel):
    spec: _Inner


def test_transformation_of_bounds_consts_defaults_and_nulls() -> None:
    schema = crdgen.openapi_schema(_Root)
    inner = schema["properties"]["spec"]["properties"]
    assert inner["count"] == {
        "default": 1,
        "exclusiveMaximum": True,
        "exclusiveMinimum": True,
        "maximum": 10,
        "minimum": 0,
        "type": "integer",
    }
    assert inner["price"] == {"default": 2.5, "minimum": 0, "type": "number"}
    assert inner["kind"]["enum"] == ["fixed"]
    assert inner["kind"]["type"] == "string"
    assert inner["note"] == {"maxLength": 8, "nullable": True, "type": "string"}
    assert schema["required"] == ["spec"]


def test_a_plain_decimal_is_refused() -> None:
    class Priced(BaseModel):
        price: Annotated[Decimal, Field(ge=0)] = Decimal("2.50")

    class Root(BaseModel):
        spec: Priced

    # pydantic's own schema for Decimal is a number-or-string union: not structural.
    with pytest.raises(crdgen.SchemaError, match="union"):
        crdgen.openapi_schema(Root)


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (int | str, "union"),
        (list[int], "list needs max_length"),
        (str, "string needs max_length"),
        (dict[str, int], "map needs max_length"),
    ],
    ids=["union", "unbounded list", "unbounded string", "unbounded map"],
)
def test_what_a_structural_schema_cannot_hold_is_refused(annotation: Any, message: str) -> None:
    class Inner(BaseModel):
        field: annotation

    class Root(BaseModel):
        spec: Inner

    with pytest.raises(crdgen.SchemaError, match=message):
        crdgen.openapi_schema(Root)


def test_extras_at_a_missing_path_are_refused() -> None:
    with pytest.raises(crdgen.SchemaError, match="no such field"):
        crdgen.openapi_schema(_Root, {("spec", "gone"): {"x-kubernetes-list-type": "set"}})


def test_cel_rules_keep_windows_sane() -> None:
    """minHistory and every idleFor within window; change windows end after they start."""
    by_path: dict[str, list[str]] = {}
    for path, _node, validation in cel_rules(schema_of(POLICY_CRD)):
        by_path.setdefault(path, []).append(validation["message"])
    assert "minHistory must not be longer than window" in by_path[".spec"]
    assert "rules: an idleFor duration must not be longer than window" in by_path[".spec"]
    (windows,) = by_path[".spec.safety.changeWindows[items]"]
    assert "must end after it starts" in windows
