"""Incremental evaluation: a ``UsageSource`` that reads only what is new since the last cycle.

Per agency it keeps compact state (``core.sketch``: per pod container, resource (CPU,
memory, CPU throttling) and UTC day, the day's point count, sum, peak and CPU quantile knots
at 0.5/0.75/0.9/0.95/0.98/0.99 plus the policy's own percentiles, and the open day's
10-minute points; for throttling the sum is the throttled CFS periods and the count all CFS
periods; all of an agency's containers as numpy columns, computed a whole agency at a time),
encoded by ``statecodec`` and kept in a ``StateStore`` (files for the CLI, sharded ConfigMaps
for the operator).

Each cycle, per batch of agencies, a fixed list of queries whatever the number of workloads,
one per part (``incremental_queries``: parts joined by ``or`` cost Prometheus more than
their sum):
the inventory over the time since the state's end (``incremental_inventory``: owners,
projects, requests, limits, replicas, PVCs, OOM kills and restart counters are kept in the
state, merged each cycle), ``live_parts`` (freshness, sample interval), storage/GPU when
asked, and ``delta_parts`` over the steps since the state's end (CPU, memory and CFS
periods): in a steady cycle no query scans the whole window but storage and GPU's.

When an agency's state is missing, undecodable (checksum, version), about something else
(its fingerprint: namespaces, window, resolution, quantile levels, project label, source
URL), newer than the evaluation or older than ``max_gap``, it is rebuilt: three range
queries' parts with one point per UTC midnight (``seed_*_parts``, the memory one also
carrying the day's CFS periods; the kept inventory's ``seed_parts``) plus the open day's
steps. The sketches are turned back into the figures the full path's queries return, keyed
by container (the throttled ratio as Σ throttled / Σ periods over the window), so
``assemble`` and the core run unchanged.

Tolerance (measured on the standard synthetic cloud, 3 agencies x 30 workloads x 14 days,
seeded 30 hours before the end and folded every 3 hours, against the full evaluation at the
end; the test ``tests/prometheus/test_incremental.py`` asserts it): the same grade for at
least 95% of workloads and every recommended request within 5% (or 1 millicore / 1 MiB) of
the full path's — except where one path keeps the current request inside the policy's minChange band
and the other does not; there the statistic the target starts from is within 7% (worst
measured 5.7%); each container's throttled ratio within 0.01 of the full path's, with the
same throttling rule matches. The differences come from UTC days (instead of days counted
back from the end), the oldest day weighted by its overlap, and quantiles interpolated
between daily knots.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from rightsizer.adapters import incremental_inventory as inventory
from rightsizer.adapters import incremental_queries as queries
from rightsizer.adapters import promql
from rightsizer.adapters.assemble import BatchSeries, assemble_batch
from rightsizer.adapters.incremental_state import (
    Levels,
    Window,
    fold_delta,
    forget_before,
    seed_state,
    synthesise,
)
from rightsizer.adapters.prometheus import PrometheusSource, cancel_batch
from rightsizer.adapters.statecodec import (
    SCHEMA,
    AgencyState,
    StateCorrupt,
    StateHeader,
    StateOutdated,
    decode_header,
    decode_series,
    encode,
)
from rightsizer.core.aggregate import estimate_interval
from rightsizer.core.policy import DAY, duration_seconds
from rightsizer.core.sketch import DAY_SECONDS
from rightsizer.ports import (
    Collection,
    CollectionRequest,
    NamespacesThrough,
    Progress,
    SourceUnavailable,
    StateStore,
    StateUnavailable,
)

log = structlog.get_logger("rightsizer.state")


@dataclass(frozen=True)
class IncrementalConfig:
    """``cpu_levels``: the quantiles kept per day (a policy's own percentiles are added);
    ``max_gap``: a longer time since the last cycle rebuilds the state instead of folding;
    ``agencies_per_batch``: agencies read by one query of a steady cycle (a rebuild scans the
    window, and batches as the full path does: ``PrometheusConfig.agencies_per_batch``). A
    steady cycle's queries cost Prometheus per row, not per query: measured at 300 agencies
    (README), 25 per query took a third less of Prometheus' CPU than 5, for 22 MiB more at
    the peak; a rebuild at 25 peaked at 546 MiB (at 5: 325 MiB)."""

    cpu_levels: tuple[float, ...] = (0.5, 0.75, 0.9, 0.95, 0.98, 0.99)
    max_gap: str = "2d"
    agencies_per_batch: int = 25


@dataclass
class _Plan:
    request: CollectionRequest
    fingerprint: str
    levels: Levels
    header: StateHeader | None  # None: rebuild
    state: AgencyState | None = None  # decoded when its batch's answers are in

    @property
    def since(self) -> float | None:
        return self.header.end if self.header else None


@dataclass
class _Batch:
    plans: list[_Plan]
    since: float  # the state's end; for a rebuild, the open day's midnight
    seed: bool
    rows: dict[str, Any] = field(default_factory=dict)


class IncrementalSource(NamespacesThrough):
    """Same protocol as ``PrometheusSource`` (which it queries through)."""

    source: PrometheusSource

    def __init__(
        self,
        source: PrometheusSource,
        store: StateStore,
        config: IncrementalConfig | None = None,
        *,
        cache: dict[str, bytes] | None = None,
    ) -> None:
        self.source, self.store = source, store
        self.config = config or IncrementalConfig()
        # agency -> why its state was rebuilt, in the cycle at the latest ``end`` (the
        # evaluation collects its agencies in chunks: one cycle, several calls)
        self.rebuilt: dict[str, str] = {}
        self._cycle: datetime | None = None
        self.state_bytes: dict[str, int] = {}  # agency -> encoded size (last cycle)
        # encoded (compact) between cycles; shared by the operator's per-evaluation sources
        self._memory: dict[str, bytes] = {} if cache is None else cache

    # -- collect ---------------------------------------------------------------------------
    def collect(
        self,
        requests_: Sequence[CollectionRequest],
        *,
        end: datetime,
        progress: Progress | None = None,
    ) -> list[Collection | SourceUnavailable]:
        step = int(duration_seconds(self.source.config.resolution.step))
        aligned = math.floor(end.timestamp() / step) * step
        if end != self._cycle:
            self.rebuilt, self._cycle = {}, end
        plans = [self._plan(r, aligned) for r in requests_ if r.namespaces]
        batches = self._batches(plans, aligned)
        tasks = [query for i, b in enumerate(batches) for query in self._tasks(i, b, end)]
        remaining = [sum(1 for t in tasks if t.batch == i) for i in range(len(batches))]
        asked = list(remaining)
        results: dict[str, Collection | SourceUnavailable] = {}
        failed: set[int] = set()
        with ThreadPoolExecutor(max_workers=max(1, self.source.config.workers)) as pool:
            futures = {pool.submit(query.run): query for query in tasks}
            for done, future in enumerate(as_completed(futures), start=1):
                query = futures.pop(future)  # its answer is let go once folded
                index = query.batch
                try:
                    if index not in failed:
                        batches[index].rows.setdefault(query.name, []).extend(
                            _tagged(future.result(), query.part)
                        )
                except SourceUnavailable as error:
                    failed.add(index)
                    results.update({p.request.key: error for p in batches[index].plans})
                    cancel_batch(futures, index)
                    batches[index].rows.clear()  # nothing of a failed batch is folded
                # the batch's rows alone hold the answer now: it goes as its agencies fold
                del future
                remaining[index] -= 1
                if remaining[index] == 0 and index not in failed:
                    results.update(self._finish(batches[index], end, asked[index], step))
                if progress:
                    progress(done, len(tasks))
        return [
            results.get(r.key, Collection(key=r.key, observations=(), queries=0)) for r in requests_
        ]

    def _plan(self, request: CollectionRequest, aligned: float) -> _Plan:
        levels = self._levels(request)
        fingerprint = self._fingerprint(request, levels)
        header, why = self._load(request.key, fingerprint, aligned)
        if header is None:
            self.rebuilt[request.key] = why
            log.info("state_rebuilt", agency=request.key, reason=why)
        return _Plan(request, fingerprint, levels, header)

    def _levels(self, request: CollectionRequest) -> Levels:
        def asked(resource: str) -> set[float]:
            found = (promql.quantile_of(s) for s in request.stats.get(resource, ()))  # type: ignore[call-overload]
            return {q for q in found if q is not None}

        memory = asked("memory")
        return Levels(
            cpu=tuple(sorted(set(self.config.cpu_levels) | asked("cpu"))),
            memory=tuple(sorted(set(self.config.cpu_levels) | memory)) if memory else None,
        )

    def _fingerprint(self, request: CollectionRequest, levels: Levels) -> str:
        resolution = self.source.config.resolution
        about = [
            SCHEMA,
            self.source.config.url,
            sorted(request.namespaces),
            request.window,
            resolution.step,
            resolution.rate_window,
            levels.cpu,
            levels.memory,
            request.project_label,
        ]
        return hashlib.sha256(json.dumps(about).encode()).hexdigest()[:32]

    def _load(self, key: str, fingerprint: str, aligned: float) -> tuple[StateHeader | None, str]:
        """The state's checked header (its series are decoded later, while other batches'
        queries run), or None and why it must be rebuilt."""
        blob, origin = self._memory.get(key), "memory"
        if blob is None:
            origin = "store"
            try:
                blob = self.store.load(key)
            except StateUnavailable as error:
                log.warning("state_unreadable", agency=key, error=str(error))
                return None, f"unreadable: {error}"
        if blob is None:
            return None, "missing"
        try:
            state = decode_header(blob)
        except StateOutdated as error:  # an upgrade: expected once, not damage
            log.info("state_outdated", agency=key, reason=str(error))
            return None, str(error)
        except StateCorrupt as error:
            log.warning("state_corrupt", agency=key, error=str(error))
            return None, f"corrupt: {error}"
        if state.fingerprint != fingerprint:
            return None, "about something else (policy, namespaces or source changed)"
        if state.end > aligned:
            return None, "newer than the evaluation"
        if aligned - state.end > duration_seconds(self.config.max_gap):
            return None, f"older than {self.config.max_gap}"
        log.info("state_read", agency=key, bytes=len(blob), origin=origin)
        return state, ""

    def _batches(self, plans: list[_Plan], aligned: float) -> list[_Batch]:
        groups: dict[tuple[tuple[object, ...], float | None, Levels], list[_Plan]] = {}
        for plan in plans:
            since = plan.since
            groups.setdefault((plan.request.batch_key(), since, plan.levels), []).append(plan)
        batches = []
        for (_, since, _), group in groups.items():
            # a rebuild scans the window as the full path does, and batches as it does
            size = max(
                1,
                self.config.agencies_per_batch
                if since is not None
                else self.source.config.agencies_per_batch,
            )
            for i in range(0, len(group), size):
                start = since if since is not None else aligned // DAY_SECONDS * DAY_SECONDS
                batches.append(_Batch(group[i : i + size], float(start), since is None))
        return batches

    def _tasks(self, index: int, batch: _Batch, end: datetime) -> list[_Query]:
        """The batch's queries: one per part (storage and GPU tag their own rows)."""
        request = batch.plans[0].request
        ns = promql.namespace_matcher(n for p in batch.plans for n in p.request.namespaces)
        window, stale = request.window, request.stale_after
        resolution = self.source.config.resolution
        step = int(duration_seconds(resolution.step))
        instant: dict[str, Mapping[str, str]] = {
            "inventory": inventory.delta_parts(
                ns,
                span_seconds=math.ceil(end.timestamp() - batch.since),
                window=window,
                stale_after=stale,
                project_label=request.project_label,
            ),
            "live": queries.live_parts(ns, stale_after=stale),
        }
        if "storage" in request.stats:
            instant["storage"] = {"": promql.storage_query(ns, window=window)}
        if "gpu" in request.stats:
            instant["gpu"] = {"": promql.gpu_query(ns, window=window)}
        tasks = [
            _Query(index, name, part, _instant(self.source, expr, end))
            for name, parts in instant.items()
            for part, expr in parts.items()
        ]
        aligned = math.floor(end.timestamp() / step) * step
        ranged: list[tuple[str, Mapping[str, str], float, float, int]] = []
        if batch.since + step <= aligned:
            delta = queries.delta_parts(ns, resolution=resolution, step_seconds=step)
            ranged.append(("delta", delta, batch.since + step, aligned, step))
        if batch.seed:
            start = end.timestamp() - duration_seconds(window)
            first = math.floor(start / DAY_SECONDS) * DAY_SECONDS + DAY_SECONDS
            if first <= batch.since:
                levels = batch.plans[0].levels
                for name, parts in (
                    (
                        "seed_cpu",
                        queries.seed_cpu_parts(ns, resolution=resolution, levels=levels.cpu),
                    ),
                    ("seed_memory", queries.seed_memory_parts(ns, levels=levels.memory)),
                    ("seed_kept", inventory.seed_parts(ns, project_label=request.project_label)),
                ):
                    ranged.append((name, parts, first, batch.since, DAY_SECONDS))
        tasks.extend(
            _Query(index, name, part, _ranged(self.source, expr, start, stop, every))
            for name, parts, start, stop, every in ranged
            for part, expr in parts.items()
        )
        return tasks

    def _finish(self, batch: _Batch, end: datetime, asked: int, step: int) -> dict[str, Collection]:
        series = BatchSeries()
        for name in ("inventory", "live", "storage", "gpu"):
            for labels, value in batch.rows.get(name, []):
                part = labels.get(promql.PART)
                if part and (name != "inventory" or inventory.is_fresh(part)):
                    series.instant[part].append((labels, value))
        recent = [value for _, value in series.part("cpu_recent")]
        interval = estimate_interval(recent, duration_seconds(promql.RECENT), fallback=step)
        request = batch.plans[0].request
        window_seconds = duration_seconds(request.window)
        window = Window(
            start=end.timestamp() - window_seconds,
            end=end.timestamp(),
            days=max(1, round(window_seconds / DAY)),
            step=step,
            interval=interval,
        )
        aligned = math.floor(end.timestamp() / step) * step
        answers = _Answers(batch.rows, [plan.request.namespaces for plan in batch.plans])
        batch.rows.clear()  # held by ``answers`` alone now: an agency's go once it is folded
        for plan in batch.plans:
            ours = answers.of(plan.request.namespaces)
            if plan.header is None:
                plan.state = AgencyState(plan.fingerprint, batch.since)
                seed_state(
                    plan.state,
                    ours("seed_cpu"),
                    ours("seed_memory"),
                    levels=plan.levels,
                    step=step,
                )
                inventory.seed(plan.state.inventory, ours("seed_kept"))
            else:
                plan.state = decode_series(plan.header)  # checked in _load: it decodes
            fold_delta(plan.state, ours("delta"), levels=plan.levels, until=aligned)
            inventory.fold(plan.state.inventory, ours("inventory"), at=end.timestamp())
            plan.state.end = max(plan.state.end, aligned)
            forget_before(plan.state, window.start)
            inventory.forget(plan.state.inventory, window.start)
            inventory.emit(plan.state.inventory, series)
            synthesise(
                plan.state,
                series,
                window=window,
                levels=plan.levels,
                stats={r: s for r, s in plan.request.stats.items()},
            )
            self._save(plan.request.key, plan.state)
            plan.state = plan.header = None  # saved and synthesised: let the series go now
            answers.done(plan.request.namespaces)
        share, extra = divmod(asked, len(batch.plans))
        assembled = assemble_batch(series, [plan.request for plan in batch.plans], end=end)
        return {
            plan.request.key: Collection(
                key=plan.request.key,
                observations=tuple(observations),
                queries=share + (1 if position < extra else 0),
            )
            for position, (plan, observations) in enumerate(
                zip(batch.plans, assembled, strict=True)
            )
        }

    def _save(self, key: str, state: AgencyState) -> None:
        blob = encode(state)
        self._memory[key] = blob
        self.state_bytes[key] = len(blob)
        try:
            self.store.save(key, blob)
        except StateUnavailable as error:
            log.warning("state_not_saved", agency=key, error=str(error))


@dataclass(frozen=True)
class _Query:
    """One query of batch ``batch``: its answer's rows go to ``name``, each tagged with
    ``part`` (an empty part: the query tags its own rows)."""

    batch: int
    name: str
    part: str
    run: Callable[[], Any]


def _tagged(rows: list[Any], part: str) -> list[Any]:
    if part:
        for row in rows:
            row[0][promql.PART] = part
    return rows


class _Answers:
    """A batch's answer rows by query name and namespace (each row looked at once). The rows
    of a namespace are let go when the last agency of the batch reading them is done, so
    that the answers do not outlive their folding (they would otherwise coexist with the
    batch's synthesised series and observations: the peak of a steady cycle)."""

    def __init__(self, rows: dict[str, list[Any]], readers: Sequence[Sequence[str]]) -> None:
        self._rows: dict[str, dict[str, list[Any]]] = {}
        for name, answer in rows.items():
            mine = self._rows[name] = {}
            for row in answer:
                mine.setdefault(row[0].get("namespace"), []).append(row)
        self._readers = Counter(namespace for names in readers for namespace in names)

    def of(self, namespaces: Sequence[str]) -> Callable[[str], list[Any]]:
        """The rows of one query name about ``namespaces`` (one agency's), by name."""

        def rows(name: str) -> list[Any]:
            found = self._rows.get(name, {})
            return [row for namespace in namespaces for row in found.get(namespace, ())]

        return rows

    def done(self, namespaces: Sequence[str]) -> None:
        for namespace in namespaces:
            self._readers[namespace] -= 1
            if self._readers[namespace] <= 0:
                for rows in self._rows.values():
                    rows.pop(namespace, None)


def _instant(source: PrometheusSource, expr: str, end: datetime) -> Callable[[], Any]:
    return lambda: source.query(expr, at=end)


def _ranged(
    source: PrometheusSource, expr: str, start: float, stop: float, step: int
) -> Callable[[], Any]:
    first, last = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(stop, UTC)
    return lambda: source.query_range(expr, start=first, end=last, step_seconds=step)
