"""A TLS reverse proxy on loopback that asks for credentials, in front of a real Prometheus.

Prometheus has no auth of its own; deployments put a proxy in front (or run Thanos, Mimir,
VictoriaMetrics behind one). This one serves HTTPS with a certificate from its own CA (made
by openssl in a temporary folder) and forwards a request only when it carries every
credential asked for: a bearer token, basic auth, and/or a header (e.g. X-Scope-OrgID).
Anything else gets 401 and is not forwarded.
"""

from __future__ import annotations

import base64
import hmac
import ssl
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA that signed the proxy's certificate
    cert: Path
    key: Path
    other_ca: Path  # a CA that signed nothing here: verifying against it must fail


def make_certificates(folder: Path) -> Certificates:
    """Two CAs and a server certificate for 127.0.0.1 and localhost, signed by the first."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    for name in ("ca", "other-ca"):
        openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN=rightsizer test {name}",
        )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1",
    )  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt",
    )  # fmt: skip
    return Certificates(
        folder / "ca.crt", folder / "server.crt", folder / "server.key", folder / "other-ca.crt"
    )


@dataclass(frozen=True)
class Required:
    """What a request must carry; None: not asked for."""

    token: str | None = None
    basic: tuple[str, str] | None = None
    header: tuple[str, str] | None = None
    seen: list[str] = field(default_factory=list)  # "forwarded" or the refusal's reason

    def refusal(self, headers: dict[str, str]) -> str | None:
        authorization = headers.get("authorization", "")
        if self.token is not None and not _same(authorization, f"Bearer {self.token}"):
            return "bearer token missing or wrong"
        if self.basic is not None:
            expected = base64.b64encode(":".join(self.basic).encode()).decode()
            if not _same(authorization, f"Basic {expected}"):
                return "basic auth missing or wrong"
        if self.header is not None and headers.get(self.header[0].lower()) != self.header[1]:
            return f"header {self.header[0]} missing or wrong"
        return None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


@contextmanager
def auth_proxy(upstream: str, certs: Certificates, required: Required) -> Iterator[str]:
    """Serve https://127.0.0.1:<port> in front of ``upstream``; yields that URL."""

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            reason = required.refusal({k.lower(): v for k, v in self.headers.items()})
            required.seen.append(reason or "forwarded")
            if reason is not None:
                self._answer(401, b'{"status":"error","errorType":"unauthorized"}')
                return
            request = urllib.request.Request(
                upstream + self.path,
                data=body or None,
                method=self.command,
                headers={"Content-Type": self.headers.get("Content-Type", "")},
            )
            with urllib.request.urlopen(request, timeout=120) as response:
                self._answer(response.status, response.read())

        def _answer(self, status: int, payload: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_POST = _handle  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.cert, certs.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
