"""Evaluate agencies in several processes: agencies are independent, and one Python process
evaluates on one core (decoding answers, folding states, scoring 15,000 workloads).

Each process builds its own source from a ``SourceRecipe`` and evaluates whole chunks of
policies with ``service.evaluate_policies``, exactly as one process would (the same queries
per batch, the same state files, one per agency); the queries in flight across all the
processes stay within the recipe's ``workers``. Reports come back in the policies' order. A
process that dies (killed, out of memory) fails the agencies it held with the reason, as an
outage does: nothing else stops.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rightsizer.adapters.incremental import IncrementalConfig, IncrementalSource
from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource
from rightsizer.adapters.statestore import FileStateStore
from rightsizer.core.report import AgencyReport, failed_agency_report
from rightsizer.ports import Progress, UsageSource
from rightsizer.service import CHUNK, NamedPolicy, evaluate_policies


@dataclass(frozen=True)
class SourceRecipe:
    """How to build a usage source, in this process or another: Prometheus (or another
    PromQL backend), and with ``state`` a folder of incremental state."""

    prometheus: PrometheusConfig
    state: Path | None = None
    incremental: IncrementalConfig | None = None

    def build(self) -> UsageSource:
        source = PrometheusSource(self.prometheus)
        if self.state is None:
            return source
        return IncrementalSource(source, FileStateStore(self.state), self.incremental)

    def sharing_workers(self, processes: int) -> SourceRecipe:
        """The recipe for one of ``processes``: its share of the queries in flight."""
        workers = max(1, self.prometheus.workers // processes)
        return dataclasses.replace(
            self, prometheus=dataclasses.replace(self.prometheus, workers=workers)
        )


def evaluate_in_processes(
    policies: Sequence[NamedPolicy],
    recipe: SourceRecipe,
    *,
    end: datetime,
    processes: int,
    prepare: Callable[[], None] | None = None,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> list[AgencyReport]:
    """One report per policy, in order, evaluated by up to ``processes`` processes (1: in
    this one). ``prepare`` runs first in each new process (logging, the collector's
    thresholds: a process started afresh has neither); ``chunk``: policies per task."""
    chunks = [policies[first : first + chunk] for first in range(0, len(policies), chunk)]
    processes = min(processes, len(chunks))
    if processes <= 1:
        return evaluate_policies(policies, recipe.build(), end=end, progress=progress)
    reports: list[AgencyReport] = []
    with ProcessPoolExecutor(
        max_workers=processes,
        mp_context=multiprocessing.get_context("spawn"),  # nothing of this process' threads
        initializer=_start,
        initargs=(recipe.sharing_workers(processes), prepare),
    ) as pool:
        futures = [pool.submit(_evaluate, list(part), end) for part in chunks]
        for part, future in zip(chunks, futures, strict=True):
            reports.extend(_outcome(part, future, end=end))
            if progress:
                progress(len(reports), len(policies))
    return reports


def _outcome(
    part: Sequence[NamedPolicy], future: Future[list[AgencyReport]], *, end: datetime
) -> list[AgencyReport]:
    try:
        return future.result()
    except BrokenProcessPool as error:
        reason = f"the evaluating process stopped before this agency was done ({error})"
        return [failed_agency_report(p.name, p.spec, end=end, error=reason) for p in part]


# in a process of the pool: its source, built once by ``_start``
_this_process: dict[str, UsageSource] = {}


def _start(recipe: SourceRecipe, prepare: Callable[[], None] | None) -> None:
    if prepare is not None:
        prepare()
    _this_process["source"] = recipe.build()


def _evaluate(policies: list[NamedPolicy], end: datetime) -> list[AgencyReport]:
    return evaluate_policies(policies, _this_process["source"], end=end)
