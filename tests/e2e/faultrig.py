"""The fault matrix's rig: one apply-mode operator that reaches the real kube-apiserver and
a real Prometheus only through fault proxies, a policy over the third agency, and what a
row needs to prove its outcome (what reached the API server, workload generations, a
reset to the state before the row).

The operator runs with the fastest schedule the code allows (a 0.5 s tick, a failed
evaluation retried after 0.5 s, 3 s timeouts for Prometheus queries and API calls); the
policy applies at most one change per evaluation with no notice and no cooldown, so each
evaluation is owed exactly one change and a row can count it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from controlplane import ControlPlane
from e2e_cloud import (
    EXCLUDE,
    POLICIES,
    Chart,
    Cloud,
    OperatorProcess,
    condition,
    delete_policy,
    key,
    path_of,
    policy,
    rfc3339_now,
    snapshot,
    wait_for,
)
from faultproxy import JSON_PATCH, FaultProxy, Seen

from rightsizer.localprom import LocalPrometheus

POLICY = "fault-matrix"
SAFETY = {"noticeEvaluations": 1, "maxChangesPerEvaluation": 1, "cooldown": "0s", "maxTries": 2}
PROMETHEUS_TOKEN = "prometheus-e2e-token"
TIMEOUT = 3  # seconds, for a Prometheus query and for an API call
OPERATOR_USERS = "system:serviceaccount:rightsizer:"
WORKLOAD_RESOURCES = ("deployments", "statefulsets", "daemonsets", "cronjobs")
T = TypeVar("T")
RESIZE_PATH = r"^/apis/(apps|batch)/v1/namespaces/[^/]+/(deployments|statefulsets|daemonsets|cronjobs)/[^/]+\?"


@dataclass
class FaultOperator(OperatorProcess):
    """The operator as the e2e suite runs it, with a few more settings."""

    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra}


def impostor_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 that no one trusts."""
    cert, private = folder / "impostor.crt", folder / "impostor.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=impostor", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(private), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, private


@dataclass
class Rig:
    cp: ControlPlane
    chart: Chart
    cloud: Cloud
    prometheus: LocalPrometheus
    work: Path
    agency: str
    keys: list[str]
    baseline: dict[str, dict[str, Any]]
    api: FaultProxy
    prom: FaultProxy
    operator: FaultOperator | None = None
    operators: list[FaultOperator] = field(default_factory=list)
    nonce: int = 0

    # -- set up and tear down ---------------------------------------------------------------
    @classmethod
    def start(
        cls, cp: ControlPlane, chart: Chart, cloud: Cloud, prometheus: LocalPrometheus, work: Path
    ) -> Rig:
        agency = cloud.agencies[2]
        keys = [key(w) for w in cloud.workloads(agency)]
        serving = (cp.pki.path("serving.crt"), cp.pki.path("serving.key"))
        api = FaultProxy(cp.url, upstream_ca=cp.pki.ca, cert=serving).start()
        prom = FaultProxy(prometheus.url, cert=serving, require_bearer=PROMETHEUS_TOKEN).start()
        rig = cls(cp, chart, cloud, prometheus, work, agency, keys, snapshot(cp, keys), api, prom)
        rig.token_file.write_text(PROMETHEUS_TOKEN)
        # CronJobs opt out: a batch job's series are normally old between runs, so staleness
        # does not hold them; every row's "no change" then covers every workload
        for k in keys:
            if k.startswith("CronJob/"):
                rig._merge(k, {"metadata": {"annotations": {EXCLUDE: "true"}}})
        rig.reset()
        body = policy(POLICY, agency, mode="apply", safety=SAFETY, displayName="row 0")
        created = cp.request("POST", POLICIES, body=body)
        assert created.status_code == 201, created.text
        return rig

    def stop(self) -> None:
        for operator in self.operators:
            if operator.process is not None:
                operator.process.stop(timeout=5)
        self.api.clear()
        self.prom.clear()
        delete_policy(self.cp, POLICY)
        self.api.stop()
        self.prom.stop()
        self.reset(to_baseline=True)
        for namespace in self.namespaces:
            self.cp.request("DELETE", f"/api/v1/namespaces/{namespace}/events")

    @property
    def token_file(self) -> Path:
        return self.work / "prometheus-token"

    @property
    def namespaces(self) -> list[str]:
        return next(
            a["namespaces"] for a in self.cloud.truth["agencies"] if a["agency"] == self.agency
        )

    def new_operator(
        self, name: str, *, proxy: FaultProxy | None = None, extra: dict[str, str] | None = None
    ) -> FaultOperator:
        proxy = proxy or self.api
        operator = FaultOperator(
            kubeconfig=self.chart.kubeconfig(server=proxy.url, name=f"{name}-{proxy.port}"),
            prometheus_url=self.prom.url,
            log_path=self.work / f"{name}-{len(self.operators)}.log",
            apply_enabled=True,
            extra={
                "RIGHTSIZER_TICK_SECONDS": "0.5",
                "RIGHTSIZER_RETRY_SECONDS": "0.5",
                "RIGHTSIZER_PROMETHEUS_TIMEOUT": str(TIMEOUT),
                "RIGHTSIZER_KUBERNETES_TIMEOUT": str(TIMEOUT),
                "RIGHTSIZER_PROMETHEUS_CA_FILE": str(self.cp.pki.ca),
                "RIGHTSIZER_PROMETHEUS_BEARER_TOKEN_FILE": str(self.token_file),
                **(extra or {}),
            },
        )
        self.operators.append(operator)
        operator.start()
        return operator

    def restart(self) -> FaultOperator:
        """A new operator through the API proxy (the old one killed or stopped)."""
        if self.operator is not None and self.operator.process is not None:
            self.operator.process.stop(timeout=5)
        self.operator = self.new_operator("operator")
        return self.operator

    # -- evaluations ------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return self.cp.get(f"{POLICIES}/{POLICY}").get("status") or {}

    def bump(self, **spec: Any) -> int:
        """Change the policy's spec (always its displayName; ``safety`` back to SAFETY unless
        given): a new generation is evaluated at once. Returns the generation."""
        self.nonce += 1
        body = {"spec": {"displayName": f"row {self.nonce}", "safety": SAFETY, **spec}}
        answer = self.cp.request(
            "PATCH", f"{POLICIES}/{POLICY}", body=body, content_type="application/merge-patch+json"
        )
        assert answer.status_code == 200, answer.text
        return int(answer.json()["metadata"]["generation"])

    def evaluate(self, *, timeout: float = 60, **spec: Any) -> dict[str, Any]:
        """Bump the generation and wait for its evaluation's status."""
        generation = self.bump(**spec)
        return self.wait_generation(generation, timeout=timeout)

    def wait_generation(self, generation: int, *, timeout: float = 60) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            status = self.status()
            return status if status.get("observedGeneration") == generation else None

        return wait_for(f"the evaluation of generation {generation}", done, timeout=timeout,
                        alive=self.alive)  # fmt: skip

    def next_evaluation(self, after: dict[str, Any], *, timeout: float = 60) -> dict[str, Any]:
        """The first evaluation recorded after ``after`` (a status) that is Ready. Stamps
        have whole seconds, and a retry may start in the failed evaluation's second."""

        def done() -> dict[str, Any] | None:
            status = self.status()
            stamp, before = status.get("lastEvaluation") or "", after.get("lastEvaluation") or ""
            later = stamp > before or (stamp == before and status != after)
            ready = condition(status, "Ready").get("status") == "True"
            return status if later and ready else None

        return wait_for("the next evaluation to complete", done, timeout=timeout,
                        alive=self.alive)  # fmt: skip

    @property
    def alive(self) -> list[Any]:
        return self.operator.alive if self.operator is not None else []

    # -- what reached the API server --------------------------------------------------------
    def resizes(self, since: float, proxy: FaultProxy | None = None) -> list[Seen]:
        """Resize patches (JSON patches of a workload) the API server answered 2xx."""
        return [
            s
            for s in (proxy or self.api).seen(
                method="PATCH",
                path=RESIZE_PATH,
                content_type=JSON_PATCH,
                forwarded=True,
                since=since,
            )
            if 200 <= s.status < 300
        ]

    def audit_writes(self, since: str) -> list[str]:
        """Successful writes of the operator's identities to the agency's workloads, from
        the API server's audit log."""
        found = []
        with self.cp.audit_log.open(encoding="utf-8") as log:
            for line in log:
                event = json.loads(line)
                ref = event.get("objectRef") or {}
                if (
                    event.get("user", {}).get("username", "").startswith(OPERATOR_USERS)
                    and event["requestReceivedTimestamp"] >= since
                    and event["verb"] in ("patch", "update", "create", "delete")
                    and ref.get("resource") in WORKLOAD_RESOURCES
                    and ref.get("namespace") in self.namespaces
                    and event.get("responseStatus", {}).get("code", 0) < 300
                ):
                    found.append(f"{event['verb']} {ref['resource']}/{ref['name']}")
        return found

    def resources(self) -> dict[str, str]:
        """Each workload's pod-template resources, as JSON (a Deployment's generation moves
        with its annotations too, so it cannot tell a resize)."""

        def resources(k: str) -> str:
            containers = _pod_spec(self.cp.get(path_of(k)))["containers"]
            return json.dumps({c["name"]: c.get("resources") for c in containers}, sort_keys=True)

        return dict(zip(self.keys, _each(resources, self.keys), strict=True))

    def events(self, reason: str, since: str) -> list[dict[str, Any]]:
        found = []
        for namespace in self.namespaces:
            items = self.cp.get(f"/api/v1/namespaces/{namespace}/events")["items"]
            found += [
                e
                for e in items
                if e["reason"] == reason and (e.get("lastTimestamp") or "") >= since[:19]
            ]
        return found

    # -- back to the state before a row ------------------------------------------------------
    def reset(self, *, to_baseline: bool = False) -> None:
        """Every workload's resources as in the baseline; rightsizer's annotations removed
        (a fresh start), or the baseline's annotations restored (``to_baseline``)."""

        def reset(k: str) -> None:
            for _ in range(5):  # a late write of the operator's may race the reset: read again
                current = self.cp.get(path_of(k))
                body = _reset(current, self.baseline[k], keep_annotations=to_baseline)
                if body is None:
                    return
                answer = self.cp.request("PUT", path_of(k), body=body)
                if answer.status_code != 409:
                    break
            assert answer.status_code == 200, answer.text

        _each(reset, self.keys)

    def _merge(self, k: str, body: dict[str, Any]) -> None:
        answer = self.cp.request(
            "PATCH", path_of(k), body=body, content_type="application/merge-patch+json"
        )
        assert answer.status_code == 200, answer.text

    def revert_like_gitops(self, k: str) -> None:
        """A second client applies the original resources (as a GitOps controller would)."""
        containers = [
            {"name": c["name"], "resources": c.get("resources") or {}}
            for c in _pod_spec(self.baseline[k])["containers"]
        ]
        template: dict[str, Any] = {"template": {"spec": {"containers": containers}}}
        spec = {"jobTemplate": {"spec": template}} if k.startswith("CronJob/") else template
        answer = self.cp.request(
            "PATCH", path_of(k), body={"spec": spec},
            content_type="application/strategic-merge-patch+json",
        )  # fmt: skip
        assert answer.status_code == 200, answer.text


def _each(work: Callable[[str], T], keys: Iterable[str]) -> list[T]:
    """``work`` on each key, four at a time (each is a request or two to the API server)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(work, keys))


def _pod_spec(body: dict[str, Any]) -> dict[str, Any]:
    spec = body["spec"]
    if body["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]  # type: ignore[no-any-return]


def _reset(
    current: dict[str, Any], baseline: dict[str, Any], *, keep_annotations: bool
) -> dict[str, Any] | None:
    """The PUT body that restores ``baseline``'s resources (and annotations), or None."""
    body = json.loads(json.dumps(current))
    wanted = {c["name"]: c.get("resources") or {} for c in _pod_spec(baseline)["containers"]}
    for container in _pod_spec(body)["containers"]:
        container["resources"] = wanted.get(container["name"], container.get("resources") or {})
    notes = dict(current["metadata"].get("annotations") or {})
    if keep_annotations:
        notes = dict(baseline["metadata"].get("annotations") or {})
    else:
        notes = {
            k: v for k, v in notes.items() if not k.startswith("rightsizer.io/") or k == EXCLUDE
        }
    body["metadata"]["annotations"] = notes
    body["metadata"].pop("managedFields", None)
    if _pod_spec(body) == _pod_spec(current) and notes == (
        current["metadata"].get("annotations") or {}
    ):
        return None
    return body  # type: ignore[no-any-return]


def damaged_prometheus(
    source: Path, work: Path, *, name: str, match: str, start: float, end: float
) -> LocalPrometheus:
    """A copy of the usage data with the samples of ``match`` between ``start`` and ``end``
    (unix seconds) deleted: real gaps, in a real Prometheus. Started; the caller stops it."""
    data = work / name
    shutil.copytree(source, data, ignore=shutil.ignore_patterns("lock"))
    server = LocalPrometheus(data, extra_args=["--web.enable-admin-api"])
    server.start()
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode({"match[]": match, "start": f"{start:.0f}", "end": f"{end:.0f}"})
    request = urllib.request.Request(
        f"{server.url}/api/v1/admin/tsdb/delete_series?{query}", method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.status == 204, answer.status
    return server


def now_marks() -> tuple[float, str]:
    """(time.time(), RFC 3339) now: for the proxy's record and for the audit log."""
    return time.time(), rfc3339_now()
