"""The bulk fast paths of causal.py, codec.py and orset.py agree with the per-item code.

Each test runs the new code and a *reference*, the per-item code it replaced (kept below as a
model), on random inputs, and asserts the same result or the same error (type and message).
Decoding inputs are mostly valid with random defects, so that both the bulk path and its
precise fallback are exercised.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync.causal import CausalContext, DotMap, expand, store_copy, store_dots, store_join
from crdtsync.codec import (
    MAX_INT,
    check_dot,
    check_dots,
    check_element,
    check_int,
    check_replica,
    check_store_in_context,
    dotmap_from_columns,
    dotmap_from_json,
    dotsets_from_json,
    dumps,
    element_order,
    sorted_items,
)
from crdtsync.types import AWORSet, RWORSet

# -- references: the per-item code the bulk paths replaced -------------------------------------


def ref_dotset_from_json(obj: Any) -> set[tuple[str, int]]:
    if not isinstance(obj, list):
        raise ValueError("dot set must be a list")
    dots = {check_dot(d) for d in obj}
    if len(dots) != len(obj):
        raise ValueError("duplicate dot in dot set")
    return dots


def ref_aworset_store(obj: Any) -> DotMap:
    def nested(item: Any) -> set[tuple[str, int]]:
        if len(item) != 2:
            raise ValueError("aworset entry must be [element, dots]")
        return ref_dotset_from_json(item[1])

    return dotmap_from_json(obj, lambda item: check_element(item[0]), nested)


def ref_sorted_dots(dots: Any) -> list[list[Any]]:
    return [[r, s] for r, s in sorted(dots)]


def ref_seen_dots(store: Any, ctx: CausalContext) -> set[tuple[str, int]]:
    return {d for d in store_dots(store) if d in ctx}


def ref_join(s1: Any, c1: CausalContext, s2: Any, c2: CausalContext,
             drop: set[tuple[str, int]] | None = None) -> Any:
    if drop is None:
        drop = ref_seen_dots(s1, c2)
    if isinstance(s1, DotMap):
        return ref_map_join(s1, c1, s2, c2, drop)
    if isinstance(s1, dict):
        for dot in drop:
            if dot not in s2:
                del s1[dot]
        for dot, payload in s2.items():
            if dot not in c1:
                s1[dot] = payload
        return s1
    for dot in drop:
        if dot not in s2:
            s1.discard(dot)
    for dot in s2:
        if dot not in c1:
            s1.add(dot)
    return s1


def ref_map_join(m1: DotMap, c1: CausalContext, m2: DotMap, c2: CausalContext,
                 drop: set[tuple[str, int]]) -> DotMap:
    by_key: dict[Any, set[tuple[str, int]]] = {}
    for dot in drop:
        by_key.setdefault(m1.owner[dot], set()).add(dot)
    for key in m2.entries.keys() | by_key.keys():
        mine = m1.entries.get(key)
        theirs = m2.entries.get(key)
        if mine is None:
            fresh = ref_join(DotMap() if isinstance(theirs, DotMap) else type(theirs)(),
                             c1, theirs, c2, set())
            if fresh:
                m1.set_entry(key, fresh)
            continue
        if theirs is None:
            theirs = DotMap() if isinstance(mine, DotMap) else type(mine)()
        gone = by_key.get(key, set())
        joined = ref_join(mine, c1, theirs, c2, gone)
        held = joined.owner if isinstance(joined, DotMap) else joined
        for dot in gone:
            if dot not in held:
                m1.owner.pop(dot, None)
        for dot in store_dots(theirs):
            if dot in held:
                m1.owner[dot] = key
        if not (joined.entries if isinstance(joined, DotMap) else joined):
            del m1.entries[key]
    return m1


def outcome(fn: Any, *args: Any) -> tuple[Any, ...]:
    try:
        return ("ok", fn(*args))
    except (TypeError, ValueError, KeyError) as exc:
        return ("err", type(exc), str(exc))


# -- strategies ---------------------------------------------------------------------------------

good_replicas = st.sampled_from(["a", "b", "c", "d", "e", "f"])
bad_replicas = st.one_of(st.just(""), st.just("x" * 129), st.just("\ud800"), st.integers(),
                         st.none(), st.lists(st.integers(), max_size=1), st.just("é"))
good_seqs = st.integers(min_value=1, max_value=8)
bad_seqs = st.one_of(st.just(0), st.just(-1), st.just(MAX_INT + 1), st.booleans(),
                     st.floats(allow_nan=False), st.text(max_size=1))
good_dots = st.tuples(good_replicas, good_seqs).map(list)
bad_dots = st.one_of(
    st.tuples(st.one_of(good_replicas, bad_replicas), st.one_of(good_seqs, bad_seqs)).map(list),
    st.lists(good_replicas, max_size=3), st.tuples(good_replicas, good_seqs),
    st.none(), st.text(max_size=2),
)
good_elements = st.one_of(st.integers(min_value=-3, max_value=3), st.sampled_from("xyz1"),
                          st.integers(min_value=-(2**63), max_value=2**63 - 1),
                          st.text(max_size=8).filter(lambda t: t.isascii()))
bad_elements = st.one_of(st.booleans(), st.none(), st.just(2**63), st.just(-(2**63) - 1),
                         st.just("é"), st.just("\udc00"), st.just("x" * 4097), st.floats(),
                         st.lists(st.integers(), max_size=1))


def sometimes(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
    """Mostly ``good``, one time in ten ``bad``."""
    return st.tuples(st.integers(0, 9), good, bad).map(lambda t: t[2] if t[0] == 0 else t[1])


dot_items = st.lists(sometimes(good_dots, bad_dots), max_size=6)
wide_dots = st.tuples(good_replicas, st.integers(min_value=1, max_value=10**6)).map(list)
store_items = sometimes(
    st.tuples(good_elements, st.lists(st.one_of(wide_dots, wide_dots, good_dots),
                                      min_size=1, max_size=3)).map(list),
    st.one_of(
        st.tuples(sometimes(good_elements, bad_elements), dot_items).map(list),
        st.lists(good_elements, max_size=3), st.just([]), st.none(), st.text(max_size=2),
    ),
)
stores = sometimes(st.lists(store_items, max_size=8),
                   st.one_of(st.none(), st.dictionaries(st.text(), st.text())))


# -- decoding -----------------------------------------------------------------------------------


@settings(max_examples=400)
@given(st.one_of(dot_items, st.lists(good_dots, max_size=8)))
def test_check_dots_matches_check_dot_one_by_one(items: list[Any]) -> None:
    assert outcome(check_dots, items) == outcome(lambda x: [check_dot(d) for d in x], items)


@settings(max_examples=400)
@given(st.one_of(dot_items, st.lists(good_dots, max_size=8)))
def test_dotset_from_json_matches_the_reference(items: list[Any]) -> None:
    from crdtsync.codec import dotset_from_json

    assert outcome(dotset_from_json, items) == outcome(ref_dotset_from_json, items)


def _same_store(new: tuple[Any, ...], ref: tuple[Any, ...]) -> None:
    assert new[0] == ref[0], (new, ref)
    if new[0] == "ok":  # an entry of one dot may be compact on one side (see causal.py)
        assert {k: expand(v) for k, v in new[1].entries.items()} == ref[1].entries
        assert new[1].owner == ref[1].owner
    else:
        assert new == ref


@settings(max_examples=600)
@given(stores)
def test_aworset_store_decoding_matches_the_reference(obj: Any) -> None:
    fast = dotsets_from_json(obj)
    ref = outcome(ref_aworset_store, obj)
    if fast is not None:  # the bulk path accepts only what the reference accepts, as it does
        _same_store(("ok", fast), ref)
    if type(obj) is not dict:  # the list form of stores written before protocol version 2
        _same_store(outcome(AWORSet._store_from_json, obj, 0), ref)


@given(st.lists(st.tuples(good_elements, st.lists(good_dots, min_size=1, max_size=3)).map(list),
                max_size=8))
def test_well_formed_aworset_stores_take_the_bulk_path(obj: list[Any]) -> None:
    keys = [item[0] for item in obj]
    dots = [tuple(d) for item in obj for d in item[1]]
    clean = len(set(keys)) == len(keys) and len(set(dots)) == len(dots)
    assert (dotsets_from_json(obj) is not None) == clean


def ref_columns_store(obj: Any) -> DotMap:
    """The by-replica AWORSet store, built and checked one dot at a time."""
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    dm = DotMap()
    for replica, cols in obj.items():
        check_replica(replica)
        if not (isinstance(cols, list) and len(cols) == 2 and all(
                isinstance(c, list) for c in cols) and cols[0] and len(cols[0]) == len(cols[1])):
            raise ValueError("bad lists")
        for element, seq in zip(*cols, strict=True):
            check_element(element)
            dot = (replica, check_int(seq, low=1))
            if dot in dm.owner:
                raise ValueError("dot twice")
            dm.owner[dot] = element
            dm.entries.setdefault(element, set()).add(dot)
    return dm


column_runs = sometimes(
    st.lists(st.tuples(good_elements, st.integers(min_value=1, max_value=6)), min_size=1,
             max_size=6).map(lambda pairs: [[e for e, _ in pairs], [n for _, n in pairs]]),
    st.one_of(st.tuples(st.lists(sometimes(good_elements, bad_elements), max_size=3),
                        st.lists(sometimes(good_seqs, bad_seqs), max_size=3)).map(list),
              st.just([[], []]), st.lists(good_elements, max_size=2), st.none()),
)
column_stores = st.one_of(
    st.dictionaries(sometimes(good_replicas, st.sampled_from(["", "x" * 129, "é"])),
                    column_runs, max_size=4),
    stores)


@settings(max_examples=600)
@given(column_stores)
def test_aworset_columns_decoding_matches_the_reference(obj: Any) -> None:
    got = outcome(dotmap_from_columns, obj)
    ref = outcome(ref_columns_store, obj)
    assert got[0] == ref[0], (got, ref)
    if got[0] == "ok":
        assert {k: expand(v) for k, v in got[1].entries.items()} == ref[1].entries
        assert got[1].owner == ref[1].owner
    if type(obj) is dict:
        assert outcome(AWORSet._store_from_json, obj, 0)[0] == got[0]


# -- encoding -----------------------------------------------------------------------------------


@given(st.lists(st.one_of(st.integers(min_value=-5, max_value=5), st.text(max_size=3)),
                unique=True))
def test_sorted_items_orders_ints_before_strs(keys: list[Any]) -> None:
    entries = {k: i for i, k in enumerate(keys)}
    expected = [(k, entries[k]) for k in sorted(entries, key=element_order)]
    assert sorted_items(entries) == expected


def random_orset(cls: Any, rnd: random.Random, multi: bool) -> Any:
    x = cls()
    for _ in range(rnd.randrange(12)):
        element = rnd.choice([1, "1", 2, "b", -3, "a"])
        replica = rnd.choice("abc")
        if rnd.random() < 0.2:
            x.remove(replica, element)
        else:
            x.add(replica, element)
    if multi:  # a concurrent add on another replica leaves two dots under one element
        other = cls()
        for element in rnd.sample([1, "1", 2, "b"], 2):
            other.add("z", element)
        x.merge(other)
    return x


@given(st.randoms(use_true_random=False), st.booleans())
def test_orset_to_json_matches_the_reference(rnd: random.Random, multi: bool) -> None:
    # Entries may be compact and the encoding may hold tuples: compare expanded, as JSON.
    s = random_orset(AWORSet, rnd, multi)
    entries = {e: expand(v) for e, v in s._store.entries.items()}
    by_replica: dict[str, list[Any]] = {}
    for replica, seq, e in sorted((r, n, e) for e, dots in entries.items() for r, n in dots):
        by_replica.setdefault(replica, [[], []])
        by_replica[replica][0].append(e)
        by_replica[replica][1].append(seq)
    assert dumps(AWORSet._store_to_json(s._store)) == dumps(by_replica)
    back = AWORSet._store_from_json(orjson.loads(dumps(s.log_json()[0])), 0)
    assert back.owner == s._store.owner
    assert {e: expand(v) for e, v in back.entries.items()} == entries
    r = random_orset(RWORSet, rnd, multi)
    entries = {e: expand(v) for e, v in r._store.entries.items()}
    ref = [[e, [[a, b, entries[e][(a, b)]] for a, b in sorted(entries[e])]]
           for e in sorted(entries, key=element_order)]
    assert dumps(RWORSet._store_to_json(r._store)) == dumps(ref)


# -- causal context -----------------------------------------------------------------------------

many_dots = st.lists(st.tuples(good_replicas, st.integers(min_value=1, max_value=40)),
                     max_size=60)


def ctx_one_by_one(dots: list[tuple[str, int]]) -> CausalContext:
    ctx = CausalContext()
    for dot in dots:
        ctx.add(dot)
    return ctx


@given(many_dots, many_dots)
def test_bulk_context_operations_match_adding_dot_by_dot(d1: list[tuple[str, int]],
                                                         d2: list[tuple[str, int]]) -> None:
    ref = ctx_one_by_one(d1 + d2)
    a = CausalContext.of(d1)
    a.add_all(iter(d2))
    assert a == ref
    b = CausalContext.of(d1)
    b.merge(CausalContext.of(d2))
    assert b == ref
    assert CausalContext.from_json(ref.to_json()) == ref
    cloud = [list(d) for d in sorted(set(d1 + d2)) if d[1] in ref.cloud.get(d[0], ())]
    assert ref.to_json()[1] == cloud
    probe = [(r, s) for r in "abcdefg" for s in range(1, 45)]
    assert ref.seen(probe) == {d for d in probe if d in ref}
    assert ref.missing(probe) == [d for d in probe if d not in ref]


def test_a_long_run_moves_into_the_version_vector_whole() -> None:
    ctx = CausalContext.of([("a", s) for s in range(2, 1002)] + [("a", 1005)])
    assert ctx.vv == {} and len(ctx.cloud["a"]) == 1001
    ctx.add(("a", 1))
    assert ctx.vv == {"a": 1001} and ctx.cloud == {"a": {1005}}
    ctx.add_all([("a", 1002), ("a", 1003), ("a", 1004)])
    assert ctx.vv == {"a": 1005} and ctx.cloud == {}


def test_check_store_in_context_names_the_first_missing_dot() -> None:
    ctx = CausalContext.of([("a", 1), ("b", 3)])
    check_store_in_context({("a", 1), ("b", 3)}, ctx)
    try:
        check_store_in_context({("a", 1): 0, ("b", 2): 0, ("c", 1): 0}, ctx)
    except ValueError as exc:
        assert str(exc) == "live dot ('b', 2) is missing from the causal context"
    else:
        raise AssertionError("expected ValueError")


# -- joins --------------------------------------------------------------------------------------


def random_state(rnd: random.Random, universe: list[tuple[tuple[str, int], Any]],
                 kind: str) -> tuple[Any, CausalContext]:
    """A causal state over ``universe`` (dot -> key): a subset of live dots, a context over it."""
    live = [(d, k) for d, k in universe if rnd.random() < 0.4]
    seen = [d for d, _ in universe if rnd.random() < 0.5] + [d for d, _ in live]
    ctx = CausalContext.of(seen)
    store = DotMap()
    groups: dict[Any, list[tuple[str, int]]] = {}
    for d, k in live:
        groups.setdefault(k, []).append(d)
    for k, ds in groups.items():
        if kind == "set":
            store.set_entry(k, set(ds))
        elif kind == "fun":
            store.set_entry(k, {d: d[1] % 2 == 0 for d in ds})
        else:  # a nested map: dot -> inner key by seq parity
            inner = DotMap()
            for parity in (0, 1):
                part = {d for d in ds if d[1] % 2 == parity}
                if part:
                    inner.set_entry(parity, part)
            store.set_entry(k, inner)
    return store, ctx


@settings(max_examples=300)
@given(st.randoms(use_true_random=False), st.sampled_from(["set", "fun", "map"]))
def test_map_join_matches_the_reference(rnd: random.Random, kind: str) -> None:
    universe = [((r, s), rnd.choice(["k", "j", 1, 2, "x"])) for r in "abc" for s in range(1, 9)]
    s1, c1 = random_state(rnd, universe, kind)
    s2, c2 = random_state(rnd, universe, kind)
    new = store_join(store_copy(s1), c1, s2, c2)
    ref = ref_join(store_copy(s1), c1, store_copy(s2), c2)
    assert new == ref
    assert new.owner == ref.owner
    for key, nested in new.entries.items():
        if isinstance(nested, DotMap):
            assert nested.owner == ref.entries[key].owner
