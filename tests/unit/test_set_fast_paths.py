"""The OR-sets' fast paths against their references.

- the replica's set fast path (``Replica._set_op``) and the commit's delta
  (:meth:`AWORSet.delta_for`): each commit logs the join of the writes' deltas, as the
  sets' own mutators make them;
- the delta log's unsorted form (``log_json``): it decodes to the value it was made from;
- :meth:`AWORSet.join_all` (one pass) equals merging the values one by one;
- :meth:`CausalContext.seen` (replica pre-check), :meth:`CausalContext.of_parts` and
  :meth:`CausalContext.log_json` against adding or checking dot by dot.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync.causal import CausalContext
from crdtsync.codec import FORMAT_VERSION, decode, decode_group, encode
from crdtsync.errors import LocalError, TypeMismatchError
from crdtsync.replica import Committed, Replica, _log_blob
from crdtsync.types import AWORSet, Crdt, RWORSet, join

ELEMENTS = ["x", "y", "z", 1, 2, "é"]  # an int and a non-ASCII str take the checked path

OPS = st.lists(st.one_of(
    st.tuples(st.sampled_from(["add", "remove", "rwadd", "rwremove", "batch"]),
              st.sampled_from(ELEMENTS)),
    st.tuples(st.just("commit"), st.just("")),
    st.tuples(st.just("peer"), st.sampled_from(ELEMENTS)),
), max_size=60)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_set_fast_path_commits_the_join_of_the_reference_deltas(ops: list[tuple[str, Any]]) -> None:
    """Every committed local group holds, per set, the join of the deltas the sets' own
    mutators return for the same writes (same replica, so the same dots); the log blob
    decodes to it; and the replica's sets equal reference sets given the same writes."""
    a = Replica.open(None, name="a")
    rid = a.replica_id
    logged: list[Committed] = []
    a.on_commit.append(logged.extend)
    ref = {"s": AWORSet(), "r": RWORSet()}
    pending: dict[str, list[Crdt]] = {"s": [], "r": []}
    peer_s, peer_r = AWORSet(), RWORSet()

    def check_commit() -> None:
        logged.clear()
        a.commit()
        local = [e for e in logged if e.origin is None and e.group]
        want = {k: v for k, v in pending.items() if v}
        if not want:
            assert not local
            return
        (entry,) = local
        assert set(entry.group) == set(want)
        blob = {e.seq: e.blob for e in a.store.log()}[entry.seq]
        for key, deltas in want.items():
            expected = deltas[0].copy()
            for d in deltas[1:]:
                expected.merge(d)
            assert encode(entry.group[key]) == encode(expected), key
        assert {k: encode(v) for k, v in decode_group(blob).items()} == \
            {k: encode(v) for k, v in entry.group.items()}
        for v in pending.values():
            v.clear()

    writes = {"add": ("s", "add"), "remove": ("s", "remove"),  # op -> (key, method)
              "rwadd": ("r", "add"), "rwremove": ("r", "remove")}
    handles = {"s": a.set, "r": a.rwset}
    for op, element in ops:
        if op in writes:
            key, method = writes[op]
            getattr(handles[key](key), method)(element)
            pending[key].append(getattr(ref[key], method)(rid, element))
        elif op == "batch":  # the general path, between fast-path writes of one commit
            with a.batch() as b:
                b.set("s").add(element)
                b.rwset("r").remove(element)
            pending["s"].append(ref["s"].add(rid, element))
            pending["r"].append(ref["r"].remove(rid, element))
        elif op == "commit":
            check_commit()
        else:
            group = {"s": peer_s.add("peer", element), "r": peer_r.remove("peer", element)}
            a.apply_remote(group, "peer")
            for key, delta in group.items():
                ref[key].merge(delta)
    check_commit()
    for key, x in ref.items():
        state = a.state(key)
        if state is not None:
            assert encode(state) == encode(x), key


def test_set_writes_take_the_checked_path_when_they_must() -> None:
    a = Replica.open(None, name="a")
    a.counter("c").increment()
    with pytest.raises(TypeMismatchError):
        a.set("c").add("x")
    h = a.set("s")
    h.add("x")
    with pytest.raises(ValueError):
        h.add("\ud800")  # a lone surrogate: not UTF-8
    with pytest.raises(TypeError):
        h.add(1.5)  # type: ignore[arg-type]
    h.add("y")
    assert a.get("s") == frozenset({"x", "y"})
    a.close()
    with pytest.raises(LocalError):
        h.add("z")
    f = Replica.open(None, name="f", follower=True)
    with pytest.raises(LocalError):
        f.set("s").add("x")


def test_a_remote_type_that_wins_turns_the_set_handle_away() -> None:
    a = Replica.open(None, name="a")
    h = a.set("k")
    h.add("x")  # the key is an AWORSet
    a.apply_remote({"k": RWORSet().add("p", "y")}, "p")  # "rworset" > "aworset": replaces it
    with pytest.raises(TypeMismatchError):
        h.add("z")
    a.rwset("k").add("z")
    a.commit()
    assert a.get("k") == frozenset({"y", "z"})


# -- the log's unsorted form --------------------------------------------------------------------


def random_set(cls: Any, rnd: random.Random) -> Any:
    """A set written by three replicas, joined in a random order (some multi-dot entries)."""
    parts = [cls() for _ in range(3)]
    for _ in range(rnd.randrange(0, 30)):
        i = rnd.randrange(3)
        e = rnd.choice(["a", "b", "c", 1, 2, -3, "zz"])
        if rnd.random() < 0.7:
            parts[i].add("abc"[i], e)
        else:
            parts[i].remove("abc"[i], e)
        if rnd.random() < 0.2:
            parts[rnd.randrange(3)].merge(parts[i])
    out = parts[0]
    for p in parts[1:]:
        if rnd.random() < 0.7:
            out = join(out, p)
    return out


@settings(max_examples=300)
@given(st.randoms(use_true_random=False), st.sampled_from([AWORSet, RWORSet]))
def test_log_json_decodes_to_the_same_value(rnd: random.Random, cls: Any) -> None:
    x = random_set(cls, rnd)
    blob = orjson.dumps((x.TYPE, FORMAT_VERSION, x.log_json()))
    back = decode(blob)
    assert back == x
    assert encode(back) == encode(x)
    assert len(blob) == len(encode(x))  # the same JSON, in another order
    group = {"k": x, "c": random_set(cls, rnd)}
    assert {k: encode(v) for k, v in decode_group(_log_blob(group)).items()} == \
        {k: encode(v) for k, v in group.items()}


# -- join_all -----------------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.randoms(use_true_random=False), st.sampled_from([AWORSet, RWORSet]))
def test_join_all_matches_merging_one_by_one(rnd: random.Random, cls: Any) -> None:
    """Deltas and states of several replicas (some seen by others), joined at once."""
    reps = [cls() for _ in range(3)]
    values: list[Any] = []
    for _ in range(rnd.randrange(2, 25)):
        i = rnd.randrange(3)
        e = rnd.choice(["a", "b", "c", 1, 2])
        delta = reps[i].add("abc"[i], e) if rnd.random() < 0.6 else reps[i].remove("abc"[i], e)
        values.append(delta)
        if rnd.random() < 0.2:
            values.append(reps[i].copy())  # a state: its context is larger than its store
        if rnd.random() < 0.2:
            reps[rnd.randrange(3)].merge(rnd.choice(values))
    if len(values) < 2:
        values.append(cls())
    rnd.shuffle(values)
    before = [encode(v) for v in values]
    want = values[0].copy()
    for v in values[1:]:
        want.merge(v)
    got = cls.join_all(values)
    assert got == want
    assert encode(got) == encode(want)
    assert got._store.owner == want._store.owner
    assert [encode(v) for v in values] == before  # the values are left unchanged


# -- contexts -----------------------------------------------------------------------------------

dots = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(1, 12)), max_size=30)


@settings(max_examples=400)
@given(dots, dots, dots)
def test_context_helpers_match_dot_by_dot(d1: list[Any], d2: list[Any], d3: list[Any]) -> None:
    ctx = CausalContext()
    for d in d1:
        ctx.add(d)
    assert ctx.seen(d2) == {d for d in d2 if d in ctx}
    assert ctx.seen(iter(d2)) == {d for d in d2 if d in ctx}
    assert ctx.seen(dict.fromkeys(d2)) == {d for d in d2 if d in ctx}
    both = CausalContext()
    for d in [*d2, *d3]:
        both.add(d)
    assert CausalContext.of_parts(d2, set(d3)) == both
    assert CausalContext.of_parts({d: 0 for d in d2}.keys(), d3) == both
    back = CausalContext.from_json(orjson.loads(orjson.dumps(both.log_json())))
    assert back == both
