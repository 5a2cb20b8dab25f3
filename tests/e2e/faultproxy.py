"""A fault-injecting HTTP(S) reverse proxy on loopback, for the fault matrix.

It sits between the operator and a real server (the kube-apiserver, Prometheus) and, by
rules the test programs, answers instead of the server (409, 429 with Retry-After, 5xx),
delays a request or its answer, holds it until the test says, drops the connection, cuts
a watch stream, rewrites the answer's body, or forwards with another bearer token. Every
request is recorded (method, path, status, whether it reached the server), so a test can
count what reached the server.

TLS: the proxy serves with a certificate the test chooses (the control plane's serving
certificate, whose CA the operator trusts, or an impostor's) and verifies the upstream
with the control plane's CA. The client's own Authorization header is forwarded, so the
API server authenticates the operator's ServiceAccount, and its audit log says who.

    with FaultProxy("https://127.0.0.1:6443", upstream_ca=ca, cert=(crt, key)) as proxy:
        proxy.add(Rule("conflict", method="PATCH", path="/deployments/", status=409, times=2))
        ...
        assert not proxy.seen(method="PATCH", forwarded=True)
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "host", "accept-encoding", "content-length",
}  # fmt: skip
JSON_PATCH = "application/json-patch+json"


@dataclass
class Seen:
    """One request as the proxy saw it."""

    at: float  # time.time() when it arrived
    method: str
    path: str
    query: str
    content_type: str
    status: int = 0  # what the client got (0: no answer, the connection was dropped)
    fault: str = ""  # the rule that acted on it ("" when passed through untouched)
    forwarded: bool = False  # it reached the server

    @property
    def watch(self) -> bool:
        return "watch=true" in self.query or "watch=1" in self.query


@dataclass
class Rule:
    """What to do with matching requests; the first matching rule with tries left acts.

    ``after`` lets that many matches pass untouched first; ``times`` (None: until removed)
    counts the matches acted on; ``when`` (None: always) is asked before each match, e.g.
    "once a resize has been answered 2xx". Effects, in order: ``gate`` (wait until it is set; then
    forward, or drop when ``forward`` is False), ``delay`` (before forwarding), ``status``
    (answer instead of the server), ``drop`` (close without an answer), ``auth`` (forward
    with this Authorization header), ``hold`` (forward, then keep the answer this long),
    ``cut_after`` (forward a stream, cut it after this many seconds), ``transform``
    (rewrite the answer's body)."""

    name: str
    method: str | None = None
    path: str = ""  # a regex searched in "path?query"
    content_type: str | None = None
    after: int = 0
    times: int | None = None
    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    auth: str | None = None
    hold: float = 0.0
    cut_after: float | None = None
    transform: Callable[[str, bytes], bytes] | None = None  # (path?query, body) -> body
    when: Callable[[], bool] | None = None
    gate: threading.Event | None = None
    forward: bool = True  # after the gate opens
    matched: int = 0
    acted: int = 0
    waiting: threading.Event = field(default_factory=threading.Event)  # a request is at the gate

    def take(self, method: str, target: str, content_type: str) -> bool:
        """Does this rule act on the request (and count it)?"""
        if self.method is not None and method != self.method:
            return False
        if self.content_type is not None and self.content_type not in content_type:
            return False
        if not re.search(self.path, target):
            return False
        if self.times is not None and self.acted >= self.times:
            return False
        if self.when is not None and not self.when():
            return False
        self.matched += 1
        if self.matched <= self.after:
            return False
        self.acted += 1
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        context = self.proxy.context
        if context is not None:
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away is not the test's failure


class FaultProxy:
    """The proxy; see the module docstring. A context manager."""

    def __init__(
        self,
        upstream: str,
        *,
        upstream_ca: Path | None = None,
        cert: tuple[Path, Path] | None = None,
        require_bearer: str | None = None,
    ) -> None:
        self.upstream = upstream
        self.upstream_ca = upstream_ca
        self.require_bearer = require_bearer
        self.context: ssl.SSLContext | None = None
        self.rules: list[Rule] = []
        self.record: list[Seen] = []
        self.port = 0
        self._lock = threading.RLock()  # a rule's ``when`` may read the record
        self._server: _Server | None = None
        self._open: set[socket.socket] = set()
        self._streams: set[socket.socket] = set()
        if cert is not None:
            self.use_certificate(*cert)

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> Self:
        server = _Server(("127.0.0.1", self.port), _handler(self))
        server.proxy = self
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True, name="faultproxy").start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop listening and close every open connection (the server looks down)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        self.drop_connections()

    down, up = stop, start  # the same port again: SO_REUSEADDR

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for rule in self.rules:
            if rule.gate is not None:
                rule.gate.set()
        self.stop()

    @property
    def url(self) -> str:
        scheme = "https" if self.context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    # -- programming ------------------------------------------------------------------------
    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule; requests held at a gate are let go (and forwarded)."""
        with self._lock:
            rules, self.rules = self.rules, []
        for rule in rules:
            if rule.gate is not None:
                rule.gate.set()

    def use_certificate(self, cert: Path, key: Path) -> None:
        """Serve new connections with this certificate; open ones are closed."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self.context = context
        self.drop_connections()

    def drop_connections(self, *, streams_only: bool = False) -> int:
        """Close open client connections (only streams, e.g. watches): returns how many."""
        with self._lock:
            chosen = set(self._streams if streams_only else self._open | self._streams)
        for sock in chosen:
            _shut(sock)
        return len(chosen)

    # -- the record -------------------------------------------------------------------------
    def seen(
        self,
        *,
        method: str | None = None,
        path: str = "",
        content_type: str | None = None,
        forwarded: bool | None = None,
        since: float = 0.0,
    ) -> list[Seen]:
        with self._lock:
            record = list(self.record)
        return [
            s
            for s in record
            if s.at >= since
            and (method is None or s.method == method)
            and re.search(path, f"{s.path}?{s.query}")
            and (content_type is None or content_type in s.content_type)
            and (forwarded is None or s.forwarded == forwarded)
        ]

    # -- used by the handler ----------------------------------------------------------------
    def _rule_for(self, method: str, target: str, content_type: str) -> Rule | None:
        with self._lock:
            return next((r for r in self.rules if r.take(method, target, content_type)), None)

    def _note(self, seen: Seen) -> None:
        with self._lock:
            self.record.append(seen)

    def _track(self, sock: socket.socket, *, stream: bool = False, on: bool = True) -> None:
        with self._lock:
            group = self._streams if stream else self._open
            if on:
                group.add(sock)
            else:
                group.discard(sock)

    def _connect(self, *, streaming: bool) -> http.client.HTTPConnection:
        parts = urllib.parse.urlsplit(self.upstream)
        timeout = None if streaming else 120.0
        if parts.scheme == "https":
            context = ssl.create_default_context(
                cafile=str(self.upstream_ca) if self.upstream_ca else None
            )
            return http.client.HTTPSConnection(
                parts.hostname or "127.0.0.1", parts.port, context=context, timeout=timeout
            )
        return http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=timeout
        )


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.proxy = proxy
    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultProxy

    def setup(self) -> None:
        super().setup()
        self.proxy._track(self.connection)
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            try:
                self.connection.do_handshake()
            except (OSError, ssl.SSLError) as error:
                self.proxy._note(Seen(time.time(), "TLS", "", "", "", fault=f"handshake: {error}"))
                self.close_connection = True
                raise
            finally:
                self.connection.settimeout(None)
            if self.connection.context is not self.proxy.context:  # swapped meanwhile
                self.proxy._note(Seen(time.time(), "TLS", "", "", "", fault="swapped"))
                self.close_connection = True
                raise ConnectionAbortedError("the certificate changed during the handshake")

    def finish(self) -> None:
        self.proxy._track(self.connection, on=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        ctype = self.headers.get("Content-Type", "")
        body = self._body()
        query = parts.query
        if "application/x-www-form-urlencoded" in ctype and body:
            # a form's parameters (a PromQL query sent as POST) count as the query string
            query = "&".join(part for part in (query, body.decode(errors="replace")) if part)
        seen = Seen(time.time(), self.command, parts.path, query, ctype)
        self.proxy._note(seen)
        target = f"{parts.path}?{query}"
        if (
            self.proxy.require_bearer is not None
            and self.headers.get("Authorization") != f"Bearer {self.proxy.require_bearer}"
        ):
            seen.fault = "unauthorized"
            self._answer(seen, 401, b'{"status":"error","error":"unauthorized"}')
            return
        rule = self.proxy._rule_for(self.command, target, ctype)
        if rule is not None:
            seen.fault = rule.name
            if not self._before(rule, seen):
                return
        self._forward(seen, body, rule)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle  # noqa: N815

    def _before(self, rule: Rule, seen: Seen) -> bool:
        """The rule's effects before forwarding; False when the request ends here."""
        if rule.gate is not None:
            rule.waiting.set()
            rule.gate.wait(timeout=120)
            if not rule.forward:
                self._drop()
                return False
        if rule.delay:
            time.sleep(rule.delay)
        if rule.status is not None:
            self._answer(seen, rule.status, rule.body, rule.headers)
            return False
        if rule.drop:
            self._drop()
            return False
        return True

    def _drop(self) -> None:
        self.close_connection = True
        _shut(self.connection)

    def _answer(
        self, seen: Seen, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        seen.status = status
        try:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def _forward(self, seen: Seen, body: bytes, rule: Rule | None) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if rule is not None and rule.auth is not None:
            headers["Authorization"] = rule.auth
        upstream = self.proxy._connect(streaming=seen.watch)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
        except OSError as error:
            upstream.close()
            seen.fault = seen.fault or f"upstream: {error}"
            self._answer(seen, 502, f'{{"message":"upstream: {error}"}}'.encode())
            return
        seen.forwarded = True
        seen.status = answer.status
        try:
            self._relay(answer, seen, rule)
        except OSError:
            self.close_connection = True
        finally:
            upstream.close()

    def _relay(self, answer: http.client.HTTPResponse, seen: Seen, rule: Rule | None) -> None:
        streaming = answer.getheader("Content-Length") is None and (
            rule is None or rule.transform is None
        )
        if not streaming:
            payload = answer.read()
            if rule is not None and rule.transform is not None:
                payload = rule.transform(f"{seen.path}?{seen.query}", payload)
        if rule is not None and rule.hold:
            time.sleep(rule.hold)  # the server has acted; its answer comes late
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        if not streaming:
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._stream(answer, rule)

    def _stream(self, answer: http.client.HTTPResponse, rule: Rule | None) -> None:
        self.proxy._track(self.connection, stream=True)
        timer = None
        if rule is not None and rule.cut_after is not None:
            timer = threading.Timer(rule.cut_after, _shut, (self.connection,))
            timer.start()
        try:
            while True:
                chunk = answer.read1(65536)
                if not chunk:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        finally:
            if timer is not None:
                timer.cancel()
            self.proxy._track(self.connection, stream=True, on=False)
