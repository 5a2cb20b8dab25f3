"""Amounts of resources and what they cost per month, from the policy's price catalogue.

Money is exact (Decimal); a month is 730 hours; prices are list prices times the tender
discount. Released capacity is not money saved until the platform shrinks: reports keep
the two apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from math import copysign

from rightsizer.core.model import Frozen, Resource, trusted
from rightsizer.core.policy import PriceCatalogue
from rightsizer.core.units import GIB

HOURS_PER_MONTH = 730
_CENT = Decimal("0.01")


class Amounts(Frozen):
    """CPU cores, memory bytes, storage bytes and GPU devices."""

    cpu: float = 0.0
    memory: float = 0.0
    storage: float = 0.0
    gpu: float = 0.0

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(
            cpu=self.cpu + other.cpu,
            memory=self.memory + other.memory,
            storage=self.storage + other.storage,
            gpu=self.gpu + other.gpu,
        )

    def scaled(self, factor: float) -> Amounts:
        return trusted(
            Amounts,
            cpu=self.cpu * factor,
            memory=self.memory * factor,
            storage=self.storage * factor,
            gpu=self.gpu * factor,
        )

    def get(self, resource: Resource) -> float:
        return float(getattr(self, resource))

    @staticmethod
    def of(resource: Resource, amount: float) -> Amounts:
        return Amounts(**{resource: amount})

    @staticmethod
    def total(items: Iterable[Amounts]) -> Amounts:
        """The sum, added up resource by resource in the order given."""
        cpu = memory = storage = gpu = 0.0
        for item in items:
            cpu += item.cpu
            memory += item.memory
            storage += item.storage
            gpu += item.gpu
        return trusted(Amounts, cpu=cpu, memory=memory, storage=storage, gpu=gpu)


ZERO = Amounts()  # shared: amounts are immutable


def _exact(value: float) -> Decimal:
    if value == 0.0 and copysign(1.0, value) > 0:
        return _EXACT_ZERO  # the commonest amount (no storage, no GPU), as written below
    return Decimal(repr(round(value, 9)))


_EXACT_ZERO = Decimal(repr(round(0.0, 9)))
_GIB = Decimal(GIB)


def monthly_cost(amounts: Amounts, prices: PriceCatalogue) -> Decimal:
    """What ``amounts`` cost per month at the catalogue's discounted prices (exact)."""
    total = (
        _exact(amounts.cpu) * prices.cpu_core_month
        + _exact(amounts.memory) / _GIB * prices.memory_gib_month
        + _exact(amounts.storage) / _GIB * prices.storage_gib_month
        + _exact(amounts.gpu) * prices.gpu_month
    )
    return total * prices.discount


def display_money(amount: Decimal) -> Decimal:
    """Rounded to cents, for display only."""
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)
