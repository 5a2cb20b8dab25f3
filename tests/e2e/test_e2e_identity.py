"""The operator's identity is the Helm chart's ServiceAccount: what RBAC lets it do, and what
the chart's ValidatingAdmissionPolicy lets its patches change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from controlplane import ControlPlane
from e2e_cloud import CHART_NAMESPACE, PROBE, SA_USER, Chart, Cloud, wait_for

pytestmark = pytest.mark.e2e

VAP = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/rightsizer-writes"


def can_i(cp: ControlPlane, verb: str, resource: str, *scope: str) -> bool:
    result = cp.kubectl("auth", "can-i", verb, resource, f"--as={SA_USER}", *scope, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stdout + result.stderr
    return answer == "yes"


def test_service_account_has_the_charts_permissions_and_no_more(
    control_plane: ControlPlane, chart: Chart, cloud: Cloud
) -> None:
    cp = control_plane
    chart.use(apply_enabled=False)
    namespace = f"--namespace={cloud.truth['agencies'][0]['namespaces'][0]}"
    allowed = [
        ("patch", "deployments.apps", namespace),
        ("patch", "statefulsets.apps", namespace),
        ("patch", "daemonsets.apps", namespace),
        ("patch", "cronjobs.batch", namespace),
        ("list", "deployments.apps", "--all-namespaces"),
        ("watch", "cronjobs.batch", "--all-namespaces"),
        ("list", "horizontalpodautoscalers.autoscaling", "--all-namespaces"),
        ("list", "namespaces"),
        ("patch", "efficiencypolicies.rightsizer.io"),
        ("patch", "efficiencypolicies.rightsizer.io", "--subresource=status"),
        ("create", "efficiencyreports.rightsizer.io"),
        ("create", "events", namespace),
    ]
    denied = [
        ("delete", "deployments.apps", namespace),
        ("update", "deployments.apps", namespace),  # patch only
        ("create", "deployments.apps", namespace),
        ("patch", "jobs.batch", namespace),  # bare Jobs are recommend-only
        ("get", "secrets", namespace),
        ("list", "secrets", "--all-namespaces"),
        ("get", "configmaps", namespace),
        ("create", "pods", namespace),
        ("patch", "pods", "--subresource=resize", namespace),  # apply.inPlaceResize only
        ("delete", "efficiencypolicies.rightsizer.io"),
        ("create", "efficiencypolicies.rightsizer.io"),
        ("delete", "namespaces"),
        ("escalate", "clusterroles.rbac.authorization.k8s.io"),
        ("impersonate", "serviceaccounts", namespace),
        ("*", "*", "--all-namespaces"),  # not cluster-admin
    ]
    wrong = [f"{v} {r} {' '.join(s)}: no" for v, r, *s in allowed if not can_i(cp, v, r, *s)]
    wrong += [f"{v} {r} {' '.join(s)}: yes" for v, r, *s in denied if can_i(cp, v, r, *s)]
    assert not wrong, wrong

    # the token the operator uses is that ServiceAccount's, bound by the TokenRequest API
    review = cp.request(
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
              "spec": {"token": chart.token}},
    ).json()  # fmt: skip
    assert review["status"]["authenticated"] is True, review
    assert review["status"]["user"]["username"] == SA_USER


def _as_sa(cp: ControlPlane, chart: Chart, *args: str) -> tuple[int, str]:
    result = cp.kubectl(*args, kubeconfig=chart.kubeconfig(), check=False)
    return result.returncode, result.stdout + result.stderr


def _as_actuator(cp: ControlPlane, chart: Chart, *args: str) -> tuple[int, str]:
    """``kubectl patch deployment/NAME -n NS --type=json -p PATCH`` as the actuator, sent
    directly: the actuator may patch but not get (kubectl patch gets first)."""
    _, target, _, namespace, _, _, operations = args
    answer = cp.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/{target.split('/')[1]}",
        body=json.loads(operations),
        content_type="application/json-patch+json",
        token=chart.actuator_token,
    )
    return (0 if answer.ok else 1), answer.text


def _resize_patch(cpu: str) -> str:
    path = "/spec/template/spec/containers/0/resources/requests/cpu"
    return json.dumps([{"op": "replace", "path": path, "value": cpu}])


def test_recommend_mode_admission_policy_allows_annotations_only(
    control_plane: ControlPlane, chart: Chart
) -> None:
    cp = control_plane
    docs = chart.use(apply_enabled=False)
    assert chart.has_admission_policy, "the chart's default render has no admission policy"
    assert chart.env["RIGHTSIZER_APPLY_ENABLED"] == "false"
    assert [d["kind"] for d in docs if d["kind"].startswith("ValidatingAdmission")] == [
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    before = cp.get(f"/apis/apps/v1/namespaces/{CHART_NAMESPACE}/deployments/{PROBE}")
    deployment = f"deployment/{PROBE}"

    code, output = _as_sa(cp, chart, "annotate", deployment, "-n", CHART_NAMESPACE,
                          "rightsizer.io/grade=优", "--overwrite")  # fmt: skip
    assert code == 0, output

    code, output = _as_sa(cp, chart, "patch", deployment, "-n", CHART_NAMESPACE,
                          "--type=json", "-p", _resize_patch("250m"))  # fmt: skip
    assert code == 1, output
    assert "ValidatingAdmissionPolicy 'rightsizer-writes' with binding 'rightsizer-writes' " \
           "denied request" in output, output  # fmt: skip
    assert "rightsizer may only annotate workloads (apply.enabled is false)" in output, output

    code, output = _as_sa(cp, chart, "label", deployment, "-n", CHART_NAMESPACE, "team=x")
    assert code == 1 and "not labels, owners or finalizers" in output, output

    code, output = _as_sa(cp, chart, "delete", deployment, "-n", CHART_NAMESPACE)
    assert code == 1, output
    assert f'User "{SA_USER}" cannot delete resource "deployments"' in output, output

    after = cp.get(f"/apis/apps/v1/namespaces/{CHART_NAMESPACE}/deployments/{PROBE}")
    assert after["spec"] == before["spec"]
    # a Deployment's generation counts annotation changes too (they are copied to its
    # ReplicaSets: apps/deployment strategy.go); one annotate, one more generation
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert after["metadata"]["annotations"]["rightsizer.io/grade"] == "优"

    # the same change by anyone else (here: the admin) is not the policy's business
    cp.kubectl("patch", deployment, "-n", CHART_NAMESPACE, "--type=json",
               "-p", _resize_patch("100m"))  # fmt: skip


def test_apply_mode_admission_policy_allows_resources_only(
    control_plane: ControlPlane, chart: Chart
) -> None:
    cp = control_plane
    chart.use(apply_enabled=True)
    assert chart.env["RIGHTSIZER_APPLY_ENABLED"] == "true"
    deployment = f"deployment/{PROBE}"
    try:
        code, output = _as_actuator(cp, chart, "patch", deployment, "-n", CHART_NAMESPACE,
                              "--type=json", "-p", _resize_patch("150m"))  # fmt: skip
        assert code == 0, output
        for patch, message in (
            ([{"op": "replace", "path": "/spec/template/spec/containers/0/image",
               "value": "registry.invalid/other:2"}],
             "a container changed otherwise, or was added or removed"),
            ([{"op": "replace", "path": "/spec/replicas", "value": 3}],
             "the spec outside the pod template changed"),
            ([{"op": "add", "path": "/spec/template/metadata/annotations",
               "value": {"x": "y"}}],
             "the pod template's metadata changed"),
        ):  # fmt: skip
            code, output = _as_actuator(cp, chart, "patch", deployment, "-n", CHART_NAMESPACE,
                                  "--type=json", "-p", json.dumps(patch))  # fmt: skip
            assert code == 1, (patch, output)
            assert message in output, output
        resources = cp.get(f"/apis/apps/v1/namespaces/{CHART_NAMESPACE}/deployments/{PROBE}")[
            "spec"
        ]["template"]["spec"]["containers"][0]["resources"]
        assert resources["requests"]["cpu"] == "150m"
    finally:
        chart.use(apply_enabled=False)


def test_admission_policy_type_checks_cleanly(control_plane: ControlPlane, chart: Chart) -> None:
    for apply_enabled in (False, True):
        chart.use(apply_enabled=apply_enabled)
        checked = wait_for(
            "the API server's type check of the admission policy",
            lambda: (
                (body := control_plane.get(VAP)).get("status", {}).get("typeChecking") is not None
                and body["status"]["observedGeneration"] == body["metadata"]["generation"]
                and body
            ),
            timeout=30,
        )
        warnings = checked["status"]["typeChecking"].get("expressionWarnings") or []
        assert not warnings, json.dumps(warnings, indent=1)
    chart.use(apply_enabled=False)


def test_operator_kubeconfig_carries_only_the_token(chart: Chart) -> None:
    text = Path(chart.kubeconfig()).read_text()
    config = json.loads(text)
    (user,) = config["users"]
    assert set(user["user"]) == {"token"}
