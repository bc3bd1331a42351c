"""Compact entries: an element of one dot held as a bare tuple inside an OR-set's DotMap.

An AWORSet holds an element's single dot as the tuple ``(replica, seq)`` and an RWORSet as
``(replica, seq, flag)`` instead of a one-element set or dict (see :mod:`crdtsync.causal`).
These tests pin that the compact form is an internal matter: joins with it on either side,
equality, encoding and decoding give what the set/dict form gives, and the replica's set
fast path ships deltas that make a peer converge.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync.causal import (
    CausalContext,
    DotMap,
    compact,
    expand,
    seen_dots,
    store_copy,
    store_dots,
    store_join,
)
from crdtsync.codec import decode, encode
from crdtsync.replica import Committed, Replica
from crdtsync.types import AWORSet, ORMap, RWORSet, join
from tests.unit.test_bulk_paths import random_state, ref_join


def expanded(m: DotMap) -> DotMap:
    """A copy of ``m`` with every compact entry (at any depth) as a set or dict."""
    out = DotMap()
    out.entries = {k: expanded(v) if isinstance(v, DotMap) else expand(store_copy(v))
                   for k, v in m.entries.items()}
    out.owner = dict(m.owner)
    return out


def compacted(m: DotMap, rnd: random.Random) -> DotMap:
    """A copy of ``m`` with some of its one-dot entries compact (chosen by ``rnd``)."""
    out = DotMap()
    out.entries = {k: compact(v) if not isinstance(v, DotMap) and len(v) == 1
                   and rnd.random() < 0.7 else store_copy(v) for k, v in m.entries.items()}
    out.owner = dict(m.owner)
    return out


def same_store(a: DotMap, b: DotMap) -> None:
    assert expanded(a).entries == expanded(b).entries
    assert a.owner == b.owner
    assert a == b and b == a


# -- the form itself ----------------------------------------------------------------------------


def test_an_element_of_one_dot_is_held_compact() -> None:
    s = AWORSet()
    s.add("a", "x")
    assert s._store.entries == {"x": ("a", 1)}
    assert s._store.owner == {("a", 1): "x"}
    r = RWORSet()
    r.add("a", "x")
    r.remove("a", "y")
    assert r._store.entries == {"x": ("a", 1, True), "y": ("a", 2, False)}
    assert r._store.owner == {("a", 1): "x", ("a", 2): "y"}
    assert r.value == frozenset({"x"})


def test_store_helpers_read_the_compact_form() -> None:
    assert list(store_dots(("a", 1))) == [("a", 1)]
    assert list(store_dots(("a", 1, False))) == [("a", 1)]
    assert expand(("a", 1)) == {("a", 1)}
    assert expand(("a", 1, True)) == {("a", 1): True}
    assert compact({("a", 1)}) == ("a", 1)
    assert compact({("a", 1): True}) == ("a", 1, True)
    assert store_copy(("a", 1)) == ("a", 1)
    assert seen_dots(("a", 2), CausalContext.of([("a", 2)])) == {("a", 2)}
    m1, m2 = DotMap(), DotMap()
    m1.set_entry("x", ("a", 1))
    m2.set_entry("x", {("a", 1)})
    assert m1 == m2 and m2 == m1 and m1.owner == m2.owner
    m2.set_entry("x", {("a", 2)})
    assert m1 != m2


def test_concurrent_dot_arrives_by_join_then_remove_clears_both() -> None:
    a, b = AWORSet(), AWORSet()
    a.add("a", "x")
    b.add("b", "x")  # concurrent: x now has a dot of a and one of b
    a.merge(b)
    assert a._store.entries["x"] == {("a", 1), ("b", 1)}
    assert a._store.owner == {("a", 1): "x", ("b", 1): "x"}
    assert decode(encode(a)) == a
    assert encode(decode(encode(a))) == encode(a)
    delta = a.remove("a", "x")
    assert delta.context.vv == {"a": 1, "b": 1}
    assert a.value == frozenset() and a._store.owner == {}
    b.merge(delta)
    assert b.value == frozenset() and b._store.entries == {} and b._store.owner == {}
    a.add("a", "x")  # one dot again: compact again
    assert a._store.entries["x"] == ("a", 2)


def test_a_join_that_leaves_one_dot_of_a_compact_entry_keeps_it_compact() -> None:
    a, b = AWORSet(), AWORSet()
    b.merge(a.add("a", "x"))
    a.add("a", "x")  # replaces ("a", 1) by ("a", 2)
    b.add("b", "y")
    b.merge(a)
    assert b._store.entries == {"x": ("a", 2), "y": ("b", 1)}
    assert b._store.owner == {("a", 2): "x", ("b", 1): "y"}


def test_the_set_form_and_the_compact_form_encode_alike_and_join_alike() -> None:
    a = AWORSet()
    for e in ["x", 1, "y", 2]:
        a.add("a", e)
    b = AWORSet()
    b.add("b", "x")
    b.add("b", "z")
    for compact_side in ("a", "b", "both", "none"):
        x, y = a.copy(), b.copy()
        if compact_side in ("b", "none"):
            x._store = expanded(x._store)
        if compact_side in ("a", "none"):
            y._store = expanded(y._store)
        assert encode(x) == encode(a) and encode(y) == encode(b)
        assert x == a and y == b
        xy, yx = join(x, y), join(y, x)
        assert xy == yx
        assert encode(xy) == encode(yx) == encode(join(a, b))
        assert xy.value == frozenset({"x", 1, "y", 2, "z"})


def test_decoding_holds_single_dots_compact() -> None:
    a, b = AWORSet(), AWORSet()
    for e in ["x", "y", 3]:
        a.add("a", e)
    b.add("b", "x")
    a.merge(b)
    data = encode(a)
    got = decode(data)
    assert got._store.entries == {"x": {("a", 1), ("b", 1)}, "y": ("a", 2), 3: ("a", 3)}
    assert got._store.owner == a._store.owner
    assert encode(got) == data
    r = RWORSet()
    r.add("a", "x")
    r.remove("a", "y")
    got_r = decode(encode(r))
    assert got_r._store.entries == {"x": ("a", 1, True), "y": ("a", 2, False)}
    assert encode(got_r) == encode(r)


def test_a_set_inside_a_map_holds_compact_entries() -> None:
    m = ORMap()
    m.update("a", "s", AWORSet, lambda s: s.add("a", "x"))
    other = ORMap()
    other.update("b", "s", AWORSet, lambda s: s.add("b", "x"))
    both = join(m, other)
    assert both.value == {"s": frozenset({"x"})}
    got = decode(encode(both))
    assert got == both and encode(got) == encode(both)
    delta = both.remove("a", "s")
    m.merge(delta)
    other.merge(delta)
    assert m.value == other.value == {}


# -- joins against the reference ----------------------------------------------------------------


@settings(max_examples=300)
@given(st.randoms(use_true_random=False), st.sampled_from(["set", "fun", "map"]))
def test_joins_with_compact_entries_match_the_reference(rnd: random.Random, kind: str) -> None:
    universe = [((r, s), rnd.choice(["k", "j", 1, 2, "x"])) for r in "abc" for s in range(1, 9)]
    s1, c1 = random_state(rnd, universe, kind)
    s2, c2 = random_state(rnd, universe, kind)
    ref = ref_join(expanded(s1), c1, expanded(s2), c2)
    for left, right in ((True, False), (False, True), (True, True)):
        m1 = compacted(s1, rnd) if left else store_copy(s1)
        m2 = compacted(s2, rnd) if right else store_copy(s2)
        before = expanded(m2)
        new = store_join(m1, c1, m2, c2)
        same_store(new, ref)
        same_store(m2, before)  # the second store is left unchanged
        for key, nested in new.entries.items():
            if isinstance(nested, DotMap):
                assert nested.owner == ref.entries[key].owner


OPS = st.lists(st.one_of(
    st.tuples(st.sampled_from(["add", "remove", "rwadd", "rwremove"]),
              st.sampled_from(["x", "y", 1, "z"])),
    st.tuples(st.just("commit"), st.just("")),
    st.tuples(st.just("peer"), st.sampled_from(["x", "y", 1])),
), max_size=50)


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_set_fast_path_deltas_make_a_peer_converge(ops: list[tuple[str, Any]]) -> None:
    """Set writes on A's fast path, mixed with commits and concurrent writes of a third
    replica arriving in between: B, fed only A's committed groups and the same remote
    deltas, ends equal to A."""
    a, b = Replica.open(None, name="a"), Replica.open(None, name="b")

    def ship(entries: list[Committed]) -> None:
        for e in entries:
            if e.group and e.origin is None:
                b.apply_remote(e.group, a.replica_id)
        b.commit()

    a.on_commit.append(ship)
    peer_s, peer_r = AWORSet(), RWORSet()
    for op, element in ops:
        if op == "add":
            a.set("s").add(element)
        elif op == "remove":
            a.set("s").remove(element)
        elif op == "rwadd":
            a.rwset("r").add(element)
        elif op == "rwremove":
            a.rwset("r").remove(element)
        elif op == "commit":
            a.commit()
        else:
            group = {"s": peer_s.add("peer", element), "r": peer_r.remove("peer", element)}
            a.apply_remote(group, "peer")
            b.apply_remote(group, "peer")
    a.commit()
    b.commit()
    for key in a.keys():
        assert encode(a.state(key)) == encode(b.state(key)), key
