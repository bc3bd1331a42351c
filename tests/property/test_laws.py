"""Lattice laws of every type, on reachable states (Almeida et al. §2-§4).

States of one test always come from one random history (one "universe"), as on a real
cluster: a dot is never minted twice. ``==`` is whole-state equality (store and context).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdtsync.causal import CausalContext, DotMap, store_dots, store_is_bottom
from crdtsync.codec import decode, encode
from crdtsync.types import CausalCrdt, join
from tests.strategies import (
    SPECS,
    TypeSpec,
    Universe,
    reachable_states,
    states_and_ops,
    universes,
)

specs = pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)


@specs
@given(data=st.data())
def test_join_is_idempotent(spec: TypeSpec, data: st.DataObject) -> None:
    (a,) = data.draw(reachable_states(spec, 1))
    assert join(a, a) == a
    assert encode(join(a, a)) == encode(a)


@specs
@given(data=st.data())
def test_join_is_commutative(spec: TypeSpec, data: st.DataObject) -> None:
    a, b = data.draw(reachable_states(spec, 2))
    ab, ba = join(a, b), join(b, a)
    assert ab == ba
    assert encode(ab) == encode(ba)
    assert ab.value == ba.value


@specs
@given(data=st.data())
def test_join_is_associative(spec: TypeSpec, data: st.DataObject) -> None:
    a, b, c = data.draw(reachable_states(spec, 3))
    left, right = join(join(a, b), c), join(a, join(b, c))
    assert left == right
    assert encode(left) == encode(right)


@specs
@given(data=st.data())
def test_join_is_an_upper_bound(spec: TypeSpec, data: st.DataObject) -> None:
    a, b = data.draw(reachable_states(spec, 2))
    ab = join(a, b)
    assert join(ab, a) == ab
    assert join(ab, b) == ab
    assert join(a, spec.new()) == a
    assert join(spec.new(), a) == a


@specs
@given(data=st.data())
def test_mutator_equals_join_with_its_delta(spec: TypeSpec, data: st.DataObject) -> None:
    x, replica, op = data.draw(states_and_ops(spec))
    before = x.copy()
    delta = spec.apply(x, replica, op)
    if delta is None:  # refused on purpose (ORMap type conflict): nothing changed
        assert x == before
        return
    assert type(delta) is type(x)
    assert x == join(before, delta)
    # The delta is a value like any other: it joins idempotently and survives the codec.
    assert join(delta, delta) == delta
    assert decode(encode(delta)) == delta


@specs
@given(data=st.data())
def test_every_op_of_a_sequence_obeys_the_delta_law(spec: TypeSpec,
                                                     data: st.DataObject) -> None:
    x, replica, _ = data.draw(states_and_ops(spec, max_steps=6))
    for op in data.draw(st.lists(spec.ops, max_size=6)):
        before = x.copy()
        delta = spec.apply(x, replica, op)
        assert x == (before if delta is None else join(before, delta))


def _shuffled_with_duplicates(data: st.DataObject, u: Universe) -> list[Any]:
    deltas = [d for _, d in u.deltas]
    dups = data.draw(st.lists(st.sampled_from(deltas), max_size=4)) if deltas else []
    return data.draw(st.permutations(deltas + dups))


@specs
@given(data=st.data())
def test_deltas_in_any_order_with_duplicates_equal_full_states(spec: TypeSpec,
                                                               data: st.DataObject) -> None:
    u = data.draw(universes(spec))
    full = u.join_all()
    acc = spec.new()
    for delta in _shuffled_with_duplicates(data, u):
        acc.merge(delta)
    assert acc == full
    assert encode(acc) == encode(full)
    assert acc.value == full.value


@specs
@given(data=st.data())
def test_decode_inverts_encode(spec: TypeSpec, data: st.DataObject) -> None:
    u = data.draw(universes(spec))
    for x in [*u.states, u.join_all(), spec.new()]:
        raw = encode(x)
        assert isinstance(raw, bytes)
        y = decode(raw)
        assert type(y) is type(x)
        assert y == x
        assert encode(y) == raw
        assert y.value == x.value


@specs
@given(data=st.data())
def test_encoding_is_canonical(spec: TypeSpec, data: st.DataObject) -> None:
    """Equal states reached by different merge orders encode to the same bytes."""
    u = data.draw(universes(spec, min_replicas=3))
    order1 = data.draw(st.permutations(u.states))
    order2 = data.draw(st.permutations(u.states))
    x1, x2 = spec.new(), spec.new()
    for s in order1:
        x1.merge(s)
    for s in order2:
        x2 = join(s, x2)
    assert x1 == x2
    assert encode(x1) == encode(x2)
    assert encode(x1.copy()) == encode(x1)


@specs
@given(data=st.data())
def test_merge_leaves_its_argument_unchanged(spec: TypeSpec, data: st.DataObject) -> None:
    a, b = data.draw(reachable_states(spec, 2))
    b_before, b_bytes = b.copy(), encode(b)
    a.merge(b)
    assert b == b_before and encode(b) == b_bytes
    # Nothing of b is shared with a: mutating a afterwards leaves b alone.
    for op in data.draw(st.lists(spec.ops, min_size=1, max_size=4)):
        spec.apply(a, "a", op)
    assert b == b_before and encode(b) == b_bytes


@specs
@given(data=st.data())
def test_delta_is_independent_of_later_changes_to_the_state(spec: TypeSpec,
                                                            data: st.DataObject) -> None:
    """A delta may sit in a send buffer: later writes and merges must not alter it."""
    x, replica, op = data.draw(states_and_ops(spec))
    delta = spec.apply(x, replica, op)
    if delta is None:
        return
    raw = encode(delta)
    # Another replica sees x (and the delta), writes on top of it; x merges that back.
    other = x.copy()
    for later in data.draw(st.lists(spec.ops, min_size=1, max_size=4)):
        spec.apply(other, "e", later)
        spec.apply(x, replica, data.draw(spec.ops))
    x.merge(other)
    assert encode(delta) == raw


@specs
@given(data=st.data())
def test_copy_is_independent(spec: TypeSpec, data: st.DataObject) -> None:
    x, replica, op = data.draw(states_and_ops(spec))
    raw = encode(x)
    y = x.copy()
    assert y == x
    spec.apply(y, replica, op)
    assert encode(x) == raw


@specs
@given(data=st.data())
def test_novel_part_joins_like_the_whole_delta(spec: TypeSpec, data: st.DataObject) -> None:
    """``join(x, d) == join(x, x.novel(d))``, and None only when ``d`` adds nothing."""
    u = data.draw(universes(spec))
    x = data.draw(st.sampled_from(u.states))
    others = [d for _, d in u.deltas] + u.states
    d = data.draw(st.sampled_from(others))
    d_bytes = encode(d)
    part = x.novel(d)
    if part is None:
        assert join(x, d) == x
    else:
        assert join(x, part) == join(x, d)
    assert encode(d) == d_bytes


@specs
@given(data=st.data())
def test_join_novel_is_merge_plus_novel(spec: TypeSpec, data: st.DataObject) -> None:
    """``join_novel`` (one pass where a type overrides it) leaves the state ``merge`` leaves
    and returns what ``novel`` returns."""
    u = data.draw(universes(spec))
    x = data.draw(st.sampled_from(u.states))
    d = data.draw(st.sampled_from([d for _, d in u.deltas] + u.states))
    one, two = x.copy(), x.copy()
    got = one.join_novel(d)
    want = two.novel(d)
    two.merge(d)
    assert one == two
    assert (got is None) == (want is None)
    if got is not None:
        assert encode(got) == encode(want)


def _check_dotmap_index(dm: DotMap) -> None:
    """Every dot beneath ``dm`` is indexed to its key exactly once; no key holds bottom."""
    expected: dict[Any, Any] = {}
    for key, nested in dm.entries.items():
        assert not store_is_bottom(nested), f"bottom entry under {key!r}"
        if isinstance(nested, DotMap):
            _check_dotmap_index(nested)
            dots: Any = nested.owner.keys()
        else:
            dots = store_dots(nested)  # a one-dot entry may be compact: a bare tuple
        for dot in dots:
            assert dot not in expected, f"dot {dot} held twice"
            expected[dot] = key
    assert dm.owner == expected


def _check_context_normalised(ctx: CausalContext) -> None:
    for replica, n in ctx.vv.items():
        assert n >= 1 and n + 1 not in ctx.cloud.get(replica, set())
    for replica, extra in ctx.cloud.items():
        assert extra and min(extra) > ctx.vv.get(replica, 0) + 1


@specs
@given(data=st.data())
def test_reachable_states_and_deltas_keep_the_causal_invariants(spec: TypeSpec,
                                                                data: st.DataObject) -> None:
    u = data.draw(universes(spec))
    values = [*u.states, *(d for _, d in u.deltas), u.join_all()]
    for x in values:
        if not isinstance(x, CausalCrdt):
            return
        _check_context_normalised(x.context)
        for dot in (x._store.owner if isinstance(x._store, DotMap) else x._store):
            assert dot in x.context, f"live dot {dot} outside the context"
        if isinstance(x._store, DotMap):
            _check_dotmap_index(x._store)
