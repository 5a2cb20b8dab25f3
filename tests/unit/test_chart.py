"""The Helm chart, rendered by a real helm v3 and read back as YAML.

helm comes from ``scripts/ensure-helm.sh``: the control plane's helm, a cached build, a
helm v3 on PATH, or a fresh ``go install`` of the pinned version (a few minutes, once).
No helm and no Go is a failure with the reason, not a skip.

What a rendering cannot show (the API server accepting the objects, the admission policy
denying a patch) was checked against a real kube-apiserver 1.34 when the chart was
written; the e2e tests are the place to keep checking it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_dockerfile import entrypoint, exec_form

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "rightsizer"
KUBE_VERSION = "1.34.0"
NAMESPACE = "rightsizer-system"
SA_USER = f"system:serviceaccount:{NAMESPACE}:rightsizer"
ACTUATOR_USER = f"system:serviceaccount:{NAMESPACE}:rightsizer-actuator"
WORKLOAD_KINDS = {"deployments", "statefulsets", "daemonsets", "cronjobs"}

Render = Callable[..., list[dict[str, Any]]]

# On a fresh machine the first test builds helm (a few minutes on two cores): more than
# the suite's default per-test timeout. Rendered, every test here takes well under a second.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="session")
def helm() -> str:
    script = REPO / "scripts" / "ensure-helm.sh"
    try:
        done = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=1500, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{script.name} did not find or build helm within 25 minutes")
    if done.returncode != 0 or not done.stdout.strip():
        pytest.fail(f"{script.name} could not provide helm:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def helm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("helm-home")
    return {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


def run_helm(helm: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


@pytest.fixture(scope="session")
def render(helm: str, helm_env: dict[str, str]) -> Render:
    def render(*args: str, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        extra: list[str] = []
        for key, value in (values or {}).items():
            extra += ["--set-json", f"{key}={json.dumps(value)}"]
        done = run_helm(
            helm,
            helm_env,
            "template",
            "rightsizer",
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
            *extra,
            *args,
        )
        assert done.returncode == 0, done.stderr
        return [doc for doc in yaml.safe_load_all(done.stdout) if doc]

    return render


APPLY_VALUES: dict[str, Any] = {
    "apply": {"enabled": True, "inPlaceResize": True},
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "networkPolicy": {
        "enabled": True,
        "apiServerCIDR": "10.0.0.1/32",
        "prometheusSelector": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        },
    },
    "prometheus": {
        "url": "https://prometheus.monitoring.svc:9091",
        "auth": {"secretName": "prometheus-token"},
        "tls": {"caConfigMapName": "prometheus-ca"},
        "headers": {"X-Scope-OrgID": "gov-cloud"},
    },
}


@pytest.fixture(scope="session")
def default_docs(render: Render) -> list[dict[str, Any]]:
    return render()


@pytest.fixture(scope="session")
def apply_docs(render: Render) -> list[dict[str, Any]]:
    return render(values=APPLY_VALUES)


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (operator,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert isinstance(operator, dict)
    return operator


def env_of(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container(docs)["env"]}


# --- lint ----------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [None, APPLY_VALUES], ids=["defaults", "apply"])
def test_helm_lint(
    helm: str, helm_env: dict[str, str], tmp_path: Path, values: dict[str, Any] | None
) -> None:
    args = ["lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION]
    if values:
        values_file = tmp_path / "values.yaml"
        values_file.write_text(yaml.safe_dump(values), encoding="utf-8")
        args += ["--values", str(values_file)]
    done = run_helm(helm, helm_env, *args)
    assert done.returncode == 0, done.stdout + done.stderr


# --- the Deployment ------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["default_docs", "apply_docs"])
def test_one_replica_recreated(request: pytest.FixtureRequest, which: str) -> None:
    docs = request.getfixturevalue(which)
    deployment = one(docs, "Deployment")
    assert deployment["metadata"]["namespace"] == NAMESPACE
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_security_context_is_restricted(default_docs: list[dict[str, Any]]) -> None:
    pod = one(default_docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container(default_docs)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 10001
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    mounts = {m["mountPath"]: m["name"] for m in container(default_docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "a writable emptyDir at /tmp"
    assert all(
        set(v) <= {"name", "emptyDir", "secret", "configMap", "projected"} for v in volumes.values()
    ), "restricted allows no hostPath"


def test_command_is_the_images_entrypoint(default_docs: list[dict[str, Any]]) -> None:
    operator = container(default_docs)
    assert operator["command"] == entrypoint()
    assert operator["args"] == exec_form("CMD")
    assert operator["image"] == "rightsizer:0.1.0", "the tag defaults to appVersion"


def test_peering_replaces_standalone(render: Render) -> None:
    args = container(render(values={"kopf": {"peering": "rightsizer"}}))["args"]
    assert "--peering=rightsizer" in args
    assert "--standalone" not in args


def test_probes_resources_and_ports(default_docs: list[dict[str, Any]]) -> None:
    operator = container(default_docs)
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}
    assert ports == {"health": 8080, "metrics": 9102}
    for probe in ("livenessProbe", "readinessProbe"):
        assert operator[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert operator["resources"]["requests"] == {"cpu": "200m", "memory": "256Mi"}
    assert operator["resources"]["limits"] == {"memory": "512Mi"}
    service = one(default_docs, "Service")
    assert service["spec"]["ports"][0]["port"] == 9102


def test_environment_defaults(default_docs: list[dict[str, Any]]) -> None:
    env = env_of(default_docs)
    assert env["RIGHTSIZER_PROMETHEUS_URL"].startswith("http")
    assert env["RIGHTSIZER_APPLY_ENABLED"] == "false"
    assert env["RIGHTSIZER_TICK_SECONDS"] == "60"
    assert env["RIGHTSIZER_EVALUATIONS_AT_ONCE"] == "4"
    assert env["RIGHTSIZER_RELEASE_MEMORY_SECONDS"] == "10"
    assert env["RIGHTSIZER_METRICS_PORT"] == "9102"
    assert env["RIGHTSIZER_LOG_FORMAT"] == "json"
    for absent in (
        "RIGHTSIZER_PROMETHEUS_BEARER_TOKEN_FILE",
        "RIGHTSIZER_PROMETHEUS_CA_FILE",
        "RIGHTSIZER_PROMETHEUS_HEADERS",
    ):
        assert absent not in env


def test_environment_with_prometheus_auth(apply_docs: list[dict[str, Any]]) -> None:
    env = env_of(apply_docs)
    assert env["RIGHTSIZER_APPLY_ENABLED"] == "true"
    assert env["RIGHTSIZER_PROMETHEUS_HEADERS"] == '{"X-Scope-OrgID":"gov-cloud"}'
    mounts = {m["name"]: m["mountPath"] for m in container(apply_docs)["volumeMounts"]}
    token_file = env["RIGHTSIZER_PROMETHEUS_BEARER_TOKEN_FILE"]
    assert token_file.startswith(mounts["prometheus-token"] + "/")
    assert env["RIGHTSIZER_PROMETHEUS_CA_FILE"].startswith(mounts["prometheus-ca"] + "/")
    volumes = {
        v["name"]: v for v in one(apply_docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes["prometheus-token"]["secret"]["secretName"] == "prometheus-token"
    assert volumes["prometheus-ca"]["configMap"]["name"] == "prometheus-ca"


BASIC_AUTH_VALUES: dict[str, Any] = {
    "prometheus": {
        "url": "https://vmselect.monitoring.svc:8481/select/0/prometheus",
        "backend": "victoriametrics",
        "basicAuth": {"secretName": "vm-reader", "key": "userpass"},
        "tls": {"caSecretName": "vm-ca", "caKey": "bundle.pem", "insecureSkipVerify": False},
        "headers": {"X-Scope-OrgID": "finance", "X-Trace": "on"},
    }
}


def test_environment_with_basic_auth_ca_secret_and_backend(render: Render) -> None:
    docs = render(values=BASIC_AUTH_VALUES)
    env = env_of(docs)
    mounts = {m["name"]: m["mountPath"] for m in container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert env["RIGHTSIZER_PROMETHEUS_BACKEND"] == "victoriametrics"
    assert (
        env["RIGHTSIZER_PROMETHEUS_BASIC_AUTH_FILE"]
        == mounts["prometheus-basic-auth"] + "/userpass"
    )
    assert volumes["prometheus-basic-auth"]["secret"] == {
        "secretName": "vm-reader",
        "items": [{"key": "userpass", "path": "userpass"}],
    }
    assert env["RIGHTSIZER_PROMETHEUS_CA_FILE"] == mounts["prometheus-ca"] + "/bundle.pem"
    assert volumes["prometheus-ca"]["secret"]["secretName"] == "vm-ca"
    assert (
        json.loads(env["RIGHTSIZER_PROMETHEUS_HEADERS"])
        == BASIC_AUTH_VALUES["prometheus"]["headers"]
    )
    assert "RIGHTSIZER_PROMETHEUS_BEARER_TOKEN_FILE" not in env
    assert "RIGHTSIZER_PROMETHEUS_INSECURE" not in env
    insecure = render(values={"prometheus": {"tls": {"insecureSkipVerify": True}}})
    assert env_of(insecure)["RIGHTSIZER_PROMETHEUS_INSECURE"] == "true"
    assert env_of(insecure)["RIGHTSIZER_PROMETHEUS_BACKEND"] == "prometheus"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"prometheus": {"auth": {"secretName": "t"}, "basicAuth": {"secretName": "b"}}},
            "not both",
        ),
        ({"prometheus": {"backend": "influx"}}, "prometheus.backend"),
    ],
    ids=["token-and-basic-auth", "unknown-backend"],
)
def test_prometheus_connection_values_are_checked(
    helm: str, helm_env: dict[str, str], values: dict[str, Any], message: str
) -> None:
    extra = [
        a for key, value in values.items() for a in ("--set-json", f"{key}={json.dumps(value)}")
    ]
    done = run_helm(
        helm, helm_env, "template", "rightsizer", str(CHART), "--kube-version", KUBE_VERSION, *extra
    )
    assert done.returncode != 0
    assert message in done.stderr


# --- RBAC ----------------------------------------------------------------------------------


def rules_of(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    (role,) = [r for r in of_kind(docs, "ClusterRole") if r["metadata"]["name"] == name]
    rules = role["rules"]
    assert isinstance(rules, list)
    return rules


def grants(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    return {
        verb
        for rule in rules
        if group in rule["apiGroups"] and resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_no_wildcards_in_rbac(default_docs: list[dict[str, Any]], apply_docs: list[Any]) -> None:
    for docs in (default_docs, apply_docs):
        for role in of_kind(docs, "ClusterRole") + of_kind(docs, "Role"):
            for rule in role["rules"]:
                for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                    assert not any("*" in item for item in rule.get(key, [])), (
                        role["metadata"]["name"],
                        rule,
                    )


def test_one_service_account_with_two_cluster_roles(default_docs: list[dict[str, Any]]) -> None:
    account = one(default_docs, "ServiceAccount")
    name = account["metadata"]["name"]
    assert account["metadata"]["namespace"] == NAMESPACE
    pod = one(default_docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == name
    roles = {r["metadata"]["name"] for r in of_kind(default_docs, "ClusterRole")}
    assert roles == {"rightsizer-read", "rightsizer-annotate"}
    bound = {
        b["roleRef"]["name"]: b["subjects"] for b in of_kind(default_docs, "ClusterRoleBinding")
    }
    assert set(bound) == roles
    for subjects in bound.values():
        assert subjects == [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}]


def test_read_role(default_docs: list[dict[str, Any]]) -> None:
    rules = rules_of(default_docs, "rightsizer-read")
    read = {"get", "list", "watch"}
    for group, resources in {
        "": ["namespaces", "nodes", "pods", "limitranges"],
        "apps": ["deployments", "statefulsets", "daemonsets"],
        "batch": ["cronjobs", "jobs"],
        "autoscaling": ["horizontalpodautoscalers"],
        "rightsizer.io": ["efficiencypolicies", "efficiencyreports"],
        "kopf.dev": ["kopfpeerings", "clusterkopfpeerings"],
    }.items():
        for resource in resources:
            assert read <= grants(rules, group, resource), (group, resource)
    assert {"patch"} <= grants(rules, "kopf.dev", "kopfpeerings")
    assert {"create", "patch"} <= grants(rules, "", "events")
    assert {"patch", "update"} <= grants(rules, "rightsizer.io", "efficiencypolicies/status")
    assert {"create", "update", "patch"} <= grants(rules, "rightsizer.io", "efficiencyreports")
    assert "patch" in grants(rules, "rightsizer.io", "efficiencypolicies")
    for group, resource in [("apps", "deployments"), ("batch", "cronjobs"), ("", "pods")]:
        assert not grants(rules, group, resource) - read, f"read role writes {resource}"
    assert not any("delete" in rule["verbs"] for rule in rules)


def test_annotate_role(default_docs: list[dict[str, Any]], apply_docs: list[Any]) -> None:
    rules = rules_of(default_docs, "rightsizer-annotate")
    for group, resource in [
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("batch", "cronjobs"),
    ]:
        assert grants(rules, group, resource) == {"patch"}
    assert {verb for rule in rules for verb in rule["verbs"]} == {"patch"}
    assert not grants(rules, "", "pods/resize")
    assert not grants(rules_of(apply_docs, "rightsizer-annotate"), "", "pods/resize")


def test_apply_adds_the_actuator_and_only_then(
    default_docs: list[dict[str, Any]], apply_docs: list[dict[str, Any]], render: Render
) -> None:
    """Two identities: the reader (the pod's) and, with apply.enabled, the actuator, which
    only patches workloads (and pods/resize), and whose tokens only the reader may mint."""
    assert [a["metadata"]["name"] for a in of_kind(default_docs, "ServiceAccount")] == [
        "rightsizer"
    ]
    names = {r["metadata"]["name"] for r in of_kind(default_docs, "Role")}
    assert "rightsizer-actuator-token" not in names
    assert "RIGHTSIZER_ACTUATOR_SERVICE_ACCOUNT" not in env_of(default_docs)
    accounts = {a["metadata"]["name"]: a for a in of_kind(apply_docs, "ServiceAccount")}
    assert set(accounts) == {"rightsizer", "rightsizer-actuator"}
    assert accounts["rightsizer-actuator"]["automountServiceAccountToken"] is False
    pod = one(apply_docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "rightsizer", "the pod runs as the reader"
    assert env_of(apply_docs)["RIGHTSIZER_ACTUATOR_SERVICE_ACCOUNT"] == "rightsizer-actuator"
    assert env_of(apply_docs)["RIGHTSIZER_ACTUATOR_TOKEN_SECONDS"] == "600"
    actuate = rules_of(apply_docs, "rightsizer-actuate")
    assert {verb for rule in actuate for verb in rule["verbs"]} == {"patch"}
    assert {r for rule in actuate for r in rule["resources"]} == WORKLOAD_KINDS | {"pods/resize"}
    without_resize = render(values={"apply": {"enabled": True, "inPlaceResize": False}})
    assert not grants(rules_of(without_resize, "rightsizer-actuate"), "", "pods/resize")
    bindings = {
        b["metadata"]["name"]: b
        for b in of_kind(apply_docs, "ClusterRoleBinding") + of_kind(apply_docs, "RoleBinding")
    }
    assert bindings["rightsizer-actuate"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "rightsizer-actuator", "namespace": NAMESPACE}
    ]
    for name in ("rightsizer-read", "rightsizer-annotate", "rightsizer-actuator-token"):
        assert bindings[name]["subjects"][0]["name"] == "rightsizer", name
    (role,) = [r for r in of_kind(apply_docs, "Role") if r["metadata"]["name"].endswith("-token")]
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts/token"],
            "resourceNames": ["rightsizer-actuator"],
            "verbs": ["create"],
        }
    ]


def test_no_role_reads_secrets_or_configmaps(
    default_docs: list[dict[str, Any]], apply_docs: list[dict[str, Any]]
) -> None:
    """No secrets beyond the Prometheus credential, which is mounted, not read by the API;
    ConfigMaps only in the release namespace (the operator's own state)."""
    for docs in (default_docs, apply_docs):
        for role in of_kind(docs, "ClusterRole") + of_kind(docs, "Role"):
            for rule in role["rules"]:
                assert not {"secrets", "serviceaccounts"} & set(rule["resources"])
                if "configmaps" in rule["resources"]:
                    assert role["kind"] == "Role" and role["metadata"]["namespace"] == NAMESPACE
                if "serviceaccounts/token" in rule["resources"]:
                    assert rule["resourceNames"] == ["rightsizer-actuator"]


# --- the admission policy ------------------------------------------------------------------


def admission(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    policy = one(docs, "ValidatingAdmissionPolicy")
    binding = one(docs, "ValidatingAdmissionPolicyBinding")
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert policy["spec"]["failurePolicy"] == "Fail"
    (condition,) = policy["spec"]["matchConditions"]
    assert condition["expression"] in (
        f"request.userInfo.username == '{SA_USER}'",
        f"request.userInfo.username in ['{SA_USER}', '{ACTUATOR_USER}']",
    )
    matched = {
        resource
        for rule in policy["spec"]["matchConstraints"]["resourceRules"]
        for resource in rule["resources"]
    }
    assert matched == WORKLOAD_KINDS
    for rule in policy["spec"]["matchConstraints"]["resourceRules"]:
        assert rule["operations"] == ["UPDATE"]
    return policy, binding


def expressions(policy: dict[str, Any]) -> Iterator[str]:
    for validation in policy["spec"]["validations"]:
        yield " ".join(validation["expression"].split())


def test_apply_disabled_policy_denies_spec_changes(default_docs: list[dict[str, Any]]) -> None:
    policy, _ = admission(default_docs)
    checks = list(expressions(policy))
    assert "object.spec == oldObject.spec" in checks
    assert "variables.sameLabels && variables.sameOwnership" in checks
    assert not any("resources" in check for check in checks)


def test_apply_enabled_policy_allows_only_container_resources(
    apply_docs: list[dict[str, Any]],
) -> None:
    policy, _ = admission(apply_docs)
    checks = list(expressions(policy))
    assert "object.spec == oldObject.spec" not in checks
    assert "variables.sameLabels && variables.sameOwnership" in checks
    variables = {v["name"]: " ".join(v["expression"].split()) for v in policy["spec"]["variables"]}
    assert "jobTemplate" in variables["sameOutsideTemplate"]
    assert "variables.sameOutsideTemplate" in checks
    (containers,) = [check for check in checks if "k == 'resources'" in check]
    assert "size(variables.newContainers) == size(variables.oldContainers)" in containers
    assert "initContainers" in variables["newContainers"]


def test_admission_policy_can_be_turned_off(render: Render) -> None:
    docs = render(values={"admissionPolicy": {"enabled": False}})
    assert not of_kind(docs, "ValidatingAdmissionPolicy")
    assert not of_kind(docs, "ValidatingAdmissionPolicyBinding")


# --- optional objects ----------------------------------------------------------------------


def test_service_monitor_only_when_enabled(
    default_docs: list[dict[str, Any]], apply_docs: list[dict[str, Any]]
) -> None:
    assert not of_kind(default_docs, "ServiceMonitor")
    monitor = one(apply_docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    service = one(apply_docs, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


def test_network_policy(
    default_docs: list[dict[str, Any]], apply_docs: list[dict[str, Any]]
) -> None:
    assert not of_kind(default_docs, "NetworkPolicy")
    policy = one(apply_docs, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    api, prometheus, dns = policy["egress"]
    assert api["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]
    assert [p["port"] for p in prometheus["ports"]] == [9091], "the port of prometheus.url"
    assert prometheus["to"] == [APPLY_VALUES["networkPolicy"]["prometheusSelector"]]
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert {p["port"] for rule in policy["ingress"] for p in rule["ports"]} == {"metrics", "health"}


def test_network_policy_needs_its_addresses(helm: str, helm_env: dict[str, str]) -> None:
    done = run_helm(
        helm,
        helm_env,
        "template",
        "rightsizer",
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "networkPolicy.enabled=true",
    )
    assert done.returncode != 0
    assert "networkPolicy.apiServerCIDR" in done.stderr


# --- CRDs ----------------------------------------------------------------------------------


def test_chart_crds_equal_the_generated_ones(render: Render) -> None:
    chart_crds = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert chart_crds == sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    for name in chart_crds:
        assert (CHART / "crds" / name).read_bytes() == (REPO / "crds" / name).read_bytes(), (
            f"charts/rightsizer/crds/{name} differs from crds/{name}; regenerate with: "
            "python -m rightsizer.api.crdgen crds charts/rightsizer/crds"
        )
    installed = of_kind(render("--include-crds"), "CustomResourceDefinition")
    assert {crd["metadata"]["name"] for crd in installed} == {
        "efficiencypolicies.rightsizer.io",
        "efficiencyreports.rightsizer.io",
    }


def test_admission_policy_bounds_the_actuator(
    apply_docs: list[dict[str, Any]], render: Render
) -> None:
    """Both identities: rightsizer.io/* annotations only; the reader never the spec; the
    actuator's cpu/memory values within admissionPolicy.bounds (checked live in
    tests/e2e/test_e2e_security.py)."""
    policy, _ = admission(apply_docs)
    checks = list(expressions(policy))
    assert "variables.othersAnnotationsSame" in checks
    assert "variables.isActuator || object.spec == oldObject.spec" in checks
    variables = {v["name"]: " ".join(v["expression"].split()) for v in policy["spec"]["variables"]}
    assert variables["isActuator"] == f"request.userInfo.username == '{ACTUATOR_USER}'"
    assert "k.startsWith('rightsizer.io/')" in variables["othersAnnotationsSame"]
    assert variables["bounds"] == "{'cpu': ['1m', '64'], 'memory': ['4Mi', '256Gi']}"
    (bounded,) = [c for c in checks if "variables.bounds" in c]
    assert "quantity(" in bounded and "claims" in bounded
    tighter = {"cpu": {"min": "10m", "max": "8"}, "memory": {"min": "16Mi", "max": "32Gi"}}
    docs = render(values={"apply": {"enabled": True}, "admissionPolicy": {"bounds": tighter}})
    policy, _ = admission(docs)
    variables = {v["name"]: " ".join(v["expression"].split()) for v in policy["spec"]["variables"]}
    assert variables["bounds"] == "{'cpu': ['10m', '8'], 'memory': ['16Mi', '32Gi']}"
