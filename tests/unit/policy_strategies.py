"""Hypothesis strategies for EfficiencyPolicy documents, drawn from the CRD's own schema.

Three sources, shared by tests/unit/test_policy_fuzz.py (against ``rightsizer validate``'s
parser) and tests/e2e/test_e2e_fuzz.py (against the real kube-apiserver):

* ``jsonschema_specs``: hypothesis-jsonschema over the CRD's ``openAPIV3Schema`` of
  ``spec``, turned into JSON Schema (thorough, but ~80 ms a draw on this schema);
* ``crd_specs``: the same schema walked into plain hypothesis strategies (fast);
* ``mutated_documents``: the shipped valid policies with one to three mutations each
  (a field removed, replaced by a value of the wrong type or out of range, an unknown
  field, a list entry duplicated).
"""

from __future__ import annotations

import copy
import functools
import math
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "crds" / "efficiencypolicies.yaml"
POLICY_FILES = sorted((REPO / "policies").glob("*.yaml"))
JSON = dict[str, Any]
# what a rejection names first: the root or one of the object's top-level fields
PROBLEM = re.compile(r"^(\(root\)|apiVersion|kind|metadata|spec)(\.|\[|:|$)")


@functools.cache
def _crd() -> JSON:
    crd: JSON = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    return crd


def spec_schema() -> JSON:
    crd = copy.deepcopy(_crd())
    (version,) = crd["spec"]["versions"]
    schema: JSON = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def document(spec: Any, name: str = "fuzz") -> JSON:
    return {
        "apiVersion": "rightsizer.io/v1alpha1",
        "kind": "EfficiencyPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def valid_documents() -> list[JSON]:
    """The shipped policies (policies/*.yaml): every one is valid."""
    return copy.deepcopy(_valid_documents())


@functools.cache
def _valid_documents() -> list[JSON]:
    found = []
    for path in POLICY_FILES:
        found += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return found


# -- hypothesis-jsonschema over the CRD schema ---------------------------------------------
def json_schema(node: JSON, *, cap: int = 3) -> JSON:
    """OpenAPI v3 (structural, Kubernetes flavour) -> JSON Schema draft 7. Lists and maps are
    capped at ``cap`` entries to keep documents small; known objects get no unknown keys
    (the API server prunes them, ``validate`` rejects them: mutations test those)."""
    if node.get("x-kubernetes-int-or-string"):
        text = {"type": "string", "maxLength": node.get("maxLength", 32)}
        return {"anyOf": [{"type": "integer"}, text]}
    out: JSON = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes") or key in ("description", "default", "nullable"):
            continue
        if key == "properties":
            out[key] = {name: json_schema(child, cap=cap) for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = json_schema(value, cap=cap)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            if value is True:  # OpenAPI 3.0's boolean form
                out[key] = node["minimum" if key == "exclusiveMinimum" else "maximum"]
        elif key in ("maxItems", "maxProperties"):
            out[key] = min(value, cap)
        else:
            out[key] = value
    if "exclusiveMinimum" in out:
        out.pop("minimum", None)
    if "exclusiveMaximum" in out:
        out.pop("maximum", None)
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def jsonschema_specs(*, cap: int = 3) -> st.SearchStrategy[Any]:
    from hypothesis_jsonschema import from_schema

    return from_schema(json_schema(spec_schema(), cap=cap))


# -- the same schema as plain strategies (fast) --------------------------------------------
QUANTITY_TEXT = r"[0-9]{1,5}(\.[0-9]{1,3})?(m|k|M|G|T|Ki|Mi|Gi|Ti|e3)?"


def crd_strategy(node: JSON, *, cap: int = 3) -> st.SearchStrategy[Any]:
    """Values the CRD schema ``node`` describes (patterns, enums, bounds, list-map keys)."""
    strategy = _crd_strategy(node, cap)
    return st.one_of(st.none(), strategy) if node.get("nullable") else strategy


def _crd_strategy(node: JSON, cap: int) -> st.SearchStrategy[Any]:
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if node.get("x-kubernetes-int-or-string"):
        return st.one_of(
            st.integers(-5, 10**6),
            st.from_regex(QUANTITY_TEXT, fullmatch=True),
            st.text(max_size=node.get("maxLength", 32)),
        )
    kind = node.get("type")
    if kind == "object":
        return _object(node, cap)
    if kind == "array":
        items = crd_strategy(node["items"], cap=cap)
        size = {"min_size": node.get("minItems", 0), "max_size": min(node["maxItems"], cap)}
        if node.get("x-kubernetes-list-map-keys") == ["name"]:
            return st.lists(items, unique_by=lambda item: item.get("name"), **size)
        return st.lists(items, **size)
    if kind == "string":
        return _string(node)
    if kind in ("number", "integer"):
        return _number(node, integer=kind == "integer")
    if kind == "boolean":
        return st.booleans()
    return st.nothing()


def _object(node: JSON, cap: int) -> st.SearchStrategy[Any]:
    properties = node.get("properties")
    if properties is None:
        values = node.get("additionalProperties")
        if not isinstance(values, dict):
            return st.just({})
        keys = st.text(min_size=1, max_size=20)
        limit = min(node.get("maxProperties", cap), cap)
        return st.dictionaries(keys, crd_strategy(values, cap=cap), max_size=limit)
    required = set(node.get("required", []))
    return st.fixed_dictionaries(
        {k: crd_strategy(v, cap=cap) for k, v in properties.items() if k in required},
        optional={k: crd_strategy(v, cap=cap) for k, v in properties.items() if k not in required},
    )


def _string(node: JSON) -> st.SearchStrategy[str]:
    low, high = node.get("minLength", 0), node["maxLength"]
    if "pattern" in node:
        pattern = str(node["pattern"])
        return st.from_regex(pattern, fullmatch=True).filter(lambda s: low <= len(s) <= high)
    return st.text(min_size=low, max_size=min(high, 40))


def _number(node: JSON, *, integer: bool) -> st.SearchStrategy[float] | st.SearchStrategy[int]:
    low, high = node.get("minimum"), node.get("maximum")
    if integer:
        return st.integers(
            None if low is None else math.ceil(low), None if high is None else math.floor(high)
        )
    return st.floats(
        min_value=low,
        max_value=high,
        exclude_min=bool(node.get("exclusiveMinimum")) and low is not None,
        exclude_max=bool(node.get("exclusiveMaximum")) and high is not None,
        allow_nan=False,
        allow_infinity=False,
    )


def crd_specs(*, cap: int = 3) -> st.SearchStrategy[Any]:
    return crd_strategy(spec_schema(), cap=cap)


# -- mutations of valid policies ------------------------------------------------------------
EDGE_STRINGS = [
    "", "0", "-1", "1e309", "NaN", "1Ei", "99999w", "0s", "14d ", "Sat 06:00-05:00",
    "Sun 00:00-24:00", "*/0 * * * *", "60 25 * * *", "p0", "p100", "In", "💥", "a" * 300,
    "rightsizer.io/x", "-08:00", "+15:00", "apply", "recommend", "-250m", "1.5.5",
]  # fmt: skip


def wrong_values(*, allow_nan: bool) -> st.SearchStrategy[Any]:
    """A value of any JSON type, often of the wrong type or out of range."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63),
        st.sampled_from([0, -1, 1, 100, 101, 10**9, 10**12, -(10**9)]),
        st.floats(allow_nan=allow_nan, allow_infinity=allow_nan),
        st.sampled_from(EDGE_STRINGS),
        st.text(max_size=40),
        st.from_regex(QUANTITY_TEXT, fullmatch=True),
    )
    return st.one_of(
        scalars,
        st.lists(scalars, max_size=3),
        st.dictionaries(st.text(max_size=10), scalars, max_size=3),
    )


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``value`` (dict keys and list indices), the root excluded."""
    found: list[tuple[Any, ...]] = []
    children: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    for key, child in children:
        found.append((*prefix, key))
        found += paths(child, (*prefix, key))
    return found


def _mutate(draw: st.DrawFn, doc: JSON, *, allow_nan: bool) -> JSON:
    """One mutation of ``doc`` (a copy)."""
    doc = copy.deepcopy(doc)
    path = draw(st.sampled_from(paths(doc)))
    parent: Any = doc
    for key in path[:-1]:
        parent = parent[key]
    last, current = path[-1], parent[path[-1]]
    operation = draw(st.sampled_from(["remove", "replace", "replace", "nudge", "grow"]))
    if operation == "remove":
        del parent[last]
    elif (
        operation == "nudge" and isinstance(current, int | float) and not isinstance(current, bool)
    ):
        factor = draw(st.sampled_from([-1, 0, 0.5, 2, 10, 1000]))
        nudged = current * factor + draw(st.sampled_from([0, 1, -1, 0.001]))
        # a large float times 1000 overflows to inf, which JSON without NaN cannot carry
        parent[last] = nudged if allow_nan or math.isfinite(nudged) else current
    elif operation == "grow" and isinstance(current, dict):
        current[draw(st.text(min_size=1, max_size=12))] = draw(wrong_values(allow_nan=allow_nan))
    elif operation == "grow" and isinstance(current, list) and current:
        current.append(copy.deepcopy(draw(st.sampled_from(current))))  # a duplicate
    else:
        parent[last] = draw(wrong_values(allow_nan=allow_nan))
    return doc


@st.composite
def mutated_documents(draw: st.DrawFn, *, allow_nan: bool) -> JSON:
    """A shipped valid policy with one to three mutations."""
    doc = draw(st.sampled_from(_valid_documents()))
    for _ in range(draw(st.integers(1, 3))):
        if not paths(doc):
            break
        doc = _mutate(draw, doc, allow_nan=allow_nan)
    return doc


def named_paths(problems: list[str]) -> list[str]:
    """The problems that do not start with a field path (should be none)."""
    return [p for p in problems if not PROBLEM.match(p) or ": " not in p]
