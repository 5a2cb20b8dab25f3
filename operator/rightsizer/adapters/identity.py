"""The actuator identity: an API client whose bearer token is a short-lived token of the
chart's actuator ServiceAccount, obtained through the TokenRequest API.

The operator pod runs as the reader. Its reader may create tokens of the actuator and of no
other account (a Role with ``resourceNames``); the operator asks for one when it first needs
to resize, keeps it in memory only (never on disk, never logged) and asks for a new one
after ``refresh_share`` of its lifetime. Only resize patches use this client.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client.exceptions import ApiException

API_MINIMUM_SECONDS = 600  # the TokenRequest API refuses shorter lifetimes


@dataclass
class TokenSource:
    """Tokens of ``namespace/name`` from the TokenRequest API, as the ``reader`` client."""

    reader: client.ApiClient
    namespace: str
    name: str
    seconds: int = API_MINIMUM_SECONDS
    refresh_share: float = 0.8  # ask for a new token after this share of the lifetime
    clock: Callable[[], float] = time.time
    timeout: float = 30.0
    requests: int = 0  # TokenRequests made (for tests and metrics)
    _token: str = field(default="", init=False, repr=False)
    _refresh_at: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def token(self) -> str:
        """The current token, renewed first when it is due. Raises the client's
        ``ApiException`` (or a connection error) when the API server refuses or is down."""
        with self._lock:
            if not self._token or self.clock() >= self._refresh_at:
                self._renew()
            return self._token

    def _renew(self) -> None:
        body = client.AuthenticationV1TokenRequest(
            api_version="authentication.k8s.io/v1",
            kind="TokenRequest",
            # no audiences: the API server's own (the token is good for it and nothing else)
            spec=client.V1TokenRequestSpec(
                audiences=[], expiration_seconds=max(self.seconds, API_MINIMUM_SECONDS)
            ),
        )
        asked = self.clock()
        answer = client.CoreV1Api(self.reader).create_namespaced_service_account_token(
            self.name, self.namespace, body, _request_timeout=self.timeout
        )
        self.requests += 1
        status = answer.status
        if status is None or not status.token or status.expiration_timestamp is None:
            raise ApiException(reason=f"TokenRequest {self.namespace}/{self.name}: no token")
        lifetime = max(status.expiration_timestamp.timestamp() - asked, 0.0)
        self._token = status.token
        self._refresh_at = asked + self.refresh_share * lifetime


def actuator_client(source: TokenSource) -> client.ApiClient:
    """A client for the same API server as ``source.reader`` (address, CA, proxy) that
    authenticates with the actuator's token only: no client certificate, no other key."""
    configuration = copy.deepcopy(source.reader.configuration)
    configuration.cert_file = None
    configuration.key_file = None
    configuration.username = ""
    configuration.password = ""
    # the client sends a bearer token only when this key exists; the hook fills it in
    configuration.api_key = {"authorization": ""}
    configuration.api_key_prefix = {"authorization": "Bearer"}

    def refresh(target: client.Configuration) -> None:
        target.api_key["authorization"] = source.token()

    configuration.refresh_api_key_hook = refresh
    return client.ApiClient(configuration)
