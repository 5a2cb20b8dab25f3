"""One agency's incremental state as compact bytes, and back.

Layout: ``RSZ`` + schema version (u16) + SHA-256 of the payload (16 bytes) + zlib(payload).
The payload holds the fingerprint of what the state is about (the collection request and
the source), the time folded up to, then per container (namespace, pod, container) and
resource its closed days and open-day points in little-endian binary. Anything that does
not decode, or whose checksum or version differs, raises ``StateCorrupt``.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rightsizer.core.sketch import DaySummary, Point, SeriesSketch

SCHEMA = 2
MAGIC = b"RSZ"
_HEAD = struct.Struct("<3sH16s")
_STR = struct.Struct("<H")
_TOP = struct.Struct("<dI")
_COUNT = struct.Struct("<H")
_DAY = struct.Struct("<ifdfIIB")
_CPU_POINT = struct.Struct("<Ie")  # half floats: 3 significant digits of cores
_MEM_POINT = struct.Struct("<Ifdf")
_RESOURCES = ("cpu", "memory")

ContainerKey = tuple[str, str, str]


class StateCorrupt(ValueError):
    """The bytes are not a state this version wrote intact."""


@dataclass
class AgencyState:
    """Everything folded for one collection request, up to ``end`` (epoch seconds)."""

    fingerprint: str
    end: float
    series: dict[ContainerKey, dict[str, SeriesSketch]] = field(default_factory=dict)


def encode(state: AgencyState) -> bytes:
    out = bytearray()
    _put_str(out, state.fingerprint)
    out += _TOP.pack(state.end, len(state.series))
    for key, resources in state.series.items():
        for part in key:
            _put_str(out, part)
        out += bytes([len(resources)])
        for resource, sketch in resources.items():
            out += bytes([_RESOURCES.index(resource)])
            _put_sketch(out, sketch, cpu=resource == "cpu")
    payload = bytes(out)
    digest = hashlib.sha256(payload).digest()[:16]
    return _HEAD.pack(MAGIC, SCHEMA, digest) + zlib.compress(payload, 6)


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
        if magic != MAGIC or version != SCHEMA:
            raise StateCorrupt(f"not a version-{SCHEMA} state")
        payload = zlib.decompress(blob[_HEAD.size :])
        if hashlib.sha256(payload).digest()[:16] != digest:
            raise StateCorrupt("checksum mismatch")
        reader = _Reader(payload)
        fingerprint = reader.text()
        (end, _) = reader.take(_TOP)
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
    except (struct.error, zlib.error, UnicodeDecodeError, IndexError, ValueError) as error:
        raise StateCorrupt(f"undecodable state: {error}") from error


def _put_str(out: bytearray, text: str) -> None:
    data = text.encode()
    out += _STR.pack(len(data)) + data


def _put_sketch(out: bytearray, sketch: SeriesSketch, *, cpu: bool) -> None:
    out += _COUNT.pack(len(sketch.days))
    for d in sketch.days:
        out += _DAY.pack(d.day, d.count, d.total, d.peak, int(d.first), int(d.last), len(d.knots))
        out += struct.pack(f"<{len(d.knots)}f", *d.knots)
    out += _COUNT.pack(len(sketch.points))
    for p in sketch.points:
        out += (
            _CPU_POINT.pack(int(p.t), p.total)
            if cpu
            else _MEM_POINT.pack(int(p.t), p.peak, p.total, p.count)
        )


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

    def state(self) -> AgencyState:
        fingerprint = self.text()
        end, containers = self.take(_TOP)
        state = AgencyState(fingerprint=fingerprint, end=float(end))  # type: ignore[arg-type]
        for _ in range(int(containers)):  # type: ignore[call-overload]
            key = (self.text(), self.text(), self.text())
            resources = {}
            for _ in range(self.byte()):
                resource = _RESOURCES[self.byte()]
                resources[resource] = self.sketch(cpu=resource == "cpu")
            state.series[key] = resources
        if self.at != len(self.data):
            raise StateCorrupt("trailing bytes in state")
        return state

    def sketch(self, *, cpu: bool) -> SeriesSketch:
        sketch = SeriesSketch()
        (days,) = self.take(_COUNT)
        for _ in range(int(days)):  # type: ignore[call-overload]
            day, count, total, peak, first, last, knots = self.take(_DAY)
            values = struct.unpack_from(f"<{knots}f", self.data, self.at)
            self.at += 4 * int(knots)  # type: ignore[call-overload]
            sketch.days.append(
                DaySummary(day, count, total, peak, first, last, values)  # type: ignore[arg-type]
            )
        (points,) = self.take(_COUNT)
        shape = _CPU_POINT if cpu else _MEM_POINT
        block = self.data[self.at : self.at + shape.size * int(points)]  # type: ignore[call-overload]
        if len(block) != shape.size * int(points):  # type: ignore[call-overload]
            raise StateCorrupt("truncated state")
        self.at += len(block)
        if cpu:
            sketch.points = [Point(t, v, v, 1.0) for t, v in shape.iter_unpack(block)]
        else:
            sketch.points = [Point(*values) for values in shape.iter_unpack(block)]
        return sketch
