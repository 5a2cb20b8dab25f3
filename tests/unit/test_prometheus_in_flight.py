"""Queries in flight: sources that share their slots (the operator's evaluations at once)
never have more queries at the backend together than the slots, whatever each one's own
pool of workers.

A tiny HTTP server on loopback stands in for Prometheus: it answers every query after a
short wait and counts how many it holds at once. Our code is not touched.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rightsizer.adapters.prometheus import PrometheusConfig, PrometheusSource

NOW = datetime(2026, 1, 5, tzinfo=UTC)
EMPTY = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})


class CountingServer(ThreadingHTTPServer):
    held = 0
    most = 0
    lock: threading.Lock


class Handler(BaseHTTPRequestHandler):
    server: CountingServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.held += 1
            self.server.most = max(self.server.most, self.server.held)
        time.sleep(0.05)
        with self.server.lock:
            self.server.held -= 1
        body = EMPTY.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:  # keep the test output quiet
        return


@pytest.fixture
def server() -> Iterator[CountingServer]:
    httpd = CountingServer(("127.0.0.1", 0), Handler)
    httpd.lock = threading.Lock()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def ask(server: CountingServer, slots: threading.Semaphore | None) -> int:
    """Three sources of 2 workers each, asked 4 queries at once each; the most the server
    held at once."""
    config = PrometheusConfig(url=f"http://127.0.0.1:{server.server_address[1]}", workers=2)
    sources = [PrometheusSource(config, in_flight=slots) for _ in range(3)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(lambda i: sources[i % 3].query("up", at=NOW), range(24)))
    return server.most


@pytest.mark.parametrize("shared", [1, 2])
def test_sources_sharing_slots_hold_no_more_queries_at_once(
    server: CountingServer, shared: int
) -> None:
    assert 1 <= ask(server, threading.BoundedSemaphore(shared)) <= shared


def test_sources_of_their_own_each_hold_their_workers(server: CountingServer) -> None:
    assert ask(server, None) > 2  # up to 6: the bound above comes from sharing
