"""GCounter and PNCounter: what a user relies on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdtsync.codec import MAX_INT, decode, encode
from crdtsync.errors import TypeMismatchError
from crdtsync.types import AWORSet, GCounter, PNCounter, join

BAD_AMOUNTS = [(0, ValueError), (-1, ValueError), (True, TypeError), (False, TypeError),
               (1.5, TypeError), (1.0, TypeError), ("1", TypeError), (None, TypeError),
               (2**63, ValueError)]
BAD_REPLICAS = [(1, TypeError), (None, TypeError), (b"a", TypeError), (("a",), TypeError),
                ("", ValueError), ("r" * 129, ValueError)]


def test_concurrent_increments_all_count() -> None:
    a, b = GCounter(), GCounter()
    a.increment("a", 2)
    b.increment("b", 3)
    b.increment("b")
    assert join(a, b).value == 6
    assert join(b, a).value == 6


def test_duplicated_and_late_deltas_count_once() -> None:
    a, b = GCounter(), GCounter()
    d1 = a.increment("a", 1)
    d2 = a.increment("a", 10)
    for delta in [d2, d1, d2, d1, d1]:
        b.merge(delta)
    assert b.value == 11
    assert b == a


def test_delta_is_the_replica_total_not_the_increment() -> None:
    c = GCounter()
    c.increment("a", 5)
    delta = c.increment("a", 2)
    fresh = GCounter()
    fresh.merge(delta)
    assert fresh.value == 7


def test_pncounter_duplicated_delivery() -> None:
    a, b = PNCounter(), PNCounter()
    deltas = [a.increment("a", 5), a.decrement("a", 2), a.decrement("a", 4)]
    for delta in deltas + deltas[::-1] + deltas:
        b.merge(delta)
    assert a.value == b.value == -1
    assert a == b


def test_pncounter_concurrent_updates_sum() -> None:
    replicas = {r: PNCounter() for r in "abc"}
    replicas["a"].increment("a", 10)
    replicas["b"].decrement("b", 3)
    replicas["c"].increment("c", 1)
    replicas["c"].decrement("c", 1)
    total = PNCounter()
    for x in replicas.values():
        total.merge(x)
    assert total.value == 7


@pytest.mark.parametrize("cls", [GCounter, PNCounter])
@pytest.mark.parametrize(("by", "error"), BAD_AMOUNTS)
def test_increment_rejects_bad_amounts(cls: type, by: object, error: type) -> None:
    c = cls()
    with pytest.raises(error):
        c.increment("a", by)
    assert c.is_bottom()


@pytest.mark.parametrize(("by", "error"), BAD_AMOUNTS)
def test_decrement_rejects_bad_amounts(by: object, error: type) -> None:
    c = PNCounter()
    with pytest.raises(error):
        c.decrement("a", by)
    assert c.is_bottom()


@pytest.mark.parametrize("cls", [GCounter, PNCounter])
@pytest.mark.parametrize(("replica", "error"), BAD_REPLICAS)
def test_mutators_reject_bad_replica_ids(cls: type, replica: object, error: type) -> None:
    c = cls()
    with pytest.raises(error):
        c.increment(replica, 1)
    if cls is PNCounter:
        with pytest.raises(error):
            c.decrement(replica, 1)
    assert c.is_bottom()


def test_overflow_is_refused_and_leaves_the_counter_unchanged() -> None:
    c = GCounter()
    c.increment("a", MAX_INT)
    with pytest.raises(ValueError):
        c.increment("a", 1)
    assert c.value == MAX_INT
    assert decode(encode(c)) == c


def test_gcounter_has_no_decrement() -> None:
    assert not hasattr(GCounter(), "decrement")


@pytest.mark.parametrize(("x", "y"), [(GCounter(), PNCounter()), (PNCounter(), GCounter()),
                                      (GCounter(), AWORSet()), (PNCounter(), 3)])
def test_merge_of_another_type_raises(x: object, y: object) -> None:
    before = x.copy()  # type: ignore[attr-defined]
    with pytest.raises(TypeMismatchError):
        x.merge(y)  # type: ignore[attr-defined]
    assert x == before


def test_bottom_and_equality() -> None:
    assert GCounter().is_bottom() and GCounter().value == 0
    assert PNCounter().is_bottom() and PNCounter().value == 0
    a, b = PNCounter(), PNCounter()
    a.increment("a")
    a.decrement("a")
    assert a.value == 0 and not a.is_bottom()
    assert a != b  # same value, different state
    assert GCounter() != PNCounter()


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans(),
                          st.integers(min_value=1, max_value=100)), max_size=30))
def test_value_is_increments_minus_decrements(ops: list[tuple[str, bool, int]]) -> None:
    c = PNCounter()
    for replica, up, by in ops:
        (c.increment if up else c.decrement)(replica, by)
    assert c.value == sum(by if up else -by for _, up, by in ops)
