"""A real Prometheus on loopback, fed by promtool backfill: for tests, the demo and benchmarks.

    files = write_openmetrics(build_cloud(spec), out)
    backfill(files, data_dir)
    with LocalPrometheus(data_dir) as prom:
        ...  # query prom.url with an explicit evaluation time (the data lies in the past)

``cached_dataset(spec)`` generates and backfills a cloud once and reuses it afterwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from rightsizer.simulate import CloudSpec, build_cloud, write_openmetrics, write_truth

_QUERY_HANDLERS = ("/api/v1/query", "/api/v1/query_range")
_REQUESTS = re.compile(r"^prometheus_http_requests_total\{([^}]*)\}\s+(\S+)", re.MULTILINE)
_HANDLER = re.compile(r'handler="([^"]*)"')
_CONFIG = "# written by rightsizer.localprom: no scrape targets\nscrape_configs: []\n"
_MARKER = "COMPLETE.json"


class PrometheusNotInstalled(RuntimeError):
    """prometheus or promtool is not on PATH."""


class BackfillError(RuntimeError):
    """promtool could not turn an OpenMetrics file into blocks."""


class PrometheusStartError(RuntimeError):
    """The server exited or did not become ready in time."""


def prometheus_binaries() -> tuple[Path, Path]:
    """(prometheus, promtool) from PATH."""
    found = {name: shutil.which(name) for name in ("prometheus", "promtool")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise PrometheusNotInstalled(
            f"{' and '.join(missing)} not found on PATH: apt-get install prometheus"
        )
    return Path(str(found["prometheus"])), Path(str(found["promtool"]))


def backfill(
    files: Sequence[Path], data_dir: Path, *, max_block_duration: str = "360h", jobs: int = 2
) -> None:
    """Turn OpenMetrics files into TSDB blocks under ``data_dir``, ``jobs`` files at a time."""
    promtool = prometheus_binaries()[1]
    data_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(
            pool.map(
                lambda path: _create_blocks(promtool, path, data_dir, max_block_duration), files
            )
        )
    failures = [message for message in results if message]
    if failures:
        raise BackfillError("\n".join(failures))


def _create_blocks(promtool: Path, path: Path, data_dir: Path, max_block_duration: str) -> str:
    """'' on success, else what went wrong with promtool's stderr."""
    command = [
        str(promtool),
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        f"--max-block-duration={max_block_duration}",
        str(path),
        str(data_dir),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return ""
    detail = (done.stderr or done.stdout).strip()[-4000:]
    return f"promtool failed on {path} (exit {done.returncode}): {detail}"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalPrometheus:
    """A Prometheus server on 127.0.0.1 over ``data_dir``; a context manager.

    The config (no scrape targets) and, unless ``log_path`` is given, the log live in a
    private temporary folder, so a shared (cached) data folder gets nothing but the TSDB.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        retention: str = "3650d",
        extra_args: Sequence[str] = (),
        log_path: Path | None = None,
        ready_timeout: float = 120.0,
        stop_timeout: float = 20.0,
    ) -> None:
        self.data_dir = data_dir
        self.port = port if port is not None else free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.retention = retention
        self.extra_args = tuple(extra_args)
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self._private: Path | None = None
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None

    @property
    def log_path(self) -> Path:
        """The server's log: ``log_path`` if given, else a file in the private folder."""
        return self._log_path if self._log_path is not None else self.private / "prometheus.log"

    @property
    def private(self) -> Path:
        """A temporary folder for the config (and default log), made on first use."""
        if self._private is None:
            self._private = Path(tempfile.mkdtemp(prefix="rightsizer-prometheus-"))
        return self._private

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        config = self.private / "prometheus.yml"
        return [
            str(prometheus_binaries()[0]),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            *self.extra_args,
        ]

    def start(self) -> None:
        """Start the server and wait until /-/ready answers (or raise with the log's tail)."""
        if self.running:
            return
        command = self.command()
        (self.private / "prometheus.yml").write_text(_CONFIG, encoding="utf-8")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise PrometheusStartError(
                    f"prometheus exited with {self._process.returncode} before it was ready; "
                    f"log tail ({self.log_path}):\n{self.log_tail()}"
                )
            if _answers(f"{self.url}/-/ready"):
                return
            time.sleep(0.1)
        raise PrometheusStartError(
            f"prometheus was not ready within {self.ready_timeout:g}s at {self.url}; "
            f"log tail ({self.log_path}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout``; a no-op when not running."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=self.stop_timeout)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def query_count(self) -> int:
        """Queries served so far (/api/v1/query and /api/v1/query_range), from its /metrics."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            text = response.read().decode("utf-8")
        total = 0.0
        for label_text, value in _REQUESTS.findall(text):
            handler = _HANDLER.search(label_text)
            if handler is not None and handler.group(1) in _QUERY_HANDLERS:
                total += float(value)
        return int(total)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@dataclass(frozen=True)
class Dataset:
    root: Path
    data_dir: Path
    truth_path: Path
    spec: CloudSpec


def cached_dataset(
    spec: CloudSpec, *, cache_root: Path | None = None, files: int = 1, jobs: int | None = None
) -> Dataset:
    """Generate and backfill ``spec`` once into ``cache_root/<key>``, then reuse it.

    The key hashes the spec and simulate's source. A build happens under a lock file, in a
    temporary folder renamed into place with its marker written last, so racing processes
    and interrupted builds are safe. ``files`` and ``jobs`` only change how fast it is built.
    """
    base = cache_root if cache_root is not None else default_cache_root()
    base.mkdir(parents=True, exist_ok=True)
    root = base / dataset_key(spec)
    with _locked(base / f"{root.name}.lock"):
        if not (root / _MARKER).is_file():
            shutil.rmtree(root, ignore_errors=True)
            _build(spec, base, root, files=files, jobs=jobs or min(files, os.cpu_count() or 1))
    return Dataset(root, root / "data", root / "truth.json", spec)


def default_cache_root() -> Path:
    configured = os.environ.get("RIGHTSIZER_CACHE")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "rightsizer" / "datasets"


def dataset_key(spec: CloudSpec) -> str:
    """A hash of the spec and of the simulate package's source."""
    digest = hashlib.sha256(json.dumps(spec.to_json(), sort_keys=True).encode())
    digest.update(simulate_source_digest().encode())
    return digest.hexdigest()[:20]


def simulate_source_digest() -> str:
    from rightsizer import simulate

    package = Path(simulate.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[IO[str]]:
    with path.open("a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(spec: CloudSpec, base: Path, root: Path, *, files: int, jobs: int) -> None:
    work = Path(tempfile.mkdtemp(prefix=f".build-{root.name}-", dir=base))
    try:
        started = time.monotonic()
        cloud = build_cloud(spec)
        paths = write_openmetrics(cloud, work / "openmetrics", files=files, jobs=jobs)
        write_truth(cloud, work / "truth.json")
        generated = time.monotonic()
        backfill(paths, work / "data", jobs=jobs)
        shutil.rmtree(work / "openmetrics")
        marker = {
            "spec": spec.to_json(),
            "files": len(paths),
            "generateSeconds": round(generated - started, 3),
            "backfillSeconds": round(time.monotonic() - generated, 3),
        }
        (work / _MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        work.rename(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
