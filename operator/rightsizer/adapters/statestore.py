"""Where incremental state lives between cycles: files (CLI) or ConfigMaps (operator).

ConfigMaps are sharded per agency and by size: an agency's state goes in ``binaryData`` of
``<prefix>-<agency>`` and, when it is larger than ``shard_bytes`` (512 KiB by default, far
under etcd's 1.5 MiB object limit), continues in ``<prefix>-<agency>-1``, ``-2``, ... The
first object names how many shards there are; the state's own checksum catches a shard that
is missing, stale or damaged. Errors become ``StateUnavailable``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from rightsizer.ports import StateUnavailable

T = TypeVar("T")
SHARD_BYTES = 512 * 1024
LABELS = {"app.kubernetes.io/managed-by": "rightsizer", "rightsizer.io/state": "true"}


def safe_name(key: str, *, limit: int = 200) -> str:
    """A DNS-1123 name for a key (lower case; long or changed keys get a hash suffix)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-") or "state"
    if cleaned == key and len(cleaned) <= limit:
        return cleaned
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"{cleaned[: limit - 11].strip('-')}-{digest}"


@dataclass
class FileStateStore:
    """One file per agency in ``folder`` (written atomically)."""

    folder: Path

    def _path(self, key: str) -> Path:
        return self.folder / f"{safe_name(key)}.state"

    def load(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StateUnavailable(f"state file for {key}: {error}") from error

    def save(self, key: str, blob: bytes) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(handle, "wb") as out:
                out.write(blob)
            os.replace(temporary, self._path(key))
        except OSError as error:
            raise StateUnavailable(f"state file for {key}: {error}") from error


@dataclass
class ConfigMapStateStore:
    """ConfigMaps in the operator's namespace, sharded as the module says."""

    api: client.ApiClient
    namespace: str
    prefix: str = "rightsizer-state"
    shard_bytes: int = SHARD_BYTES
    timeout: float = 30.0
    calls: int = 0
    _core: client.CoreV1Api = field(init=False)

    def __post_init__(self) -> None:
        self._core = client.CoreV1Api(self.api)

    def name(self, key: str, shard: int = 0) -> str:
        base = safe_name(f"{self.prefix}-{key}", limit=240)
        return base if shard == 0 else f"{base}-{shard}"

    def load(self, key: str) -> bytes | None:
        first = self._read(self.name(key))
        if first is None:
            return None
        shards = int((first.get("data") or {}).get("shards", "1"))
        parts = [_shard_bytes(first)]
        for shard in range(1, shards):
            found = self._read(self.name(key, shard))
            if found is None:
                raise StateUnavailable(f"state of {key}: shard {shard} of {shards} is missing")
            parts.append(_shard_bytes(found))
        return b"".join(parts)

    def save(self, key: str, blob: bytes) -> None:
        size = max(1, self.shard_bytes * 3 // 4)  # base64 grows by a third
        chunks = [blob[i : i + size] for i in range(0, len(blob), size)] or [b""]
        # the later shards first: the first one, which names them, is written last
        for shard in range(len(chunks) - 1, -1, -1):
            data = {"shards": str(len(chunks)), "key": key[:253]} if shard == 0 else {}
            self._write(self.name(key, shard), data, chunks[shard])

    # -- API -------------------------------------------------------------------------------
    def _call(self, what: str, send: Callable[[], T]) -> T:
        self.calls += 1
        try:
            return send()
        except ApiException as error:
            raise StateUnavailable(f"{what}: {error.status} {error.reason}") from error
        except (HTTPError, OSError) as error:
            raise StateUnavailable(f"{what}: API server unreachable: {error}") from error

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            answer = self._core.read_namespaced_config_map(
                name, self.namespace, _preload_content=False, _request_timeout=self.timeout
            )
            self.calls += 1
        except ApiException as error:
            self.calls += 1
            if error.status == 404:
                return None
            raise StateUnavailable(
                f"read ConfigMap {name}: {error.status} {error.reason}"
            ) from error
        except (HTTPError, OSError) as error:
            raise StateUnavailable(
                f"read ConfigMap {name}: API server unreachable: {error}"
            ) from error
        body: dict[str, Any] = json.loads(answer.data)  # type: ignore[arg-type]
        return body

    def _write(self, name: str, data: dict[str, str], chunk: bytes) -> None:
        body: Any = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": self.namespace, "labels": LABELS},
            "data": data,
            "binaryData": {"state": base64.b64encode(chunk).decode("ascii")},
        }
        try:
            self._call(  # a patch: the maps are merged, the state key replaced
                f"patch ConfigMap {name}",
                lambda: self._core.patch_namespaced_config_map(
                    name,
                    self.namespace,
                    body,
                    _preload_content=False,
                    _request_timeout=self.timeout,
                ),
            )
        except StateUnavailable as error:
            if "404" not in str(error):
                raise
            self._call(
                f"create ConfigMap {name}",
                lambda: self._core.create_namespaced_config_map(
                    self.namespace, body, _preload_content=False, _request_timeout=self.timeout
                ),
            )


def _shard_bytes(body: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode((body.get("binaryData") or {}).get("state", ""), validate=True)
    except ValueError as error:
        raise StateUnavailable(f"state shard not base64: {error}") from error
