"""Prometheus (or any PromQL backend) as a ``UsageSource``.

Requests with the same window and statistics are grouped into batches of
``agencies_per_batch``; every batch runs a fixed list of queries, all of them through a
bounded thread pool. A failed query fails its whole batch: an agency is evaluated
completely or reported as unavailable, never half.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

import orjson
import requests
import requests.adapters
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import ReadTimeoutError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from rightsizer.adapters import promql, rules
from rightsizer.adapters.assemble import BatchSeries, Instant, Ranged, assemble_batch
from rightsizer.core.policy import DAY, LabelSelector, duration_seconds
from rightsizer.ports import (
    Collection,
    CollectionRequest,
    NamespaceGroup,
    Progress,
    SourceUnavailable,
)


@dataclass(frozen=True)
class PrometheusConfig:
    """How to reach and query the backend. The defaults (2 workers, 5 agencies per query,
    CPU read every 10 minutes) were measured at 300 agencies (README, Performance).
    ``agencies_per_batch``: 10 was 7-12% faster than 5 in one sitting and within the runs'
    spread in another (33.3-35.5 s against 34.2-35.2 s, the same Prometheus CPU), while an
    incremental rebuild, which batches as the full path does, peaked at 338 MiB at 10 against
    294 MiB at 5: 5 stays."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    # credentials: never in a repr (so never in a log line that shows the config)
    bearer_token: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    ca_file: str | None = None
    verify_tls: bool = True
    timeout: float = 120.0
    retries: int = 2
    workers: int = 2  # measured: more threads only queue inside Prometheus on 2 cores
    agencies_per_batch: int = 5  # see above
    resolution: promql.Resolution = field(default_factory=promql.Resolution)
    extra_params: dict[str, str] = field(default_factory=dict)  # e.g. Thanos partial_response
    backend: promql.Backend = "prometheus"  # adds its strict parameters (docs/backends.md)
    # read rightsizer's recorded series: "auto" when they cover the window (one probe query)
    recording_rules: rules.Mode = "auto"


@dataclass(frozen=True)
class _Task:
    batch: int
    part: str | None  # the part name for queries that are not tagged
    expr: str
    daily: bool = False


class PrometheusSource:
    """Reads workloads and usage from kube-state-metrics, cAdvisor, kubelet and DCGM."""

    def __init__(
        self, config: PrometheusConfig, *, in_flight: threading.Semaphore | None = None
    ) -> None:
        """``in_flight``: the slots of queries in flight, shared by every source that is given
        the same (the operator's evaluations at once); by default ``config.workers`` of its
        own."""
        self.config = config
        self._in_flight = in_flight or threading.BoundedSemaphore(max(1, config.workers))
        self._lock = threading.Lock()
        self.queries = 0
        self.query_seconds = 0.0  # summed latency of every query (for benchmarks)
        self.query_spans: list[tuple[float, float]] = []  # (start, end) of every query
        self.plans: dict[str, tuple[datetime, rules.Plan]] = {}  # last probe, by window
        self._params = {**promql.backend_params(config.backend), **config.extra_params}
        headers = dict(config.headers)
        if config.bearer_token:
            headers["Authorization"] = f"Bearer {config.bearer_token}"
        retry = _Retry(
            total=config.retries,
            backoff_factor=0.5,
            status_forcelist=(502, 503, 504),
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
        )
        self._url = config.url.rstrip("/")
        self._headers = headers
        self._session = requests.Session()
        self._session.verify = config.ca_file or config.verify_tls
        adapter = requests.adapters.HTTPAdapter(
            max_retries=retry, pool_maxsize=max(10, config.workers)
        )
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    # -- queries ---------------------------------------------------------------------------
    def _count(self) -> None:
        with self._lock:
            self.queries += 1

    def query(self, expr: str, *, at: datetime) -> Instant:
        form = {"query": expr, "time": f"{at.timestamp():.3f}", **self._params}
        result = self._call(lambda: self._post("/api/v1/query", form))
        return [(row["metric"], _number(row["value"][1])) for row in result]

    def query_days(self, expr: str, *, start: datetime, end: datetime) -> Ranged:
        return self.query_range(expr, start=start, end=end, step_seconds=int(DAY))

    def query_range(
        self, expr: str, *, start: datetime, end: datetime, step_seconds: int
    ) -> Ranged:
        result = self.query_range_rows(expr, start=start, end=end, step_seconds=step_seconds)
        return [
            (row["metric"], [(float(t), _number(v)) for t, v in row["values"]]) for row in result
        ]

    def query_range_rows(
        self, expr: str, *, start: datetime, end: datetime, step_seconds: int
    ) -> list[dict[str, Any]]:
        """The raw result rows ({"metric": labels, "values": [[t, "v"], ...]})."""
        form = {
            "query": expr,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": str(step_seconds),
            **self._params,
        }
        rows: list[dict[str, Any]] = self._call(lambda: self._post("/api/v1/query_range", form))
        return rows

    def _post(self, path: str, form: dict[str, str]) -> Any:
        """One query, its PromQL in the form body (a batch's namespace matcher can outgrow a
        URL), the answer decoded with orjson (a tenth of the stdlib's time on large ones)."""
        with self._in_flight:
            response = self._session.post(
                f"{self._url}{path}",
                data=form,
                headers=self._headers,
                auth=self.config.basic_auth,
                timeout=self.config.timeout,
                verify=self._session.verify,  # explicit: else REQUESTS_CA_BUNDLE would win
            )
        if response.status_code != 200:
            raise _Refused(response.status_code, response.content)
        return orjson.loads(response.content)["data"]["result"]

    def _call(self, send: Callable[[], Any]) -> Any:
        """Send one query; every failure becomes a SourceUnavailable with a plain reason."""
        self._count()
        started = time.perf_counter()
        try:
            return send()
        except _Refused as error:
            if error.status in (401, 403):
                raise SourceUnavailable(
                    f"Prometheus refused the credentials ({_short(error)[:40]}): check the "
                    "bearer token, basic auth and headers"
                ) from error
            raise SourceUnavailable(
                f"Prometheus answered with an error: {_short(error)}"
            ) from error
        except (KeyError, ValueError, TypeError) as error:  # includes JSON decode errors
            raise SourceUnavailable(f"Prometheus answer not understood: {_short(error)}") from error
        except requests.Timeout as error:
            raise SourceUnavailable(
                f"Prometheus unreachable: no answer within {self.config.timeout:g}s (timed out)"
            ) from error
        except requests.exceptions.SSLError as error:
            raise SourceUnavailable(
                f"Prometheus' TLS certificate not accepted at {self.config.url}: "
                f"{_tls_cause(error)} (is the CA file the one that signed it?)"
            ) from error
        except requests.RequestException as error:
            raise SourceUnavailable(
                f"Prometheus unreachable at {self.config.url}: {_root_cause(error)}"
            ) from error
        finally:
            finished = time.perf_counter()
            with self._lock:
                self.query_seconds += finished - started
                self.query_spans.append((started, finished))

    # -- UsageSource -----------------------------------------------------------------------
    def namespaces_matching(
        self, selectors: Sequence[LabelSelector], *, end: datetime, window: str
    ) -> list[list[str]]:
        if not selectors:
            return []
        rows = self.query(promql.namespace_labels_query(window), at=end)
        labels = {row["namespace"]: row for row, _ in rows if row.get("namespace")}
        return [
            sorted(ns for ns, found in labels.items() if _selects(selector, found))
            for selector in selectors
        ]

    def namespace_groups(
        self, label: str, *, end: datetime, window: str
    ) -> dict[str, NamespaceGroup]:
        key = promql.sanitise_label(label)
        groups: dict[str, list[str]] = {}
        for row, _ in self.query(promql.namespace_labels_query(window), at=end):
            if row.get(key) and row.get("namespace"):
                groups.setdefault(row[key], []).append(row["namespace"])
        names = self._display_names(end=end, window=window)
        return {
            value: NamespaceGroup(
                namespaces=tuple(sorted(namespaces)),
                display_name=next((names[n] for n in sorted(namespaces) if n in names), None),
            )
            for value, namespaces in sorted(groups.items())
        }

    def _display_names(self, *, end: datetime, window: str) -> dict[str, str]:
        key = promql.sanitise_annotation(promql.DISPLAY_NAME_ANNOTATION)
        rows = self.query(promql.namespace_annotations_query(window), at=end)
        return {
            row["namespace"]: row[key] for row, _ in rows if row.get(key) and row.get("namespace")
        }

    def collect(
        self,
        requests_: Sequence[CollectionRequest],
        *,
        end: datetime,
        progress: Progress | None = None,
    ) -> list[Collection | SourceUnavailable]:
        batches = self._batches(requests_)
        plans, probes = self._plans(batches, end=end)
        tasks = [
            task
            for index, batch in enumerate(batches)
            for task in self._tasks(index, batch, recorded=plans[index].recorded)
        ]
        remaining = [0] * len(batches)
        for task in tasks:
            remaining[task.batch] += 1
        asked = [count + probe for count, probe in zip(remaining, probes, strict=True)]
        series: dict[int, BatchSeries] = {index: BatchSeries() for index in range(len(batches))}
        outcome: dict[int, SourceUnavailable | list[Collection]] = {}
        done = 0
        with ThreadPoolExecutor(max_workers=max(1, self.config.workers)) as pool:
            futures = {
                pool.submit(self._run, task, batches[task.batch], end): task for task in tasks
            }
            for future in as_completed(futures):
                task = futures.pop(future)  # its answer is let go once stored
                index = task.batch
                try:
                    if index not in outcome:
                        _store(series[index], task, future.result())
                except SourceUnavailable as error:
                    outcome[index] = error
                    series.pop(index, None)
                    cancel_batch(futures, index)
                remaining[index] -= 1
                if remaining[index] == 0 and index not in outcome:
                    # assembled as soon as its last query answers: raw series are let go
                    outcome[index] = self._assemble(
                        batches[index],
                        series.pop(index),
                        asked=asked[index],
                        end=end,
                        notes=(plans[index].note,),
                    )
                done += 1
                if progress:
                    progress(done, len(tasks))
        return _in_order(requests_, batches, outcome)

    def _assemble(
        self,
        batch: list[CollectionRequest],
        series: BatchSeries,
        *,
        asked: int,
        end: datetime,
        notes: tuple[str, ...] = (),
    ) -> list[Collection]:
        share, extra = divmod(asked, max(1, len(batch)))  # shares add up to what was asked
        return [
            Collection(
                key=request.key,
                observations=tuple(observations),
                queries=share + (1 if position < extra else 0),
                notes=notes,
            )
            for position, (request, observations) in enumerate(
                zip(batch, assemble_batch(series, batch, end=end), strict=True)
            )
        ]

    def _batches(self, requests_: Sequence[CollectionRequest]) -> list[list[CollectionRequest]]:
        groups: dict[tuple[object, ...], list[CollectionRequest]] = {}
        for request in requests_:
            if request.namespaces:
                groups.setdefault(request.batch_key(), []).append(request)
        size = max(1, self.config.agencies_per_batch)
        return [
            group[i : i + size] for group in groups.values() for i in range(0, len(group), size)
        ]

    def _plans(
        self, batches: list[list[CollectionRequest]], *, end: datetime
    ) -> tuple[list[rules.Plan], list[int]]:
        """Each batch's plan (recorded or raw series), and the probe queries each is charged."""
        plans: list[rules.Plan] = []
        probes = [0] * len(batches)
        decided: dict[str, rules.Plan] = {}
        for index, batch in enumerate(batches):
            window = batch[0].window
            if window not in decided:
                decided[window], probes[index] = self._plan(window, end=end)
            plans.append(decided[window])
        return plans, probes

    def _plan(self, window: str, *, end: datetime) -> tuple[rules.Plan, int]:
        """Recorded series or raw, and whether a probe query was sent to decide it."""
        fixed = rules.plan_for(self.config.recording_rules, self.config.resolution)
        if fixed is not None:
            return fixed, 0
        probed = self.plans.get(window)
        if probed is not None and probed[0] == end:
            return probed[1], 0
        try:
            rows = self.query(rules.coverage_query(window=window), at=end)
        except SourceUnavailable as error:
            return rules.Plan(False, f"coverage unknown: {error}"), 1
        plan = rules.plan_from_coverage(
            {labels.get(promql.PART, ""): value for labels, value in rows}, window=window
        )
        self.plans[window] = (end, plan)
        return plan, 1

    def _tasks(
        self, index: int, batch: list[CollectionRequest], *, recorded: bool = False
    ) -> list[_Task]:
        """The batch's queries: a fixed list, whatever the number of workloads."""
        request = batch[0]
        ns = promql.namespace_matcher(ns for member in batch for ns in member.namespaces)
        window, stale = request.window, request.stale_after
        memory_query = rules.memory_query if recorded else promql.memory_query
        # whole days: the window's CPU seconds and memory peak come from the daily query
        days = promql.whole_days(window)
        memory_stats = request.stats.get("memory", ())
        skipped = {"avg", "max"} if days else {"avg"}
        daily_query = rules.daily_query if recorded else promql.daily_query
        tasks = [
            _Task(
                index,
                None,
                promql.inventory_query(
                    ns, window=window, stale_after=stale, project_label=request.project_label
                ),
            ),
            _Task(index, None, promql.cpu_counters_query(ns, window=window, seconds=not days)),
            _Task(
                index,
                None,
                memory_query(
                    ns,
                    window=window,
                    stale_after=stale,
                    stats=[s for s in memory_stats if s not in skipped] + ["avg"],
                ),
            ),
            _Task(index, None, daily_query(ns), daily=True),
        ]
        for stat in sorted(request.stats.get("cpu", frozenset()) - {"avg"}):
            tasks.append(
                _Task(
                    index,
                    f"cpustat_{stat}",
                    rules.cpu_stat_query(ns, stat=stat, window=window)
                    if recorded
                    else promql.cpu_stat_query(
                        ns, stat=stat, window=window, resolution=self.config.resolution
                    ),
                )
            )
        if "storage" in request.stats:
            tasks.append(_Task(index, None, promql.storage_query(ns, window=window)))
        if "gpu" in request.stats:
            tasks.append(_Task(index, None, promql.gpu_query(ns, window=window)))
        return tasks

    def _run(self, task: _Task, batch: list[CollectionRequest], end: datetime) -> Any:
        if task.daily:
            window = duration_seconds(batch[0].window)
            start = end - timedelta(seconds=window - DAY)
            return self.query_days(task.expr, start=start, end=end)
        return self.query(task.expr, at=end)


class Batched(Protocol):
    """A query that belongs to a batch (by its index)."""

    @property
    def batch(self) -> int: ...


def cancel_batch(futures: Mapping[Future[Any], Batched], index: int) -> None:
    """A failed batch asks no more: its queries not yet started are cancelled (a query
    that timed out would time out again; the operator retries the whole evaluation)."""
    for future, query in futures.items():
        if query.batch == index:
            future.cancel()


def _in_order(
    requests_: Sequence[CollectionRequest],
    batches: list[list[CollectionRequest]],
    outcome: dict[int, SourceUnavailable | list[Collection]],
) -> list[Collection | SourceUnavailable]:
    """One result per request, in the order asked (requests without namespaces: empty)."""
    found: dict[int, Collection | SourceUnavailable] = {}
    for index, batch in enumerate(batches):
        result = outcome[index]
        for position, request in enumerate(batch):
            found[id(request)] = (
                result if isinstance(result, SourceUnavailable) else (result[position])
            )
    return [
        found.get(id(request), Collection(key=request.key, observations=(), queries=0))
        for request in requests_
    ]


def _store(series: BatchSeries, task: _Task, rows: Any) -> None:
    target = series.daily if task.daily else series.instant
    for labels, value in rows:
        part = task.part or labels.get(promql.PART)
        if part:
            target[part].append((labels, value))


def _selects(selector: LabelSelector, ksm_labels: dict[str, str]) -> bool:
    """Match a selector written with Kubernetes label keys against kube-state-metrics labels."""
    keys = set(selector.match_labels) | {req.key for req in selector.match_expressions}
    labels = {
        key: ksm_labels[promql.sanitise_label(key)]
        for key in keys
        if promql.sanitise_label(key) in ksm_labels
    }
    return selector.matches(labels)


class _Retry(Retry):
    """Connection errors and 502/503/504 are tried again; a query that timed out is not: it
    would time out again, multiplying the wait (the operator retries the whole evaluation)."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _number(text: str) -> float:
    return float(text)  # "NaN" and "+Inf" parse; the core flags them as implausible


class _Refused(Exception):
    """An answer other than 200 (its text as Prometheus clients have always shown it)."""

    def __init__(self, status: int, content: bytes) -> None:
        super().__init__(f"HTTP Status Code {status} ({content!r})")
        self.status = status


def _tls_cause(error: BaseException) -> str:
    """e.g. 'certificate verify failed: unable to get local issuer certificate'."""
    cause: BaseException | None = error
    while cause is not None:
        verify = getattr(cause, "verify_message", None)
        if verify:
            return f"certificate verify failed: {verify}"
        cause = cause.__cause__ or cause.__context__
    return _root_cause(error)


def _root_cause(error: BaseException) -> str:
    """The innermost reason (e.g. 'Connection refused'), without the URL and query."""
    cause: BaseException = error
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    text = str(getattr(cause, "reason", None) or cause)
    return _short(text.split("]", 1)[-1].strip() if "Errno" in text else text)


def _short(error: BaseException | str) -> str:
    text = str(error)
    return text if len(text) <= 300 else text[:297] + "..."
