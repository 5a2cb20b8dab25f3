"""Fast OpenMetrics text: one series at a time, formatted in big chunks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rightsizer.simulate.series import COUNTER_SCALE
from rightsizer.simulate.spec import IntArray

_FRACTIONS = np.array([f".{i:04d}" for i in range(COUNTER_SCALE)], dtype=object)


def labels(pairs: Sequence[tuple[str, str]]) -> str:
    """[("namespace", "a")] -> '{namespace="a"}' (our values never need escaping)."""
    return "{" + ",".join(f'{key}="{value}"' for key, value in pairs) + "}"


def stamps(times: IntArray) -> list[str]:
    """' 1794787200\\n' per sample: the tail of every line."""
    return [f" {t}\n" for t in times.tolist()]


def number(value: float) -> str:
    """2.0 -> '2', 0.25 -> '0.25', 536870912 -> '536870912'."""
    return f"{value:.12g}" if isinstance(value, float) else str(value)


def constant(name: str, label_text: str, value: str, tails: list[str]) -> str:
    head = f"{name}{label_text} {value}"
    return head + head.join(tails)


def integers(name: str, label_text: str, values: IntArray, tails: list[str]) -> str:
    head = f"{name}{label_text} "
    return head + head.join([f"{v}{t}" for v, t in zip(values.tolist(), tails, strict=True)])


def counter(name: str, label_text: str, units: IntArray, tails: list[str]) -> str:
    """A counter held in 1/COUNTER_SCALE units, written with 4 decimals."""
    whole, fraction = np.divmod(units, COUNTER_SCALE)
    head = f"{name}{label_text} "
    parts = zip(whole.tolist(), _FRACTIONS[fraction].tolist(), tails, strict=True)
    return head + head.join([f"{a}{b}{t}" for a, b, t in parts])
