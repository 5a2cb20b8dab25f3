"""Least privilege, proven on the real kube-apiserver with the chart's two identities.

The reader (the operator pod's account) and the actuator (apply mode; tokens from the
TokenRequest API) each try what they must not do, with their real tokens: RBAC or the
chart's ValidatingAdmissionPolicy refuses it. The operator's Pod spec, rendered from the
chart, is admitted by Pod Security admission in a namespace enforcing "restricted"; weakened
copies are refused. Every probe is a dry run in the chart's namespace, so nothing changes.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from controlplane import ControlPlane
from e2e_cloud import (
    ACTUATOR_USER,
    CHART_ACTUATOR,
    CHART_NAMESPACE,
    CHART_SA,
    SA_USER,
    Chart,
    render_chart,
)

pytestmark = pytest.mark.e2e

VAP_DENIED = "ValidatingAdmissionPolicy 'rightsizer-writes' with binding 'rightsizer-writes'"
TARGET = "e2e-security-target"  # a two-container Deployment the probes patch (dry run)
CRON = "e2e-security-cron"
RESTRICTED = "e2e-restricted"
C0 = "/spec/template/spec/containers/0"


def _container(name: str, cpu: str, memory: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": f"registry.invalid/{name}:1",
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": "1Gi"}},
    }


@pytest.fixture(scope="module")
def targets(control_plane: ControlPlane, chart: Chart) -> Iterator[None]:
    cp = control_plane
    labels = {"app": TARGET}
    pod = {"metadata": {"labels": labels},
           "spec": {"containers": [_container("app", "200m", "256Mi"),
                                   _container("sidecar", "50m", "64Mi")]}}  # fmt: skip
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": TARGET, "namespace": CHART_NAMESPACE,
                     "annotations": {"team.example/owner": "platform"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": pod},
    }  # fmt: skip
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": CRON, "namespace": CHART_NAMESPACE},
        "spec": {"schedule": "0 3 * * *", "suspend": True, "jobTemplate": {"spec": {"template": {
            "spec": {"restartPolicy": "Never",
                     "containers": [_container("batch", "500m", "512Mi")]}}}}},
    }  # fmt: skip
    items = {"apiVersion": "v1", "kind": "List", "items": [deployment, cron]}
    cp.kubectl("apply", "-f", "-", stdin=json.dumps(items))
    yield
    cp.kubectl("delete", f"deployment/{TARGET}", f"cronjob/{CRON}", "-n", CHART_NAMESPACE)


def _patch(
    cp: ControlPlane, token: str, operations: list[dict[str, Any]], *, kind: str = "deployments"
) -> tuple[int, str]:
    group = "batch" if kind == "cronjobs" else "apps"
    name = CRON if kind == "cronjobs" else TARGET
    answer = cp.request(
        "PATCH",
        f"/apis/{group}/v1/namespaces/{CHART_NAMESPACE}/{kind}/{name}",
        body=operations,
        content_type="application/json-patch+json",
        token=token,
        params={"dryRun": "All"},
    )
    return answer.status_code, answer.json().get("message", "") if answer.content else ""


def _set(path: str, value: Any) -> list[dict[str, Any]]:
    return [{"op": "add", "path": path, "value": value}]


RIGHTSIZER_NOTE = _set("/metadata/annotations/rightsizer.io~1grade", "B")
RESIZE = _set(f"{C0}/resources/requests/cpu", "150m") + _set(
    "/metadata/annotations/rightsizer.io~1state", '{"last_change": "now"}'
)


def test_reader_may_only_annotate_in_either_mode(
    control_plane: ControlPlane, chart: Chart, targets: None
) -> None:
    cp = control_plane
    try:
        for apply_enabled in (False, True):
            chart.use(apply_enabled=apply_enabled)
            token = chart.token
            assert _patch(cp, token, RIGHTSIZER_NOTE) == (200, "")
            for operations, message in (
                (RESIZE, "may only annotate workloads"),
                (_set(f"{C0}/image", "registry.invalid/evil:1"), "may only annotate workloads"),
                (_set("/metadata/annotations/team.example~1owner", "x"),
                 "its own annotations (rightsizer.io/*) only"),
                (_set("/metadata/labels", {"x": "y"}), "not labels, owners or finalizers"),
            ):  # fmt: skip
                code, text = _patch(cp, token, operations)
                assert (code, VAP_DENIED in text, message in text) == (403, True, True), (
                    apply_enabled, operations, text,
                )  # fmt: skip
    finally:
        chart.use(apply_enabled=False)


ACTUATOR_DENIED = [
    # (what, patch, message of the admission policy)
    ("image", _set(f"{C0}/image", "registry.invalid/evil:1"), "a container changed otherwise"),
    ("command", _set(f"{C0}/command", ["sh", "-c", "id"]), "a container changed otherwise"),
    ("env", _set(f"{C0}/env", [{"name": "X", "value": "1"}]), "a container changed otherwise"),
    ("securityContext", _set(f"{C0}/securityContext", {"privileged": True}),
     "a container changed otherwise"),
    ("a container added", _set("/spec/template/spec/containers/-", _container("evil", "1m", "4Mi")),
     "added or removed"),
    ("a container removed", [{"op": "remove", "path": "/spec/template/spec/containers/1"}],
     "added or removed"),
    ("an init container added",
     _set("/spec/template/spec/initContainers", [_container("init", "1m", "4Mi")]),
     "added or removed"),
    ("service account", _set("/spec/template/spec/serviceAccountName", "default"),
     "the pod spec outside the containers changed"),
    ("host network", _set("/spec/template/spec/hostNetwork", True),
     "the pod spec outside the containers changed"),
    ("replicas", _set("/spec/replicas", 3), "the spec outside the pod template changed"),
    ("pod labels", _set("/spec/template/metadata/labels/extra", "x"),
     "the pod template's metadata changed"),
    ("someone else's annotation", [{"op": "remove", "path": "/metadata/annotations"}],
     "its own annotations (rightsizer.io/*) only"),
    ("labels", _set("/metadata/labels", {"x": "y"}), "not labels, owners or finalizers"),
    ("cpu above the ceiling", _set(f"{C0}/resources/requests/cpu", "65"), "within the chart's bounds"),
    ("memory below the floor", _set(f"{C0}/resources/requests/memory", "1Mi"),
     "within the chart's bounds"),
    ("a GPU added", _set(f"{C0}/resources/limits/nvidia.com~1gpu", "1"), "within the chart's bounds"),
    ("ephemeral storage", _set(f"{C0}/resources/requests/ephemeral-storage", "1Gi"),
     "within the chart's bounds"),
]  # fmt: skip
ACTUATOR_ALLOWED = [
    ("cpu request and a rightsizer annotation", RESIZE),
    ("memory request and limit of the sidecar",
     _set("/spec/template/spec/containers/1/resources/requests/memory", "96Mi")
     + _set("/spec/template/spec/containers/1/resources/limits/memory", "128Mi")),
    ("a limit removed", [{"op": "remove", "path": f"{C0}/resources/limits/memory"}]),
    ("at the ceiling", _set(f"{C0}/resources/requests/cpu", "64")),
]  # fmt: skip


def test_actuator_may_change_container_resources_only_within_bounds(
    control_plane: ControlPlane, chart: Chart, targets: None
) -> None:
    cp = control_plane
    try:
        chart.use(apply_enabled=True)
        token = chart.actuator_token
        wrong = []
        for what, operations, message in ACTUATOR_DENIED:
            code, text = _patch(cp, token, operations)
            if code != 403 or VAP_DENIED not in text or message not in text:
                wrong.append(f"{what}: {code} {text}")
        for what, operations in ACTUATOR_ALLOWED:
            code, text = _patch(cp, token, operations)
            if code != 200:
                wrong.append(f"{what}: refused: {code} {text}")
        # the same rules hold inside a CronJob's job template
        template = "/spec/jobTemplate/spec/template/spec/containers/0"
        for operations, expected in (
            (_set(f"{template}/resources/requests/cpu", "250m"), 200),
            (_set(f"{template}/image", "registry.invalid/evil:1"), 403),
            (_set("/spec/schedule", "* * * * *"), 403),
            (_set("/spec/suspend", False), 403),
        ):
            code, text = _patch(cp, token, operations, kind="cronjobs")
            if code != expected:
                wrong.append(f"cronjob {operations}: {code} {text}")
        assert not wrong, "\n".join(wrong)
    finally:
        chart.use(apply_enabled=False)


def _can_i(
    cp: ControlPlane, user: str, verb: str, resource: str, *scope: str, name: str = ""
) -> bool:
    """``resource`` may name a subresource (``pods/resize``); ``name`` one object."""
    kind, _, sub = resource.partition("/")
    target = f"{kind}/{name}" if name else kind
    extra = [f"--subresource={sub}"] if sub else []
    result = cp.kubectl("auth", "can-i", verb, target, *extra, f"--as={user}", *scope, check=False)
    assert result.stdout.strip() in ("yes", "no"), result.stdout + result.stderr
    return result.stdout.strip() == "yes"


def test_rbac_of_the_two_identities(control_plane: ControlPlane, chart: Chart) -> None:
    """As the API server's authorizer answers (kubectl auth can-i, impersonating)."""
    cp = control_plane
    ns = f"--namespace={CHART_NAMESPACE}"
    other = "--namespace=default"
    try:
        chart.use(apply_enabled=True)
        expected = [
            (SA_USER, "create", "serviceaccounts/token", ns, CHART_ACTUATOR, True),
            (SA_USER, "create", "serviceaccounts/token", ns, CHART_SA, False),
            (SA_USER, "create", "serviceaccounts/token", ns, "default", False),
            (SA_USER, "create", "serviceaccounts/token", other, CHART_ACTUATOR, False),
            (SA_USER, "patch", "pods/resize", other, "", False),
            (SA_USER, "update", "deployments.apps", other, "", False),
            (SA_USER, "get", "secrets", ns, "", False),
            (ACTUATOR_USER, "patch", "deployments.apps", other, "", True),
            (ACTUATOR_USER, "patch", "cronjobs.batch", other, "", True),
            (ACTUATOR_USER, "patch", "pods/resize", other, "", True),
            (ACTUATOR_USER, "patch", "jobs.batch", other, "", False),
            (ACTUATOR_USER, "patch", "pods", other, "", False),
            (ACTUATOR_USER, "get", "deployments.apps", other, "", False),
            (ACTUATOR_USER, "list", "secrets", other, "", False),
            (ACTUATOR_USER, "delete", "deployments.apps", other, "", False),
            (ACTUATOR_USER, "update", "deployments.apps", other, "", False),
            (ACTUATOR_USER, "create", "serviceaccounts/token", ns, CHART_ACTUATOR, False),
            (ACTUATOR_USER, "patch", "efficiencypolicies.rightsizer.io", "", "", False),
        ]
        wrong = [
            f"{user} {verb} {resource} {scope} {name}: {'no' if allowed else 'yes'}"
            for user, verb, resource, scope, name, allowed in expected
            if _can_i(cp, user, verb, resource, *([scope] if scope else []), name=name)
            != allowed
        ]  # fmt: skip
        assert not wrong, "\n".join(wrong)
        # every rule either identity holds, as the authorizer lists them: no wildcard, no
        # Secret, no token but the actuator's; ConfigMaps only the reader's own namespace's
        tokens = {SA_USER: chart.token, ACTUATOR_USER: chart.actuator_token}
        for user, token in tokens.items():
            for namespace in (CHART_NAMESPACE, "default"):
                review = cp.request(
                    "POST",
                    "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
                    body={"spec": {"namespace": namespace}},
                    token=token,
                ).json()
                for rule in review["status"]["resourceRules"]:
                    resources = rule.get("resources") or []
                    if "selfsubject" in " ".join(resources):
                        continue  # every authenticated user's (system:basic-user)
                    assert "*" not in rule["verbs"] and "*" not in resources, (user, rule)
                    assert "secrets" not in resources, (user, rule)
                    if "configmaps" in resources:
                        assert (user, namespace) == (SA_USER, CHART_NAMESPACE), (user, rule)
                    if "serviceaccounts/token" in resources:
                        assert rule.get("resourceNames") == [CHART_ACTUATOR], (user, rule)
    finally:
        chart.use(apply_enabled=False)
    # once apply is off again, the actuator and its rights are gone
    assert not _can_i(cp, ACTUATOR_USER, "patch", "deployments.apps", other)
    assert not _can_i(cp, SA_USER, "create", "serviceaccounts/token", ns, name=CHART_ACTUATOR)


def test_actuator_tokens_come_from_the_token_request_api(
    control_plane: ControlPlane, chart: Chart
) -> None:
    """What the operator does: the reader mints a short-lived actuator token, and the API
    server authenticates it as the actuator."""
    from kubernetes import client, config

    from rightsizer.adapters.identity import TokenSource, actuator_client

    try:
        chart.use(apply_enabled=True)
        settings = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(chart.kubeconfig(name="reader")), client_configuration=settings
        )
        reader = client.ApiClient(settings)
        source = TokenSource(reader, namespace=CHART_NAMESPACE, name=CHART_ACTUATOR)
        actuator = actuator_client(source)
        review = client.V1SelfSubjectReview()
        who = client.AuthenticationV1Api(actuator).create_self_subject_review(review)
        assert who.status and who.status.user_info
        assert who.status.user_info.username == ACTUATOR_USER
        client.AuthenticationV1Api(actuator).create_self_subject_review(review)
        assert source.requests == 1, "a valid token is reused"
        # the token the reader minted is bound to the actuator and short-lived
        expires_in = source._refresh_at - time.time()
        assert 0 < expires_in <= 0.8 * 600 + 5
        # the reader cannot mint a token of any other account
        other = TokenSource(reader, namespace=CHART_NAMESPACE, name=CHART_SA)
        with pytest.raises(client.ApiException) as refused:
            other.token()
        assert refused.value.status == 403
    finally:
        chart.use(apply_enabled=False)


# -- Pod Security Standard "restricted" ----------------------------------------------------
WEAKENED: list[tuple[str, Callable[[dict[str, Any]], object]]] = [
    ("runs as root", lambda pod: pod["securityContext"].update(runAsNonRoot=False, runAsUser=0)),
    ("privileged", lambda pod: pod["containers"][0]["securityContext"].update(
        privileged=True, allowPrivilegeEscalation=True)),
    ("privilege escalation",
     lambda pod: pod["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True)),
    ("a capability added",
     lambda pod: pod["containers"][0]["securityContext"]["capabilities"].update(add=["NET_RAW"])),
    ("capabilities kept",
     lambda pod: pod["containers"][0]["securityContext"].pop("capabilities")),
    ("no seccomp profile", lambda pod: [
        pod["securityContext"].pop("seccompProfile"),
        pod["containers"][0]["securityContext"].pop("seccompProfile")]),
    ("host network", lambda pod: pod.update(hostNetwork=True)),
    ("a hostPath volume", lambda pod: pod["volumes"].append(
        {"name": "host", "hostPath": {"path": "/var/run"}})),
]  # fmt: skip


def _operator_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    template = copy.deepcopy(deployment["spec"]["template"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "rightsizer-operator", "namespace": RESTRICTED,
                     "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }  # fmt: skip


def _create_pod(cp: ControlPlane, pod: dict[str, Any]) -> tuple[int, str]:
    answer = cp.request(
        "POST", f"/api/v1/namespaces/{RESTRICTED}/pods", body=pod, params={"dryRun": "All"}
    )
    return answer.status_code, answer.json().get("message", "")


def test_operator_pod_meets_the_restricted_pod_security_standard(
    control_plane: ControlPlane,
) -> None:
    cp = control_plane
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": RESTRICTED, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "v1.34"}},
    }  # fmt: skip
    cp.kubectl("apply", "-f", "-", stdin=json.dumps(namespace))
    # the chart with everything that adds to the pod: Prometheus token and CA, apply mode
    docs = render_chart(cp, apply_enabled=True)
    text = cp.helm(
        "template", "rightsizer", str(_chart_dir()), "--namespace", CHART_NAMESPACE,
        "--kube-version", "1.34.4", "--set", "apply.enabled=true",
        "--set", "prometheus.auth.secretName=prometheus-token",
        "--set", "prometheus.tls.caSecretName=prometheus-ca",
    )  # fmt: skip
    import yaml

    full = [d for d in yaml.safe_load_all(text) if d]
    for rendered in (docs, full):
        code, message = _create_pod(cp, _operator_pod(rendered))
        assert code == 201, message
    wrong = []
    for what, weaken in WEAKENED:
        pod = _operator_pod(full)
        weaken(pod["spec"])
        code, message = _create_pod(cp, pod)
        if code != 403 or 'violates PodSecurity "restricted:v1.34"' not in message:
            wrong.append(f"{what}: {code} {message}")
    assert not wrong, "\n".join(wrong)


def _chart_dir() -> Any:
    from controlplane import REPO_ROOT

    return REPO_ROOT / "charts" / "rightsizer"


def test_network_policy_is_accepted_and_allows_only_the_api_server_and_prometheus(
    control_plane: ControlPlane,
) -> None:
    import yaml

    cp = control_plane
    text = cp.helm(
        "template", "rightsizer", str(_chart_dir()), "--namespace", CHART_NAMESPACE,
        "--kube-version", "1.34.4", "--set", "networkPolicy.enabled=true",
        "--set", "networkPolicy.apiServerCIDR=10.0.0.1/32",
        "--set", "prometheus.url=https://prometheus.monitoring.svc:9091",
        "--set-json", 'networkPolicy.prometheusSelector={"namespaceSelector": {"matchLabels": '
                      '{"kubernetes.io/metadata.name": "monitoring"}}}',
    )  # fmt: skip
    (policy,) = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "NetworkPolicy"]
    answer = cp.request(
        "POST",
        f"/apis/networking.k8s.io/v1/namespaces/{CHART_NAMESPACE}/networkpolicies",
        body=policy,
        params={"dryRun": "All"},
    )
    assert answer.status_code == 201, answer.text
    spec = answer.json()["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    peers = [(rule["to"], sorted(p["port"] for p in rule["ports"])) for rule in spec["egress"]]
    assert peers[0] == ([{"ipBlock": {"cidr": "10.0.0.1/32"}}], [443, 6443])
    assert peers[1] == (
        [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        [9091],
    )
    assert peers[2][1] == [53, 53] and all("ipBlock" not in p for p in peers[2][0]), "DNS only"
    assert len(peers) == 3, "no other egress"
