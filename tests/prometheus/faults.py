"""Real HTTP servers on loopback that misbehave: for source-failure tests, no patching."""

from __future__ import annotations

import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Decide = Callable[[str, bytes], tuple[int, bytes] | None]  # path, body -> answer or forward


@contextmanager
def fault_server(decide: Decide, *, upstream: str | None = None) -> Iterator[tuple[str, list[str]]]:
    """Serve on 127.0.0.1: answer with ``decide``'s (status, body), or forward upstream.

    Yields the URL and the requests received: each path, then its form body decoded.
    """
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = urllib.parse.unquote_plus(self.path)
            seen.append(f"{path} {urllib.parse.unquote_plus(body.decode(errors='replace'))}")
            answer = decide(path, body)
            if answer is None and upstream:
                request = urllib.request.Request(
                    upstream + self.path,
                    data=body or None,
                    method=self.command,
                    headers={"Content-Type": self.headers.get("Content-Type", "")},
                )
                with urllib.request.urlopen(request, timeout=60) as response:
                    answer = (response.status, response.read())
            status, payload = answer or (404, b"no upstream")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        do_GET = do_POST = _handle  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def always(status: int, body: bytes, *, delay: float = 0.0) -> Decide:
    def decide(path: str, body_: bytes) -> tuple[int, bytes]:
        del path, body_
        time.sleep(delay)
        return status, body

    return decide
