"""Hypothesis strategies of hostile input: random bytes, mutated valid encodings, hostile
protocol messages and client requests. Used by test_fuzz.py (and the long fuzz run)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import strategies as st

from crdtsync.codec import encode
from crdtsync.group import Group
from crdtsync.sync import (
    PROTOCOL_VERSION,
    Accept,
    Ack,
    BucketDigests,
    Delta,
    Hello,
    KeyDigests,
    Nack,
    States,
    encode_message,
)
from crdtsync.types import GCounter, LWWRegister, PNCounter
from tests.strategies import SPECS, universes

__all__ = ["hostile_scalars", "mutated_json", "mutated_bytes", "groups", "messages",
           "frames", "requests", "client_frames", "PEERS"]

PEERS = ("b.00000001", "c.00000002", "mallory.3", "us.99999999")
"""Peer ids the fuzzed messages claim: members (b, c), an outsider, another 'us'."""

hostile_scalars = st.one_of(
    st.sampled_from([0, -1, 1, 2, 2**48, 2**48 + 1, 2**62, 2**63 - 1, 2**63, 2**64 - 1,
                     -(2**63), True, False, None, 1.5, -0.0, 1e300, "", "x" * 5000,
                     "mallory.1", "us.1", "a", [], {}, [[]], [None], {"": None}]),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.text(max_size=12),
    st.floats(allow_nan=False, allow_infinity=False),
)
"""Values that break assumptions: range edges, bools as ints, floats, long strings."""


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    return out


def _mutate(obj: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    value = copy.deepcopy(value)  # never alias a strategy's constant: it would change
    if not path:
        return value if action == "replace" else [obj] if action == "wrap" else obj
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "wrap":
        parent[last] = [parent[last]]
    elif action == "drop":
        del parent[last]
    elif action == "dup" and isinstance(parent, list):
        parent.insert(last, copy.deepcopy(parent[last]))
    elif action == "rename" and isinstance(parent, dict):
        parent[str(value)[:40]] = parent.pop(last)
    return obj


@st.composite
def mutated_json(draw: st.DrawFn, obj: Any, *, max_mutations: int = 3) -> Any:
    """``obj`` (parsed JSON) with 1..max_mutations random structural mutations."""
    obj = copy.deepcopy(obj)
    for _ in range(draw(st.integers(min_value=1, max_value=max_mutations))):
        path = draw(st.sampled_from(_paths(obj)))
        action = draw(st.sampled_from(["replace", "replace", "wrap", "drop", "dup", "rename"]))
        obj = _mutate(obj, path, action, draw(hostile_scalars))
    return obj


def mutated_bytes(source: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Valid encodings from ``source``, parsed, mutated and serialized again."""
    return source.flatmap(lambda b: mutated_json(orjson.loads(b))).map(orjson.dumps)


any_delta = st.sampled_from(SPECS).flatmap(
    lambda spec: universes(spec, max_steps=6).filter(lambda u: bool(u.deltas))
    .flatmap(lambda u: st.sampled_from(u.deltas)).map(lambda d: d[1]))
"""A delta some replica of a random history issued (replica ids 'a'..'e')."""

_keynames = st.sampled_from(["k0", "k1", "k2", "post:1"])
_totals = st.integers(min_value=1, max_value=2**63 - 1) | st.integers(min_value=1, max_value=9)
_column = st.tuples(st.dictionaries(_keynames, _totals, max_size=3),
                    st.dictionaries(_keynames, _totals, max_size=2))
_lww_entries = st.dictionaries(_keynames, st.tuples(
    st.integers(min_value=0, max_value=2**63 - 1) | st.integers(min_value=0, max_value=3),
    st.none() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=4)
    | st.lists(st.integers(-9, 9), max_size=2)), max_size=3)


def _column_of(kind: type, col: Any, entries: dict[str, Any]) -> Any:
    if kind is LWWRegister:
        return ({k: t for k, (t, _) in entries.items()}, {k: v for k, (_, v) in entries.items()})
    return (col[0], col[1] if kind is PNCounter else {})


_columns = st.dictionaries(
    st.tuples(st.sampled_from([PNCounter, GCounter, LWWRegister]),
              st.sampled_from(("a", *PEERS))),
    st.tuples(_column, _lww_entries), max_size=2).map(
    lambda cols: {k: _column_of(k[0], col, lww) for k, (col, lww) in cols.items()})

groups = st.one_of(
    st.dictionaries(_keynames, any_delta, max_size=3),
    st.builds(Group, st.dictionaries(_keynames, any_delta, max_size=2), _columns))
"""Delta groups over a few keys (types may clash with what the victim holds), some with
counter and LWW columns (replica ids members, outsiders or the victim's own)."""

encodings = any_delta.map(encode)

_seq = st.integers(min_value=0, max_value=60)
_hex16 = st.text(alphabet="0123456789abcdef", min_size=16, max_size=16)
_pow2 = st.sampled_from([1, 2, 4, 8])


@st.composite
def _delta(draw: st.DrawFn) -> Delta:
    start = draw(st.sampled_from([1, 1, 1, 1, 2]) | st.integers(min_value=1, max_value=30))
    return Delta(start, start + draw(st.integers(min_value=0, max_value=10)), draw(groups))


@st.composite
def _keys(draw: st.DrawFn) -> KeyDigests:
    parts = draw(st.integers(min_value=1, max_value=3))
    digests = draw(st.dictionaries(st.sampled_from(["k0", "k1", "zz"]), _hex16, max_size=3))
    return KeyDigests(draw(_seq), draw(st.integers(0, parts - 1)), parts,
                      tuple(draw(st.sets(st.integers(0, 7), max_size=3))),
                      tuple(sorted(digests.items())))


@st.composite
def _states(draw: st.DrawFn) -> States:
    parts = draw(st.integers(min_value=1, max_value=3))
    return States(draw(_seq), draw(_seq), draw(st.integers(0, parts - 1)), parts, draw(groups))


hellos = st.builds(Hello, version=st.sampled_from([PROTOCOL_VERSION] * 3 + [0, 1, 3]),
                   cluster=st.sampled_from(["fuzz", "fuzz", "fuzz", "other"]),
                   replica=st.sampled_from(PEERS), follower=st.booleans(), last_seq=_seq)

messages = st.one_of(
    hellos,
    st.builds(Accept, have=_seq), st.builds(Ack, upto=_seq), st.builds(Nack, have=_seq),
    _delta(), _delta(), _delta(),
    st.builds(BucketDigests, cid=_seq, upto=_seq,
              hashes=_pow2.flatmap(lambda n: st.lists(_hex16, min_size=n, max_size=n))
              .map(tuple)),
    _keys(), _states(),
)
"""Well-formed protocol messages with hostile content (intervals, marks, groups, cids)."""

fresh_deltas = st.builds(lambda g, end: Delta(1, end, g),
                         st.dictionaries(st.sampled_from(["k0", "k1", "k2", "post:1"]),
                                         any_delta, min_size=1, max_size=3),
                         st.integers(min_value=1, max_value=3))
"""Intervals a fresh peer link applies at once (they start at 1), with non-empty groups."""

frames = st.one_of(
    st.binary(max_size=300),
    messages.map(encode_message),
    mutated_bytes(messages.map(encode_message)),
    fresh_deltas.map(encode_message),
    fresh_deltas.map(encode_message),
    mutated_bytes(fresh_deltas.map(encode_message)),
)
"""What a peer may put in one frame: noise, valid messages, near-valid messages."""

# -- client API ---------------------------------------------------------------------------

OPS = ["counter.increment", "counter.decrement", "gcounter.increment", "set.add",
       "set.remove", "rwset.add", "rwset.remove", "register.assign", "mvregister.assign",
       "flag.enable", "flag.disable", "map.counter.increment", "map.counter.decrement",
       "map.set.add", "map.set.remove", "map.register.assign", "map.flag.enable",
       "map.flag.disable", "map.remove", "get", "keys", "clock.now", "batch", "watch",
       "nope", "", "GET"]

_field_values = {
    "id": st.one_of(st.integers(min_value=0, max_value=1000), hostile_scalars),
    "key": st.one_of(st.sampled_from(["c", "s", "m", "r", "post:1", "", "k" * 1025]),
                     hostile_scalars),
    "by": st.one_of(st.integers(min_value=-3, max_value=5), hostile_scalars),
    "element": st.one_of(st.sampled_from([1, "1", "x", "e" * 4097]), hostile_scalars),
    "value": st.one_of(hostile_scalars, st.recursive(
        hostile_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(
            st.text(max_size=3), c, max_size=3), max_leaves=8)),
    "field": st.one_of(st.sampled_from(["title", ["a", "b"], [], ["x"] * 20]),
                       hostile_scalars, st.lists(hostile_scalars, max_size=4)),
    "prefix": st.one_of(st.sampled_from(["", "p", "post:"]), hostile_scalars),
    "wait": st.one_of(st.sampled_from(["local", "majority", "all", "most"]), hostile_scalars),
    "timeout_ms": st.one_of(st.sampled_from([1, 5000, 0, 3_600_001]), hostile_scalars),
}


_FIELDS_OF = {
    "counter": ["key", "by"], "gcounter": ["key", "by"], "set": ["key", "element"],
    "rwset": ["key", "element"], "register": ["key", "value"], "mvregister": ["key", "value"],
    "flag": ["key"], "map.counter": ["key", "field", "by"], "map.set": ["key", "field", "element"],
    "map.register": ["key", "field", "value"], "map.flag": ["key", "field"],
    "map": ["key", "field"], "get": ["key"], "keys": ["prefix"], "watch": ["prefix"],
    "clock": [], "batch": [],
}
_GOOD = {
    "key": st.sampled_from(["c", "s", "m", "r", "post:1", "new", "n2"]),
    "by": st.integers(min_value=1, max_value=5),
    "element": st.sampled_from([1, "1", "x", -7, "bob"]),
    "value": st.sampled_from([None, 1, "v", [1, {"a": True}], 2.5]),
    "field": st.sampled_from(["title", "views", ["meta", "lang"], 3]),
    "prefix": st.sampled_from(["", "p", "post:"]),
    "wait": st.sampled_from(["local", "majority", "all"]),
    "timeout_ms": st.sampled_from([1000, 5000]),
}


@st.composite
def plausible(draw: st.DrawFn, *, depth: int = 0) -> dict[str, Any]:
    """A request that is mostly valid: the op's own fields, one of them perhaps hostile."""
    op = draw(st.sampled_from(OPS[:-3]))
    req: dict[str, Any] = {"op": op} if depth else {"id": draw(st.integers(0, 1000)), "op": op}
    names = _FIELDS_OF[op.rsplit(".", 1)[0]]
    for name in names:
        req[name] = draw(_GOOD[name])
    if not depth and names and draw(st.booleans()):
        req[draw(st.sampled_from(["wait", "timeout_ms"]))] = draw(
            _GOOD["wait"] | _GOOD["timeout_ms"])
    if op == "batch" and not depth:
        req["ops"] = draw(st.lists(plausible(depth=1), min_size=1, max_size=4))
    if names and draw(st.integers(0, 3)) == 0:
        req[draw(st.sampled_from(names))] = draw(_field_values[draw(st.sampled_from(names))])
    return req


@st.composite
def requests(draw: st.DrawFn, *, depth: int = 0) -> dict[str, Any]:
    """A client request: an op (mostly real) and fields (mostly plausible, some hostile)."""
    if draw(st.integers(0, 2)):
        return draw(plausible(depth=depth))
    req: dict[str, Any] = {}
    if depth == 0 or draw(st.booleans()):
        req["id"] = draw(_field_values["id"])
    if draw(st.integers(0, 9)):
        req["op"] = draw(st.sampled_from(OPS) | hostile_scalars)
    for name in draw(st.sets(st.sampled_from(sorted(_field_values.keys() - {"id"})),
                             max_size=5)):
        req[name] = draw(_field_values[name])
    if req.get("op") == "batch" and depth == 0:
        req["ops"] = draw(st.lists(requests(depth=1), max_size=4) | hostile_scalars)
    return req


client_frames = st.one_of(
    requests().map(lambda r: orjson.dumps(r).decode()),
    requests().map(lambda r: orjson.dumps(r).decode()),
    requests().map(lambda r: orjson.dumps(r).decode()).flatmap(
        lambda t: mutated_json(orjson.loads(t)).map(lambda o: orjson.dumps(o).decode())),
    st.text(max_size=100),
    st.binary(max_size=50),
)
"""What a client may put in one frame."""
