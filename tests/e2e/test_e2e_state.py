"""Incremental evaluation's state in the real API server, with the chart's reader identity.

One story on the first agency, in recommend mode, one operator process per step:

1. ``RIGHTSIZER_STATE=off``: a full evaluation (the reference), no state ConfigMap written;
2. state in ConfigMaps of the chart's namespace: the first evaluation rebuilds the state from
   Prometheus (nothing stored yet) and writes it, sharded under the bound, with the chart's
   RBAC only (no 403);
3. that operator stopped and another started (a restart): its evaluation reads the stored
   state (``state_read origin=store``, no ``state_rebuilt``, two range queries fewer);
4. a shard damaged by an administrator: detected (``state_corrupt``), rebuilt from
   Prometheus and written again.

Every step's recommendations agree with the full evaluation within the tolerance stated in
``adapters/incremental.py`` (grade and action of 95% of workloads, every recommended request
within 5% or 1 millicore / 1 MiB). A spec change (``displayName``) makes each new operator
evaluate at once (the schedule is weekly).
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from controlplane import ControlPlane
from e2e_cloud import (
    CHART_NAMESPACE,
    GRADE,
    POLICIES,
    SA_USER,
    Chart,
    Cloud,
    OperatorProcess,
    condition,
    delete_policy,
    evaluated,
    key,
    operator_errors,
    policy,
    recommendation,
    rfc3339_now,
    snapshot,
    wait_for,
)

from rightsizer.adapters.statecodec import decode
from rightsizer.adapters.statestore import SHARD_BYTES, safe_name
from rightsizer.core.policy import RecommendationPolicy
from rightsizer.core.units import parse_quantity
from rightsizer.localprom import LocalPrometheus

pytestmark = pytest.mark.e2e

POLICY = "state-e2e"
PREFIX = safe_name(f"rightsizer-state-{POLICY}", limit=240)  # ConfigMapStateStore.name
CONFIGMAPS = f"/api/v1/namespaces/{CHART_NAMESPACE}/configmaps"
STATE_ON = {"RIGHTSIZER_STATE": "configmap", "RIGHTSIZER_STATE_NAMESPACE": CHART_NAMESPACE}
STATE_OFF = {"RIGHTSIZER_STATE": "off"}
SAME_GRADE = 0.95  # adapters/incremental.py: the stated tolerance
REQUEST_TOLERANCE = 0.05
STAT_TOLERANCE = 0.07  # ... of the statistic, where the minChange band keeps one side
MIN_CHANGE = RecommendationPolicy().min_change  # the policy's default band
FLOOR = {"cpu": 0.001, "memory": 2.0**20}
HEAD = 3 + 2 + 16  # statecodec: magic, schema version, SHA-256 prefix


@dataclass
class Step:
    name: str
    operator: OperatorProcess
    status: dict[str, Any]
    after: dict[str, dict[str, Any]]  # workload key -> object after the evaluation
    queries: int  # queries Prometheus served during the step
    maps: dict[str, dict[str, Any]]  # state ConfigMaps after the step

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.operator.logs() if r.get("event") == name]


@dataclass
class Story:
    keys: list[str]
    full: Step
    first: Step
    restarted: Step
    repaired: Step
    damaged: str  # the shard the administrator broke
    garbage: bytes  # what the administrator wrote into it
    forbidden: list[str]


def state_maps(cp: ControlPlane) -> dict[str, dict[str, Any]]:
    items = cp.get(CONFIGMAPS)["items"]
    return {
        m["metadata"]["name"]: m
        for m in items
        if m["metadata"]["name"] == PREFIX or m["metadata"]["name"].startswith(f"{PREFIX}-")
    }


def stored_state(maps: dict[str, dict[str, Any]]) -> bytes:
    """The shards joined in order, as ``ConfigMapStateStore.load`` reads them."""
    shards = int(maps[PREFIX]["data"]["shards"])
    names = [PREFIX, *(f"{PREFIX}-{i}" for i in range(1, shards))]
    return b"".join(base64.b64decode(maps[n]["binaryData"]["state"]) for n in names)


def forbidden(cp: ControlPlane, *, since: str) -> list[str]:
    """The reader's requests refused (403) since ``since``, in any namespace."""
    return [
        f"{e['verb']} {e['requestURI']}"
        for e in cp.audit(SA_USER)
        if e["requestReceivedTimestamp"] >= since and e.get("responseStatus", {}).get("code") == 403
    ]


def tampered(blob: bytes) -> bytes:
    """The state with one byte of its payload changed and compressed again: the header,
    the version and zlib are intact, it still parses; only the checksum tells."""
    payload = bytearray(zlib.decompress(blob[HEAD:]))
    payload[-3] ^= 0x10  # a number in the last column of the last resource
    return blob[:HEAD] + zlib.compress(bytes(payload))


class Runner:
    def __init__(
        self, cp: ControlPlane, chart: Chart, prometheus: LocalPrometheus, keys: list[str]
    ) -> None:
        self.cp, self.chart, self.prometheus, self.keys = cp, chart, prometheus, keys
        self.last = ""

    def step(self, name: str, env: dict[str, str], folder: Path, *, agency: str) -> Step:
        operator = OperatorProcess(
            kubeconfig=self.chart.kubeconfig(),
            prometheus_url=self.prometheus.url,
            log_path=folder / f"operator-{name}.log",
            extra_env=env,
        )
        before = self.prometheus.query_count()
        with operator:
            if not self.last:
                answer = self.cp.request("POST", POLICIES, body=policy(POLICY, agency))
            else:  # a new generation: evaluated at once
                answer = self.cp.request(
                    "PATCH",
                    f"{POLICIES}/{POLICY}",
                    body={"spec": {"displayName": name}},
                    content_type="application/merge-patch+json",
                )
            assert answer.status_code < 300, answer.text
            status = wait_for(
                f"the {name} evaluation",
                lambda: evaluated(self.cp, POLICY, after=self.last),
                timeout=60,
                alive=operator.alive,
            )
            queries = self.prometheus.query_count() - before
        self.last = status["lastEvaluation"]
        after = snapshot(self.cp, self.keys)
        return Step(name, operator, status, after, queries, state_maps(self.cp))


@pytest.fixture(scope="module")
def story(
    control_plane: ControlPlane,
    chart: Chart,
    cloud: Cloud,
    prometheus: LocalPrometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Story]:
    cp = control_plane
    chart.use(apply_enabled=False)
    agency = cloud.agencies[0]
    keys = [key(w) for w in cloud.workloads(agency)]
    folder = tmp_path_factory.mktemp("state")
    runner = Runner(cp, chart, prometheus, keys)
    since = rfc3339_now()
    try:
        full = runner.step("full", STATE_OFF, folder, agency=agency)
        first = runner.step("first", STATE_ON, folder, agency=agency)
        restarted = runner.step("restarted", STATE_ON, folder, agency=agency)
        assert list(restarted.maps) == [PREFIX], "a small agency's state fits one shard"
        damaged, garbage = PREFIX, tampered(stored_state(restarted.maps))
        answer = cp.request(
            "PATCH",
            f"{CONFIGMAPS}/{damaged}",
            body={"binaryData": {"state": base64.b64encode(garbage).decode()}},
            content_type="application/merge-patch+json",
        )
        assert answer.status_code == 200, answer.text
        repaired = runner.step("repaired", STATE_ON, folder, agency=agency)
        yield Story(
            keys, full, first, restarted, repaired, damaged, garbage, forbidden(cp, since=since)
        )
    finally:
        delete_policy(cp, POLICY)
        for name in state_maps(cp):
            cp.request("DELETE", f"{CONFIGMAPS}/{name}")


# -- comparisons ----------------------------------------------------------------------------
def grade(body: dict[str, Any]) -> str:
    return str(body["metadata"]["annotations"][GRADE])


Proposal = tuple[float | None, float | None]  # (request, current request)


def requests_of(body: dict[str, Any]) -> dict[tuple[str, str], Proposal]:
    def amount(text: str | None) -> float | None:
        return None if text is None else parse_quantity(text)

    return {
        (container, resource): (amount(rec["request"]), amount(rec["current"]))
        for container, resources in recommendation(body)["containers"].items()
        for resource, rec in resources.items()
    }


def close(wanted: Proposal, got: Proposal, resource: str) -> bool:
    """Within 5% (or the floor); or one side keeps the current request inside the
    minChange band and the other moves it just past the band (the statistic within 7%)."""
    (value, current), (other, _) = wanted, got
    if value is None or other is None:
        return value == other
    if abs(other - value) <= max(REQUEST_TOLERANCE * value, FLOOR[resource]):
        return True
    if current is None or current not in (value, other):
        return False
    moved = other if value == current else value
    return abs(moved - current) <= (MIN_CHANGE + STAT_TOLERANCE) * current


def assert_same_answers(expected: Step, found: Step) -> None:
    """Within the tolerance of adapters/incremental.py."""
    assert found.after.keys() == expected.after.keys()
    grades = [k for k, b in expected.after.items() if grade(found.after[k]) == grade(b)]
    actions = [
        k
        for k, b in expected.after.items()
        if recommendation(found.after[k])["action"] == recommendation(b)["action"]
    ]
    assert len(grades) >= SAME_GRADE * len(expected.after), (found.name, sorted(grades))
    assert len(actions) >= SAME_GRADE * len(expected.after), (found.name, sorted(actions))
    compared = 0
    for k, body in expected.after.items():
        wanted, got = requests_of(body), requests_of(found.after[k])
        assert got.keys() == wanted.keys(), (found.name, k)
        for (container, resource), value in wanted.items():
            other = got[container, resource]
            assert close(value, other, resource), (found.name, k, container, resource, value, other)
            compared += value[0] is not None
    assert compared >= len(expected.after), (found.name, compared)


def assert_evaluated(step: Step) -> None:
    ready = condition(step.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Evaluated"), (step.name, ready)
    assert not operator_errors(step.operator), (step.name, operator_errors(step.operator))
    for name in ("state_unreadable", "state_not_saved"):
        assert not step.events(name), (step.name, step.events(name))
    for k, body in step.after.items():
        proposal = recommendation(body)
        assert proposal["policy"] == POLICY, (step.name, k)
        assert proposal["generation"] == step.status["observedGeneration"], (step.name, k)
        assert proposal["decision"] in ("recommend", "none"), (step.name, k, proposal)


# -- tests ----------------------------------------------------------------------------------
def test_full_evaluation_keeps_no_state(story: Story) -> None:
    assert_evaluated(story.full)
    assert story.full.maps == {}
    assert not story.full.events("state_read") and not story.full.events("state_rebuilt")


def test_first_evaluation_writes_sharded_state_with_the_charts_rbac(story: Story) -> None:
    step = story.first
    assert_evaluated(step)
    assert story.forbidden == [], story.forbidden
    [rebuilt] = step.events("state_rebuilt")
    assert (rebuilt["agency"], rebuilt["reason"]) == (POLICY, "missing")
    shards = int(step.maps[PREFIX]["data"]["shards"])
    assert sorted(step.maps) == sorted([PREFIX, *(f"{PREFIX}-{i}" for i in range(1, shards))])
    for name, body in step.maps.items():
        assert body["metadata"]["labels"]["rightsizer.io/state"] == "true", name
        assert len(body["binaryData"]["state"]) <= SHARD_BYTES, name
        assert len(json.dumps(body)) < SHARD_BYTES + 4096, name  # the whole object, too
    state = decode(stored_state(step.maps))
    assert state.keys and state.sketches, "the state holds the agency's containers"
    namespaces = {n for n, _, _ in state.keys}
    assert namespaces <= {k.split("/")[1] for k in story.keys}, namespaces
    assert_same_answers(story.full, step)


def test_a_restarted_operator_reads_the_state_instead_of_rebuilding(story: Story) -> None:
    step = story.restarted
    assert_evaluated(step)
    assert step.events("state_rebuilt") == [], step.events("state_rebuilt")
    [read] = step.events("state_read")
    assert (read["agency"], read["origin"]) == (POLICY, "store"), read
    assert read["bytes"] == len(stored_state(story.first.maps)), read
    # the two seed range queries (one point per day, 14 days back) are not sent again
    assert step.queries <= story.first.queries - 2, (step.queries, story.first.queries)
    assert_same_answers(story.full, step)
    assert_same_answers(story.first, step)


def test_a_damaged_shard_is_detected_and_rebuilt(story: Story) -> None:
    step = story.repaired
    assert_evaluated(step)
    assert step.events("state_read") == [], "nothing is read from a damaged state"
    [corrupt] = step.events("state_corrupt")
    assert corrupt["agency"] == POLICY
    [rebuilt] = step.events("state_rebuilt")
    assert (rebuilt["agency"], rebuilt["reason"]) == (POLICY, "corrupt: checksum mismatch")
    assert step.queries >= story.restarted.queries + 2, "rebuilt from Prometheus"
    # written again, whole: the damaged shard no longer holds the garbage
    stored = base64.b64decode(step.maps[story.damaged]["binaryData"]["state"])
    assert stored != story.garbage
    assert decode(stored_state(step.maps)).keys
    assert_same_answers(story.full, step)
