"""Decoding untrusted input: every malformed input raises DecodeError, nothing else."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdtsync.causal import CausalContext
from crdtsync.codec import (
    FORMAT_VERSION,
    MAX_VALUE_DEPTH,
    decode,
    decode_group,
    dumps,
    encode,
    encode_group,
)
from crdtsync.errors import CrdtSyncError, DecodeError
from crdtsync.types import (
    AWORSet,
    GCounter,
    LWWRegister,
    MVRegister,
    ORMap,
    PNCounter,
    RWORSet,
    join,
)
from crdtsync.types.base import MAX_DEPTH
from tests.strategies import SPECS, reachable_states

CTX_A1 = [{"a": 1}, []]


def env(tag: str, state: Any, version: Any = FORMAT_VERSION) -> bytes:
    return orjson.dumps([tag, version, state])


def assert_rejected(data: Any, **kwargs: Any) -> None:
    with pytest.raises(DecodeError):
        decode(data, **kwargs)


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(DecodeError, ValueError)
    assert issubclass(DecodeError, CrdtSyncError)


@pytest.mark.parametrize("data", [b"", b"{", b"\xff\xfe", b"nul", b"[1,]", b"NaN", "[",
                                  b'["gcounter",1,{}] x', b"1e400"])
def test_not_json(data: Any) -> None:
    assert_rejected(data)


@pytest.mark.parametrize("data", [123, None, ["gcounter", 1, {}], {"a": 1}, 1.5])
def test_not_bytes(data: Any) -> None:
    assert_rejected(data)


def test_bytes_like_inputs_are_accepted() -> None:
    c = GCounter()
    c.increment("a", 3)
    raw = encode(c)
    for data in [raw, bytearray(raw), memoryview(raw), raw.decode()]:
        assert decode(data) == c


@pytest.mark.parametrize("obj", [
    None, 1, "gcounter", {}, [], ["gcounter"], ["gcounter", 1], ["gcounter", 1, {}, 1],
    {"type": "gcounter", "version": 1, "state": {}},
])
def test_wrong_envelope(obj: Any) -> None:
    assert_rejected(orjson.dumps(obj))


@pytest.mark.parametrize("tag", ["nope", "GCounter", "GCOUNTER", "", 1, None, ["gcounter"],
                                 {"t": 1}, "gcounter "])
def test_unknown_tag(tag: Any) -> None:
    assert_rejected(orjson.dumps([tag, FORMAT_VERSION, {}]))


@pytest.mark.parametrize("version", [0, 2, -1, "1", True, 1.0, None, [1], 1.5])
def test_wrong_version(version: Any) -> None:
    assert_rejected(env("gcounter", {}, version))


@pytest.mark.parametrize("state", [
    [], None, {"a": True}, {"a": 1.0}, {"a": "1"}, {"a": -1}, {"a": 0}, {"": 1},
    {"r" * 129: 1}, {"a": 2**63}, {"a": None}, {"a": [1]},
])
def test_bad_gcounter(state: Any) -> None:
    assert_rejected(env("gcounter", state))


@pytest.mark.parametrize("state", [
    {}, [{}], [{}, {}, {}], [{"a": -1}, {}], [{}, {"a": True}], [{"a": 1}, None],
])
def test_bad_pncounter(state: Any) -> None:
    assert_rejected(env("pncounter", state))


@pytest.mark.parametrize("ctx", [
    None, {}, [], [{}], [{"a": 1}, [], []], [[], []], [{"a": 0}, []], [{"a": -1}, []],
    [{"a": True}, []], [{"a": 1.0}, []], [{"": 1}, []], [{}, [["a", 0]]], [{}, [["a", 1.0]]],
    [{}, [["a", True]]], [{}, [["a"]]], [{}, [[1, 1]]], [{}, [["a", -3]]],
    # the delta log's cloud by replica, {replica: [seq, ...]}
    [{}, {"a": []}], [{}, {"a": 1}], [{}, {"a": [0]}], [{}, {"a": [True]}], [{}, {"a": [1.0]}],
    [{}, {"a": [2**63]}], [{}, {"": [1]}], [{}, {"a": [1, "2"]}],
])
def test_bad_causal_context(ctx: Any) -> None:
    assert_rejected(env("aworset", [[], ctx]))
    assert_rejected(env("ewflag", [[], ctx]))


def test_the_logs_cloud_by_replica_reads_as_the_pairs() -> None:
    pairs = [{"a": 2}, [["a", 5], ["b", 1], ["a", 4], ["b", 9]]]
    by_replica = [{"a": 2}, {"a": [5, 4, 2], "b": [1, 9, 9]}]  # seqs at or below vv: no-ops
    assert CausalContext.from_json(by_replica) == CausalContext.from_json(pairs)
    assert CausalContext.from_json([{}, {"a": [1, 2]}]).vv == {"a": 2}  # a run joins the vv
    ctx = CausalContext.from_json(pairs)
    assert CausalContext.from_json(orjson.loads(orjson.dumps(ctx.log_json()))) == ctx
    assert ctx.log_json()[0] == {"a": 2, "b": 1}  # b:1 is contiguous: in the vv
    assert {r: sorted(seqs) for r, seqs in ctx.log_json()[1].items()} == {"a": [4, 5], "b": [9]}


@pytest.mark.parametrize("store", [
    [["x", [["a", 0]]]],                     # dot seq 0
    [["x", [["a", 1.0]]]],                   # float seq
    [["x", [["a", True]]]],                  # bool seq
    [["x", [["a", -1]]]],                    # negative seq
    [["x", [["", 1]]]],                      # empty replica id
    [["x", [["a", 1], ["a", 1]]]],           # duplicate dot in one element
    [["x", [["a", 1]]], ["y", [["a", 1]]]],  # one dot held by two elements
    [["x", [["a", 1]]], ["x", [["a", 1]]]],  # duplicate element
    [["x", []]],                             # empty entry
    [[1.5, [["a", 1]]]],                     # float element
    [[True, [["a", 1]]]],                    # bool element
    [[None, [["a", 1]]]],                    # null element
    [[[1], [["a", 1]]]],                     # list element
    [[2**63, [["a", 1]]]],                   # element out of the 64-bit range
    [["x" * 4097, [["a", 1]]]],              # oversized element
    [["x"]],                                 # missing dots
    [["x", [["a", 1]], 3]],                  # extra field
    [[]],                                    # empty entry list
    {"x": [["a", 1]]},                       # object instead of list
])
def test_bad_aworset_store(store: Any) -> None:
    assert_rejected(env("aworset", [store, [{"a": 1}, []]]))


def test_live_dot_missing_from_context() -> None:
    assert_rejected(env("aworset", [[["x", [["a", 2]]]], CTX_A1]))
    assert_rejected(env("aworset", [[["x", [["b", 1]]]], CTX_A1]))
    assert_rejected(env("ewflag", [[["a", 2]], CTX_A1]))
    assert_rejected(env("mvregister", [[["a", 2, "v"]], CTX_A1]))
    assert_rejected(env("rworset", [[["x", [["a", 2, True]]]], CTX_A1]))
    assert_rejected(env("ormap", [[["k", "ewflag", [["a", 2]]]], CTX_A1]))
    assert_rejected(env("ormap", [[["k", "ormap", [["j", "ewflag", [["a", 2]]]]]], CTX_A1]))


@pytest.mark.parametrize(("tag", "store"), [
    ("rworset", [["x", [["a", 1, 1]]]]),                 # int where bool
    ("rworset", [["x", [["a", 1, None]]]]),
    ("rworset", [["x", [["a", 1, True], ["a", 1, False]]]]),  # duplicate dot
    ("rworset", [["x", [["a", 1]]]]),
    ("mvregister", [["a", 1, "v"], ["a", 1, "w"]]),      # duplicate dot
    ("mvregister", [["a", 1]]),
    ("mvregister", [["a", 0, "v"]]),
    ("mvregister", {"a": "v"}),
    ("ewflag", [["a", 1], ["a", 1]]),                    # duplicate dot
    ("ewflag", [["a", 1.0]]),
    ("ormap", [["k", "nope", [["a", 1]]]]),              # unknown nested tag
    ("ormap", [["k", ["ewflag"], [["a", 1]]]]),
    ("ormap", [["k", "ewflag"]]),
    ("ormap", [["k", "ewflag", [["a", 1]]], ["k", "ewflag", [["a", 2]]]]),  # duplicate key
    ("ormap", [["k", "ewflag", [["a", 1]]], ["j", "ewflag", [["a", 1]]]]),  # shared dot
    ("ormap", [["k", "ewflag", []]]),                    # empty entry
    ("ormap", [[1.5, "ewflag", [["a", 1]]]]),            # float key
    ("ormap", [[False, "ewflag", [["a", 1]]]]),          # bool key
    ("ormap", [["k", "pncounter", [["a", 1, -1, 0]]]]),  # negative count
    ("ormap", [["k", "pncounter", [["a", 1, 1.0, 0]]]]),
    ("ormap", [["k", "pncounter", [["a", 1, True, 0]]]]),
    ("ormap", [["k", "gcounter", [["a", 1, 1, 1]]]]),    # gcounter with decrements
    ("ormap", [["k", "lww", [["a", 1, -1, "a", "v"]]]]),  # negative timestamp
    ("ormap", [["k", "lww", [["a", 1, 1, "", "v"]]]]),    # empty writer
    ("ormap", [["k", "lww", [["a", 1, 1, "a"]]]]),
    ("ormap", [["k", "lww", [["a", 1, 1, "a", "v"], ["a", 1, 2, "a", "w"]]]]),
])
def test_bad_nested_and_dotfun_stores(tag: str, store: Any) -> None:
    assert_rejected(env(tag, [store, [{"a": 2}, []]]))


@pytest.mark.parametrize("state", [
    [], [1, "a"], [1, "a", 1, 1], [-1, "a", 1], [1.0, "a", 1], [True, "a", 1], [1, "", 1],
    [1, 1, 1], [2**63, "a", 1], [1, "r" * 129, 1], {"ts": 1}, "x",
])
def test_bad_lww(state: Any) -> None:
    assert_rejected(env("lww", state))


def _nested_value(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_register_values_nested_too_deeply() -> None:
    ok = _nested_value(MAX_VALUE_DEPTH)
    assert decode(env("lww", [1, "a", ok])).value == ok
    assert_rejected(env("lww", [1, "a", _nested_value(MAX_VALUE_DEPTH + 1)]))
    assert_rejected(env("mvregister", [[["a", 1, _nested_value(MAX_VALUE_DEPTH + 1)]], CTX_A1]))


def test_deeply_nested_json_is_rejected() -> None:
    for depth in [100, 1_000, 100_000]:
        assert_rejected(b"[" * depth + b"]" * depth)
        assert_rejected(b'["lww",1,[1,"a",' + b"[" * depth + b"]" * depth + b"]]")
        assert_rejected(b'["lww",1,[1,"a",' + b'{"a":' * depth + b"1" + b"}" * depth + b"]]")


def _nested_map_json(maps: int) -> list[Any]:
    """The JSON state of ``maps`` ORMaps nested in each other, a flag at the bottom."""
    store: Any = [["leaf", "ewflag", [["a", 1]]]]
    for _ in range(maps - 1):
        store = [["k", "ormap", store]]
    return [store, CTX_A1]


def test_maps_nested_beyond_max_depth_are_rejected() -> None:
    ok = decode(env("ormap", _nested_map_json(MAX_DEPTH)))
    assert isinstance(ok, ORMap)
    assert encode(ok) == env("ormap", _nested_map_json(MAX_DEPTH))
    assert_rejected(env("ormap", _nested_map_json(MAX_DEPTH + 1)))
    assert_rejected(env("ormap", _nested_map_json(60)))


def test_oversized_input() -> None:
    s = AWORSet()
    for i in range(100):
        s.add("a", i)
    raw = encode(s)
    assert decode(raw, max_bytes=len(raw)) == s
    assert_rejected(raw, max_bytes=len(raw) - 1)
    assert_rejected(b" " * 2000 + raw, max_bytes=1000)


def test_1_and_string_1_stay_distinct() -> None:
    s = AWORSet()
    s.add("a", 1)
    s.add("a", "1")
    m = ORMap()
    m.update("a", 1, PNCounter, lambda c: c.increment("a", 1))
    m.update("a", "1", PNCounter, lambda c: c.increment("a", 2))
    lww_int, lww_str = LWWRegister(), LWWRegister()
    lww_int.assign("a", 1, 1)
    lww_str.assign("a", "1", 1)
    mv = MVRegister()
    mv.assign("a", 1)
    other = MVRegister()
    other.assign("b", "1")
    mv.merge(other)
    for x in [s, m, lww_int, lww_str, mv]:
        y = decode(encode(x))
        assert y == x and y.value == x.value
    assert decode(encode(s)).value == frozenset({1, "1"})
    assert decode(encode(m)).value == {1: 1, "1": 2}
    assert decode(encode(lww_int)).value == 1
    assert decode(encode(lww_str)).value == "1"
    assert set(decode(encode(mv)).value) == {1, "1"}
    assert decode(encode(lww_int)) != decode(encode(lww_str))


def test_non_canonical_context_is_normalised() -> None:
    # cloud dots at or just above the version vector fold into it
    x = decode(env("ewflag", [[["a", 3]], [{"a": 1}, [["a", 1], ["a", 2], ["a", 3], ["b", 2]]]]))
    assert x.context.vv == {"a": 3}
    assert x.context.cloud == {"b": {2}}
    assert decode(encode(x)) == x


def test_encoding_is_compact_sorted_json() -> None:
    c = GCounter()
    c.increment("b", 2)
    c.increment("a", 1)
    assert encode(c) == b'["gcounter",1,{"a":1,"b":2}]'
    assert dumps({"b": 1, "a": [1, "1"]}) == b'{"a":[1,"1"],"b":1}'


def test_group_round_trip_and_duplicate_keys() -> None:
    c, s = PNCounter(), RWORSet()
    c.decrement("a", 2)
    s.add("a", "x")
    raw = encode_group({"k2": s, "k1": c})
    assert decode_group(raw) == {"k1": c, "k2": s}
    assert raw.index(b"k1") < raw.index(b"k2")
    one = orjson.loads(raw)[0]
    with pytest.raises(DecodeError):
        decode_group(orjson.dumps([one, one]))
    for bad in [b"{}", b"[[1, 2, 3]]", b'[["", ["gcounter", 1, {}]]]', b'[["k", 1]]']:
        with pytest.raises(DecodeError):
            decode_group(bad)


# -- fuzzing: mutated valid encodings decode canonically or raise DecodeError --------------


_weird = st.sampled_from([
    None, True, False, 0, 1, -1, 2, 1.0, 1.5, "", "a", "1", "x", [], {}, [["a", 1]],
    2**63, 2**64 - 1, -(2**63), "ormap", "ewflag", "pncounter", "lww", [[], [{}, []]],
    {"a": 1}, ["a", 0], ["a", 1],
])


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, list):
        for i, child in enumerate(node):
            out += _paths(child, (*path, i))
    elif isinstance(node, dict):
        for k, child in node.items():
            out += _paths(child, (*path, k))
    return out


def _replace(node: Any, path: tuple[Any, ...], fn: Any) -> Any:
    if not path:
        return fn(node)
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        node = list(node)
    else:
        node = dict(node)
    node[head] = _replace(node[head], rest, fn)
    return node


@st.composite
def structural_mutations(draw: st.DrawFn, raw: bytes) -> bytes:
    tree = orjson.loads(raw)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(tree)
        inside = [p for p in paths if len(p) >= 2]  # within the state, not the envelope
        path = draw(st.sampled_from(inside if inside and draw(st.booleans()) else paths))
        action = draw(st.sampled_from(["replace", "drop", "dup", "swap_key"]))
        if action == "replace":
            new = draw(_weird)
            tree = _replace(tree, path, lambda _old, new=new: new)
        elif action in ("drop", "dup"):
            def edit(node: Any, action: str = action) -> Any:
                if isinstance(node, list) and node:
                    i = draw(st.integers(min_value=0, max_value=len(node) - 1))
                    return node[:i] + node[i + 1:] if action == "drop" else node + [node[i]]
                if isinstance(node, dict) and node:
                    k = draw(st.sampled_from(sorted(node)))
                    return {kk: v for kk, v in node.items() if kk != k}
                return node
            tree = _replace(tree, path, edit)
        else:
            def rekey(node: Any) -> Any:
                if isinstance(node, dict) and node:
                    k = draw(st.sampled_from(sorted(node)))
                    return {(draw(st.sampled_from(["a", "b", "", "zz"])) if kk == k else kk): v
                            for kk, v in node.items()}
                return node
            tree = _replace(tree, path, rekey)
    return orjson.dumps(tree)


@st.composite
def byte_mutations(draw: st.DrawFn, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        i = draw(st.integers(min_value=0, max_value=len(data)))
        action = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
        if action == "truncate":
            del data[i:]
        elif action == "flip" and i < len(data):
            data[i] = draw(st.sampled_from(b'[]{}",:0123456789-.aetrufnl \xff'))
        elif action == "insert":
            data[i:i] = draw(st.sampled_from([b"0", b",", b"[", b"]", b'"', b"-", b"1.5",
                                              b"true", b"null", b'["a",1]', b"\x00",
                                              b"-9223372036854775809", b"1e400"]))
        elif action == "delete":
            del data[i:i + draw(st.integers(min_value=1, max_value=4))]
    return bytes(data)


def _check_decodes_canonically_or_rejects(data: bytes, original: Any) -> None:
    try:
        y = decode(data)
    except DecodeError:
        return
    raw = encode(y)
    again = decode(raw)
    assert again == y
    assert encode(again) == raw
    # The value is a usable lattice element: it reads, copies, joins, and merges either way
    # with a legitimate state of its type without error.
    _ = y.value
    assert y.copy() == y
    assert join(y, y) == y
    if type(y) is type(original):
        joined = join(original, y)
        assert decode(encode(joined)) == joined
        join(y, original)


@given(data=st.data())
def test_mutated_encodings_decode_canonically_or_raise_decode_error(data: st.DataObject) -> None:
    spec = data.draw(st.sampled_from(SPECS))
    (original,) = data.draw(reachable_states(spec, 1, max_steps=8))
    raw = encode(original)
    mutate = data.draw(st.sampled_from([structural_mutations, byte_mutations]))
    _check_decodes_canonically_or_rejects(data.draw(mutate(raw)), original)


@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_random_bytes_never_raise_anything_but_decode_error(data: bytes) -> None:
    try:
        y = decode(data)
    except DecodeError:
        return
    assert decode(encode(y)) == y


def test_counter_field_with_two_dots_of_one_replica_reads_the_latest() -> None:
    # a join of deltas that skipped the remove of the older dot (sync with BP) can hold it
    blob = b'["ormap",1,[[["k","pncounter",[["a",1,5,0],["a",2,7,1]]]],[{"a":2},[]]]]'
    m = decode(blob)
    assert m.value == {"k": 6} and encode(m) == blob


def test_strings_that_cannot_be_utf8_are_refused_by_the_mutator() -> None:
    s = AWORSet()
    with pytest.raises(ValueError):
        s.add("a", "\ud800")
    with pytest.raises(ValueError):
        s.add("\udfff", "x")
    with pytest.raises(ValueError):
        LWWRegister().assign("a", {"k": "\ud800"}, 1)
    with pytest.raises(ValueError):
        LWWRegister().assign("a", "\ud800", 1)
    assert s.is_bottom()
