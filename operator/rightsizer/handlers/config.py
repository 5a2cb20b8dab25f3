"""The operator's settings, from its environment (the Helm chart sets them).

RIGHTSIZER_PROMETHEUS_URL                 required, e.g. http://prometheus:9090
RIGHTSIZER_PROMETHEUS_BEARER_TOKEN_FILE   re-read at every evaluation (rotation)
RIGHTSIZER_PROMETHEUS_BASIC_AUTH_FILE     user:password, re-read likewise
RIGHTSIZER_PROMETHEUS_CA_FILE             CA bundle; TLS is verified unless
RIGHTSIZER_PROMETHEUS_INSECURE            "true"
RIGHTSIZER_PROMETHEUS_HEADERS             JSON object of extra headers
RIGHTSIZER_PROMETHEUS_TIMEOUT             seconds per query (120)
RIGHTSIZER_PROMETHEUS_WORKERS             queries in flight (4)
RIGHTSIZER_APPLY_ENABLED                  "true" lets apply-mode policies change workloads
RIGHTSIZER_TICK_SECONDS                   how often schedules are checked (60)
RIGHTSIZER_JITTER_SECONDS                 spread of policies on the same schedule (600)
RIGHTSIZER_MAX_EVENTS                     events per evaluation (100)
RIGHTSIZER_METRICS_PORT                   /metrics (9102; 0 turns it off)
RIGHTSIZER_LOG_FORMAT                     json | console
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rightsizer.adapters.prometheus import PrometheusConfig


@dataclass(frozen=True)
class OperatorConfig:
    prometheus_url: str
    token_file: str | None = None
    basic_auth_file: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 120.0
    workers: int = 4
    apply_enabled: bool = False
    tick_seconds: float = 60.0
    jitter_seconds: float = 600.0
    retry_seconds: float = 300.0
    max_events: int = 100
    metrics_port: int = 9102
    log_format: str = "json"

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        env = os.environ if env is None else env
        url = env.get("RIGHTSIZER_PROMETHEUS_URL", "").strip()
        if not url:
            raise ValueError("RIGHTSIZER_PROMETHEUS_URL is not set")
        headers = json.loads(env.get("RIGHTSIZER_PROMETHEUS_HEADERS") or "{}")
        return cls(
            prometheus_url=url.rstrip("/"),
            token_file=env.get("RIGHTSIZER_PROMETHEUS_BEARER_TOKEN_FILE") or None,
            basic_auth_file=env.get("RIGHTSIZER_PROMETHEUS_BASIC_AUTH_FILE") or None,
            ca_file=env.get("RIGHTSIZER_PROMETHEUS_CA_FILE") or None,
            insecure=env.get("RIGHTSIZER_PROMETHEUS_INSECURE", "") == "true",
            headers=tuple(sorted((str(k), str(v)) for k, v in headers.items())),
            timeout=float(env.get("RIGHTSIZER_PROMETHEUS_TIMEOUT") or 120),
            workers=int(env.get("RIGHTSIZER_PROMETHEUS_WORKERS") or 4),
            apply_enabled=env.get("RIGHTSIZER_APPLY_ENABLED", "") == "true",
            tick_seconds=float(env.get("RIGHTSIZER_TICK_SECONDS") or 60),
            jitter_seconds=float(env.get("RIGHTSIZER_JITTER_SECONDS") or 600),
            retry_seconds=float(env.get("RIGHTSIZER_RETRY_SECONDS") or 300),
            max_events=int(env.get("RIGHTSIZER_MAX_EVENTS") or 100),
            metrics_port=int(env.get("RIGHTSIZER_METRICS_PORT") or 9102),
            log_format=env.get("RIGHTSIZER_LOG_FORMAT") or "json",
        )

    def prometheus(self) -> PrometheusConfig:
        """Connection settings, with credentials read now (so a rotated Secret is picked up)."""
        token = Path(self.token_file).read_text().strip() if self.token_file else None
        basic = None
        if self.basic_auth_file:
            user, _, password = Path(self.basic_auth_file).read_text().strip().partition(":")
            basic = (user, password)
        return PrometheusConfig(
            url=self.prometheus_url,
            headers=dict(self.headers),
            bearer_token=token,
            basic_auth=basic,
            ca_file=self.ca_file,
            verify_tls=not self.insecure,
            timeout=self.timeout,
            workers=self.workers,
        )
