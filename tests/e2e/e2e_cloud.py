"""The synthetic cloud as real API objects, the chart's identity, and the operator as a process.

Workload manifests come from ``tests/operator/manifests.py`` (the kmock suite's builder of
truth.json objects), loaded by path so its module name cannot clash with ours; the fields
only an emulator needs (uid, resourceVersion, generation, status) are dropped here, because
a real API server sets them itself and refuses a create that carries a resourceVersion.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest
import yaml
from controlplane import REPO_ROOT, ControlPlane, Process

from rightsizer.process import ALLOCATOR_ENVIRONMENT

T = TypeVar("T")


def _load_operator_manifests() -> ModuleType:
    path = REPO_ROOT / "tests" / "operator" / "manifests.py"
    spec = importlib.util.spec_from_file_location("rightsizer_e2e_truth_manifests", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


manifests = _load_operator_manifests()
AGENCY_LABEL: str = manifests.AGENCY_LABEL
EXCLUDE: str = manifests.EXCLUDE
KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob")
PLURAL = {
    "Deployment": "apps/v1/deployments",
    "StatefulSet": "apps/v1/statefulsets",
    "DaemonSet": "apps/v1/daemonsets",
    "CronJob": "batch/v1/cronjobs",
}
GRADE, SCORE = "rightsizer.io/grade", "rightsizer.io/score"
RECOMMENDATION = "rightsizer.io/recommendation"
PREVIOUS = "rightsizer.io/previous-resources"
STATE = "rightsizer.io/state"
POLICIES = "/apis/rightsizer.io/v1alpha1/efficiencypolicies"
REPORTS = "/apis/rightsizer.io/v1alpha1/efficiencyreports"
# shapes whose grade and action the generator guarantees (as in tests/operator)
CLEAR_SHAPES = ("idle", "overprovisioned", "rightsized", "at-capacity", "oom-killed")
CHART_NAMESPACE = "rightsizer"
CHART_SA = "rightsizer"
SA_USER = f"system:serviceaccount:{CHART_NAMESPACE}:{CHART_SA}"  # the reader
CHART_ACTUATOR = "rightsizer-actuator"  # apply.enabled only: the identity of resize patches
ACTUATOR_USER = f"system:serviceaccount:{CHART_NAMESPACE}:{CHART_ACTUATOR}"
PROBE = "e2e-admission-probe"  # a Deployment the admission-policy probes patch (dry run)


def key(workload: Mapping[str, Any]) -> str:
    return f"{workload['kind']}/{workload['namespace']}/{workload['name']}"


def _real(body: dict[str, Any]) -> dict[str, Any]:
    """An emulator object made creatable on a real API server."""
    body = copy.deepcopy(body)
    for name in ("uid", "resourceVersion", "generation"):
        body["metadata"].pop(name, None)
    body.pop("status", None)
    return body


def scale_resources(body: dict[str, Any], factor: float) -> None:
    """Multiply every cpu/memory request and limit of the pod template by ``factor``."""
    from rightsizer.core.units import format_quantity, parse_quantity

    for container in manifests.pod_template(body)["containers"]:
        for part in ("requests", "limits"):
            values = container.get("resources", {}).get(part, {})
            for name in ("cpu", "memory"):
                if name in values:
                    values[name] = format_quantity(name, parse_quantity(values[name]) * factor)


@dataclass
class Cloud:
    """The truth's agencies, namespaces and workloads as created in the API server."""

    truth: dict[str, Any]
    created: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> object as sent
    excluded: set[str] = field(default_factory=set)
    inflated: set[str] = field(default_factory=set)  # CronJobs whose requests were raised

    @property
    def agencies(self) -> list[str]:
        return [a["agency"] for a in self.truth["agencies"]]

    def workloads(self, agency: str) -> list[dict[str, Any]]:
        return [w for w in self.truth["workloads"] if w["agency"] == agency]

    def truth_of(self, workload_key: str) -> dict[str, Any]:
        return next(w for w in self.truth["workloads"] if key(w) == workload_key)

    def expected_changes(self, agency: str) -> set[str]:
        """Workloads the truth says an apply-mode evaluation changes: clear downsize/upsize
        shapes, and the CronJobs whose requests were inflated (4x what they use)."""
        return {
            key(w)
            for w in self.workloads(agency)
            if key(w) not in self.excluded
            and (
                key(w) in self.inflated
                or (w["shape"] in CLEAR_SHAPES and w["expectedAction"] in ("downsize", "upsize"))
            )
        }

    def objects(self) -> list[dict[str, Any]]:
        """Namespaces first, then workloads and HPAs."""
        found = [
            _real(manifests.namespace_object(ns, agency["agency"]))
            for agency in self.truth["agencies"]
            for ns in agency["namespaces"]
        ]
        for workload in self.truth["workloads"]:
            body = _real(
                manifests.workload_object(
                    workload, uid="-", excluded=key(workload) in self.excluded
                )
            )
            if key(workload) in self.inflated:
                scale_resources(body, 4)
            self.created[key(workload)] = body
            found.append(body)
            if workload["hpa"]:
                found.append(_real(manifests.hpa_object(workload)))
        return found


def path_of(workload_key: str) -> str:
    kind, namespace, name = workload_key.split("/")
    group_version, plural = PLURAL[kind].rsplit("/", 1)
    return f"/apis/{group_version}/namespaces/{namespace}/{plural}/{name}"


def pod_spec(body: Mapping[str, Any]) -> dict[str, Any]:
    return manifests.pod_template(body)  # type: ignore[no-any-return]


def resources(body: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Container name -> {'requests': ..., 'limits': ...} of the pod template."""
    return manifests.containers(body)  # type: ignore[no-any-return]


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    *,
    timeout: float = 60,
    interval: float = 0.3,
    alive: Iterable[Process] = (),
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        for process in alive:
            process.check_alive()
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(f"== {p.name} log tail:\n{p.tail(40)}" for p in alive)
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{tails}")
        time.sleep(interval)


# -- the chart ------------------------------------------------------------------------------
RBAC_KINDS = (
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)


def render_chart(cp: ControlPlane, *, apply_enabled: bool) -> list[dict[str, Any]]:
    """``helm template charts/rightsizer`` with apply on or off: every rendered object."""
    text = cp.helm(
        "template", "rightsizer", str(REPO_ROOT / "charts" / "rightsizer"),
        "--namespace", CHART_NAMESPACE, "--kube-version", "1.34.4",
        "--set", f"apply.enabled={'true' if apply_enabled else 'false'}",
        "--set", f"apply.inPlaceResize={'true' if apply_enabled else 'false'}",
    )  # fmt: skip
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _identity(docs: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
        for d in docs
        if d["kind"] in RBAC_KINDS
    }


def install_chart_identity(
    cp: ControlPlane, *, apply_enabled: bool, previous: Iterable[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Apply the rendered ServiceAccounts, RBAC and admission policy (not the Deployment:
    the operator runs here as a process with the reader's token), and delete what the
    ``previous`` render had and this one has not (the actuator, once apply is off), as
    ``helm upgrade`` would."""
    docs = render_chart(cp, apply_enabled=apply_enabled)
    chosen = _identity(docs)
    cp.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                     "items": list(chosen.values())}))  # fmt: skip
    for kind, namespace, name in sorted(set(_identity(previous)) - set(chosen)):
        scope = ["-n", namespace] if namespace else []
        cp.kubectl("delete", kind, name, *scope, "--ignore-not-found", "--wait=false")
    return docs


def operator_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The literal env values of the rendered Deployment's operator container."""
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def sa_token(cp: ControlPlane, account: str = CHART_SA) -> str:
    """A TokenRequest for the chart's reader (or ``account``), by ``kubectl create token``."""
    return cp.kubectl(
        "create", "token", account, "-n", CHART_NAMESPACE, "--duration", "2h"
    ).stdout.strip()


class Chart:
    """The chart's ServiceAccount, RBAC and admission policy, rendered with apply on or off."""

    def __init__(self, cp: ControlPlane, work: Path) -> None:
        self.cp, self.work = cp, work
        self.apply_enabled: bool | None = None
        self.docs: list[dict[str, Any]] = []
        self._token: str | None = None
        self._actuator_token: str | None = None

    def use(self, *, apply_enabled: bool) -> list[dict[str, Any]]:
        if self.apply_enabled is not apply_enabled:
            self.docs = install_chart_identity(
                self.cp, apply_enabled=apply_enabled, previous=self.docs
            )
            self.apply_enabled = apply_enabled
            self._actuator_token = None  # a re-created actuator account has a new uid
            if self.has_admission_policy:
                self._wait_admission(allowed=apply_enabled)
        return self.docs

    @property
    def has_admission_policy(self) -> bool:
        return any(d["kind"] == "ValidatingAdmissionPolicy" for d in self.docs)

    @property
    def env(self) -> dict[str, str]:
        return operator_env(self.docs)

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = sa_token(self.cp)
        return self._token

    @property
    def actuator_token(self) -> str:
        """A token of the actuator (apply mode), as the operator mints them."""
        assert self.apply_enabled, "the actuator exists with apply.enabled only"
        if self._actuator_token is None:
            self._actuator_token = sa_token(self.cp, CHART_ACTUATOR)
        return self._actuator_token

    def kubeconfig(
        self, server: str | None = None, name: str = "operator", *, actuator: bool = False
    ) -> Path:
        """The reader's kubeconfig (the operator's); ``actuator``: the actuator's."""
        token = self.actuator_token if actuator else self.token
        return self.cp.token_kubeconfig(self.work / f"{name}.kubeconfig", token, server=server)

    def probe_resize(self, *, dry_run: bool = True) -> Any:
        """As the ServiceAccount: change the probe Deployment's container requests."""
        patch = [
            {"op": "replace", "path": "/spec/template/spec/containers/0/resources/requests/cpu",
             "value": f"{int(time.monotonic() * 1000) % 500 + 100}m"},
        ]  # fmt: skip
        return self.cp.request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{CHART_NAMESPACE}/deployments/{PROBE}",
            body=patch,
            content_type="application/json-patch+json",
            token=self.actuator_token if self.apply_enabled else self.token,
            params={"dryRun": "All"} if dry_run else None,
        )

    def _probe_image_denied(self) -> bool:
        patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                  "value": "registry.invalid/other:2"}]  # fmt: skip
        answer = self.cp.request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{CHART_NAMESPACE}/deployments/{PROBE}",
            body=patch,
            content_type="application/json-patch+json",
            token=self.actuator_token,
            params={"dryRun": "All"},
        )
        return answer.status_code == 403 and "ValidatingAdmissionPolicy" in answer.text

    def _wait_admission(self, *, allowed: bool) -> None:
        """The API server loads a changed policy a moment later: wait until it decides."""

        def decided() -> bool:
            answer = self.probe_resize()
            if allowed:  # and the new policy is in force: the actuator may change no image
                return answer.status_code < 300 and self._probe_image_denied()
            return answer.status_code == 403 and "ValidatingAdmissionPolicy" in answer.text

        wait_for(
            f"the admission policy to {'allow' if allowed else 'deny'} resizes",
            decided,
            timeout=30,
        )


# -- the operator -----------------------------------------------------------------------------
@dataclass
class OperatorProcess:
    """``python -m kopf run -m rightsizer.handlers --all-namespaces --standalone``."""

    kubeconfig: Path
    prometheus_url: str
    log_path: Path
    apply_enabled: bool = False
    actuator: str | None = CHART_ACTUATOR  # apply mode: whose tokens make resize patches
    extra_env: dict[str, str] = field(default_factory=dict)  # set last, e.g. RIGHTSIZER_STATE
    process: Process | None = None

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KUBERNETES_", "RIGHTSIZER_")) and k != "KUBECONFIG"
        }
        env.update(
            ALLOCATOR_ENVIRONMENT,  # as the image's ENV sets it
            KUBECONFIG=str(self.kubeconfig),
            RIGHTSIZER_PROMETHEUS_URL=self.prometheus_url,
            RIGHTSIZER_TICK_SECONDS="2",
            RIGHTSIZER_JITTER_SECONDS="0",
            RIGHTSIZER_METRICS_PORT="0",
            RIGHTSIZER_LOG_FORMAT="json",
            RIGHTSIZER_APPLY_ENABLED="true" if self.apply_enabled else "false",
        )
        if self.apply_enabled and self.actuator:  # as the chart's Deployment sets it
            env.update(
                RIGHTSIZER_ACTUATOR_SERVICE_ACCOUNT=self.actuator,
                RIGHTSIZER_ACTUATOR_NAMESPACE=CHART_NAMESPACE,
            )
        env.update(self.extra_env)
        return env

    def start(self) -> OperatorProcess:
        command = [
            sys.executable, "-m", "kopf", "run", "-m", "rightsizer.handlers",
            "--all-namespaces", "--standalone", "--log-format=json",
        ]  # fmt: skip
        self.process = Process("operator", command, self.log_path)
        self.process.start(self.env())
        return self

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=15)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no status write, no goodbye."""
        assert self.process is not None
        self.process.kill()

    def logs(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    @property
    def alive(self) -> list[Process]:
        return [self.process] if self.process is not None else []


def policy(name: str, agency: str, **spec: Any) -> dict[str, Any]:
    return manifests.policy_object(name, agency, **spec)  # type: ignore[no-any-return]


def condition(status: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def evaluated(cp: ControlPlane, name: str, *, after: str = "") -> dict[str, Any] | None:
    """The policy's status once an evaluation of its current generation (later than
    ``after``) is recorded, else None."""
    body = cp.get(f"{POLICIES}/{name}")
    status = body.get("status") or {}
    last = status.get("lastEvaluation")
    if not last or last <= after:
        return None
    if status.get("observedGeneration") != body["metadata"].get("generation"):
        return None
    return status  # type: ignore[no-any-return]


def snapshot(cp: ControlPlane, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    return {k: cp.get(path_of(k)) for k in keys}


def events(cp: ControlPlane, namespaces: Iterable[str], reason: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for namespace in namespaces:
        items = cp.get(f"/api/v1/namespaces/{namespace}/events")["items"]
        found.extend(e for e in items if e["reason"] == reason)
    return found


def involved(event: Mapping[str, Any]) -> str:
    o = event["involvedObject"]
    return f"{o['kind']}/{o['namespace']}/{o['name']}"


def operator_audit(cp: ControlPlane) -> list[dict[str, Any]]:
    """The audit log's events of the operator's identities: the reader and the actuator."""
    return sorted(
        cp.audit(SA_USER) + cp.audit(ACTUATOR_USER), key=lambda e: e["requestReceivedTimestamp"]
    )


def denials(cp: ControlPlane, *, since: str) -> list[str]:
    """Requests of the chart's ServiceAccounts the API server refused (403) since ``since``
    (an RFC 3339 time), outside the chart's namespace (where the identity tests probe)."""
    return [
        f"{e['verb']} {e['requestURI']}: {e['responseStatus'].get('message', '')}"
        for e in operator_audit(cp)
        if e["requestReceivedTimestamp"] >= since
        and e.get("responseStatus", {}).get("code") == 403
        and (e.get("objectRef") or {}).get("namespace") != CHART_NAMESPACE
    ]


def rfc3339_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def recommendation(body: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(body["metadata"].get("annotations", {})[RECOMMENDATION])  # type: ignore[no-any-return]


def operator_errors(operator: OperatorProcess) -> list[dict[str, Any]]:
    return [r for r in operator.logs() if str(r.get("level", "")).lower() in ("error", "critical")]


def _amount(resource: str, value: Any) -> float | None:
    from rightsizer.core.units import parse_quantity

    return None if value is None else parse_quantity(value)


def consistent_change(original: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """'unchanged' or 'changed', after checking container by container that the requests,
    limits and annotations agree: unchanged resources carry no previous-resources record;
    changed ones carry the original values in it and the recommended values in the spec."""
    name = f"{current['kind']}/{current['metadata']['namespace']}/{current['metadata']['name']}"
    before, now = resources(original), resources(current)
    assert set(before) == set(now), (name, "containers changed", set(before), set(now))
    notes = current["metadata"].get("annotations", {})
    changed = {c for c in now if now[c] != before[c]}
    if not changed:
        assert PREVIOUS not in notes, (name, "previous-resources without a change")
        return "unchanged"
    assert PREVIOUS in notes, (name, "resources changed without previous-resources", changed)
    previous = json.loads(notes[PREVIOUS])
    assert set(previous) == changed, (name, "previous-resources names", set(previous), changed)
    proposal = recommendation(current)
    assert proposal["decision"] == "apply", (name, proposal["decision"])
    for container in changed:
        for part in ("requests", "limits"):
            old = before[container].get(part, {})
            recorded = previous[container].get(part, {})
            assert {r: _amount(r, v) for r, v in recorded.items()} == {
                r: _amount(r, v) for r, v in old.items() if r in ("cpu", "memory")
            }, (name, container, part, recorded, old)
        for resource in ("cpu", "memory"):
            rec = proposal["containers"][container].get(resource, {})
            for part, field_name in (("requests", "request"), ("limits", "limit")):
                old = before[container].get(part, {}).get(resource)
                new = now[container].get(part, {}).get(resource)
                if _amount(resource, old) == _amount(resource, new):
                    continue
                wanted = _amount(resource, rec.get(field_name))
                assert wanted is not None, (name, container, resource, part, "removed", rec)
                assert _amount(resource, new) == pytest.approx(wanted, rel=1e-6), (
                    name, container, resource, part, new, rec,
                )  # fmt: skip
    return "changed"


def delete_policy(cp: ControlPlane, name: str) -> None:
    """Delete a policy and wait until it is gone. kopf puts a finalizer on every policy (its
    timer needs one); with no operator running to release it, the test removes it, as an
    administrator would."""
    path = f"{POLICIES}/{name}"
    cp.request("DELETE", path)
    if cp.request("GET", path).status_code == 404:
        return
    cp.request(
        "PATCH",
        path,
        body={"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    wait_for(f"policy {name} deleted", lambda: cp.request("GET", path).status_code == 404)
