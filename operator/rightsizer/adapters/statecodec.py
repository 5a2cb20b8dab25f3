"""One agency's incremental state as compact bytes, and back.

Layout: ``RSZ`` + schema version (u16) + SHA-256 of the payload (16 bytes) + zlib(payload).
The payload holds the fingerprint of what the state is about (the collection request and
the source), the time folded up to, the containers (namespace, pod, container), then per
resource its day rows and step rows as little-endian columns (``core.columns``), then the
kept inventory as JSON (``incremental_inventory``). Anything that does not decode, or whose
checksum or version differs, raises ``StateCorrupt``.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from rightsizer.core.columns import Days, Steps
from rightsizer.core.sketch import Sketch

SCHEMA = 5
MAGIC = b"RSZ"
_HEAD = struct.Struct("<3sH16s")
_STR = struct.Struct("<H")
_BLOB = struct.Struct("<I")
_TOP = struct.Struct("<dII")  # end, containers, bytes of their names
_RESOURCE = struct.Struct("<BBII")  # resource, knots per day, days, steps
_RESOURCES = ("cpu", "memory", "throttling")
_SEPARATOR = "\x00"
# zlib's fastest level: half of level 6's time (0.6 s against 1.2 s a steady cycle at 15,000
# workloads) for 4% more bytes (16.9 MB against 16.2 MB; an agency's largest 57 KB)
_ZLIB_LEVEL = 1
# column: its stored type (CPU steps keep one half float: 3 significant digits of cores)
_DAY_COLUMNS = {
    "series": "<u4",
    "day": "<i4",
    "count": "<f4",
    "total": "<f8",
    "peak": "<f4",
    "first": "<u4",
    "last": "<u4",
}
_CPU_STEP_COLUMNS = {"series": "<u4", "t": "<u4", "total": "<f2"}
_MEMORY_STEP_COLUMNS = {"series": "<u4", "t": "<u4", "peak": "<f4", "total": "<f8", "count": "<f4"}

ContainerKey = tuple[str, str, str]
LabelKey = tuple[tuple[str, ...], tuple[str, ...]]  # a series' label names, and values


class StateCorrupt(ValueError):
    """The bytes are not a state this version wrote intact."""


class StateOutdated(StateCorrupt):
    """An intact state in another schema version (written before an upgrade): rebuilt once,
    and said so plainly rather than as damage."""


@dataclass
class KeptInventory:
    """The inventory rows last seen in the window: each row's labels, value and when it was
    last seen; the restart counters' last values (and when) and their increases per UTC day.
    Keyed by ``label_key`` of the labels."""

    rows: dict[LabelKey, tuple[dict[str, str], float, float]] = field(default_factory=dict)
    counters: dict[LabelKey, tuple[dict[str, str], float, float]] = field(default_factory=dict)
    restarts: dict[LabelKey, dict[int, float]] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """Rows grouped by their label names (each name written once per group, not per
        row: a third of the bytes, and of the time to read them back)."""
        return orjson.dumps(
            {
                "rows": _grouped(self.rows.values()),
                "counters": _grouped(self.counters.values()),
                "restarts": [[list(k), list(d.items())] for k, d in self.restarts.items()],
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> KeptInventory:
        """The inventory ``to_json`` wrote; ``StateCorrupt`` for anything else."""
        with _undecodable():
            return cls._from(orjson.loads(data))

    @classmethod
    def _from(cls, found: Any) -> KeptInventory:
        return cls(
            rows=_ungrouped(found["rows"]),
            counters=_ungrouped(found["counters"]),
            restarts={
                _restart_key(k): {int(d): float(n) for d, n in days}
                for k, days in found["restarts"]
            },
        )


Row = tuple[dict[str, str], float, float]


def _grouped(rows: Iterable[Row]) -> list[list[Any]]:
    groups: dict[tuple[str, ...], list[list[Any]]] = {}
    for labels, value, seen in rows:
        groups.setdefault(tuple(labels), []).append([*labels.values(), value, seen])
    return [[list(names), entries] for names, entries in groups.items()]


def _ungrouped(groups: list[list[Any]]) -> dict[LabelKey, Row]:
    found: dict[LabelKey, Row] = {}
    for group, entries in groups:
        names, width = tuple(group), len(group)
        for entry in entries:
            if len(entry) != width + 2:
                raise StateCorrupt("an inventory row without its labels")
            values = tuple(entry[:width])
            found[names, values] = (
                dict(zip(names, values, strict=True)),
                entry[width],
                entry[width + 1],
            )
    return found


def _restart_key(flat: list[list[str]]) -> LabelKey:
    names, values = flat
    if len(names) != len(values):
        raise StateCorrupt("a restart count without its labels")
    return tuple(names), tuple(values)


def label_key(labels: dict[str, str]) -> LabelKey:
    """A series' identity: its label names in the order Prometheus gives them (sorted), and
    their values."""
    return tuple(labels), tuple(labels.values())


@dataclass
class AgencyState:
    """Everything folded for one collection request, up to ``end`` (epoch seconds): the
    containers seen, per resource a sketch whose series index ``keys``, and the inventory."""

    fingerprint: str
    end: float
    keys: list[ContainerKey] = field(default_factory=list)
    sketches: dict[str, Sketch] = field(default_factory=dict)
    inventory: KeptInventory = field(default_factory=KeptInventory)


def encode(state: AgencyState) -> bytes:
    out = bytearray()
    _put_str(out, state.fingerprint)
    names = _SEPARATOR.join(part for key in state.keys for part in key).encode()
    out += _TOP.pack(state.end, len(state.keys), len(names)) + names
    out += bytes([len(state.sketches)])
    for resource, sketch in state.sketches.items():
        days, steps = sketch.days, sketch.steps
        out += _RESOURCE.pack(
            _RESOURCES.index(resource), days.knots.shape[1], len(days), len(steps)
        )
        for name, kind in _DAY_COLUMNS.items():
            out += np.asarray(getattr(days, name), dtype=kind).tobytes()
        out += np.asarray(days.knots, dtype="<f4").tobytes()
        for name, kind in _step_columns(resource).items():
            out += np.asarray(getattr(steps, name), dtype=kind).tobytes()
    inventory = state.inventory.to_json()
    out += _BLOB.pack(len(inventory)) + inventory
    payload = bytes(out)
    digest = hashlib.sha256(payload).digest()[:16]
    return _HEAD.pack(MAGIC, SCHEMA, digest) + zlib.compress(payload, _ZLIB_LEVEL)


def _step_columns(resource: str) -> dict[str, str]:
    return _CPU_STEP_COLUMNS if resource == "cpu" else _MEMORY_STEP_COLUMNS


@dataclass(frozen=True)
class StateHeader:
    """What a state is about and how far it goes, read without decoding its series (a
    checked payload: ``decode`` of the same bytes then succeeds)."""

    fingerprint: str
    end: float
    payload: bytes = field(repr=False)


def decode(blob: bytes) -> AgencyState:
    return decode_series(decode_header(blob))


def decode_header(blob: bytes) -> StateHeader:
    """Version, checksum and the header; the series are decoded by ``decode_series``."""
    with _undecodable():
        magic, version, digest = _HEAD.unpack_from(blob)
        if magic != MAGIC:
            raise StateCorrupt(f"not a version-{SCHEMA} state")
        if version != SCHEMA:
            raise StateOutdated(f"written by another version (schema {version}, now {SCHEMA})")
        payload = zlib.decompress(blob[_HEAD.size :])
        if hashlib.sha256(payload).digest()[:16] != digest:
            raise StateCorrupt("checksum mismatch")
        reader = _Reader(payload)
        fingerprint = reader.text()
        end = reader.take(_TOP)[0]
        return StateHeader(fingerprint, float(end), payload)  # type: ignore[arg-type]


def decode_series(header: StateHeader) -> AgencyState:
    with _undecodable():
        return _Reader(header.payload).state()


@contextmanager
def _undecodable() -> Iterator[None]:
    try:
        yield
    except StateCorrupt:
        raise
    except (
        struct.error,
        zlib.error,
        UnicodeDecodeError,
        IndexError,
        ValueError,
        KeyError,
        TypeError,
    ) as error:
        raise StateCorrupt(f"undecodable state: {error}") from error


def _put_str(out: bytearray, text: str) -> None:
    data = text.encode()
    out += _STR.pack(len(data)) + data


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, shape: struct.Struct) -> tuple[object, ...]:
        values = shape.unpack_from(self.data, self.at)
        self.at += shape.size
        return values

    def text(self) -> str:
        (size,) = self.take(_STR)
        assert isinstance(size, int)
        raw = self.data[self.at : self.at + size]
        if len(raw) != size:
            raise StateCorrupt("truncated state")
        self.at += size
        return raw.decode()

    def byte(self) -> int:
        value = self.data[self.at]
        self.at += 1
        return value

    def column(self, kind: str, rows: int) -> npt.NDArray[np.float64]:
        shape = np.dtype(kind)
        if self.at + shape.itemsize * rows > len(self.data):
            raise StateCorrupt("truncated state")
        values = np.frombuffer(self.data, dtype=shape, count=rows, offset=self.at)
        self.at += shape.itemsize * rows
        return values.astype(np.float64)

    def state(self) -> AgencyState:
        fingerprint = self.text()
        end, containers, size = self.take(_TOP)
        names = self.data[self.at : self.at + int(size)]  # type: ignore[call-overload]
        self.at += len(names)
        parts = names.decode().split(_SEPARATOR) if containers else []
        if len(parts) != 3 * int(containers):  # type: ignore[call-overload]
            raise StateCorrupt("container names do not match their count")
        keys = [(parts[i], parts[i + 1], parts[i + 2]) for i in range(0, len(parts), 3)]
        state = AgencyState(fingerprint, float(end), keys)  # type: ignore[arg-type]
        for _ in range(self.byte()):
            index, width, days, steps = (int(v) for v in self.take(_RESOURCE))  # type: ignore[call-overload]
            resource = _RESOURCES[index]
            sketch = Sketch(self.days(days, width), self.steps(resource, steps))
            if len(sketch.series()) and sketch.series().max() >= len(keys):
                raise StateCorrupt("a series without its container")
            state.sketches[resource] = sketch
        (size,) = self.take(_BLOB)
        inventory = self.data[self.at : self.at + int(size)]  # type: ignore[call-overload]
        if len(inventory) != size:
            raise StateCorrupt("truncated state")
        self.at += len(inventory)
        state.inventory = KeptInventory.from_json(inventory)
        if self.at != len(self.data):
            raise StateCorrupt("trailing bytes in state")
        return state

    def days(self, rows: int, width: int) -> Days:
        columns = {name: self.column(kind, rows) for name, kind in _DAY_COLUMNS.items()}
        knots = self.column("<f4", rows * width).reshape(rows, width)
        return Days(
            series=columns.pop("series").astype(np.int64),
            day=columns.pop("day").astype(np.int64),
            knots=knots,
            **columns,
        )

    def steps(self, resource: str, rows: int) -> Steps:
        kinds = _step_columns(resource)
        columns = {name: self.column(kind, rows) for name, kind in kinds.items()}
        series = columns.pop("series").astype(np.int64)
        if "count" not in columns:  # a CPU step: one rate value
            columns["peak"], columns["count"] = columns["total"], np.ones(rows)
        return Steps(series=series, **columns)
