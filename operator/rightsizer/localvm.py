"""A real VictoriaMetrics (single node) on loopback, fed through its import API.

    dataset = cached_victoria(spec)          # generated and imported once, then reused
    with LocalVictoriaMetrics(seed=dataset.storage_dir) as vm:
        ...  # query vm.url with an explicit evaluation time (the data lies in the past)

VictoriaMetrics takes a lock on its storage folder and writes to it, so every server runs
on a private copy of the cached storage (a few MB for the standard cloud: under a second).
The import API takes Prometheus text with *millisecond* timestamps; the simulator writes
OpenMetrics with second timestamps, converted on the way in (``to_milliseconds``).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rightsizer.localprom import LocalPrometheus, _locked, dataset_key, default_cache_root
from rightsizer.simulate import CloudSpec, build_cloud, write_openmetrics, write_truth

_REQUESTS = re.compile(r'^vm_http_requests_total\{path="([^"]*)"\}\s+(\S+)', re.MULTILINE)
_QUERY_PATHS = ("/api/v1/query", "/api/v1/query_range")
_STAMPED = re.compile(rb" \d{9,11}\n")  # a sample line ending in an integer-second timestamp
_MARKER = "COMPLETE.json"
CHUNK_BYTES = 16 << 20


class VictoriaMetricsNotInstalled(RuntimeError):
    """victoria-metrics is not on PATH."""


class ImportFailed(RuntimeError):
    """VictoriaMetrics refused or lost samples of an import."""


def victoria_binary() -> Path:
    found = shutil.which("victoria-metrics")
    if found is None:
        raise VictoriaMetricsNotInstalled(
            "victoria-metrics not found on PATH: apt-get install victoria-metrics"
        )
    return Path(found)


def victoria_digest() -> str:
    """Identifies the server build (Debian's binary reports an empty version)."""
    return hashlib.sha256(victoria_binary().read_bytes()).hexdigest()[:12]


class LocalVictoriaMetrics(LocalPrometheus):
    """victoria-metrics on 127.0.0.1; a context manager, started and stopped as LocalPrometheus.

    It runs on ``storage_dir`` if given, else on a private folder: a copy of ``seed``
    (made on the first start, kept across stop/start) or empty.
    Flags: retention long enough for history in the past (VictoriaMetrics drops samples
    outside it at import), no response cache and no latency offset (history is imported
    after the fact), and room for 90-day subqueries.
    """

    def __init__(
        self,
        storage_dir: Path | None = None,
        *,
        seed: Path | None = None,
        port: int | None = None,
        retention: str = "100y",
        extra_args: Sequence[str] = (),
        log_path: Path | None = None,
        ready_timeout: float = 60.0,
        stop_timeout: float = 20.0,
    ) -> None:
        super().__init__(
            Path("unset"),
            port=port,
            retention=retention,
            extra_args=extra_args,
            log_path=log_path,
            ready_timeout=ready_timeout,
            stop_timeout=stop_timeout,
        )
        self.seed = seed
        self.data_dir = storage_dir if storage_dir is not None else self.private / "storage"

    @property
    def log_path(self) -> Path:
        return self._log_path if self._log_path is not None else self.private / "victoria.log"

    def command(self) -> list[str]:
        if not self.data_dir.exists() and self.seed is not None:
            shutil.copytree(self.seed, self.data_dir)
        return [
            str(victoria_binary()),
            f"-storageDataPath={self.data_dir}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-retentionPeriod={self.retention}",
            "-search.disableCache",
            "-search.latencyOffset=0s",
            "-search.maxPointsPerTimeseries=1000000",
            "-search.maxQueryDuration=10m",
            "-loggerLevel=WARN",
            *self.extra_args,
        ]

    def query_count(self, *, settle: float = 1.0) -> int:
        """Queries served so far (/api/v1/query and /api/v1/query_range), from its /metrics.

        victoria-metrics counts a request a little after answering it (measured: up to
        half a second later), so the count is read until it has not moved for ``settle`` s.
        """
        count = self._served()
        steady_since = time.monotonic()
        while time.monotonic() - steady_since < settle:
            time.sleep(settle / 4)
            latest = self._served()
            if latest != count:
                count, steady_since = latest, time.monotonic()
        return count

    def _served(self) -> int:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            text = response.read().decode("utf-8")
        return int(sum(float(v) for path, v in _REQUESTS.findall(text) if path in _QUERY_PATHS))

    def import_text(self, body: bytes) -> None:
        """POST Prometheus text (millisecond timestamps) to /api/v1/import/prometheus."""
        request = urllib.request.Request(
            f"{self.url}/api/v1/import/prometheus", data=body, method="POST"
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            if response.status not in (200, 204):
                raise ImportFailed(f"import answered {response.status}: {response.read()[:300]!r}")

    def import_openmetrics(self, paths: Sequence[Path]) -> int:
        """Import OpenMetrics files in chunks; the number of samples sent."""
        sent = 0
        for path in paths:
            for chunk in read_chunks(path):
                body, samples = to_milliseconds(chunk)
                self.import_text(body)
                sent += samples
        return sent

    def flush(self) -> None:
        """Make buffered samples searchable (/internal/force_flush)."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=60):
            pass

    def samples_between(self, start: float, end: float) -> int:
        """Samples stored with start < t <= end, by a query (what a client will see)."""
        span = max(1, int(end - start))
        query = f'sum(count_over_time({{__name__=~".+"}}[{span}s]))'
        params = urllib.parse.urlencode({"query": query, "time": f"{end:.3f}"})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=120) as answer:
            result = json.loads(answer.read())["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0


def read_chunks(path: Path, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The file in pieces of about ``size`` bytes, each ending at a line end."""
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk + handle.readline()


def to_milliseconds(chunk: bytes) -> tuple[bytes, int]:
    """OpenMetrics lines with integer-second timestamps -> Prometheus text in milliseconds.

    Every sample line must carry a timestamp (the simulator writes one on each); comment
    lines pass through (VictoriaMetrics skips them). Returns the body and its sample count.
    """
    lines = chunk.count(b"\n") - chunk.count(b"\n#") - chunk.startswith(b"#")
    stamped = len(_STAMPED.findall(chunk))
    if stamped != lines:
        raise ImportFailed(
            f"{lines - stamped} of {lines} sample lines lack an integer-second timestamp"
        )
    return chunk.replace(b"\n", b"000\n"), stamped


@dataclass(frozen=True)
class VictoriaDataset:
    root: Path
    storage_dir: Path
    truth_path: Path
    spec: CloudSpec
    samples: int


def cached_victoria(spec: CloudSpec, *, cache_root: Path | None = None) -> VictoriaDataset:
    """Generate ``spec`` and import it into VictoriaMetrics once; reuse the storage after.

    Keyed by the dataset key (spec and simulate's source) and the server build; built
    under a lock in a temporary folder renamed into place with its marker written last.
    """
    base = (cache_root or default_cache_root()) / "victoriametrics"
    base.mkdir(parents=True, exist_ok=True)
    root = base / f"{dataset_key(spec)}-{victoria_digest()}"
    with _locked(base / f"{root.name}.lock"):
        if not (root / _MARKER).is_file():
            shutil.rmtree(root, ignore_errors=True)
            _build(spec, base, root)
    marker = json.loads((root / _MARKER).read_text(encoding="utf-8"))
    return VictoriaDataset(root, root / "storage", root / "truth.json", spec, marker["samples"])


def _build(spec: CloudSpec, base: Path, root: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix=f".build-{root.name}-", dir=base))
    try:
        started = time.monotonic()
        cloud = build_cloud(spec)
        paths = write_openmetrics(cloud, work / "openmetrics", files=2, jobs=2)
        write_truth(cloud, work / "truth.json")
        generated = time.monotonic()
        with LocalVictoriaMetrics(work / "storage") as server:
            sent = server.import_openmetrics(paths)
            _wait_queryable(server, spec, sent)
        shutil.rmtree(work / "openmetrics")
        marker = {
            "spec": spec.to_json(),
            "samples": sent,
            "generateSeconds": round(generated - started, 3),
            "importSeconds": round(time.monotonic() - generated, 3),
        }
        (work / _MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        work.rename(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _wait_queryable(server: LocalVictoriaMetrics, spec: CloudSpec, sent: int) -> None:
    """Flush until every sample sent answers a query, or raise with the counts."""
    end = spec.end.timestamp() + 86400.0  # every sample, with a day's margin either side
    start = end - (spec.days + 2) * 86400.0
    deadline, seen = time.monotonic() + 120, 0
    while time.monotonic() < deadline:
        server.flush()
        seen = server.samples_between(start, end)
        if seen == sent:
            return
        time.sleep(0.5)
    raise ImportFailed(
        f"{sent} samples sent, {seen} queryable; too old for -retentionPeriod="
        f"{server.retention}? log tail:\n{server.log_tail()}"
    )
