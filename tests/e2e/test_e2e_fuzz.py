"""The policy schema fuzzed against the real kube-apiserver and ``rightsizer validate`` together.

A few hundred policies (from the CRD's schema by hypothesis-jsonschema, from a fast walk of
the same schema, and mutations of the shipped policies; tests/unit/policy_strategies.py)
are sent as dry-run creates. Every server rejection must name its fields. The two judges
must agree where the schema speaks:

* the server refuses what validate accepts: validate is looser than the API: a failure;
* the server stores what validate refuses for a schema-level reason (a type, pattern,
  bound, enum or required field): the CRD is looser than the models: a failure. Refusals
  for cross-field rules the CRD does not state are counted, not failed (the operator marks
  such a policy Degraded with every reason). Validate judges what the server stored: the
  server prunes unknown fields that validate, stricter, rejects.

Budget: under a minute.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
import requests
from controlplane import REPO_ROOT, ControlPlane
from e2e_cloud import POLICIES
from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError

from rightsizer.api.v1alpha1 import EfficiencyPolicy, PolicyError, parse_policy

pytestmark = pytest.mark.e2e


def _load_strategies() -> ModuleType:
    path = REPO_ROOT / "tests" / "unit" / "policy_strategies.py"
    spec = importlib.util.spec_from_file_location("rightsizer_e2e_policy_strategies", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


strategies = _load_strategies()
# pydantic error types from our own validators (cross-field and format rules, which the
# CRD states only in part); every other type is a schema-level fault
SEMANTIC = {"value_error", "assertion_error"}


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    disagreements: list[str] = field(default_factory=list)
    unnamed: list[str] = field(default_factory=list)
    semantic_only: Counter[str] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def session(control_plane: ControlPlane, crds: str) -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.cert = tuple(map(str, control_plane.pki.admin))  # type: ignore[assignment]
        http.verify = str(control_plane.pki.ca)
        http.trust_env = False  # else $REQUESTS_CA_BUNDLE overrides verify
        yield http


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    found = Tally()
    yield found
    c = found.counts
    print(
        f"\npolicy fuzz (API server): {c['tried']} policies tried; server accepted "
        f"{c['server accepted']}, rejected {c['server rejected']}; validate accepted "
        f"{c['validate accepted']}, rejected {c['validate rejected']}; both accepted "
        f"{c['both accepted']}, both rejected {c['both rejected']}; stored but refused by "
        f"validate for rules the CRD does not state: {sum(found.semantic_only.values())}; "
        f"missing apiVersion/kind refused by the server only: "
        f"{c['envelope refused by the server only']}"
        + "".join(f"\n  {n} x {m}" for m, n in found.semantic_only.most_common(8))
    )


def _server(control_plane: ControlPlane, http: requests.Session, doc: Any) -> requests.Response:
    return http.post(
        control_plane.url + POLICIES,
        params={"dryRun": "All"},
        data=json.dumps(doc, allow_nan=False),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        timeout=30,
    )


def _schema_faults(stored: dict[str, Any]) -> list[str]:
    try:
        EfficiencyPolicy.model_validate(stored)
    except ValidationError as error:
        return [
            f"{'.'.join(map(str, e['loc']))}: {e['type']}: {e['msg']}"
            for e in error.errors(include_url=False)
            if e["type"] not in SEMANTIC
        ]
    return []


def judge(cp: ControlPlane, http: requests.Session, tally: Tally, doc: Any) -> None:
    tally.counts["tried"] += 1
    answer = _server(cp, http, doc)
    assert answer.status_code in (201, 400, 422), (answer.status_code, answer.text[:500])
    sent = json.dumps(doc)[:400]
    try:
        parse_policy(doc)
        valid = True
    except PolicyError:
        valid = False
    tally.counts[f"validate {'accepted' if valid else 'rejected'}"] += 1
    if answer.status_code != 201:
        tally.counts["server rejected"] += 1
        tally.counts["both rejected" if not valid else "only validate accepted"] += 1
        causes = (answer.json().get("details") or {}).get("causes") or []
        if answer.status_code == 422 and (not causes or any(not c.get("field") for c in causes)):
            tally.unnamed.append(f"{answer.text[:300]} <- {sent}")
        if valid and answer.status_code == 400:
            # the envelope (apiVersion, kind), not the CRD schema: validate defaults both
            tally.counts["envelope refused by the server only"] += 1
        elif valid:
            tally.disagreements.append(
                f"server refused, validate accepted: {answer.text[:400]} <- {sent}"
            )
        return
    tally.counts["server accepted"] += 1
    stored = answer.json()
    try:
        parse_policy(stored)
        tally.counts["both accepted"] += 1
    except PolicyError as error:
        faults = _schema_faults(stored)
        if faults:
            tally.disagreements.append(f"server stored a schema-level fault {faults} <- {sent}")
        else:
            tally.counts["stored, refused by validate"] += 1
            for problem in error.problems:
                tally.semantic_only[problem.split(": ", 1)[-1][:90]] += 1


def _fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def test_specs_from_the_crd_schema_by_hypothesis_jsonschema(
    control_plane: ControlPlane, session: requests.Session, tally: Tally
) -> None:
    @_fuzz(60)
    @given(strategies.jsonschema_specs())
    def run(spec: Any) -> None:
        judge(control_plane, session, tally, strategies.document(spec))

    run()


def test_specs_from_the_crd_schema(
    control_plane: ControlPlane, session: requests.Session, tally: Tally
) -> None:
    @_fuzz(150)
    @given(strategies.crd_specs())
    def run(spec: Any) -> None:
        judge(control_plane, session, tally, strategies.document(spec))

    run()


def test_mutations_of_valid_policies(
    control_plane: ControlPlane, session: requests.Session, tally: Tally
) -> None:
    @_fuzz(200)
    @given(strategies.mutated_documents(allow_nan=False))
    def run(doc: Any) -> None:
        judge(control_plane, session, tally, doc)

    run()


def test_the_server_and_validate_agree(tally: Tally) -> None:
    """Runs after the three above (file order): every rejection named its fields and the two
    judges agreed wherever the schema speaks."""
    assert tally.counts["tried"] >= 300, tally.counts
    assert not tally.unnamed, "\n".join(tally.unnamed[:10])
    assert not tally.disagreements, f"{len(tally.disagreements)} disagreements:\n" + "\n".join(
        tally.disagreements[:15]
    )
