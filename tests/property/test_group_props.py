"""Laws of delta groups with columns (counters, LWW registers): only a representation.

A group is described by plain data (per-key values and columns) and built afresh wherever a
test needs an independent copy. Keys and replica ids come from tiny alphabets so that
columns, per-key deltas and states collide; besides the counters, keys may hold a set of a
lesser (aworset) or greater (rworset) type tag than ``pncounter``, and LWW registers (whose
timestamps come from a tiny range, so ties by replica and by value are common), so that the
greater-tag rule is exercised on both sides.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync.codec import decode_group, dumps, encode_group, group_from_json, group_json
from crdtsync.group import Group
from crdtsync.replica import Replica
from crdtsync.types import AWORSet, GCounter, LWWRegister, PNCounter, RWORSet, join
from crdtsync.types.base import Crdt

KEYS = st.sampled_from(["a", "b", "c", "d"])
REPLICAS = st.sampled_from(["r1", "r2", "r3"])
COUNTS = st.one_of(st.integers(1, 6), st.just(2**63 - 1))
ENTRIES = st.dictionaries(REPLICAS, COUNTS, max_size=3)
COLUMN = st.dictionaries(KEYS, COUNTS, max_size=4)
KINDS = {"pncounter": PNCounter, "gcounter": GCounter, "lww": LWWRegister}
STAMPS = st.integers(0, 4)  # few: equal timestamps (ties by replica, then value) are common
LWW_VALUES = st.sampled_from([0, 1, "a", "b", [1], {"k": None}, 2**64 - 1])
LWW_COLUMN = st.dictionaries(KEYS, st.tuples(STAMPS, LWW_VALUES), max_size=4)

VALUES = st.one_of(  # never bottom: a bottom delta creates a key but adds nothing to log
    st.tuples(st.just("pn"), ENTRIES, ENTRIES).filter(lambda v: bool(v[1] or v[2])),
    st.tuples(st.just("g"), ENTRIES.filter(bool)),
    st.sampled_from([("aw",), ("rw",)]),
    st.tuples(st.just("lww"), STAMPS, REPLICAS, LWW_VALUES),
)
"""A per-key value: a counter, or one fixed set value (one dot, never minted twice)."""


def value(desc: tuple[Any, ...]) -> Crdt:
    if desc[0] == "pn":
        return PNCounter.from_json([dict(desc[1]), dict(desc[2])])
    if desc[0] == "g":
        return GCounter.from_json(dict(desc[1]))
    if desc[0] == "lww":
        return LWWRegister.from_json(list(desc[1:]))
    if desc[0] == "aw":
        return AWORSet().add("r9", "e")
    return RWORSet().add("r9", "e")


@st.composite
def group_descs(draw: st.DrawFn) -> tuple[dict[str, Any], list[Any]]:
    deltas = draw(st.dictionaries(KEYS, VALUES, max_size=3))
    cols = draw(st.lists(st.tuples(st.sampled_from(sorted(KINDS)), REPLICAS), unique=True,
                         max_size=4))
    columns = []
    for tag, rep in cols:
        if tag == "lww":
            entries = draw(LWW_COLUMN)
            columns.append((tag, rep, {k: t for k, (t, _) in entries.items()},
                            {k: v for k, (_, v) in entries.items()}))
        else:
            columns.append((tag, rep, draw(COLUMN), draw(COLUMN) if tag == "pncounter" else {}))
    return deltas, columns


def build(desc: tuple[dict[str, Any], list[Any]], *, reverse: bool = False) -> Group:
    """A fresh group of ``desc`` (``reverse``: every dict in the opposite insertion order)."""
    deltas, columns = desc

    def order(items: list[Any]) -> list[Any]:
        return items[::-1] if reverse else items

    counts = {(KINDS[tag], rep): (dict(order(list(up.items()))), dict(order(list(down.items()))))
              for tag, rep, up, down in order(columns)}
    return Group({k: value(v) for k, v in order(list(deltas.items()))}, counts)


STATES = st.dictionaries(KEYS, VALUES, max_size=4)


def state(desc: dict[str, Any]) -> dict[str, Crdt]:
    return {k: value(v) for k, v in desc.items()}


def join_into(data: dict[str, Crdt], key: str, delta: Crdt) -> Crdt | None:
    """Join ``delta`` into ``data[key]`` as a replica does (the greater type tag wins);
    return the part that was new (None: nothing)."""
    have = data.get(key)
    if have is not None and have.TYPE > delta.TYPE:
        return None
    if have is None or have.TYPE < delta.TYPE:
        have = data[key] = type(delta)()
    return have.join_novel(delta)  # type: ignore[no-any-return]


def join_greatest(a: Crdt | None, b: Crdt) -> Crdt:
    if a is None or a.TYPE < b.TYPE:
        return b.copy()
    return a if a.TYPE > b.TYPE else join(a, b)


def nonempty(counts: dict[Any, Any]) -> dict[Any, Any]:
    return {col: c for col, c in counts.items() if c[0] or c[1]}


@settings(max_examples=200, deadline=None)
@given(group_descs())
def test_codec_round_trips_groups_with_columns(desc: Any) -> None:
    g = build(desc)
    blob = encode_group(g)
    back = decode_group(blob)
    assert back == g and back.view() == g.view()
    assert nonempty(back.counts) == nonempty(g.counts)
    assert encode_group(back) == blob
    assert isinstance(orjson.loads(blob), dict) == bool(nonempty(g.counts))
    assert encode_group(build(desc, reverse=True)) == blob  # canonical: order does not matter
    logged = group_from_json(orjson.loads(dumps(group_json(g, log=True))))
    assert logged == g and nonempty(logged.counts) == nonempty(g.counts)
    assert encode_group(logged) == blob


@settings(max_examples=200, deadline=None)
@given(st.lists(group_descs(), min_size=2, max_size=4))
def test_join_all_folds_like_the_views(descs: list[Any]) -> None:
    groups = [build(d) for d in descs]
    blobs = [encode_group(g) for g in groups]
    want: dict[str, Crdt] = {}
    for g in groups:
        for key, v in g.view().items():
            want[key] = join_greatest(want.get(key), v)
    joined = Group.join_all(groups)
    assert joined.view() == want
    assert joined == Group.join_all([build(d) for d in reversed(descs)])  # commutative
    assert [encode_group(g) for g in groups] == blobs  # the inputs are unchanged
    assert [g.view() for g in groups] == [build(d).view() for d in descs]


def join_by_columns(data: dict[str, Crdt], g: Group) -> Group:
    """Join ``g`` into ``data`` as a replica does, columns by ``join_column``; return the
    novel part."""
    novel: dict[str, Crdt] = {}
    counts = {}
    for key, delta in g.deltas.items():
        fresh = join_into(data, key, delta)
        if fresh is not None:
            novel[key] = fresh
    for (kind, replica), (up, down) in g.counts.items():
        fresh_col, left = kind.join_column(data, replica, (up, down))
        assert len(left) == len(set(left))
        assert set(left) == {k for k in {**up, **down} if type(data.get(k)) is not kind}
        rest = kind.column_values(replica, ({k: up[k] for k in left if k in up},
                                            {k: down[k] for k in left if k in down}))
        for key, delta in rest.items():
            fresh = join_into(data, key, delta)
            if fresh is not None:
                novel[key] = fresh
        if fresh_col[0] or fresh_col[1]:
            counts[(kind, replica)] = fresh_col
    return Group(novel, counts)


@settings(max_examples=200, deadline=None)
@given(STATES, group_descs())
def test_join_column_equals_joining_the_folded_deltas(sdesc: Any, desc: Any) -> None:
    by_columns = state(sdesc)
    novel = join_by_columns(by_columns, build(desc))
    folded = state(sdesc)
    for key, delta in build(desc).view().items():
        join_into(folded, key, delta)
    assert by_columns == folded
    # RR: what was new joins into the old state to the same new state, either way
    old = state(sdesc)
    for key, delta in novel.view().items():
        join_into(old, key, delta)
    assert old == folded
    old = state(sdesc)
    join_by_columns(old, novel)
    assert old == folded
    # and nothing in it was already there
    again = join_by_columns(folded, build(desc))
    assert not again


@settings(max_examples=200, deadline=None)
@given(STATES, group_descs())
def test_replica_joins_columns_as_the_folded_group(sdesc: Any, desc: Any) -> None:
    replicas = [Replica.open(None, name=n) for n in ("cols", "fold", "rr")]
    for r in replicas:
        r.apply_remote(state(sdesc), origin="r1")
        r.commit()
    cols, fold, rr = replicas
    start = cols.log_seq + 1
    novel_cols = cols.apply_remote(build(desc), origin="r2")
    novel_fold = fold.apply_remote(dict(build(desc).view()), origin="r2")
    assert cols.keys() == fold.keys()
    assert {k: cols.state(k) for k in cols.keys()} == {k: fold.state(k) for k in fold.keys()}
    assert novel_cols.view() == novel_fold.view()
    rr.apply_remote(novel_cols, origin="r2")  # what was new brings the old state there too
    assert {k: rr.state(k) for k in rr.keys()} == {k: fold.state(k) for k in fold.keys()}
    for r in replicas:
        r.commit()
    logged = [decode_group(e.blob) for e in cols.store.log(start)]
    assert logged == ([novel_cols] if novel_cols else [])
    for r in replicas:
        r.close()
