"""The operator-wide event budget: a bucket of ``per_minute`` events, refilled at that rate."""

from __future__ import annotations

import pytest

from rightsizer.adapters.eventbudget import EventBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# (per minute, seconds waited before each attempt, attempts granted)
CASES = [
    ("a full bucket, then nothing", 3, [0, 0, 0, 0, 0], [True, True, True, False, False]),
    (
        "one more every 20 s at 3/min",
        3,
        [0, 0, 0, 0, 20, 0],
        [True, True, True, False, True, False],
    ),
    (
        "a quiet hour refills only the bucket",
        2,
        [0, 0, 3600, 0, 0],
        [True, True, True, True, False],
    ),
    ("0: no limit", 0, [0] * 5, [True] * 5),
]


@pytest.mark.parametrize(
    ("per_minute", "waits", "granted"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_budget_grants_what_its_rate_allows(
    per_minute: float, waits: list[float], granted: list[bool]
) -> None:
    clock = Clock()
    budget = EventBudget(per_minute, clock=clock)
    got = []
    for wait in waits:
        clock.now += wait
        got.append(budget.take())
    assert got == granted
