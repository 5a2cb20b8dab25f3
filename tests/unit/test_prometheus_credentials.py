"""Prometheus credentials: read from the mounted Secret's files at every evaluation (so a
rotated Secret is picked up), TLS verified unless turned off, and never in the logs.

A tiny HTTP server on loopback stands in for an authenticating proxy in front of
Prometheus (Prometheus has no auth of its own): it answers the query API only with the
credential it currently expects. Our code is not touched.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rightsizer.adapters.prometheus import PrometheusSource
from rightsizer.handlers.config import OperatorConfig
from rightsizer.ports import SourceUnavailable

NOW = datetime(2026, 1, 5, tzinfo=UTC)
EMPTY = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})


class AuthServer(ThreadingHTTPServer):
    expected = ""  # the whole Authorization header the server accepts now
    seen: list[str]


class Handler(BaseHTTPRequestHandler):
    server: AuthServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        given = self.headers.get("Authorization", "")
        self.server.seen.append(given)
        ok = given == self.server.expected
        body = (EMPTY if ok else "unauthorized").encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json" if ok else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, *_: object) -> None:  # keep the test output quiet
        return


@pytest.fixture
def server() -> Iterator[AuthServer]:
    httpd = AuthServer(("127.0.0.1", 0), Handler)
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(server: AuthServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def _rotate(path: Path, text: str) -> None:
    """As the kubelet updates a mounted Secret: a new file swapped in atomically."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(text + "\n")
    fresh.replace(path)


def _query(config: OperatorConfig) -> None:
    PrometheusSource(config.prometheus()).query("up", at=NOW)


def test_bearer_token_is_reread_after_rotation(server: AuthServer, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    _rotate(token_file, "first-secret-token")
    config = OperatorConfig.from_environment(
        {"RIGHTSIZER_PROMETHEUS_URL": _url(server),
         "RIGHTSIZER_PROMETHEUS_BEARER_TOKEN_FILE": str(token_file)}
    )  # fmt: skip
    server.expected = "Bearer first-secret-token"
    _query(config)  # the first evaluation
    old = PrometheusSource(config.prometheus())

    server.expected = "Bearer second-secret-token"  # the Secret is rotated
    _rotate(token_file, "second-secret-token")
    _query(config)  # the next evaluation reads the new token
    with pytest.raises(SourceUnavailable):
        old.query("up", at=NOW)  # the old one is refused: the server really checks
    assert server.seen[-2:] == ["Bearer second-secret-token", "Bearer first-secret-token"]


def test_basic_auth_is_reread_after_rotation(server: AuthServer, tmp_path: Path) -> None:
    auth_file = tmp_path / "userpass"
    config = OperatorConfig.from_environment(
        {"RIGHTSIZER_PROMETHEUS_URL": _url(server),
         "RIGHTSIZER_PROMETHEUS_BASIC_AUTH_FILE": str(auth_file)}
    )  # fmt: skip
    for password in ("pw-one", "pw-two"):
        _rotate(auth_file, f"reader:{password}")
        server.expected = "Basic " + base64.b64encode(f"reader:{password}".encode()).decode()
        _query(config)
    assert len(server.seen) == 2


def test_a_refused_token_is_never_logged(
    server: AuthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator's log of a failed evaluation (its structlog JSON) and the error itself
    carry the reason, never the credential."""
    from rightsizer.handlers import logs

    secret = "s3cr3t-token-that-must-not-leak"
    token_file = tmp_path / "token"
    _rotate(token_file, secret)
    config = OperatorConfig.from_environment(
        {"RIGHTSIZER_PROMETHEUS_URL": _url(server),
         "RIGHTSIZER_PROMETHEUS_BEARER_TOKEN_FILE": str(token_file)}
    )  # fmt: skip
    server.expected = "Bearer another-token"
    logs.configure("json")
    log = logs.logger("rightsizer.operator")
    with pytest.raises(SourceUnavailable) as failed:
        _query(config)
    # what the handler logs and posts as an event when an evaluation cannot read usage
    log.warning("evaluation_degraded", policy="p", reason="PrometheusUnavailable",
                message=str(failed.value), config=repr(config), prometheus=repr(config.prometheus()))  # fmt: skip
    out = capsys.readouterr()
    assert "401" in str(failed.value) or "unauthorized" in str(failed.value).lower()
    assert "evaluation_degraded" in out.out + out.err
    assert secret not in out.out + out.err
    assert secret not in str(failed.value)
    assert server.seen == [f"Bearer {secret}"], "the token was sent, and only to the server"


def test_tls_is_verified_by_default() -> None:
    config = OperatorConfig.from_environment({"RIGHTSIZER_PROMETHEUS_URL": "https://prom:9091"})
    prometheus = config.prometheus()
    assert config.insecure is False
    assert prometheus.verify_tls is True
    insecure = OperatorConfig.from_environment(
        {"RIGHTSIZER_PROMETHEUS_URL": "https://prom:9091", "RIGHTSIZER_PROMETHEUS_INSECURE": "true"}
    )
    assert insecure.prometheus().verify_tls is False


def test_an_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    """Verification really happens: a server with a self-signed certificate is refused."""
    import ssl
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    httpd = AuthServer(("127.0.0.1", 0), Handler)
    httpd.seen, httpd.expected = [], ""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{httpd.server_address[1]}"
    try:
        strict = OperatorConfig.from_environment({"RIGHTSIZER_PROMETHEUS_URL": url})
        with pytest.raises(SourceUnavailable, match=r"(?i)certificate|ssl"):
            _query(strict)
        trusted = OperatorConfig.from_environment(
            {"RIGHTSIZER_PROMETHEUS_URL": url, "RIGHTSIZER_PROMETHEUS_CA_FILE": str(cert)}
        )
        _query(trusted)  # the same server, its CA given: accepted
    finally:
        httpd.shutdown()
        httpd.server_close()
