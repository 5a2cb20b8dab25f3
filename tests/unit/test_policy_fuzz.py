"""Fuzz ``rightsizer validate``'s parser with thousands of policies drawn from the CRD's own
schema (hypothesis-jsonschema, and a fast walk of the same schema) and from mutations of the
shipped valid policies: it never crashes, and every rejection names a field path.

Budget: ~25 s on an idle 2-core machine (87 s measured at load 9 with the earlier, larger
counts); hypothesis-jsonschema costs ~80 ms a draw, the rest a few ms.
tests/e2e/test_e2e_fuzz.py sends a few hundred of the same documents to the real API server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_strategies import (
    crd_specs,
    document,
    jsonschema_specs,
    mutated_documents,
    named_paths,
    valid_documents,
)

from rightsizer.api.v1alpha1 import PolicyError, parse_policy


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,  # fresh examples each run, nothing written beside the tests
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    tried = TALLY["accepted"] + TALLY["rejected"]
    print(
        f"\npolicy fuzz (validate): {tried} policies tried, {TALLY['accepted']} accepted, "
        f"{TALLY['rejected']} rejected; by source: "
        + ", ".join(f"{k} {v}" for k, v in sorted(TALLY.items()) if k.startswith("from "))
    )


def verdict(doc: Any) -> list[str] | None:
    """None when the parser accepts ``doc``, else its problems. Anything else the parser
    raises is a crash, and fails the test."""
    try:
        policy = parse_policy(doc, source="fuzz")
    except PolicyError as error:
        return error.problems
    # what the operator computes from a policy at once must not crash either
    policy.spec.required_stats()
    assert policy.spec.window_seconds >= 0
    return None


def judge(doc: Any, source: str) -> None:
    TALLY[f"from {source}"] += 1
    problems = verdict(doc)
    TALLY["accepted" if problems is None else "rejected"] += 1
    if problems is not None:
        assert problems, "a rejection without a reason"
        assert not named_paths(problems), problems


def test_the_shipped_policies_are_valid() -> None:
    for doc in valid_documents():
        parse_policy(doc)


@fuzz(120)
@given(jsonschema_specs())
def test_specs_from_the_crd_schema_by_hypothesis_jsonschema(spec: Any) -> None:
    judge(document(spec), "hypothesis-jsonschema")


@fuzz(700)
@given(crd_specs())
def test_specs_from_the_crd_schema(spec: Any) -> None:
    judge(document(spec), "CRD schema walk")


@fuzz(1500)
@given(mutated_documents(allow_nan=True))
def test_mutations_of_valid_policies(doc: dict[str, Any]) -> None:
    judge(doc, "mutation")


@fuzz(200)
@given(st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.integers())))
def test_documents_that_are_not_objects(doc: Any) -> None:
    judge(doc, "non-object")
    judge(document(doc), "non-object spec")
