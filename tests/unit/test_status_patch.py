"""The policy status as a JSON merge patch: counts of an earlier evaluation do not survive.

A merge patch merges maps, so a status map written whole (``changesSkipped``, ``byOutcome``)
would keep keys the last evaluation no longer has. ``status_patch`` nulls them; applying the
patch with RFC 7386 semantics (as the API server does) must give exactly the new status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from rightsizer.api.status import failed_status, status_patch
from rightsizer.api.v1alpha1 import PolicyStatus

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def dump(status: PolicyStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True)


def evaluated(**fields: Any) -> PolicyStatus:
    return PolicyStatus(observed_generation=2, last_evaluation="2026-03-01T00:00:00Z", **fields)


CASES = [
    ("a skip reason gone",
     evaluated(changes_skipped={"apiError": 1, "cap": 3}, by_outcome={"ok": 4}),
     evaluated(changes_skipped={"cap": 2}, by_outcome={"ok": 4})),
    ("every skip reason gone",
     evaluated(changes_skipped={"notConverging": 1}), evaluated(changes_skipped={})),
    ("an outcome gone, another new",
     evaluated(by_outcome={"stale": 5, "ok": 1}, by_grade={"A": 1}),
     evaluated(by_outcome={"insufficient-data": 6}, by_grade={})),
    ("a failed evaluation after a good one",
     evaluated(by_outcome={"ok": 4}, by_action={"downsize": 2}, changes_skipped={"cap": 1}),
     failed_status("Prometheus: down", reason="PrometheusUnavailable", now=NOW, generation=3)),
]  # fmt: skip


@pytest.mark.parametrize(("case", "before", "after"), CASES, ids=[c[0] for c in CASES])
def test_merging_the_patch_gives_exactly_the_new_status(
    case: str, before: PolicyStatus, after: PolicyStatus
) -> None:
    old = merge({}, dump(before))  # as stored: nulls dropped
    patched = merge(old, status_patch(dump(after), old))
    assert patched == merge({}, dump(after)), case


def test_without_it_the_old_counts_would_stay() -> None:
    """The fault the patch exists for (it must be able to fail)."""
    old = merge({}, dump(evaluated(changes_skipped={"apiError": 1})))
    new = dump(evaluated(changes_skipped={"cap": 1}))
    assert merge(old, new)["changesSkipped"] == {"apiError": 1, "cap": 1}
    assert merge(old, status_patch(new, old))["changesSkipped"] == {"cap": 1}


def test_no_old_status_is_the_new_status() -> None:
    new = dump(evaluated(changes_skipped={"cap": 1}))
    assert status_patch(new, None) == new
