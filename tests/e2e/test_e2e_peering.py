"""Guarantee 8, one writer: two operator processes with kopf peering against the real API
server. Each runs as its own ServiceAccount (same RBAC as the chart's), so the audit log says
who wrote what: only the replica with the higher priority writes; when it stops, the other
takes over and evaluates."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from controlplane import REPO_ROOT, ControlPlane
from e2e_cloud import (
    CHART_NAMESPACE,
    CHART_SA,
    POLICIES,
    Chart,
    Cloud,
    OperatorProcess,
    delete_policy,
    evaluated,
    policy,
    rfc3339_now,
    wait_for,
)

from rightsizer.localprom import LocalPrometheus

pytestmark = pytest.mark.e2e

POLICY = "peering-e2e"
PEERING = "rightsizer"  # the chart's fullname: the ClusterKopfPeering it creates
PEERINGS = "/apis/kopf.dev/v1/clusterkopfpeerings"
SECOND_SA = "rightsizer-peer"
WRITES = ("create", "patch", "update", "delete")


@dataclass
class PeeringOperator(OperatorProcess):
    """The operator process with mandatory peering and a fixed priority and identity."""

    identity: str = ""
    priority: int = 0

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            RIGHTSIZER_PEERING_NAME=PEERING,
            RIGHTSIZER_PEERING_PRIORITY=str(self.priority),
            RIGHTSIZER_PEERING_LIFETIME="10",
            POD_ID=self.identity,
        )
        return env


def install_peering(cp: ControlPlane) -> None:
    """The chart's peering CRDs and ClusterKopfPeering (peering.enabled=true)."""
    text = cp.helm(
        "template", "rightsizer", str(REPO_ROOT / "charts" / "rightsizer"),
        "--namespace", CHART_NAMESPACE, "--kube-version", "1.34.4",
        "--set", "peering.enabled=true", "--set", "replicas=2",
    )  # fmt: skip
    docs = [d for d in yaml.safe_load_all(text) if d]
    crds = [
        d
        for d in docs
        if d["kind"] == "CustomResourceDefinition" and "kopf" in d["metadata"]["name"]
    ]
    peerings = [d for d in docs if d["kind"] == "ClusterKopfPeering"]
    assert len(crds) == 2 and [p["metadata"]["name"] for p in peerings] == [PEERING]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    for batch in (crds, peerings):
        cp.kubectl(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": batch}),
        )
        if batch is crds:
            cp.kubectl(
                "wait", "--for=condition=Established", "--timeout=60s",
                *(f"crd/{d['metadata']['name']}" for d in crds),
            )  # fmt: skip


def second_identity(cp: ControlPlane, chart: Chart) -> str:
    """A second ServiceAccount bound to every role the chart binds its own to; its token."""
    bindings = [
        copy_binding(d)
        for d in chart.docs
        if d["kind"] in ("ClusterRoleBinding", "RoleBinding")
        and any(s.get("name") == CHART_SA for s in d.get("subjects") or [])
    ]
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": SECOND_SA, "namespace": CHART_NAMESPACE},
    }
    items = [account, *bindings]
    cp.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )
    return cp.kubectl(
        "create", "token", SECOND_SA, "-n", CHART_NAMESPACE, "--duration", "1h"
    ).stdout.strip()


def copy_binding(binding: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in binding["metadata"].items() if k in ("name", "namespace")}
    meta["name"] = f"{meta['name']}-peer"
    subject = {"kind": "ServiceAccount", "name": SECOND_SA, "namespace": CHART_NAMESPACE}
    return {**binding, "metadata": meta, "subjects": [subject]}


def writes(cp: ControlPlane, account: str, *, since: str) -> list[str]:
    """What ``account`` wrote since ``since`` (its peering keep-alives aside)."""
    user = f"system:serviceaccount:{CHART_NAMESPACE}:{account}"
    return [
        f"{e['verb']} {e['requestURI']}"
        for e in cp.audit(user)
        if e["verb"] in WRITES
        and e["requestReceivedTimestamp"] >= since
        and (e.get("objectRef") or {}).get("resource") != "clusterkopfpeerings"
    ]


def peers(cp: ControlPlane) -> set[str]:
    return set(cp.get(f"{PEERINGS}/{PEERING}").get("status") or {})


def test_two_replicas_one_writer_and_the_other_takes_over(
    control_plane: ControlPlane,
    chart: Chart,
    cloud: Cloud,
    prometheus: LocalPrometheus,
    tmp_path: Any,
) -> None:
    cp = control_plane
    chart.use(apply_enabled=False)
    install_peering(cp)
    token = second_identity(cp, chart)
    first = PeeringOperator(
        kubeconfig=chart.kubeconfig(),
        prometheus_url=prometheus.url,
        log_path=tmp_path / "operator-high.log",
        identity="replica-high",
        priority=200,
    )
    second = PeeringOperator(
        kubeconfig=cp.token_kubeconfig(tmp_path / "peer.kubeconfig", token),
        prometheus_url=prometheus.url,
        log_path=tmp_path / "operator-low.log",
        identity="replica-low",
        priority=100,
    )
    started = rfc3339_now()
    try:
        first.start()
        wait_for(
            "the first replica in the peering",
            lambda: "replica-high" in peers(cp),
            alive=first.alive,
        )
        second.start()
        wait_for(
            "the second replica in the peering",
            lambda: "replica-low" in peers(cp),
            alive=second.alive,
        )
        body = policy(POLICY, cloud.agencies[0])
        answer = cp.request("POST", POLICIES, body=body)
        assert answer.status_code == 201, answer.text
        status = wait_for(
            "the first evaluation", lambda: evaluated(cp, POLICY), timeout=60, alive=first.alive
        )
        time.sleep(3)  # ticks in which the paused replica could write, if it were not paused
        assert writes(cp, CHART_SA, since=started), "the active replica wrote nothing"
        assert writes(cp, SECOND_SA, since=started) == [], "the paused replica wrote"

        first.stop()  # a clean stop: it leaves the peering at once
        handover = rfc3339_now()
        assert "replica-high" not in peers(cp)
        cp.request(
            "PATCH",
            f"{POLICIES}/{POLICY}",
            body={"spec": {"displayName": "taken over"}},
            content_type="application/merge-patch+json",
        )
        wait_for(
            "the second replica's evaluation",
            lambda: evaluated(cp, POLICY, after=status["lastEvaluation"]),
            timeout=60,
            alive=second.alive,
        )
        assert writes(cp, SECOND_SA, since=handover), "the second replica did not take over"
        assert writes(cp, CHART_SA, since=handover) == []
    finally:
        first.stop()
        second.stop()
        delete_policy(cp, POLICY)
