"""The inventory kept in the incremental state: merged, forgotten and emitted as the full
path's inventory query returns it."""

from __future__ import annotations

import pytest

from rightsizer.adapters import incremental_inventory as inventory
from rightsizer.adapters.assemble import BatchSeries, Labels
from rightsizer.adapters.promql import PART
from rightsizer.adapters.statecodec import (
    AgencyState,
    KeptInventory,
    StateCorrupt,
    decode,
    encode,
    label_key,
)

DAY = 86_400
T0 = 20_000 * DAY  # a UTC midnight


def owner(pod: str, name: str) -> Labels:
    return {
        PART: "pod_owner",
        "namespace": "a",
        "pod": pod,
        "owner_kind": "ReplicaSet",
        "owner_name": name,
    }


def counter(pod: str) -> Labels:
    return {PART: inventory.COUNTER, "namespace": "a", "pod": pod, "container": "app"}


def emitted(kept: KeptInventory) -> dict[str, list[tuple[Labels, float]]]:
    series = BatchSeries()
    inventory.emit(kept, series)
    return {
        part: sorted(rows, key=lambda r: sorted(r[0].items()))
        for part, rows in series.instant.items()
    }


def test_a_row_seen_again_takes_the_new_value_and_time() -> None:
    kept = KeptInventory()
    inventory.fold(kept, [(owner("p1", "rs-1"), 1.0)], at=T0 + 3600)
    inventory.fold(kept, [(owner("p1", "rs-1"), 1.0), (owner("p2", "rs-2"), 1.0)], at=T0 + 7200)
    assert sorted(t for _, _, t in kept.rows.values()) == [T0 + 7200, T0 + 7200]
    assert [labels["pod"] for labels, _ in emitted(kept)["pod_owner"]] == ["p1", "p2"]


def test_fresh_parts_are_not_kept() -> None:
    kept = KeptInventory()
    alive = {PART: "alive", "namespace": "a", "pod": "p1"}
    node = {PART: "node", "resource": "cpu"}
    inventory.fold(kept, [(alive, 1.0), (node, 16.0)], at=T0)
    assert kept.rows == {}
    assert inventory.is_fresh("alive") and inventory.is_fresh("node")
    assert not inventory.is_fresh("request")


@pytest.mark.parametrize(
    ("seen", "start", "kept_after"),
    [
        (T0 + 100, T0 + 99, True),  # seen after the window's start
        (T0 + 100, T0 + 100, False),  # last seen at its start: outside (start, end]
        (T0 + 100, T0 + 5000, False),
    ],
)
def test_rows_last_seen_before_the_window_are_forgotten(
    seen: float, start: float, kept_after: bool
) -> None:
    kept = KeptInventory()
    inventory.fold(kept, [(owner("p1", "rs-1"), 1.0)], at=seen)
    inventory.forget(kept, start)
    assert bool(kept.rows) is kept_after


@pytest.mark.parametrize(
    ("values", "restarts"),
    [
        ([0.0], 0.0),  # a first value is not an increase (nor is it in ``increase``)
        ([0.0, 0.0, 0.0], 0.0),
        ([0.0, 2.0, 3.0], 3.0),
        ([5.0, 7.0], 2.0),
        ([4.0, 1.0], 1.0),  # a reset: the new value counts
        ([4.0, 1.0, 2.0], 2.0),
    ],
)
def test_restarts_are_the_counters_increases(values: list[float], restarts: float) -> None:
    kept = KeptInventory()
    for hour, value in enumerate(values):
        inventory.fold(kept, [(counter("p1"), value)], at=T0 + 3600 * (hour + 1))
    [(labels, total)] = emitted(kept)["restarts"]
    assert total == restarts
    assert labels == {PART: "restarts", "namespace": "a", "pod": "p1", "container": "app"}


def test_restarts_expire_by_the_day_they_happened() -> None:
    kept = KeptInventory()
    inventory.fold(kept, [(counter("p1"), 0.0)], at=T0 + 3600)
    inventory.fold(kept, [(counter("p1"), 2.0)], at=T0 + 7200)  # day 0: 2
    inventory.fold(kept, [(counter("p1"), 3.0)], at=T0 + DAY + 7200)  # day 1: 1
    inventory.forget(kept, T0 + DAY + 60)  # the window now starts in day 1
    [(_, total)] = emitted(kept)["restarts"]
    assert total == 1.0


def test_the_seed_reads_one_point_per_midnight() -> None:
    """Counter points at midnights: each increase belongs to the day before its point; the
    kept rows take their last point."""
    kept = KeptInventory()
    points = [(T0 + DAY, 1.0), (T0 + 2 * DAY, 1.0), (T0 + 3 * DAY, 4.0)]
    rows = [(counter("p1"), points), (owner("p1", "rs-1"), [(T0 + DAY, 1.0), (T0 + 2 * DAY, 1.0)])]
    inventory.seed(kept, rows)
    key = label_key(counter("p1"))
    assert kept.restarts[key] == {20_002: 3.0}
    assert kept.counters[key] == (counter("p1"), 4.0, T0 + 3 * DAY)
    assert list(kept.rows.values()) == [(owner("p1", "rs-1"), 1.0, T0 + 2 * DAY)]


def test_the_kept_inventory_survives_encoding() -> None:
    state = AgencyState("f" * 32, float(T0))
    inventory.fold(state.inventory, [(owner("p1", "rs-1"), 1.0), (counter("p1"), 0.0)], at=T0)
    inventory.fold(state.inventory, [(counter("p1"), 2.0)], at=T0 + 60)
    again = decode(encode(state))
    assert again.inventory == state.inventory


@pytest.mark.parametrize(
    "data",
    [
        b'{"rows": [[["namespace", "pod"], [["a", 1.0, 2.0]]]], "counters": [], "restarts": []}',
        b'{"rows": [], "counters": [], "restarts": [[[["pod"], []], [[1, 2.0]]]]}',
        b'{"rows": [], "counters": []}',
        b"not json",
    ],
)
def test_a_damaged_inventory_is_corrupt_state(data: bytes) -> None:
    with pytest.raises(StateCorrupt):
        KeptInventory.from_json(data)
