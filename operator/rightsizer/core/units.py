"""Kubernetes quantities <-> numbers: CPU in cores, memory and storage in bytes.

Pure functions; every parse error is a ``ValueError`` with a plain reason.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

_SUFFIXES: dict[str, Decimal] = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(
    r"^([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$"
)
_MAX_QUANTITY_LENGTH = 64
GIB = 2**30
MIB = 2**20


def parse_quantity(value: str | int | float) -> float:
    """Parse a Kubernetes quantity ("250m", "1.5", "512Mi", 2) into a float."""
    if isinstance(value, bool):
        raise ValueError("a quantity must be a number or a string such as '250m' or '512Mi'")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = value.strip()
        if len(text) > _MAX_QUANTITY_LENGTH:
            raise ValueError("quantity is too long")
        parsed = _parse_text(text)
        if parsed is None:
            raise ValueError(f"{value!r} is not a quantity (expected e.g. '250m', '2', '512Mi')")
        number = parsed
    if not math.isfinite(number):
        raise ValueError("a quantity must be finite")
    if number < 0:
        raise ValueError("a quantity must not be negative")
    return number


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> float | None:
    """A short quantity text as a number, None when it is not one. Quantities repeat
    ("250m", "512Mi"): each distinct text is parsed once."""
    match = _QUANTITY.match(text)
    if match is None:
        return None
    try:
        return float(Decimal(match.group(1)) * _SUFFIXES[match.group(2)])
    except InvalidOperation as error:  # pragma: no cover - the regex already vetted it
        raise ValueError(f"{text!r} is not a quantity") from error


def format_cpu(cores: float) -> str:
    """Cores as Kubernetes writes them: whole millicores, '1' for whole cores."""
    millis = max(1, math.ceil(round(cores * 1000, 6)))
    if millis % 1000 == 0:
        return str(millis // 1000)
    return f"{millis}m"


def format_bytes(size: float) -> str:
    """Bytes rounded up to whole Mi ('Gi' when exact), as a Kubernetes quantity."""
    mebibytes = max(1, math.ceil(round(size / MIB, 6)))
    if mebibytes % 1024 == 0:
        return f"{mebibytes // 1024}Gi"
    return f"{mebibytes}Mi"


def format_quantity(resource: str, amount: float) -> str:
    """Format ``amount`` of ``resource`` for a pod template."""
    if resource == "cpu":
        return format_cpu(amount)
    if resource in ("memory", "storage"):
        return format_bytes(amount)
    return str(math.ceil(amount))


def round_up_quantity(resource: str, amount: float) -> float:
    """The amount a formatted quantity stands for (what the API server will store)."""
    return parse_quantity(format_quantity(resource, amount))


def human(resource: str, amount: float) -> str:
    """Short human form for tables: '0.25 cores', '1.5 GiB'."""
    if resource == "cpu":
        return f"{amount:.3g} cores" if amount >= 1 else f"{amount * 1000:.0f}m"
    if resource in ("memory", "storage"):
        if amount >= GIB:
            return f"{amount / GIB:.3g}Gi"
        return f"{amount / MIB:.0f}Mi"
    return f"{amount:g}"
