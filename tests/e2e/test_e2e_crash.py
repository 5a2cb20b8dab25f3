"""SIGKILL in the middle of an apply-mode evaluation (third agency): no workload is left
half-changed, and after a restart the next evaluation completes.

The operator talks to the API server through toxiproxy with 150 ms of latency on every
response, so an evaluation's resizes take seconds; the test kills it as soon as the first
resize is visible, when the others are still to come."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from controlplane import ControlPlane, Toxiproxy
from e2e_cloud import (
    POLICIES,
    PREVIOUS,
    Chart,
    Cloud,
    OperatorProcess,
    condition,
    consistent_change,
    delete_policy,
    denials,
    evaluated,
    key,
    operator_errors,
    policy,
    resources,
    rfc3339_now,
    snapshot,
    wait_for,
)

from rightsizer.localprom import LocalPrometheus

pytestmark = pytest.mark.e2e

POLICY = "crash-e2e"
SAFETY = {"noticeEvaluations": 1, "maxChangesPerEvaluation": 50}
LATENCY_MS = 150


@dataclass
class Crash:
    agency: str
    keys: list[str]
    expected: set[str]
    before: dict[str, dict[str, Any]]
    killed_at: dict[str, dict[str, Any]]
    status_at_kill: dict[str, Any]
    restarted: str
    after: dict[str, dict[str, Any]]
    status: dict[str, Any]
    operator: OperatorProcess
    denied: list[str]


@pytest.fixture(scope="module")
def crash(
    control_plane: ControlPlane,
    chart: Chart,
    cloud: Cloud,
    prometheus: LocalPrometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Crash]:
    cp = control_plane
    work = tmp_path_factory.mktemp("crash")
    chart.use(apply_enabled=True)
    agency = cloud.agencies[2]
    keys = [key(w) for w in cloud.workloads(agency)]
    before = snapshot(cp, keys)
    since = rfc3339_now()

    def operator(kubeconfig: Path, name: str) -> OperatorProcess:
        return OperatorProcess(
            kubeconfig=kubeconfig,
            prometheus_url=prometheus.url,
            log_path=work / f"{name}.log",
            apply_enabled=True,
        )

    def resized() -> list[str]:
        now = snapshot(cp, keys)
        return [k for k in keys if PREVIOUS in now[k]["metadata"].get("annotations", {})]

    created = cp.request("POST", POLICIES, body=policy(POLICY, agency, mode="apply", safety=SAFETY))
    assert created.status_code == 201, created.text
    try:
        proxy = Toxiproxy.start(cp.bin_dir, work, cp.api_port)
        try:
            proxy.latency(LATENCY_MS)
            slow = chart.kubeconfig(server=proxy.url, name="operator-through-toxiproxy")
            with operator(slow, "killed") as first:
                wait_for("the first resize", resized, timeout=120, interval=0.05,
                         alive=first.alive)  # fmt: skip
                first.kill()
            killed_at = snapshot(cp, keys)
        finally:
            proxy.stop()
        status_at_kill = cp.get(f"{POLICIES}/{POLICY}").get("status") or {}

        restarted = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with operator(chart.kubeconfig(), "restarted") as second:
            status = wait_for(
                "the evaluation after the restart",
                lambda: evaluated(cp, POLICY, after=status_at_kill.get("lastEvaluation") or ""),
                timeout=90,
                alive=second.alive,
            )
        yield Crash(
            agency=agency,
            keys=keys,
            expected=cloud.expected_changes(agency),
            before=before,
            killed_at=killed_at,
            status_at_kill=status_at_kill,
            restarted=restarted,
            after=snapshot(cp, keys),
            status=status,
            operator=second,
            denied=denials(cp, since=since),
        )
    finally:
        delete_policy(cp, POLICY)
        chart.use(apply_enabled=False)


def _changed(before: dict[str, Any], now: dict[str, Any]) -> set[str]:
    return {k for k in now if consistent_change(before[k], now[k]) == "changed"}


def test_sigkill_mid_evaluation_leaves_no_workload_half_changed(crash: Crash) -> None:
    assert "lastEvaluation" not in crash.status_at_kill, "the killed evaluation was recorded"
    # each workload is as it was, or changed as decided and recorded: container by container
    changed = _changed(crash.before, crash.killed_at)
    assert changed, "no resize landed before the kill"
    assert changed < crash.expected, (
        f"the kill came after every resize ({sorted(changed)}): nothing was left to do, "
        "so this run proves nothing about a kill mid-evaluation"
    )


def test_after_a_restart_the_next_evaluation_completes(crash: Crash, cloud: Cloud) -> None:
    status = crash.status
    assert status["lastEvaluation"] >= crash.restarted
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Evaluated"), ready
    assert condition(status, "Degraded")["status"] == "False", status
    assert not operator_errors(crash.operator), operator_errors(crash.operator)
    assert not crash.denied, crash.denied

    changed_now = {
        k for k in crash.keys if resources(crash.after[k]) != resources(crash.killed_at[k])
    }
    for k in changed_now:  # consistent with what it was at the kill
        assert consistent_change(crash.killed_at[k], crash.after[k]) == "changed", k
    done = _changed(crash.before, crash.killed_at) | changed_now
    assert crash.expected <= done, sorted(crash.expected - done)
    assert status["changesApplied"] == len(changed_now), (status, sorted(changed_now))
    for k in _changed(crash.before, crash.killed_at):
        if cloud.truth_of(k)["shape"] == "oom-killed":
            continue  # upsized again: see test_an_oom_upsize_is_not_repeated_...
        # changed once, before the kill; the restart left it alone (cooldown), and its
        # record still holds the values from before rightsizer's change
        assert k not in changed_now, k
        notes = crash.after[k]["metadata"]["annotations"]
        assert notes[PREVIOUS] == crash.killed_at[k]["metadata"]["annotations"][PREVIOUS], k


def test_an_oom_upsize_is_not_repeated_without_a_new_oom_kill(crash: Crash, cloud: Cloud) -> None:
    oom = [k for k in crash.keys if cloud.truth_of(k)["shape"] == "oom-killed"]
    assert oom, "the generator changed: no oom-killed workload in this agency"
    upsized_before_kill = [k for k in oom if k in _changed(crash.before, crash.killed_at)]
    assert upsized_before_kill, "the OOM upsize (first by priority) was not made before the kill"
    for k in upsized_before_kill:
        assert resources(crash.after[k]) == resources(crash.killed_at[k]), (
            k,
            resources(crash.killed_at[k]),
            resources(crash.after[k]),
        )
