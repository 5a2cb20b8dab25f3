"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager.

The binaries come from ``scripts/build-control-plane.sh`` (built from the Go module proxy on
first use, cached by version afterwards). Certificates are throw-away: a CA, the apiserver's
serving certificate, an admin client certificate (``O=system:masters``) and the
service-account signing key, made with openssl (or Python ``cryptography`` when openssl is
missing). Ports are picked at run time. ``stop()`` ends the processes in reverse start order
(controller manager, apiserver, etcd): an apiserver whose etcd went first takes ~20 s to exit.

    with ControlPlane.start(work_dir) as cp:
        cp.kubectl("get", "ns")
        cp.request("GET", "/api/v1/namespaces").json()
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests

from rightsizer.localprom import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-control-plane.sh"
BINARIES = (
    "etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm", "toxiproxy-server",
)  # fmt: skip


class ControlPlaneError(RuntimeError):
    """A process exited or did not become ready; the message carries its log's tail."""


def ensure_binaries() -> Path:
    """The folder with the binaries; builds what is missing (~14 min on a fresh machine)."""
    folder = subprocess.run(
        [str(BUILD_SCRIPT), "--print-dir"], check=True, capture_output=True, text=True
    ).stdout.strip()
    bin_dir = Path(folder.splitlines()[-1])
    if all(os.access(bin_dir / name, os.X_OK) for name in BINARIES):
        return bin_dir
    # Progress goes to stderr (pytest shows it on failure); the folder is stdout's last line.
    built = subprocess.run([str(BUILD_SCRIPT)], check=False, stdout=subprocess.PIPE, text=True)
    if built.returncode != 0:
        raise ControlPlaneError(
            f"{BUILD_SCRIPT} failed with exit code {built.returncode} (it needs Go >= 1.25 "
            "and the Go module proxy); see its output above"
        )
    return Path(built.stdout.strip().splitlines()[-1])


# -- certificates ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Pki:
    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / name

    @property
    def ca(self) -> Path:
        return self.path("ca.crt")

    @property
    def admin(self) -> tuple[Path, Path]:
        return self.path("admin.crt"), self.path("admin.key")


_SERVER_EXT = (
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
)
_CLIENT_EXT = (
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=clientAuth\n"
)


def make_pki(folder: Path) -> Pki:
    """CA, serving cert (127.0.0.1), admin client cert, service-account key pair."""
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("openssl"):
        _pki_openssl(folder)
    else:
        _pki_cryptography(folder)
    return Pki(folder)


def _pki_openssl(c: Path) -> None:
    def ossl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=rightsizer-e2e-ca",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-keyout", str(c / "ca.key"), "-out", str(c / "ca.crt"))  # fmt: skip
    for name, subject, ext in (
        ("serving", "/CN=kube-apiserver", _SERVER_EXT),
        ("admin", "/O=system:masters/CN=admin", _CLIENT_EXT),
    ):
        (c / f"{name}.ext").write_text(ext)
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
             "-keyout", str(c / f"{name}.key"), "-out", str(c / f"{name}.csr"))  # fmt: skip
        ossl("x509", "-req", "-in", str(c / f"{name}.csr"), "-CA", str(c / "ca.crt"),
             "-CAkey", str(c / "ca.key"), "-CAcreateserial", "-days", "2",
             "-extfile", str(c / f"{name}.ext"), "-out", str(c / f"{name}.crt"))  # fmt: skip
    ossl("genrsa", "-out", str(c / "sa.key"), "2048")
    ossl("rsa", "-in", str(c / "sa.key"), "-pubout", "-out", str(c / "sa.pub"))


def _pki_cryptography(c: Path) -> None:  # pragma: no cover - only without openssl
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def pem_key(k: rsa.RSAPrivateKey) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    now = dt.datetime.now(dt.UTC)

    def cert(
        subject: x509.Name, k: rsa.RSAPrivateKey, issuer: x509.Name, signer: rsa.RSAPrivateKey
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
        )

    ca_key = key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rightsizer-e2e-ca")])
    ca = (
        cert(ca_name, ca_key, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (c / "ca.key").write_bytes(pem_key(ca_key))
    (c / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, attrs, usage, sans in (
        ("serving", [(NameOID.COMMON_NAME, "kube-apiserver")], ExtendedKeyUsageOID.SERVER_AUTH,
         [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
        ("admin", [(NameOID.ORGANIZATION_NAME, "system:masters"), (NameOID.COMMON_NAME, "admin")],
         ExtendedKeyUsageOID.CLIENT_AUTH, []),
    ):  # fmt: skip
        k = key()
        builder = cert(
            x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs]), k, ca_name, ca_key
        ).add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        (c / f"{name}.key").write_bytes(pem_key(k))
        (c / f"{name}.crt").write_bytes(
            builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        )
    sa = key()
    (c / "sa.key").write_bytes(pem_key(sa))
    (c / "sa.pub").write_bytes(
        sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


# -- processes ------------------------------------------------------------------------------
def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """Linux: SIGTERM this child when the test process dies, even by SIGKILL (no leaks)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PDEATHSIG


@dataclass
class Process:
    name: str
    command: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self, env: Mapping[str, str] | None = None) -> None:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C on pytest does not reach it: stop() does
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads at that point)
                env=dict(env) if env is not None else None,
            )

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> float:
        """SIGTERM, SIGKILL after ``timeout``; returns the seconds it took."""
        started = time.monotonic()
        if self.popen is None or self.popen.poll() is not None:
            return 0.0
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=timeout)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=30)

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise ControlPlaneError(
                f"{self.name} exited with {self.popen.returncode}; log tail "
                f"({self.log_path}):\n{self.tail()}"
            )


def wait_until(what: str, ready: Any, *, timeout: float, processes: Sequence[Process] = ()) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for process in processes:
            process.check_alive()
        if ready():
            return
        if time.monotonic() > deadline:
            tails = "\n".join(f"== {p.name}:\n{p.tail()}" for p in processes)
            raise ControlPlaneError(f"timed out after {timeout:g}s waiting for {what}\n{tails}")
        time.sleep(0.2)


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
        return False


# Everyone but the admin (the tests and the controller manager) at Metadata level: what the
# operator's ServiceAccount asked for and what it was answered.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: [admin]
  - level: None
    resources: [{group: coordination.k8s.io, resources: [leases]}]
  - level: Metadata
"""


def kubeconfig_text(server: str, ca: Path, user: Mapping[str, str], name: str) -> str:
    """A kubeconfig with one cluster, one user (``client-certificate``/``-key`` or ``token``)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "e2e", "cluster": {"server": server, "certificate-authority": str(ca)}}
            ],
            "users": [{"name": name, "user": dict(user)}],
            "contexts": [{"name": name, "context": {"cluster": "e2e", "user": name}}],
            "current-context": name,
        },
        indent=1,
    )


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager, started by ``start()``."""

    bin_dir: Path
    work: Path
    pki: Pki
    api_port: int = 0
    processes: list[Process] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    # -- life cycle -------------------------------------------------------------------------
    @classmethod
    def start(cls, work: Path, bin_dir: Path | None = None) -> ControlPlane:
        work.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        plane = cls(bin_dir=bin_dir or ensure_binaries(), work=work, pki=make_pki(work / "pki"))
        plane.timings["certificates"] = time.monotonic() - began
        try:
            plane._start_all()
        except BaseException:
            plane.stop()
            raise
        return plane

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, name: str, command: list[str]) -> Process:
        process = Process(name, command, self.work / f"{name}.log")
        process.start()
        self.processes.append(process)
        return process

    def _start_all(self) -> None:
        b, c, w = self.bin_dir, self.pki, self.work
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        etcd_port, peer_port, self.api_port = sorted(ports)

        began = time.monotonic()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        etcd = self._spawn("etcd", [
            str(b / "etcd"), "--name", "e2e", "--data-dir", str(w / "etcd-data"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"e2e={peer_url}",
            "--unsafe-no-fsync=true", "--log-level=warn",
        ])  # fmt: skip
        wait_until("etcd /health", lambda: _http_ok(f"{etcd_url}/health"), timeout=60,
                   processes=[etcd])  # fmt: skip
        self.timings["etcd"] = time.monotonic() - began

        began = time.monotonic()
        (w / "audit-policy.yaml").write_text(AUDIT_POLICY)
        apiserver = self._spawn("kube-apiserver", [
            str(b / "kube-apiserver"),
            "--etcd-servers", etcd_url,
            "--cert-dir", str(w / "apiserver-certs"),
            "--tls-cert-file", str(c.path("serving.crt")),
            "--tls-private-key-file", str(c.path("serving.key")),
            "--secure-port", str(self.api_port), "--bind-address", "127.0.0.1",
            "--service-cluster-ip-range", "10.0.0.0/24", "--allow-privileged=true",
            "--authorization-mode", "RBAC",
            "--disable-admission-plugins", "ServiceAccount",
            # GA since 1.30 and on by default; named so the suite says what it relies on
            "--enable-admission-plugins", "ValidatingAdmissionPolicy",
            "--runtime-config", "admissionregistration.k8s.io/v1=true",
            "--service-account-issuer", f"https://127.0.0.1:{self.api_port}/",
            "--service-account-key-file", str(c.path("sa.pub")),
            "--service-account-signing-key-file", str(c.path("sa.key")),
            "--client-ca-file", str(c.ca),
            "--audit-policy-file", str(w / "audit-policy.yaml"),
            "--audit-log-path", str(self.audit_log),
        ])  # fmt: skip
        context = ssl.create_default_context(cafile=str(c.ca))
        context.load_cert_chain(*map(str, c.admin))
        wait_until("kube-apiserver /readyz", lambda: _http_ok(f"{self.url}/readyz", context),
                   timeout=120, processes=[etcd, apiserver])  # fmt: skip
        self.timings["kube-apiserver"] = time.monotonic() - began

        self.admin_kubeconfig.write_text(
            kubeconfig_text(
                self.url,
                c.ca,
                {"client-certificate": str(c.admin[0]), "client-key": str(c.admin[1])},
                "admin",
            )
        )
        began = time.monotonic()
        manager = self._spawn("kube-controller-manager", [
            str(b / "kube-controller-manager"),
            "--kubeconfig", str(self.admin_kubeconfig),
            "--leader-elect=false", "--secure-port=0",
            "--service-account-private-key-file", str(c.path("sa.key")),
            "--root-ca-file", str(c.ca),
            "--controllers", "*",
        ])  # fmt: skip
        # the default ServiceAccount appears once the controller manager works
        wait_until(
            "kube-controller-manager (the default ServiceAccount in namespace default)",
            lambda: self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default").ok,
            timeout=90,
            processes=[etcd, apiserver, manager],
        )
        self.timings["kube-controller-manager"] = time.monotonic() - began

    def stop(self) -> None:
        """Reverse start order; every process is stopped even if one of them fails to."""
        errors = []
        for process in reversed(self.processes):
            try:
                self.timings[f"stop {process.name}"] = process.stop()
            except Exception as error:  # keep stopping the others
                errors.append(f"{process.name}: {error}")
                process.kill()
        self.processes.clear()
        if errors:
            raise ControlPlaneError("; ".join(errors))

    def check_alive(self) -> None:
        for process in self.processes:
            process.check_alive()

    # -- clients ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.work / "admin.kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.work / "audit.log"

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        stdin: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl; on ``check`` a non-zero exit raises with kubectl's stderr."""
        command = [
            str(self.bin_dir / "kubectl"),
            "--kubeconfig",
            str(kubeconfig or self.admin_kubeconfig),
            *args,
        ]
        result = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def helm(self, *args: str) -> str:
        home = self.work / "helm"
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home),
            "HELM_CONFIG_HOME": str(home),
            "HELM_DATA_HOME": str(home),
        }
        result = subprocess.run(
            [str(self.bin_dir / "helm"), *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        token: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """One HTTP request to the apiserver: as admin (client cert) or with a bearer token."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        cert = None
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        else:
            cert = tuple(map(str, self.pki.admin))
        for _ in range(50):
            answer = requests.request(
                method,
                self.url + path,
                data=None if body is None else json.dumps(body),
                headers=headers,
                cert=cert,
                verify=str(self.pki.ca),
                params=params,
                timeout=30,
            )
            if answer.status_code != 429:
                break
            # "too many requests": what a new CRD's endpoint answers until it is served
            time.sleep(float(answer.headers.get("Retry-After") or 1) / 5)
        return answer

    def get(self, path: str) -> dict[str, Any]:
        answer = self.request("GET", path)
        answer.raise_for_status()
        return answer.json()  # type: ignore[no-any-return]

    def audit(self, user: str) -> list[dict[str, Any]]:
        """The audit log's events for ``user`` (ResponseComplete stage)."""
        found = []
        with self.audit_log.open(encoding="utf-8") as log:
            for line in log:
                event = json.loads(line)
                if event.get("user", {}).get("username") == user:
                    found.append(event)
        return found

    def token_kubeconfig(self, path: Path, token: str, *, server: str | None = None) -> Path:
        path.write_text(kubeconfig_text(server or self.url, self.pki.ca, {"token": token}, "sa"))
        return path


# -- toxiproxy: a slow API connection for the operator ---------------------------------------
@dataclass
class Toxiproxy:
    """toxiproxy-server with one TCP proxy in front of the apiserver."""

    process: Process
    api: str
    listen_port: int = 0

    @classmethod
    def start(cls, bin_dir: Path, work: Path, upstream_port: int) -> Toxiproxy:
        api_port, listen_port = free_port(), free_port()
        while listen_port == api_port:
            listen_port = free_port()
        process = Process(
            "toxiproxy",
            [str(bin_dir / "toxiproxy-server"), "-host", "127.0.0.1", "-port", str(api_port)],
            work / "toxiproxy.log",
        )
        process.start()
        proxy = cls(process, f"http://127.0.0.1:{api_port}", listen_port)
        try:
            wait_until("toxiproxy", lambda: _http_ok(f"{proxy.api}/version"), timeout=30,
                       processes=[process])  # fmt: skip
            proxy._post("/proxies", {
                "name": "apiserver", "listen": f"127.0.0.1:{listen_port}",
                "upstream": f"127.0.0.1:{upstream_port}", "enabled": True,
            })  # fmt: skip
        except BaseException:
            process.stop()
            raise
        return proxy

    def _post(self, path: str, body: Any) -> None:
        answer = requests.post(self.api + path, json=body, timeout=10)
        if answer.status_code >= 300:
            raise ControlPlaneError(f"toxiproxy {path}: {answer.status_code} {answer.text}")

    def latency(self, milliseconds: int) -> None:
        """Delay every chunk from the apiserver to the client."""
        self._post("/proxies/apiserver/toxics", {
            "name": "latency", "type": "latency", "stream": "downstream",
            "attributes": {"latency": milliseconds, "jitter": 0},
        })  # fmt: skip

    def clear(self) -> None:
        requests.delete(f"{self.api}/proxies/apiserver/toxics/latency", timeout=10)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.listen_port}"

    def stop(self) -> None:
        self.process.stop()
