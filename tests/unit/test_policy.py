"""Policy validation: every rejection names the field path and a plain reason."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rightsizer.adapters.files import load_policies
from rightsizer.api.v1alpha1 import PolicyError, parse_policy
from rightsizer.core.policy import PolicySpec, duration_seconds

ROOT = Path(__file__).resolve().parents[2]


def document(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"agency": "finance", "namespaces": ["fin-prod"]}
    base.update(spec)
    return {
        "apiVersion": "rightsizer.io/v1alpha1",
        "kind": "EfficiencyPolicy",
        "metadata": {"name": "finance"},
        "spec": base,
    }


def band(min_: float, score: float) -> dict[str, float]:
    return {"min": min_, "score": score}


GOOD_BANDS = [band(0, 0), band(0.5, 100)]


def indicator(**fields: Any) -> dict[str, Any]:
    base = {
        "name": "cpu-average",
        "resource": "cpu",
        "stat": "avg",
        "weight": 100,
        "bands": GOOD_BANDS,
    }
    base.update(fields)
    return base


INVALID = [
    ("no namespaces", {"namespaces": []}, "spec", "namespaceSelector or namespaces"),
    ("bad window", {"window": "2 weeks"}, "spec.window", "not a duration"),
    ("bad agency", {"agency": "Finance Dept"}, "spec.agency", "pattern"),
    ("unknown field", {"windw": "14d"}, "spec.windw", "Extra inputs"),
    ("weights", {"indicators": [indicator(weight=60)]}, "spec", "add up to 100"),
    (
        "no zero band",
        {"indicators": [indicator(bands=[band(0.1, 50)])]},
        "spec.indicators[0]",
        "start at min 0",
    ),
    (
        "not a hill",
        {"indicators": [indicator(bands=[band(0, 50), band(0.3, 10), band(0.6, 90)])]},
        "spec.indicators[0]",
        "rise with utilisation",
    ),
    (
        "score too high",
        {"indicators": [indicator(bands=[band(0, 0), band(0.5, 150)])]},
        "spec.indicators[0].bands[1].score",
        "less than or equal to 100",
    ),
    ("bad stat", {"indicators": [indicator(stat="p100")]}, "spec.indicators[0].stat", "pattern"),
    (
        "unknown resource",
        {"indicators": [indicator(resource="disk")]},
        "spec.indicators[0].resource",
        "'cpu'",
    ),
    ("no grade at zero", {"grades": [{"name": "A", "min": 50}]}, "spec", "min 0"),
    (
        "duplicate grade",
        {"grades": [{"name": "A", "min": 0}, {"name": "A", "min": 50}]},
        "spec",
        "used twice",
    ),
    (
        "rule without conditions",
        {"rules": [{"name": "r", "action": "downsize"}]},
        "spec.rules[0]",
        "at least one condition",
    ),
    (
        "half a condition",
        {"rules": [{"name": "r", "action": "downsize", "all": [{"resource": "cpu", "op": "<"}]}]},
        "spec.rules[0].all[0]",
        "missing: stat, value",
    ),
    (
        "signal with resource",
        {
            "rules": [
                {
                    "name": "r",
                    "action": "upsize",
                    "any": [{"signal": "oomKilled", "resource": "cpu"}],
                }
            ]
        },
        "spec.rules[0].any[0]",
        "takes no resource",
    ),
    (
        "unknown action",
        {"rules": [{"name": "r", "action": "delete", "any": [{"signal": "oomKilled"}]}]},
        "spec.rules[0].action",
        "'downsize'",
    ),
    (
        "a price as text (the API server refuses it: type number)",
        {"prices": {"cpuCoreMonth": "45"}},
        "spec.prices.cpuCoreMonth",
        "must be a number",
    ),
    (
        "a boolean as text (the API server refuses it: type boolean)",
        {
            "recommendation": {
                "memory": {
                    "stat": "max",
                    "headroom": 0.1,
                    "min": "64Mi",
                    "max": "1Gi",
                    "trend": "yes",
                }
            }
        },
        "spec.recommendation.memory.trend",
        "must be true or false",
    ),
    (
        "a boolean as a number",
        {"safety": {"allowSingleReplica": 1}},
        "spec.safety.allowSingleReplica",
        "must be true or false",
    ),
    (
        "min above max",
        {"recommendation": {"cpu": {"stat": "p95", "headroom": 0.1, "min": "2", "max": "1"}}},
        "spec.recommendation.cpu",
        "above max",
    ),
    (
        "bad quantity",
        {
            "recommendation": {
                "memory": {"stat": "max", "headroom": 0.1, "min": "lots", "max": "1Gi"}
            }
        },
        "spec.recommendation.memory.min",
        "not a quantity",
    ),
    (
        "a quantity as a fraction (the API server refuses it: int-or-string)",
        {"recommendation": {"cpu": {"stat": "p95", "headroom": 0.1, "min": 0.5, "max": "2"}}},
        "spec.recommendation.cpu.min",
        "whole number or a string",
    ),
    (
        "a quantity as a whole float (refused as well: 2.0 is not an integer to the server)",
        {"recommendation": {"cpu": {"stat": "p95", "headroom": 0.1, "min": "1", "max": 2.0}}},
        "spec.recommendation.cpu.max",
        "whole number or a string",
    ),
    (
        "step above one",
        {"recommendation": {"maxStepDown": 1.5}},
        "spec.recommendation.maxStepDown",
        "less than or equal to 1",
    ),
    ("history beyond window", {"window": "7d", "minHistory": "14d"}, "spec", "longer than"),
    (
        "bad change window",
        {"safety": {"changeWindows": ["Saturday night"]}},
        "spec.safety.changeWindows[0]",
        "not a change window",
    ),
    (
        "reversed change window",
        {"safety": {"changeWindows": ["Sat 06:00-01:00"]}},
        "spec.safety.changeWindows[0]",
        "end after it starts",
    ),
    (
        "negative price",
        {"prices": {"cpuCoreMonth": -1}},
        "spec.prices.cpuCoreMonth",
        "greater than or equal to 0",
    ),
    ("zero discount", {"prices": {"discount": 0}}, "spec.prices.discount", "greater than 0"),
    ("gitops not yet", {"mode": "gitops"}, "spec.mode", "'recommend' or 'apply'"),
    ("huge name", {"displayName": "x" * 10_000}, "spec.displayName", "at most 128"),
    ("wrong type", {"indicators": "all of them"}, "spec.indicators", "valid list"),
    (
        "too many rules",
        {
            "rules": [
                {"name": f"r{i}", "action": "upsize", "any": [{"signal": "oomKilled"}]}
                for i in range(40)
            ]
        },
        "spec.rules",
        "at most 32",
    ),
]


@pytest.mark.parametrize(("case", "spec", "path", "reason"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_policy_is_rejected_with_field_path_and_reason(
    case: str, spec: dict[str, Any], path: str, reason: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(document(**spec), source=case)
    assert any(p.startswith(f"{path}:") and reason in p for p in caught.value.problems), (
        caught.value.problems
    )


@pytest.mark.parametrize(
    "hostile",
    [None, 42, "spec: x", [], {"kind": "Deployment"}, {"apiVersion": "v1"}],
)
def test_documents_that_are_not_policies_are_rejected(hostile: Any) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(hostile)
    assert all(":" in problem for problem in caught.value.problems)


def test_shipped_default_file_equals_the_code_defaults() -> None:
    [default] = [p for p in load_policies([ROOT / "policies"]) if p.name == "default"]
    expected = PolicySpec(
        agency="default",
        display_name="默认评价策略",
        namespace_selector={"matchLabels": {"rightsizer.io/agency": "default"}},
    )
    assert default.spec == expected


@pytest.mark.parametrize(
    "prices",
    [
        {},  # the documented defaults
        {"cpuCoreMonth": 45.5, "storageGiBMonth": 0.35, "discount": 0.85},
        {"memoryGiBMonth": 0, "gpuMonth": 1e9, "discount": 1},
    ],
)
def test_a_policy_written_out_as_json_or_yaml_reads_back_the_same(
    prices: dict[str, Any], tmp_path: Path
) -> None:
    """As ``rightsizer demo`` writes the default policy outside a checkout: money and the
    discount are written as numbers (pydantic alone writes decimals as text, which a policy
    refuses as a number)."""
    policy = parse_policy(document(prices=prices))
    written = policy.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert all(
        isinstance(value, int | float)
        for key, value in written["spec"]["prices"].items()
        if key != "currency"
    )
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(written, allow_unicode=True))
    [read] = load_policies([path])
    assert read.spec == policy.spec
    assert parse_policy(json.loads(policy.model_dump_json(by_alias=True))) == policy


def test_every_shipped_policy_is_valid_and_hainan_downsizes_below_twenty_percent() -> None:
    policies = {p.name: p.spec for p in load_policies([ROOT / "policies"])}
    assert {"default", "hainan-quarterly", "strict-production"} <= set(policies)
    hainan = policies["hainan-quarterly"]
    assert duration_seconds(hainan.window) == 90 * 86400
    [rule] = [r for r in hainan.rules if r.action == "downsize"]
    assert {(c.resource, c.stat, c.op, c.value) for c in rule.all} == {
        ("cpu", "avg", "<", 0.2),
        ("memory", "avg", "<", 0.2),
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: &x [1]\nb: *x\n", "aliases are not allowed"),
        ("spec: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_policy_files_with_hostile_or_broken_yaml_are_refused(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policies([path])
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_oversized_policy_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * (2 << 20))
    with pytest.raises(PolicyError, match="at most"):
        load_policies([path])


def test_duplicate_policy_names_across_files_are_refused(tmp_path: Path) -> None:
    import yaml

    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(yaml.safe_dump(document()))
    with pytest.raises(PolicyError, match="used twice"):
        load_policies([tmp_path])
