"""Bearer token, basic auth, a tenant header and a private CA, for real: a TLS proxy that
asks for them (authproxy.py) in front of the real Prometheus, reached by the CLI and by
the operator's configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from authproxy import Certificates, Required, auth_proxy, make_certificates
from conftest import STANDARD

from rightsizer.adapters.prometheus import PrometheusSource
from rightsizer.cli import main
from rightsizer.core.policy import PolicySpec
from rightsizer.handlers.config import OperatorConfig
from rightsizer.localprom import LocalPrometheus
from rightsizer.service import NamedPolicy, evaluate_policies

pytestmark = pytest.mark.prometheus

TOKEN = "s3cret-token-never-printed"
AGENCY = NamedPolicy(
    "finance", PolicySpec(agency="agency-001", namespaces=["agency-001-prod", "agency-001-test"])
)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "wrong-token").write_text("not-the-token\n")
    (tmp_path / "basic").write_text("reader:pa:ss\n")  # a password may hold a colon
    return tmp_path


POLICY = """apiVersion: rightsizer.io/v1alpha1
kind: EfficiencyPolicy
metadata: {name: finance}
spec: {agency: agency-001, namespaces: [agency-001-prod, agency-001-test]}
"""


def evaluate_cli(url: str, secrets: Path, *extra: str) -> int:
    """`rightsizer evaluate` of one agency (the proxy adds nothing per agency)."""
    policy = str(secrets / "policy.yaml")
    at = STANDARD.end.isoformat()
    return main(["evaluate", "--prometheus-url", url, "--policy", policy, "--at", at,
                 "--no-progress", "--summary", *extra])  # fmt: skip


REQUIRED = {
    "bearer": Required(token=TOKEN),
    "basic": Required(basic=("reader", "pa:ss")),
    "tenant": Required(header=("X-Scope-OrgID", "gov-cloud")),
}


def credentials(kind: str, secrets: Path) -> list[str]:
    return {
        "bearer": ["--bearer-token-file", str(secrets / "token")],
        "basic": ["--basic-auth-file", str(secrets / "basic")],
        "tenant": ["--header", "X-Scope-OrgID: gov-cloud"],
    }[kind]


@pytest.fixture
def proxy(
    prometheus: LocalPrometheus, certs: Certificates, request: pytest.FixtureRequest
) -> Iterator[tuple[str, Required]]:
    required = Required(**{k: v for k, v in vars(request.param).items() if k != "seen"})
    with auth_proxy(prometheus.url, certs, required) as url:
        yield url, required


@pytest.mark.parametrize("proxy", REQUIRED.values(), ids=REQUIRED.keys(), indirect=True)
def test_cli_with_the_right_credentials_and_ca_evaluates(
    proxy: tuple[str, Required], certs: Certificates, secrets: Path, request: pytest.FixtureRequest
) -> None:
    url, required = proxy
    kind = request.node.callspec.id
    ca = str(certs.ca)
    assert evaluate_cli(url, secrets, "--ca-file", ca, *credentials(kind, secrets)) == 0
    assert required.seen and set(required.seen) == {"forwarded"}


FAILURES = [
    ("wrong-token", ["--bearer-token-file", "wrong-token"], "ca", "refused the credentials"),
    ("no-token", [], "ca", "refused the credentials (HTTP Status Code 401"),
    ("wrong-ca", ["--bearer-token-file", "token"], "other_ca", "certificate verify failed"),
    ("no-ca", ["--bearer-token-file", "token"], None, "certificate verify failed"),
]


@pytest.mark.parametrize("proxy", [REQUIRED["bearer"]], ids=["bearer"], indirect=True)
@pytest.mark.parametrize(("case", "args", "ca", "cause"), FAILURES, ids=[f[0] for f in FAILURES])
def test_cli_fails_cleanly_naming_the_cause_and_never_the_token(
    proxy: tuple[str, Required],
    certs: Certificates,
    secrets: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    args: list[str],
    ca: str | None,
    cause: str,
) -> None:
    url, _ = proxy
    files = [str(secrets / a) if a.endswith("token") else a for a in args]
    ca_args = ["--ca-file", str(getattr(certs, ca))] if ca else []
    assert evaluate_cli(url, secrets, "--retries", "0", *ca_args, *files) == 3, case
    out, err = capsys.readouterr()
    assert cause in err
    assert "Traceback" not in err
    assert TOKEN not in out + err


def operator_source(url: str, env: dict[str, str]) -> PrometheusSource:
    config = OperatorConfig.from_environment({"RIGHTSIZER_PROMETHEUS_URL": url, **env})
    return PrometheusSource(config.prometheus())


@pytest.mark.parametrize("proxy", [REQUIRED["bearer"]], ids=["bearer"], indirect=True)
def test_operator_configuration_reaches_prometheus_through_the_proxy(
    proxy: tuple[str, Required], certs: Certificates, secrets: Path
) -> None:
    url, _ = proxy
    env = {
        "RIGHTSIZER_PROMETHEUS_BEARER_TOKEN_FILE": str(secrets / "token"),
        "RIGHTSIZER_PROMETHEUS_CA_FILE": str(certs.ca),
        "RIGHTSIZER_PROMETHEUS_HEADERS": '{"X-Scope-OrgID": "gov-cloud"}',
    }
    [report] = evaluate_policies([AGENCY], operator_source(url, env), end=STANDARD.end)
    assert report.complete and report.workloads
    # the token file is re-read at every evaluation: a rotated (here: wrong) one is refused
    (secrets / "token").write_text("rotated-but-wrong\n")
    [refused] = evaluate_policies([AGENCY], operator_source(url, env), end=STANDARD.end)
    assert not refused.complete
    assert "401" in (refused.error or "")
    assert TOKEN not in (refused.error or "")


@pytest.mark.parametrize(
    "proxy", [Required(basic=("reader", "pa:ss"), header=("X-Scope-OrgID", "gov-cloud"))],
    ids=["basic+tenant"], indirect=True,
)  # fmt: skip
def test_operator_configuration_with_basic_auth_and_a_tenant_header(
    proxy: tuple[str, Required], certs: Certificates, secrets: Path
) -> None:
    url, required = proxy
    env = {
        "RIGHTSIZER_PROMETHEUS_BASIC_AUTH_FILE": str(secrets / "basic"),
        "RIGHTSIZER_PROMETHEUS_CA_FILE": str(certs.ca),
        "RIGHTSIZER_PROMETHEUS_HEADERS": '{"X-Scope-OrgID": "gov-cloud"}',
    }
    [report] = evaluate_policies([AGENCY], operator_source(url, env), end=STANDARD.end)
    assert report.complete and report.workloads
    without_tenant = {k: v for k, v in env.items() if k != "RIGHTSIZER_PROMETHEUS_HEADERS"}
    [refused] = evaluate_policies([AGENCY], operator_source(url, without_tenant), end=STANDARD.end)
    assert "401" in (refused.error or "")
    assert "header X-Scope-OrgID missing or wrong" in required.seen
