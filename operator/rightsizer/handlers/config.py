"""The operator's settings, from its environment (the Helm chart sets them).

RIGHTSIZER_PROMETHEUS_URL                 required, e.g. http://prometheus:9090
RIGHTSIZER_PROMETHEUS_BEARER_TOKEN_FILE   re-read at every evaluation (rotation)
RIGHTSIZER_PROMETHEUS_BASIC_AUTH_FILE     user:password, re-read likewise
RIGHTSIZER_PROMETHEUS_CA_FILE             CA bundle; TLS is verified unless
RIGHTSIZER_PROMETHEUS_INSECURE            "true"
RIGHTSIZER_PROMETHEUS_HEADERS             JSON object of extra headers
RIGHTSIZER_PROMETHEUS_BACKEND             prometheus | thanos | mimir | victoriametrics
RIGHTSIZER_PROMETHEUS_TIMEOUT             seconds per query (120)
RIGHTSIZER_PROMETHEUS_WORKERS             queries in flight, all evaluations together (4)
RIGHTSIZER_RECORDING_RULES                auto | on | off: read rightsizer's recorded series
                                          (auto: when they cover the window)
RIGHTSIZER_APPLY_ENABLED                  "true" lets apply-mode policies change workloads
RIGHTSIZER_ACTUATOR_SERVICE_ACCOUNT       the ServiceAccount whose TokenRequest tokens make
                                          resize patches (the chart's actuator); empty: the
                                          operator's own identity makes them
RIGHTSIZER_ACTUATOR_NAMESPACE             its namespace ($POD_NAMESPACE)
RIGHTSIZER_ACTUATOR_TOKEN_SECONDS         lifetime asked for each token (600)
RIGHTSIZER_STATE                          configmap | off: incremental evaluation with its
                                          state in ConfigMaps (default: configmap when the
                                          namespace is known)
RIGHTSIZER_STATE_NAMESPACE                where those ConfigMaps live ($POD_NAMESPACE)
RIGHTSIZER_TICK_SECONDS                   how often schedules are checked (60)
RIGHTSIZER_EVALUATIONS_AT_ONCE            policies evaluated at the same time (4)
RIGHTSIZER_JITTER_SECONDS                 spread of policies on the same schedule (600)
RIGHTSIZER_RETRY_SECONDS                  an evaluation Prometheus' or the API server's outage
                                          failed is tried again after this (300)
RIGHTSIZER_MAX_EVENTS                     events per evaluation (100)
RIGHTSIZER_EVENTS_PER_MINUTE              events of all policies together, a minute (120; the
                                          rest are counted in each policy's summary event;
                                          0: no operator-wide limit)
RIGHTSIZER_CACHE_SECONDS                  lifetime of the shared cluster-wide lists of
                                          workloads, HPAs, VPAs, namespaces (60; 0: list at
                                          every evaluation)
RIGHTSIZER_KUBERNETES_TIMEOUT             seconds to wait for an API server answer (30)
RIGHTSIZER_METRICS_PORT                   /metrics (9102; 0 turns it off)
RIGHTSIZER_RELEASE_MEMORY_SECONDS         how often freed heap pages go back to the system
                                          (10; 0: never; glibc's malloc_trim)
RIGHTSIZER_LOG_FORMAT                     json | console
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rightsizer.adapters.prometheus import PrometheusConfig
from rightsizer.adapters.promql import BACKENDS, Backend
from rightsizer.adapters.rules import MODES, Mode


@dataclass(frozen=True)
class OperatorConfig:
    prometheus_url: str
    token_file: str | None = None
    basic_auth_file: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    backend: Backend = "prometheus"
    timeout: float = 120.0
    workers: int = 4
    recording_rules: Mode = "auto"
    apply_enabled: bool = False
    actuator: str | None = None
    actuator_namespace: str = ""
    actuator_token_seconds: int = 600
    state: str = "off"  # configmap | off
    state_namespace: str = ""
    tick_seconds: float = 60.0
    evaluations_at_once: int = 4
    jitter_seconds: float = 600.0
    retry_seconds: float = 300.0
    kubernetes_timeout: float = 30.0
    max_events: int = 100
    events_per_minute: float = 120.0
    cache_seconds: float = 60.0
    metrics_port: int = 9102
    release_memory_seconds: float = 10.0
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
            backend=_backend(env.get("RIGHTSIZER_PROMETHEUS_BACKEND") or "prometheus"),
            timeout=float(env.get("RIGHTSIZER_PROMETHEUS_TIMEOUT") or 120),
            workers=int(env.get("RIGHTSIZER_PROMETHEUS_WORKERS") or 4),
            recording_rules=_mode(env.get("RIGHTSIZER_RECORDING_RULES") or "auto"),
            apply_enabled=env.get("RIGHTSIZER_APPLY_ENABLED", "") == "true",
            actuator=env.get("RIGHTSIZER_ACTUATOR_SERVICE_ACCOUNT") or None,
            actuator_namespace=env.get("RIGHTSIZER_ACTUATOR_NAMESPACE")
            or env.get("POD_NAMESPACE", ""),
            actuator_token_seconds=int(env.get("RIGHTSIZER_ACTUATOR_TOKEN_SECONDS") or 600),
            state=_state(env),
            state_namespace=_state_namespace(env),
            tick_seconds=float(env.get("RIGHTSIZER_TICK_SECONDS") or 60),
            evaluations_at_once=_positive(env, "RIGHTSIZER_EVALUATIONS_AT_ONCE", default=4),
            jitter_seconds=float(env.get("RIGHTSIZER_JITTER_SECONDS") or 600),
            retry_seconds=float(env.get("RIGHTSIZER_RETRY_SECONDS") or 300),
            kubernetes_timeout=float(env.get("RIGHTSIZER_KUBERNETES_TIMEOUT") or 30),
            max_events=int(env.get("RIGHTSIZER_MAX_EVENTS") or 100),
            events_per_minute=float(env.get("RIGHTSIZER_EVENTS_PER_MINUTE") or 120),
            cache_seconds=float(env.get("RIGHTSIZER_CACHE_SECONDS") or 60),
            metrics_port=int(env.get("RIGHTSIZER_METRICS_PORT") or 9102),
            release_memory_seconds=float(env.get("RIGHTSIZER_RELEASE_MEMORY_SECONDS") or 10),
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
            backend=self.backend,
            timeout=self.timeout,
            workers=self.workers,
            recording_rules=self.recording_rules,
        )


def _positive(env: Mapping[str, str], name: str, *, default: int) -> int:
    value = int(env.get(name) or default)
    if value < 1:
        raise ValueError(f"{name} must be 1 or more, not {value}")
    return value


def _mode(text: str) -> Mode:
    for mode in MODES:
        if text.strip().lower() == mode:
            return mode
    raise ValueError(f"RIGHTSIZER_RECORDING_RULES must be one of {', '.join(MODES)}, not {text!r}")


def _backend(text: str) -> Backend:
    for backend in BACKENDS:
        if text.strip().lower() == backend:
            return backend
    raise ValueError(
        f"RIGHTSIZER_PROMETHEUS_BACKEND must be one of {', '.join(BACKENDS)}, not {text!r}"
    )


def _state_namespace(env: Mapping[str, str]) -> str:
    return env.get("RIGHTSIZER_STATE_NAMESPACE") or env.get("POD_NAMESPACE", "")


def _state(env: Mapping[str, str]) -> str:
    """Incremental state in ConfigMaps by default wherever their namespace is known."""
    text = (env.get("RIGHTSIZER_STATE") or "").strip().lower()
    if text not in ("", "configmap", "off"):
        raise ValueError(f"RIGHTSIZER_STATE must be configmap or off, not {text!r}")
    if text == "off" or not _state_namespace(env):
        return "off"
    return "configmap"
