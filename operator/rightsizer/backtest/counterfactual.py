"""OOM kills as they would have happened under the limits a strategy set, not the real ones.

Replayed history was recorded under the workloads' real memory limits: a container that
really died at its 1.25 GiB limit would not have died under a simulated 1.9 GiB one, and a
container cut to 1 GiB would have died where history shows it peaking at 1.1 GiB. Feeding
the real kills to the policy at every step makes it answer the same kill again and again
(the memory ratchets up); ignoring the simulated limit hides the kills its own cuts cause.

So before each evaluation the observed OOM kills are replaced by the counterfactual ones: a
kill is a run of memory samples at or above the limit in force when they were taken (the
real limit before the strategy's first change, then each change's limit from its moment
on), and the memory it died at is that limit. Throttling is left as observed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rightsizer.backtest.references import Floats
from rightsizer.core.model import ContainerUsage, UsageSummary

AT_LIMIT = 0.999  # a sample within 0.1% of the limit reached it (float rounding)


@dataclass(frozen=True)
class LimitChange:
    at: float  # unix seconds: the limit holds for samples after this moment
    limit: float | None  # bytes; None: no limit


@dataclass(frozen=True)
class Kills:
    count: int
    died_at: float | None  # the largest limit a kill happened at


def limits_in_force(
    times: Floats, real_limit: float | None, changes: Sequence[LimitChange]
) -> Floats:
    """The memory limit each sample was taken under (inf where there was none)."""
    limits = np.full(times.shape, np.inf if real_limit is None else real_limit, dtype=np.float64)
    for change in sorted(changes, key=lambda c: c.at):
        limits[times > change.at] = np.inf if change.limit is None else change.limit
    return limits


def kills(memory: Floats, limits: Floats) -> Kills:
    """Runs of samples at or above their limit: each run is one kill."""
    finite = np.isfinite(limits) & ~np.isnan(memory)
    hit = np.zeros(memory.shape, dtype=bool)
    hit[finite] = memory[finite] >= limits[finite] * AT_LIMIT
    if not hit.any():
        return Kills(count=0, died_at=None)
    starts = hit & ~np.concatenate(([False], hit[:-1]))
    return Kills(count=int(starts.sum()), died_at=float(limits[hit].max()))


def with_kills(usage: UsageSummary, found: dict[str, Kills]) -> UsageSummary:
    """``usage`` with each listed container's OOM kills replaced by ``found``."""
    containers: dict[str, ContainerUsage] = dict(usage.containers)
    for name, kill in found.items():
        if name in containers:
            containers[name] = containers[name].model_copy(
                update={"oom_kills": kill.count, "oom_memory": kill.died_at}
            )
    return usage.model_copy(update={"containers": containers})
