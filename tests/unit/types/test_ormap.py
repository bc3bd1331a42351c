"""ORMap: keys to nested CRDTs; remove resets what it saw, a concurrent update survives."""

from __future__ import annotations

from typing import Any

import pytest

from crdtsync.codec import decode, encode
from crdtsync.errors import TypeMismatchError
from crdtsync.types import (
    AWORSet,
    EWFlag,
    GCounter,
    LWWRegister,
    MVRegister,
    ORMap,
    PNCounter,
    RWORSet,
    join,
)
from crdtsync.types.base import MAX_DEPTH


def add(m: ORMap, replica: str, key: Any, element: Any) -> ORMap:
    return m.update(replica, key, AWORSet, lambda s: s.add(replica, element))


def inc(m: ORMap, replica: str, key: Any, by: int = 1) -> ORMap:
    return m.update(replica, key, PNCounter, lambda c: c.increment(replica, by))


def test_update_creates_and_reads_every_nested_type() -> None:
    m = ORMap()
    add(m, "a", "set", "x")
    m.update("a", "rw", RWORSet, lambda s: s.add("a", 2))
    inc(m, "a", "count", 3)
    m.update("a", "g", GCounter, lambda c: c.increment("a", 4))
    m.update("a", "lww", LWWRegister, lambda r: r.assign("a", "hi", 5))
    m.update("a", "mv", MVRegister, lambda r: r.assign("a", [1]))
    m.update("a", "flag", EWFlag, lambda f: f.enable("a"))
    m.update("a", "map", ORMap, lambda inner: add(inner, "a", "k", "deep"))
    assert m.value == {
        "set": frozenset({"x"}), "rw": frozenset({2}), "count": 3, "g": 4, "lww": "hi",
        "mv": ([1],), "flag": True, "map": {"k": frozenset({"deep"})},
    }
    assert len(m) == 8 and "set" in m and "nope" not in m
    assert set(m) == set(m.value)
    assert m.get("count") == 3 and m.get("nope", 0) == 0
    assert decode(encode(m)) == m


def test_remove_vs_concurrent_update_keeps_only_what_the_remover_had_not_seen() -> None:
    a, b = ORMap(), ORMap()
    b.merge(add(a, "a", "likes", "alice"))
    add(a, "a", "likes", "bob")  # concurrent with b's remove
    b.remove("b", "likes")
    assert "likes" not in b
    for x, y in [(a, b), (b, a)]:
        assert join(x, y).value == {"likes": frozenset({"bob"})}
    assert join(a, b) == join(b, a)


def test_remove_after_seeing_every_update_removes_the_key() -> None:
    a, b = ORMap(), ORMap()
    b.merge(add(a, "a", "likes", "alice"))
    a.merge(b.remove("b", "likes"))
    assert a.value == b.value == {}
    assert a == b


def test_readd_after_remove() -> None:
    m = ORMap()
    inc(m, "a", "c", 5)
    m.remove("a", "c")
    inc(m, "a", "c", 2)
    assert m.value == {"c": 2}


def test_remove_vs_concurrent_counter_increment() -> None:
    a, b, c = ORMap(), ORMap(), ORMap()
    d1 = inc(a, "a", "n", 5)
    inc(c, "c", "n", 3)
    b.merge(d1)
    b.remove("b", "n")          # saw a's 5, not c's 3
    inc(a, "a", "n", 1)         # concurrent with the remove
    total = join(join(a, b), c)
    # c's increment was unseen: it survives. a's dot was replaced after the remover saw it,
    # so a's field survives carrying a's running total (5 + 1), as documented.
    assert total.value == {"n": 3 + 6}
    assert join(c, join(b, a)) == total


def test_remove_vs_concurrent_lww_assign() -> None:
    a, b = ORMap(), ORMap()
    b.merge(a.update("a", "t", LWWRegister, lambda r: r.assign("a", "v1", 1)))
    a.update("a", "t", LWWRegister, lambda r: r.assign("a", "v2", 2))
    b.remove("b", "t")
    assert join(a, b).value == join(b, a).value == {"t": "v2"}


def test_nested_map_of_map_remove_vs_concurrent_inner_update() -> None:
    a, b = ORMap(), ORMap()

    def inner_add(m: ORMap, replica: str, element: str) -> ORMap:
        return m.update(replica, "outer", ORMap,
                        lambda inner: add(inner, replica, "inner", element))

    b.merge(inner_add(a, "a", "seen"))
    inner_add(a, "a", "unseen")
    b.remove("b", "outer")
    expected = {"outer": {"inner": frozenset({"unseen"})}}
    assert join(a, b).value == join(b, a).value == expected
    # An inner remove that saw everything clears the inner key; the empty outer map goes too.
    m = join(a, b)
    m.update("a", "outer", ORMap, lambda inner: inner.remove("a", "inner"))
    assert m.value == {}
    assert decode(encode(m)) == m


def test_three_level_update_through_views() -> None:
    m = ORMap()
    m.update("a", "x", ORMap, lambda m2: m2.update(
        "a", 1, ORMap, lambda m3: inc(m3, "a", "c", 7)))
    assert m.value == {"x": {1: {"c": 7}}}
    other = ORMap()
    other.merge(m)
    other.update("b", "x", ORMap, lambda m2: m2.update(
        "b", 1, ORMap, lambda m3: inc(m3, "b", "c", 1)))
    assert join(m, other).value == {"x": {1: {"c": 8}}}
    assert decode(encode(other)) == other


def test_int_and_str_keys_are_distinct() -> None:
    m = ORMap()
    inc(m, "a", 1, 1)
    add(m, "a", "1", "x")
    assert m.value == {1: 1, "1": frozenset({"x"})}
    y = decode(encode(m))
    assert y == m and y.value == m.value
    m.remove("a", 1)
    assert m.value == {"1": frozenset({"x"})}


def test_update_as_another_type_raises_and_changes_nothing() -> None:
    m = ORMap()
    inc(m, "a", "k", 1)
    before = m.copy()
    with pytest.raises(TypeMismatchError):
        add(m, "a", "k", "x")
    with pytest.raises(TypeMismatchError):
        m.update("a", "k", GCounter, lambda c: c.increment("a", 1))
    assert m == before
    assert isinstance(TypeMismatchError("x"), TypeError)


def test_concurrent_creation_with_different_types_converges_deterministically() -> None:
    a, b = ORMap(), ORMap()
    add(a, "a", "k", "x")
    inc(b, "b", "k", 2)
    ab, ba = join(a, b), join(b, a)
    assert ab == ba and encode(ab) == encode(ba)
    # The type whose tag sorts last is shown, on every replica.
    assert ab.value == ba.value == {"k": 2}
    assert len(ab) == 1 and "k" in ab
    # The key is now ambiguous: an update of either type is refused ...
    with pytest.raises(TypeMismatchError):
        add(ab, "a", "k", "y")
    # ... until a remove clears both.
    ab.remove("a", "k")
    assert ab.value == {}
    add(ab, "a", "k", "y")
    assert ab.value == {"k": frozenset({"y"})}


def test_update_rejects_unsupported_kinds_and_bad_fns() -> None:
    m = ORMap()
    with pytest.raises(TypeError):
        m.update("a", "k", dict, lambda v: v)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        m.update("a", "k", AWORSet, lambda s: None)
    with pytest.raises(TypeError):
        m.update("a", "k", AWORSet, lambda s: 42)


@pytest.mark.parametrize("key", [1.5, True, None, (1,), b"k", 2**63])
def test_bad_keys(key: object) -> None:
    m = ORMap()
    with pytest.raises((TypeError, ValueError)):
        add(m, "a", key, "x")
    with pytest.raises((TypeError, ValueError)):
        m.remove("a", key)  # type: ignore[arg-type]
    assert m.is_bottom()


@pytest.mark.parametrize("replica", [1, None, ""])
def test_bad_replicas(replica: Any) -> None:
    m = ORMap()
    with pytest.raises((TypeError, ValueError)):
        m.update(replica, "k", AWORSet, lambda s: s.add("a", 1))
    with pytest.raises((TypeError, ValueError)):
        m.remove(replica, "k")
    assert m.is_bottom()


def test_failed_nested_mutator_leaves_the_map_unchanged() -> None:
    m = ORMap()
    add(m, "a", "s", "x")
    before = m.copy()
    with pytest.raises(TypeError):
        add(m, "a", "s", 1.5)
    with pytest.raises(ValueError):
        inc(m, "a", "c", 0)
    assert m == before


@pytest.mark.parametrize("other", [AWORSet(), PNCounter(), LWWRegister()])
def test_merge_of_another_type_raises(other: object) -> None:
    with pytest.raises(TypeMismatchError):
        ORMap().merge(other)


def _nest(depth: int) -> ORMap:
    """A map holding ``depth`` maps in all (itself included), a set at the bottom."""

    def fn(level: int) -> Any:
        if level == depth:
            return lambda m: add(m, "a", "leaf", "x")
        return lambda m: m.update("a", "k", ORMap, fn(level + 1))

    top = ORMap()
    fn(1)(top)
    return top


def test_maps_nested_to_max_depth_round_trip() -> None:
    m = _nest(MAX_DEPTH)
    assert decode(encode(m)) == m


def test_maps_nested_beyond_max_depth_are_refused_at_the_writer() -> None:
    """A writer must not create a state that every peer's decoder refuses."""
    with pytest.raises(ValueError):
        _nest(MAX_DEPTH + 1)
    m = _nest(MAX_DEPTH)
    before = m.copy()

    def deeper(level: int) -> Any:
        if level == MAX_DEPTH:
            return lambda inner: inner.update("a", "k", ORMap,
                                              lambda leaf: add(leaf, "a", "s", "y"))
        return lambda inner: inner.update("a", "k", ORMap, deeper(level + 1))

    with pytest.raises(ValueError):
        deeper(1)(m)
    assert m == before


def test_after_a_type_clash_the_shown_type_stays_writable() -> None:
    a, b = ORMap(), ORMap()
    a.update("a", "k", AWORSet, lambda s: s.add("a", "x"))
    b.update("b", "k", MVRegister, lambda r: r.assign("b", 1))  # "mvregister" > "aworset"
    a.merge(b)
    assert a.value == {"k": (1,)}
    a.update("a", "k", MVRegister, lambda r: r.assign("a", 2))
    assert a.value == {"k": (2,)}
    with pytest.raises(TypeMismatchError):
        a.update("a", "k", AWORSet, lambda s: s.add("a", "y"))


def test_a_failing_fn_leaves_the_map_consistent() -> None:
    from crdtsync.codec import decode, encode

    m = ORMap()
    m.update("a", "s", AWORSet, lambda s: s.add("a", "x"))

    def bad(s: AWORSet) -> object:
        s.add("a", "y")  # changes the value, then returns the wrong thing
        return "oops"

    with pytest.raises(TypeError):
        m.update("a", "s", AWORSet, bad)
    assert decode(encode(m)) == m  # index and store agree
    m.remove("a", "s")
    assert m.value == {} and decode(encode(m)) == m
