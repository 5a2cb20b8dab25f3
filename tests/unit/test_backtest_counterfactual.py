"""Counterfactual OOM kills: under the limits a strategy set, not the ones history ran with."""

import numpy as np
import pytest

from rightsizer.backtest.counterfactual import (
    Kills,
    LimitChange,
    kills,
    limits_in_force,
    with_kills,
)
from rightsizer.core.model import ContainerUsage, ResourceStats, UsageSummary, WorkloadRef

TIMES = np.arange(10, dtype=np.float64) * 100.0  # samples at 0, 100, ..., 900 s
# memory climbing to the real limit (1.0) twice: killed at samples 4 and 9
MEMORY = np.array([0.6, 0.7, 0.8, 0.9, 1.0, 0.6, 0.7, 0.8, 0.9, 1.0])

CASES = [
    # name, real limit, changes, expected kills, expected died-at
    ("history as it was: two kills at the real limit", 1.0, [], 2, 1.0),
    ("raised before both kills: none", 1.0, [LimitChange(at=-1, limit=1.5)], 0, None),
    ("raised between them: only the first", 1.0, [LimitChange(at=450, limit=1.5)], 1, 1.0),
    ("cut to 0.75: each climb dies earlier", 1.0, [LimitChange(at=-1, limit=0.75)], 2, 0.75),
    ("no limit at all: no kill", None, [], 0, None),
    ("limit removed by a change", 1.0, [LimitChange(at=-1, limit=None)], 0, None),
    (
        "the latest change wins",
        1.0,
        [LimitChange(at=450, limit=0.75), LimitChange(at=-1, limit=1.5)],
        1,
        0.75,
    ),
]


@pytest.mark.parametrize(
    ("name", "real_limit", "changes", "count", "died_at"), CASES, ids=[c[0] for c in CASES]
)
def test_kills_under_the_limits_in_force(
    name: str,
    real_limit: float | None,
    changes: list[LimitChange],
    count: int,
    died_at: float | None,
) -> None:
    found = kills(MEMORY, limits_in_force(TIMES, real_limit, changes))
    assert found == Kills(count=count, died_at=died_at)


def test_gaps_are_not_kills() -> None:
    memory = np.array([np.nan, 1.0, np.nan])
    assert kills(memory, np.ones(3)).count == 1
    assert kills(np.full(3, np.nan), np.ones(3)).count == 0


def test_with_kills_replaces_only_the_listed_containers() -> None:
    stats = ResourceStats(values={"max": 1.0}, history_days=14)
    usage = UsageSummary(
        ref=WorkloadRef(namespace="n", kind="Deployment", name="w"),
        end="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
        window_seconds=86400,
        containers={
            name: ContainerUsage(container=name, resources={"memory": stats}, oom_kills=3)
            for name in ("app", "sidecar")
        },
    )
    changed = with_kills(usage, {"app": Kills(count=0, died_at=None), "gone": Kills(1, 2.0)})
    assert changed.containers["app"].oom_kills == 0
    assert changed.containers["sidecar"].oom_kills == 3
    assert set(changed.containers) == {"app", "sidecar"}
