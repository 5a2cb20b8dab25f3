"""kmock's Kubernetes emulator, with the few API-server behaviours the operator relies on.

kmock stores whatever is written and answers with it. A real kube-apiserver also:

- bumps ``metadata.resourceVersion`` on every write and ``metadata.generation`` when the
  spec changes; fills ``uid`` and ``creationTimestamp`` on create, and a name from
  ``generateName``;
- answers 422 (not 500) when a JSON patch cannot be applied, e.g. a failed ``test`` op;
- writes only ``status`` through the ``/status`` subresource;
- does NOT change anything when it answers a write with an error;
- answers a list with the current ``resourceVersion``, and a watch from that version with
  only what changed since (kmock replays every object as ADDED, which kopf takes for a
  stale duplicate: after its conflicting finalizer patch it then waits for an event that a
  real server would have sent and kmock never does);
- serves ``/api/v1/namespaces[/NAME]`` (kmock 0.8 reads "namespaces" there as the start of a
  namespaced path and fails with a 500).

kmock applies a write before it looks for a reaction, so a test that injects an error
(``kmock[...][:1] << 409``) would still see the write land. Here a write answered by a
test's own reaction (any reaction that is not one of the emulator's fallbacks) changes
nothing: the injected error is what the client gets, and all it gets.
"""

from __future__ import annotations

import copy
import datetime
import math
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs
import jsonpatch
import kmock
from kmock._internal import dicts, enums, rendering

_WRITES = (enums.action.CREATE, enums.action.UPDATE)
_NAMESPACES = re.compile(r"^/api/v1/namespaces(?:/([^/]+))?/?$")
_ACTIONS = {"GET": enums.action.FETCH, "POST": enums.action.CREATE, "PATCH": enums.action.UPDATE}


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    _version: int = attrs.field(default=1000, init=False)

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    async def __call__(self, raw_request: Any) -> Any:
        match = _NAMESPACES.match(raw_request.path)
        if match is None:
            return await super().__call__(raw_request)
        body = await raw_request.read()
        name = match.group(1)
        action = _ACTIONS.get(raw_request.method)
        if raw_request.method == "GET" and raw_request.query.get("watch") == "true":
            action = enums.action.WATCH
        elif raw_request.method == "GET" and name is None:
            action = enums.action.LIST
        request = rendering.Request(
            id=len(self._requests),
            raw_request=raw_request,
            url=raw_request.url,
            method=raw_request.method,
            params=dict(raw_request.query),
            headers=dict(raw_request.headers),
            body=body,
            text=body.decode("utf-8", "replace"),
            data=await raw_request.json() if body else None,
            action=action,
            resource=kmock.resource("", "v1", "namespaces"),
            name=name,
        )
        self._requests.append(request)
        try:
            return await self._handle(request)
        except Exception as error:  # as kmock does: the client gets the error, the test too
            self.errors.append(error)
            return await self._render_error(error)

    async def _handle(self, request: kmock.Request) -> Any:
        if request.resource is None or request.action not in _WRITES:
            return await super()._handle(request)
        if not self._intercepted(request):
            async with self._lock:
                event = self._write(request)
                await self._buses[request.resource].put(event)
        # the reactions and fallbacks only read the state from here on
        return await kmock.RawHandler._handle(self, request)

    def _intercepted(self, request: kmock.Request) -> bool:
        """A test's reaction (not a fallback) answers this request with something."""
        for payload in self._payloads:
            if any(math.isinf(p) and p < 0 for p in payload.priorities):
                continue  # the emulator's own fallbacks
            response = payload.response
            if response.status is None and response.payload is None:
                continue  # a recorder only: the request goes on to the fallbacks
            if not payload._disabled.is_set() and request in payload._source:
                return True
        return False

    async def _serve_list(self, request: kmock.Request) -> Any:
        payload = await super()._serve_list(request)
        payload["metadata"]["resourceVersion"] = str(self._version)
        return payload

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        since = request.params.get("resourceVersion") or ""
        if not since.isdigit():
            async for item in super()._serve_watch(request):
                yield item
            return
        yield b""  # the headers, at once
        assert request.resource is not None
        bus = self._buses[request.resource]
        async with self._lock:
            mark = await bus.mark()
            changed = [
                {"type": "MODIFIED", "object": obj.raw}
                for (resource, namespace, _), obj in self._objects.items()
                if resource == request.resource
                and not obj.deleted
                and request.namespace in (None, namespace)
                and int(obj.raw["metadata"].get("resourceVersion") or 0) > int(since)
            ]
        for event in changed:
            yield event
        async for event in bus.stream(since=mark):
            meta = event.get("object", {}).get("metadata", {})
            if request.namespace in (None, meta.get("namespace")):
                yield event

    def _write(self, request: kmock.Request) -> dict[str, Any]:
        if request.action == enums.action.CREATE:
            return self._create(request)
        return self._update(request)

    def _create(self, request: kmock.Request) -> dict[str, Any]:
        data = copy.deepcopy(request.data)
        meta = data.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        namespace = request.namespace or meta.get("namespace")
        key = (request.resource, namespace, meta.get("name"))
        if key in self._objects and not self._objects[key].deleted:
            raise kmock.KubernetesError(
                status=409, reason="AlreadyExists", message=f"{meta.get('name')} already exists"
            )
        if namespace is not None:
            meta["namespace"] = namespace
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", _now())
        meta["resourceVersion"] = self._next_version()
        if key in self._objects:
            self._objects[key].create(data)
        else:
            self._objects[key] = data
        return {"type": "ADDED", "object": self._objects[key].raw}

    def _update(self, request: kmock.Request) -> dict[str, Any]:
        key = (request.resource, request.namespace, request.name)
        return self._patch(key, request.data, subresource=request.subresource)

    def _patch(self, key: Any, data: Any, *, subresource: str | None = None) -> dict[str, Any]:
        if key not in self._objects or self._objects[key].deleted:
            raise kmock.KubernetesError(
                status=404, reason="NotFound", message=f"{key[2]} not found"
            )
        old = copy.deepcopy(self._objects[key].raw)
        try:
            new = dict(dicts.patch_dict(old, data))
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
            raise kmock.KubernetesError(
                status=422, reason="Invalid", message=f"the patch cannot be applied: {error}"
            ) from None
        if subresource == "status":
            new = {**old, "status": new.get("status")}
        meta = dict(new.get("metadata") or {})
        if new.get("spec") != old.get("spec"):
            meta["generation"] = int(meta.get("generation") or 1) + 1
        meta["resourceVersion"] = self._next_version()
        new["metadata"] = meta
        self._objects[key].history.append(new)
        return {"type": "MODIFIED", "object": self._objects[key].raw}

    async def write(self, key: tuple[str, str | None, str], patch: Any) -> None:
        """Another client's write (merge patch, or JSON patch as a list), as if over HTTP."""
        resource = kmock.resource(key[0])
        async with self._lock:
            event = self._patch((resource, key[1], key[2]), patch)
            await self._buses[resource].put(event)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def versions(server: ApiServer, key: tuple[str, str | None, str]) -> list[Mapping[str, Any]]:
    """Every stored version of an object, oldest first."""
    return [dict(v) for v in server.objects[key].history if v is not None]


__all__ = ["ApiServer", "versions"]
