"""The CRDs on a real API server: structural schemas accepted, invalid policies refused by the
schema where it can say so, and marked Degraded by the operator where only it can."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from controlplane import ControlPlane
from e2e_cloud import POLICIES, Chart, OperatorProcess, condition, policy, wait_for

pytestmark = pytest.mark.e2e

CRDS = ("efficiencypolicies.rightsizer.io", "efficiencyreports.rightsizer.io")


def test_crds_apply_cleanly_with_structural_schemas(control_plane: ControlPlane, crds: str) -> None:
    assert crds.split("\n")[:2] == [
        f"customresourcedefinition.apiextensions.k8s.io/{name} created" for name in CRDS
    ], crds
    for name in CRDS:
        crd = control_plane.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conditions = {c["type"]: c for c in crd["status"]["conditions"]}
        assert conditions["Established"]["status"] == "True", conditions
        assert conditions["NamesAccepted"]["status"] == "True", conditions
        # a schema the server cannot treat as structural shows up as this condition
        assert "NonStructuralSchema" not in conditions, conditions["NonStructuralSchema"]
        assert not crd["spec"].get("preserveUnknownFields")
        (version,) = crd["spec"]["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    # the API serves them, by plural, singular, short name and category
    assert isinstance(control_plane.get(POLICIES)["items"], list)
    for name in ("efficiencypolicies", "efficiencypolicy", "effpol", "rightsizer"):
        control_plane.kubectl("get", name, "-o", "name")


def _apply(cp: ControlPlane, body: dict[str, Any], *extra: str) -> tuple[int, str]:
    result = cp.kubectl("apply", *extra, "-f", "-", stdin=json.dumps(body), check=False)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("case", "spec", "message"),
    [
        (
            "mode",
            {"mode": "turbo"},
            'spec.mode: Unsupported value: "turbo": supported values: "recommend", "apply"',
        ),
        (
            "too-long",
            # maxLength counts characters (129 here), although the message says bytes
            {"displayName": "x" * 129},
            "spec.displayName: Too long: may not be more than 128 bytes",
        ),
        (
            "weights",
            {
                "indicators": [
                    {
                        "name": "cpu-average",
                        "resource": "cpu",
                        "stat": "avg",
                        "weight": 30,
                        "bands": [{"min": 0, "score": 0}, {"min": 0.5, "score": 100}],
                    },
                ]
            },
            'spec.indicators: Invalid value: "object": indicators: weights must add up to 100',
        ),
        (
            "stat",
            {"recommendation": {"cpu": {"stat": "p100"}}},
            "spec.recommendation.cpu.stat: Invalid value",
        ),
        (
            "no-namespaces",
            {"namespaceSelector": None},
            "give namespaceSelector or namespaces: which namespaces are the agency",
        ),
    ],
)
def test_schema_rejects_invalid_policies(
    control_plane: ControlPlane, crds: str, case: str, spec: dict[str, Any], message: str
) -> None:
    body = policy(f"invalid-{case}", "nobody", **spec)
    body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}
    code, output = _apply(control_plane, body)
    if code == 0:
        control_plane.request("DELETE", f"{POLICIES}/invalid-{case}")
    assert code == 1, output
    assert f'The EfficiencyPolicy "invalid-{case}" is invalid' in output, output
    assert message in output, output
    assert control_plane.request("GET", f"{POLICIES}/invalid-{case}").status_code == 404


def test_unknown_fields_are_refused_by_strict_validation_and_pruned_otherwise(
    control_plane: ControlPlane, crds: str
) -> None:
    body = policy("unknown-field", "nobody", turbo=True)
    code, output = _apply(control_plane, body)  # kubectl's default: --validate=strict
    assert code == 1, output
    assert 'strict decoding error: unknown field "spec.turbo"' in output, output

    code, output = _apply(control_plane, body, "--validate=false")
    try:
        assert code == 0, output
        stored = control_plane.get(f"{POLICIES}/unknown-field")["spec"]
        assert "turbo" not in stored  # pruned by the structural schema
        assert stored["mode"] == "recommend"  # and defaulted by it
    finally:
        control_plane.request("DELETE", f"{POLICIES}/unknown-field")


FALLING_THEN_RISING = [{"name": "cpu-average", "resource": "cpu", "stat": "avg", "weight": 100,
                       "bands": [{"min": 0, "score": 50}, {"min": 0.5, "score": 10},
                                 {"min": 0.8, "score": 100}]}]  # fmt: skip
OPERATOR_ONLY = {
    # rules the schema does not express (a cron expression; bands that must rise to the best
    # one and fall after it): the API server stores the policy, the operator refuses it.
    # (minHistory longer than the window and change windows that end before they start are
    # refused by the CRD's own CEL rules: tests/unit/test_crds.py)
    "bad-schedule": ({"schedule": "every monday"}, "spec.schedule"),
    "bands-falling-then-rising": ({"indicators": FALLING_THEN_RISING}, "spec.indicators[0]"),
}  # fmt: skip


def test_operator_marks_policies_the_schema_cannot_judge_degraded(
    control_plane: ControlPlane,
    chart: Chart,
    policies: Callable[[dict[str, Any]], str],
    run_operator: Callable[..., OperatorProcess],
) -> None:
    cp = control_plane
    for name, (spec, _) in OPERATOR_ONLY.items():
        policies(policy(name, "nobody", **spec))  # accepted by the API server
    operator = run_operator(chart.kubeconfig())
    for name, (_, path) in OPERATOR_ONLY.items():
        status = wait_for(
            f"{name} marked Degraded",
            lambda n=name: condition(cp.get(f"{POLICIES}/{n}").get("status") or {}, "Degraded"),
            timeout=60,
            alive=operator.alive,
        )
        assert (status["status"], status["reason"]) == ("True", "InvalidPolicy"), status
        assert status["message"].startswith(f"{path}: "), status["message"]
        ready = condition(cp.get(f"{POLICIES}/{name}")["status"], "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "InvalidPolicy"), ready
        described = cp.kubectl("describe", "efficiencypolicy", name).stdout
        assert "InvalidPolicy" in described, described
        assert f"{path}: " in described, described
    # with the field path in the policy's Warning event too
    events = cp.get("/api/v1/namespaces/default/events")["items"]
    warned = {
        e["involvedObject"]["name"]
        for e in events
        if e["reason"] == "InvalidPolicy" and e["type"] == "Warning"
    }
    assert warned >= set(OPERATOR_ONLY), warned
    schedule_message = condition(cp.get(f"{POLICIES}/bad-schedule")["status"], "Degraded")
    assert "every monday" in schedule_message["message"], schedule_message
    # an invalid policy is never evaluated
    for name in OPERATOR_ONLY:
        assert "score" not in (cp.get(f"{POLICIES}/{name}").get("status") or {})
