"""What each strategy would have released and risked, per workload, project, agency, total.

Risk is counted on the replayed samples: CPU samples above the CPU request, memory samples
above the memory request, workloads with any memory sample above the request, and above the
limit (an OOM kill under that limit). Released capacity is integrated over time against what
was really requested, so the averages are "cores (or GiB) released on average".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from rightsizer.backtest.references import Floats
from rightsizer.core.policy import PriceCatalogue
from rightsizer.core.savings import Amounts, monthly_cost

STRATEGIES = ("policy", "estimator", "vpa-like", "krr-like", "oracle")


@dataclass
class Tally:
    cpu_samples: int = 0
    cpu_over: int = 0
    memory_samples: int = 0
    memory_over: int = 0
    released_cpu: float = 0.0  # core-seconds
    released_memory: float = 0.0  # byte-seconds
    changes: int = 0
    workloads: set[str] = field(default_factory=set)
    memory_over_workloads: set[str] = field(default_factory=set)
    limit_over_workloads: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Replay:
    """One container's samples in one replay window, and what was really requested."""

    workload: str
    scopes: tuple[str, ...]  # e.g. ("total", "agency:a", "project:a/p", "workload:...")
    cpu: Floats
    memory: Floats
    real_cpu: float | None
    real_memory: float | None
    replicas: float
    seconds: float


@dataclass(frozen=True)
class TraceLine:
    """What one strategy requested for one container at one step (for audits and tests)."""

    step: float  # unix seconds
    strategy: str
    workload: str
    container: str
    cpu: float | None
    memory: float | None


@dataclass
class Ledger:
    tallies: dict[tuple[str, str], Tally] = field(default_factory=dict)
    trace: list[TraceLine] = field(default_factory=list)

    def tally(self, strategy: str, scope: str) -> Tally:
        return self.tallies.setdefault((strategy, scope), Tally())

    def record(
        self,
        strategy: str,
        replay: Replay,
        *,
        cpu: float | None,
        memory: float | None,
        memory_limit: float | None,
    ) -> None:
        cpu_samples = replay.cpu[~np.isnan(replay.cpu)]
        memory_samples = replay.memory[~np.isnan(replay.memory)]
        for scope in replay.scopes:
            tally = self.tally(strategy, scope)
            tally.workloads.add(replay.workload)
            if cpu is not None and cpu_samples.size:
                tally.cpu_samples += int(cpu_samples.size)
                tally.cpu_over += int((cpu_samples > cpu).sum())
            if memory is not None and memory_samples.size:
                tally.memory_samples += int(memory_samples.size)
                over = int((memory_samples > memory).sum())
                tally.memory_over += over
                if over:
                    tally.memory_over_workloads.add(replay.workload)
            if (
                memory_limit is not None
                and memory_samples.size
                and (memory_samples > memory_limit).any()
            ):
                tally.limit_over_workloads.add(replay.workload)
            if cpu is not None and replay.real_cpu is not None:
                tally.released_cpu += (replay.real_cpu - cpu) * replay.replicas * replay.seconds
            if memory is not None and replay.real_memory is not None:
                tally.released_memory += (
                    (replay.real_memory - memory) * replay.replicas * replay.seconds
                )

    def count_change(self, strategy: str, scopes: Iterable[str]) -> None:
        for scope in scopes:
            self.tally(strategy, scope).changes += 1


@dataclass(frozen=True)
class StrategyResult:
    strategy: str
    scope: str
    released_cpu_cores: float  # on average over the backtest
    released_memory_gib: float
    money_per_month: Decimal
    cpu_over_share: float
    memory_over_share: float
    workloads: int
    memory_over_workloads: int
    limit_over_workloads: int
    changes: int

    @property
    def memory_over_workload_share(self) -> float:
        return self.memory_over_workloads / self.workloads if self.workloads else 0.0


def summarise(ledger: Ledger, *, seconds: float, prices: PriceCatalogue) -> list[StrategyResult]:
    """Averages over ``seconds`` (the backtest's length), one row per strategy and scope."""
    rows = []
    for (strategy, scope), tally in sorted(ledger.tallies.items()):
        cpu = tally.released_cpu / seconds if seconds else 0.0
        memory = tally.released_memory / seconds if seconds else 0.0
        rows.append(
            StrategyResult(
                strategy=strategy,
                scope=scope,
                released_cpu_cores=cpu,
                released_memory_gib=memory / 2**30,
                money_per_month=monthly_cost(Amounts(cpu=cpu, memory=memory), prices),
                cpu_over_share=tally.cpu_over / tally.cpu_samples if tally.cpu_samples else 0.0,
                memory_over_share=(
                    tally.memory_over / tally.memory_samples if tally.memory_samples else 0.0
                ),
                workloads=len(tally.workloads),
                memory_over_workloads=len(tally.memory_over_workloads),
                limit_over_workloads=len(tally.limit_over_workloads),
                changes=tally.changes,
            )
        )
    return rows
