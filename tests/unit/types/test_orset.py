"""AWORSet (add-wins) and RWORSet (remove-wins): what a user relies on."""

from __future__ import annotations

import pytest

from crdtsync.codec import decode, encode
from crdtsync.errors import TypeMismatchError
from crdtsync.types import AWORSet, GCounter, RWORSet, join

BAD_ELEMENTS = [(1.5, TypeError), (1.0, TypeError), (True, TypeError), (False, TypeError),
                (None, TypeError), ((1,), TypeError), ([1], TypeError), (b"x", TypeError),
                (2**63, ValueError), (-(2**63) - 1, ValueError)]
BAD_REPLICAS = [(1, TypeError), (None, TypeError), (b"a", TypeError)]
BAD_REPLICA_STRINGS = [("", ValueError), ("r" * 129, ValueError)]

ORSETS = pytest.mark.parametrize("cls", [AWORSet, RWORSet])


def concurrent_add_remove(cls: type) -> tuple[object, object]:
    """Both replicas hold x; then a re-adds x while b removes it, concurrently."""
    a, b = cls(), cls()
    b.merge(a.add("a", "x"))
    a.add("a", "x")
    b.remove("b", "x")
    return a, b


def test_aworset_add_wins_over_concurrent_remove() -> None:
    a, b = concurrent_add_remove(AWORSet)
    assert join(a, b).value == frozenset({"x"})
    assert join(b, a) == join(a, b)


def test_rworset_remove_wins_over_concurrent_add() -> None:
    a, b = concurrent_add_remove(RWORSet)
    assert join(a, b).value == frozenset()
    assert join(b, a) == join(a, b)


def test_aworset_concurrent_add_of_a_never_seen_element_survives_remove() -> None:
    a, b = AWORSet(), AWORSet()
    a.add("a", "x")
    b.remove("b", "x")  # b never saw x: the remove is a no-op
    assert join(a, b).value == frozenset({"x"})


@ORSETS
def test_causally_later_remove_wins(cls: type) -> None:
    a, b = cls(), cls()
    b.merge(a.add("a", "x"))
    a.merge(b.remove("b", "x"))
    assert a.value == b.value == frozenset()


@ORSETS
def test_readd_after_remove(cls: type) -> None:
    a, b = cls(), cls()
    b.merge(a.add("a", "x"))
    a.merge(b.remove("b", "x"))
    b.merge(a.add("a", "x"))
    assert a.value == b.value == frozenset({"x"})
    assert a == b


@ORSETS
def test_remove_wins_only_over_what_it_saw(cls: type) -> None:
    a, b = cls(), cls()
    b.merge(a.add("a", "x"))
    b_remove = b.remove("b", "x")
    later_add = a.add("a", "x")  # concurrent with the remove
    a.merge(b_remove)
    b.merge(later_add)
    expected = frozenset({"x"}) if cls is AWORSet else frozenset()
    assert a.value == b.value == expected


@ORSETS
def test_1_and_string_1_are_different_elements(cls: type) -> None:
    s = cls()
    s.add("a", 1)
    s.add("a", "1")
    s.remove("a", 1)
    assert s.value == frozenset({"1"})
    y = decode(encode(s))
    assert y.value == frozenset({"1"})
    assert 1 not in y and "1" in y


def test_aworset_removed_element_leaves_no_tombstone() -> None:
    s = AWORSet()
    for i in range(50):
        s.add("a", i)
    for i in range(50):
        s.remove("a", i)
    assert s.value == frozenset()
    raw = encode(s)
    assert raw == encode(decode(raw))
    # Only the version vector remembers: no element of the 50 is still encoded.
    assert b"49" not in raw.replace(b'"a":100', b"")
    assert s.context.vv == {"a": 50} and s.context.cloud == {}


@ORSETS
def test_membership_and_iteration(cls: type) -> None:
    s = cls()
    s.add("a", "x")
    s.add("b", 2)
    assert "x" in s and 2 in s and "2" not in s
    assert set(s) == {"x", 2}
    assert len(s) == 2


def test_remove_delta_of_absent_element_changes_nothing() -> None:
    s = AWORSet()
    s.add("a", "y")
    before = s.copy()
    delta = s.remove("a", "x")
    assert s == before
    assert join(before, delta) == before


@ORSETS
@pytest.mark.parametrize(("element", "error"), BAD_ELEMENTS)
def test_add_rejects_bad_elements(cls: type, element: object, error: type) -> None:
    s = cls()
    with pytest.raises(error):
        s.add("a", element)
    with pytest.raises(error):
        s.remove("a", element)
    assert s.is_bottom()


@ORSETS
@pytest.mark.parametrize(("replica", "error"), BAD_REPLICAS)
def test_add_rejects_non_str_replicas(cls: type, replica: object, error: type) -> None:
    s = cls()
    with pytest.raises(error):
        s.add(replica, "x")
    with pytest.raises(error):
        s.remove(replica, "x")
    assert s.is_bottom()


@ORSETS
@pytest.mark.parametrize(("replica", "error"), BAD_REPLICA_STRINGS)
def test_add_rejects_invalid_replica_strings(cls: type, replica: str, error: type) -> None:
    s = cls()
    with pytest.raises(error):
        s.add(replica, "x")


@ORSETS
def test_add_rejects_oversized_string_elements(cls: type) -> None:
    s = cls()
    with pytest.raises(ValueError):
        s.add("a", "x" * 5000)


@pytest.mark.parametrize(("x", "y"), [(AWORSet(), RWORSet()), (RWORSet(), AWORSet()),
                                      (AWORSet(), GCounter()), (RWORSet(), frozenset())])
def test_merge_of_another_type_raises(x: object, y: object) -> None:
    with pytest.raises(TypeMismatchError):
        x.merge(y)  # type: ignore[attr-defined]


def test_int_and_str_elements_of_64_bit_range_round_trip() -> None:
    s = AWORSet()
    for e in [2**63 - 1, -(2**63), 0, "", "é", "0"]:
        s.add("a", e)
    y = decode(encode(s))
    assert y == s
    assert y.value == frozenset({2**63 - 1, -(2**63), 0, "", "é", "0"})
