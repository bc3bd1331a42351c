"""Delta groups with counter columns: folding, joins, codec, join_column, own_columns, replica."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from crdtsync.codec import decode_group, dumps, encode_group, group_from_json, group_json
from crdtsync.errors import DecodeError
from crdtsync.group import Group
from crdtsync.replica import Committed, Replica
from crdtsync.types import AWORSet, GCounter, LWWRegister, PNCounter, RWORSet
from crdtsync.types.counters import own_columns


def pn(p: dict[str, int] | None = None, n: dict[str, int] | None = None) -> PNCounter:
    return PNCounter.from_json([dict(p or {}), dict(n or {})])


def gc(p: dict[str, int]) -> GCounter:
    return GCounter.from_json(dict(p))


def aw(element: str = "e") -> AWORSet:
    return AWORSet().add("z.1", element)


# -- folding -------------------------------------------------------------------------------------


def test_a_key_reads_as_the_join_of_its_delta_and_column_entries() -> None:
    g = Group({"k": pn({"a": 5, "b": 9}, {"a": 1})},
              {(PNCounter, "b"): ({"k": 3}, {"k": 2}), (PNCounter, "c"): ({}, {"k": 4})})
    assert g["k"] == pn({"a": 5, "b": 9}, {"a": 1, "b": 2, "c": 4})
    assert g["k"].value == 14 - 7
    g = Group({}, {(PNCounter, "b"): ({"up": 3}, {"down": 4}), (GCounter, "c"): ({"g": 2}, {})})
    assert g["up"] == pn({"b": 3}) and g["down"] == pn({}, {"b": 4})
    assert type(g["g"]) is GCounter and g["g"] == gc({"c": 2})
    assert g.get("missing") is None and g.get("missing", 7) == 7
    with pytest.raises(KeyError):
        g["missing"]


def test_mapping_protocol_and_touched() -> None:
    s = aw()
    g = Group({"s": s, "k": pn({"a": 1})},
              {(PNCounter, "b"): ({"k": 1, "c": 2}, {"c": 1}), (GCounter, "b"): ({"g": 1}, {})})
    want = {"s": s, "k": pn({"a": 1, "b": 1}), "c": pn({"b": 2}, {"b": 1}), "g": gc({"b": 1})}
    touched = list(g.touched())
    assert g._view is None  # touched() did not fold
    assert set(touched) == set(want) and len(touched) >= len(want)
    assert len(g) == 4 and set(g) == set(want) and set(g.keys()) == set(want)
    assert "c" in g and "g" in g and "nope" not in g
    assert g == want and want == g and g == Group(dict(want))
    assert g != {**want, "c": pn({"b": 2})} and g != {k: v for k, v in want.items() if k != "s"}
    assert dict(g.items()) == want and bool(g) and not Group()
    empty_cols = Group({}, {(PNCounter, "b"): ({}, {}), (GCounter, "c"): ({}, {})})
    assert not empty_cols and len(empty_cols) == 0 and empty_cols == {}
    assert list(empty_cols.touched()) == []
    assert Group({}, {(PNCounter, "b"): ({}, {"x": 1})}) and Group({"x": gc({"b": 1})})


def test_of_wraps_mappings_only() -> None:
    g = Group({}, {(PNCounter, "b"): ({"x": 1}, {})})
    assert Group.of(g) is g
    d = {"x": pn({"a": 1})}
    w = Group.of(d)
    assert type(w) is Group and w == d and w.deltas == d and not w.counts
    assert w.deltas is not d  # a copy: the caller's dict stays the caller's
    for bad in ([("x", pn())], 3, None, "x"):
        with pytest.raises(TypeError, match="mapping"):
            Group.of(bad)  # type: ignore[arg-type]


# -- join_all -------------------------------------------------------------------------------------


def test_join_all_takes_the_max_per_column_entry() -> None:
    a = Group({"s": aw("x")}, {(PNCounter, "b"): ({"x": 3, "y": 1}, {"x": 2})})
    b = Group({"k": pn({"a": 1})},
              {(PNCounter, "b"): ({"x": 1, "y": 5}, {"z": 4}), (PNCounter, "c"): ({"x": 7}, {}),
               (GCounter, "b"): ({"g": 2}, {})})
    c = Group({"k": pn({"a": 4}, {"a": 1}), "s": pn({"a": 1})}, {})
    before = [(copy.deepcopy(g.deltas), copy.deepcopy(g.counts)) for g in (a, b, c)]
    j = Group.join_all([a, b, c])
    assert j.counts == {(PNCounter, "b"): ({"x": 3, "y": 5}, {"x": 2, "z": 4}),
                        (PNCounter, "c"): ({"x": 7}, {}), (GCounter, "b"): ({"g": 2}, {})}
    assert j == {"x": pn({"b": 3, "c": 7}, {"b": 2}), "y": pn({"b": 5}), "z": pn({}, {"b": 4}),
                 "g": gc({"b": 2}), "k": pn({"a": 4}, {"a": 1}),
                 "s": pn({"a": 1})}  # pncounter > aworset: the greater tag wins
    assert [(g.deltas, g.counts) for g in (a, b, c)] == before
    j.counts[(PNCounter, "b")][0]["x"] = 99  # the result owns its dicts
    assert a.counts[(PNCounter, "b")][0]["x"] == 3 and b.counts[(PNCounter, "b")][0]["x"] == 1


# -- codec --------------------------------------------------------------------------------------


def _sample() -> Group:
    return Group({"s": aw(), "t": LWWRegister().assign("z.1", "v", 5), "k": pn({"a": 1})},
                 {(PNCounter, "r.2"): ({"k": 3, "c": 2**63 - 1}, {"c": 1}),
                  (GCounter, "r.1"): ({"g": 4, "é": 1}, {}),
                  (PNCounter, "r.1"): ({}, {"d": 6}), (GCounter, "r.9"): ({}, {})})


def test_group_with_columns_round_trips_canonically() -> None:
    g = _sample()
    blob = encode_group(g)
    back = decode_group(blob)
    assert back == g and encode_group(back) == blob
    assert back.counts == {col: c for col, c in g.counts.items() if c[0] or c[1]}
    obj = orjson.loads(blob)
    assert set(obj) == {"c", "d"}
    assert [c[:3] for c in obj["c"]] == [["gcounter", 1, "r.1"], ["pncounter", 1, "r.1"],
                                         ["pncounter", 1, "r.2"]]
    assert [k for k, _ in obj["d"]] == ["k", "s", "t"]
    rev = Group(dict(reversed(list(g.deltas.items()))),  # canonical: insertion order is moot
                {col: (dict(reversed(list(up.items()))), dict(reversed(list(down.items()))))
                 for col, (up, down) in reversed(list(g.counts.items()))})
    assert rev == g and encode_group(rev) == blob


def test_group_without_columns_keeps_the_list_form() -> None:
    deltas = {"c": gc({"a": 1}), "b": pn({"a": 2}, {"a": 1})}
    want = b'[["b",["pncounter",1,[{"a":2},{"a":1}]]],["c",["gcounter",1,{"a":1}]]]'
    assert encode_group(deltas) == want
    assert encode_group(Group(dict(deltas))) == want
    assert encode_group(Group(dict(deltas), {(PNCounter, "b"): ({}, {})})) == want
    assert encode_group(Group()) == b"[]"
    assert decode_group(want) == deltas and not decode_group(want).counts


def test_log_form_decodes_to_an_equal_group() -> None:
    g = _sample()
    logged = group_json(g, log=True)
    assert [c[0] for c in logged["c"]] == ["pncounter", "gcounter", "pncounter"]  # own order
    assert [k for k, _ in logged["d"]] == ["s", "t", "k"]
    back = group_from_json(orjson.loads(dumps(logged)))
    assert back == g and encode_group(back) == encode_group(g)


def _col(*col: Any) -> bytes:
    return orjson.dumps({"d": [], "c": [list(col)]})


BAD_GROUPS = [
    (b'{"d": [], "c": [], "x": 1}', r'\{"d"'),
    (b'{"d": []}', r'\{"d"'),
    (b'{"d": 5, "c": []}', "list of"),
    (b'{"d": [], "c": {}}', "columns must be a list"),
    (b'{"d": [], "c": [5]}', "a column must be"),
    (_col("pncounter", 1, "r", {}), "a column must be"),
    (_col("aworset", 1, "r", {}, {}), "must be a counter or lww"),
    (_col(7, 1, "r", {}, {}), "must be a counter or lww"),
    (_col("pncounter", 2, "r", {}, {}), "format version"),
    (_col("pncounter", True, "r", {}, {}), "format version"),
    (_col("pncounter", 1, "", {"x": 1}, {}), "replica id"),
    (_col("pncounter", 1, 5, {"x": 1}, {}), "replica id"),
    (_col("pncounter", 1, "r" * 129, {"x": 1}, {}), "replica id"),
    (_col("pncounter", 1, ["r"], {"x": 1}, {}), "invalid pncounter column"),
    (_col("pncounter", 1, "r", [], {}), "entries must be an object"),
    (_col("pncounter", 1, "r", {}, [["x", 1]]), "entries must be an object"),
    (_col("pncounter", 1, "r", {"": 1}, {}), "key must have"),
    (_col("gcounter", 1, "r", {"k" * 1025: 1}, {}), "key must have"),
    (b'{"d": [], "c": [["pncounter", 1, "r", {"\\ud800": 1}, {}]]}', "JSON|surrogate"),
    (_col("pncounter", 1, "r", {"x": 0}, {}), "out of range"),
    (_col("pncounter", 1, "r", {"x": 2**63}, {}), "out of range"),
    (b'{"d": [], "c": [["pncounter", 1, "r", {"x": 18446744073709551616}, {}]]}', "float"),
    (_col("pncounter", 1, "r", {"x": True}, {}), "got bool"),
    (_col("pncounter", 1, "r", {"x": 1, "y": 1.5}, {}), "got float"),
    (_col("pncounter", 1, "r", {"x": "1"}, {}), "got str"),
    (_col("pncounter", 1, "r", {"x": None}, {}), "got NoneType"),
    (_col("gcounter", 1, "r", {"x": 1}, {"x": 1}), "cannot hold decrements"),
    (orjson.dumps({"d": [], "c": [["pncounter", 1, "r", {"x": 1}, {}],
                                  ["pncounter", 1, "r", {}, {"y": 1}]]}), "two pncounter columns"),
]


@pytest.mark.parametrize(("blob", "match"), BAD_GROUPS)
def test_bad_groups_raise_decode_error(blob: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_group(blob)


@pytest.mark.parametrize("col", [
    ["pncounter", 1, "r", {1: 1}, {}],
    ["pncounter", 1, "r", {}, {("x",): 1}],
    ["pncounter", 1, "r", {"\ud800": 1}, {}],
    ["pncounter", 1, "r\ud800", {"x": 1}, {}],
])
def test_bad_parsed_columns_raise_decode_error(col: list[Any]) -> None:
    with pytest.raises(DecodeError, match="invalid pncounter column"):
        group_from_json({"d": [], "c": [col]})


# -- join_column and own_columns ----------------------------------------------------------------


def test_join_column_joins_matching_counters_and_leaves_the_rest() -> None:
    s = aw()
    data: dict[str, Any] = {"p": pn({"b": 2, "a": 7}, {"b": 1}), "q": pn(), "s": s,
                            "g": gc({"b": 1})}
    up = {"p": 5, "q": 1, "new": 3, "s": 1, "g": 4}
    down = {"p": 1, "s": 2, "q": 2, "new": 1, "absent": 7}
    fresh, left = PNCounter.join_column(data, "b", (up, down))
    assert fresh == ({"p": 5, "q": 1}, {"q": 2})
    assert sorted(left) == ["absent", "g", "new", "s"] and len(left) == len(set(left))
    assert data["p"] == pn({"b": 5, "a": 7}, {"b": 1}) and data["q"] == pn({"b": 1}, {"b": 2})
    assert data["s"] is s and data["s"] == aw() and data["g"] == gc({"b": 1})
    assert "new" not in data and "absent" not in data
    assert up == {"p": 5, "q": 1, "new": 3, "s": 1, "g": 4}  # the column is not changed


def test_join_column_returns_the_given_dicts_when_all_is_new() -> None:
    data: dict[str, Any] = {"x": pn(), "y": pn({"c": 1})}
    up, down = {"x": 1, "y": 2}, {"y": 2}
    fresh, left = PNCounter.join_column(data, "b", (up, down))
    assert fresh[0] is up and fresh[1] is down and left == []
    again, left = PNCounter.join_column(data, "b", (dict(up), dict(down)))
    assert again == ({}, {}) and left == []
    assert data == {"x": pn({"b": 1}), "y": pn({"c": 1, "b": 2}, {"b": 2})}
    data = {"g": gc({"b": 2}), "p": pn()}  # a gcounter column leaves the pncounters
    fresh, left = GCounter.join_column(data, "b", ({"g": 3, "p": 1}, {}))
    assert fresh == ({"g": 3}, {}) and left == ["p"]
    assert data == {"g": gc({"b": 3}), "p": pn()}


def test_own_columns_are_copies_of_the_batch_entries_by_type() -> None:
    ps, gs, ns = {"p": 3, "q": 8}, {"g": 4}, {"p": 2, "d": 5}
    cols = own_columns(ps, gs, ns, "me")
    assert cols == {(PNCounter, "me"): ({"p": 3, "q": 8}, {"p": 2, "d": 5}),
                    (GCounter, "me"): ({"g": 4}, {})}
    assert Group({}, cols) == {"p": pn({"me": 3}, {"me": 2}), "q": pn({"me": 8}),
                               "d": pn({}, {"me": 5}), "g": gc({"me": 4})}
    ps.clear()  # the replica clears its dicts after the commit: the columns are copies
    assert cols[(PNCounter, "me")][0] == {"p": 3, "q": 8}
    assert own_columns({"q": 8}, {}, {}, "me") == {(PNCounter, "me"): ({"q": 8}, {})}
    assert own_columns({}, gs, {}, "me") == {(GCounter, "me"): ({"g": 4}, {})}
    assert own_columns({}, {}, {"d": 5}, "me") == {(PNCounter, "me"): ({}, {"d": 5})}
    assert own_columns({}, {}, {}, "me") == {}


# -- replica --------------------------------------------------------------------------------------


def test_apply_remote_columns_creates_counters_and_returns_the_novel_part() -> None:
    r = Replica.open(None, name="a")
    g = Group({"s": aw()}, {(PNCounter, "z.1"): ({"c": 5, "d": 1}, {"c": 2, "e": 3}),
                            (GCounter, "z.1"): ({"g": 7}, {})})
    novel = r.apply_remote(g, origin="z.1")
    assert novel == g
    assert (r.get("c"), r.get("d"), r.get("e"), r.get("g")) == (3, 1, -3, 7)
    assert r.type_of("g") is GCounter and r.type_of("c") is PNCounter
    assert r.get("s") == frozenset({"e"}) and r.keys() == ["c", "d", "e", "g", "s"]
    again = r.apply_remote(g, origin="z.1")
    assert not again and len(again) == 0 and again == {}
    part = r.apply_remote(Group({}, {(PNCounter, "z.1"): ({"c": 5, "d": 4}, {"c": 2})}), "z.1")
    assert part.counts == {(PNCounter, "z.1"): ({"d": 4}, {})} and part == {"d": pn({"z.1": 4})}
    r.commit()
    logged = [decode_group(e.blob) for e in r.store.log()]
    assert logged == [g, part]


def test_column_entries_follow_the_greater_tag_rule() -> None:
    r = Replica.open(None, name="a")
    r.rwset("rw").add("x")  # rworset > pncounter
    r.counter("pn").increment()  # pncounter > gcounter
    r.flag("f").enable()  # ewflag < pncounter
    r.commit()
    novel = r.apply_remote(Group({}, {(PNCounter, "z.1"): ({"rw": 5, "f": 2}, {"rw": 1}),
                                      (GCounter, "z.1"): ({"pn": 9}, {})}), "z.1")
    assert r.stats["rejected_type_mismatch"] == 3
    assert r.type_of("rw") is RWORSet and r.get("rw") == frozenset({"x"})
    assert r.type_of("pn") is PNCounter and r.get("pn") == 1
    assert r.type_of("f") is PNCounter and r.get("f") == 2  # the flag lost to the counter
    assert novel == {"f": pn({"z.1": 2})} and isinstance(novel, Group)


def _written(r: Replica) -> None:
    r.counter("x").increment()
    r.gcounter("g").increment()
    r.counter("y").decrement()
    r.commit()  # the keys exist: the next writes take the fast path


def test_commit_of_fast_path_writes_logs_columns() -> None:
    r = Replica.open(None, name="a")
    _written(r)
    got: list[Committed] = []
    r.on_commit.append(got.extend)
    r.counter("x").increment(4)
    r.counter("x").decrement(2)
    r.gcounter("g").increment(3)
    r.counter("y").decrement(5)
    r.commit()
    (entry,) = got
    rid, grp = r.replica_id, entry.group
    assert entry.origin is None and not grp.deltas
    assert grp.counts == {(PNCounter, rid): ({"x": 5}, {"x": 2, "y": 6}),
                          (GCounter, rid): ({"g": 4}, {})}
    assert grp == {k: r.state(k).own_delta(rid) for k in ("x", "y", "g")}  # type: ignore[union-attr]
    blob = list(r.store.log())[-1].blob
    assert set(orjson.loads(blob)) == {"c", "d"} and decode_group(blob) == grp
    b = Replica.open(None, name="b")  # the entries are totals: b needs only this group
    b.apply_remote(grp, origin=rid)
    assert [b.get(k) for k in ("x", "y", "g")] == [r.get(k) for k in ("x", "y", "g")] == [3, -6, 4]


def test_reopen_replays_log_entries_with_columns(tmp_path: Path) -> None:
    path = str(tmp_path / "r")
    r = Replica.open(path, name="us")
    _written(r)
    for i in range(5):
        r.counter("x").increment(i + 1)
        r.counter("y").decrement()
        r.gcounter("g").increment(2)
        r.commit()
    r.apply_remote(Group({}, {(PNCounter, "z.1"): ({"x": 10, "n": 2}, {"y": 3}),
                              (GCounter, "z.1"): ({"g": 1}, {})}), "z.1")
    r.commit()
    states = {k: r.state(k) for k in r.keys()}
    forms = [type(orjson.loads(e.blob)) for e in r.store.log()]
    assert len(forms) == 7 and forms[1:] == [dict] * 6  # the fast paths' entries hold columns
    r.close()
    again = Replica.open(path)
    assert int(again.store.meta().get("checkpoint_seq", 0)) == 0  # replayed from the log
    assert {k: again.state(k) for k in again.keys()} == states
    assert [again.get(k) for k in ("x", "y", "g", "n")] == [26, -9, 12, 2]
    again.close()
    # the replayed entries' keys (columns included) are due in the next checkpoint, which
    # trims the log: nothing of them may be lost with it
    third = Replica.open(path, checkpoint_entries=1)
    third.register("other").assign("v")
    third.commit()
    assert int(third.store.meta()["checkpoint_seq"]) > 0
    assert int(third.store.meta()["log_trimmed_below"]) > 7
    third.close()
    last = Replica.open(path)
    assert [last.get(k) for k in ("x", "y", "g", "n", "other")] == [26, -9, 12, 2, "v"]
    assert {k: last.state(k) for k in states} == states
    last.close()


# -- LWW register columns -------------------------------------------------------------------------


def lww(ts: int, rid: str, value: Any) -> LWWRegister:
    return LWWRegister.from_json([ts, rid, value])


def test_lww_join_column_is_the_merge_rule_per_key() -> None:
    data: dict[str, Any] = {
        "older": lww(3, "b", "old"), "newer": lww(9, "b", "keep"),
        "tie_lower_id": lww(5, "a", "loses"), "tie_higher_id": lww(5, "c", "wins"),
        "tie_same_id": lww(5, "b", "a"), "counter": pn({"b": 1}),
    }
    stamps = {"older": 4, "newer": 8, "tie_lower_id": 5, "tie_higher_id": 5, "tie_same_id": 5,
              "counter": 7, "new": 1}
    values = {"older": "o2", "newer": "n2", "tie_lower_id": "t1", "tie_higher_id": "t2",
              "tie_same_id": "b", "counter": 0, "new": {"k": [1]}}
    fresh, left = LWWRegister.join_column(data, "b", (stamps, values))
    assert fresh == ({"older": 4, "tie_lower_id": 5, "tie_same_id": 5},
                     {"older": "o2", "tie_lower_id": "t1", "tie_same_id": "b"})
    assert sorted(left) == ["counter", "new"] and "new" not in data
    for key in ("older", "newer", "tie_lower_id", "tie_higher_id", "tie_same_id"):
        want = lww(*data[key].to_json())  # each key as merge() decides it
        want.merge(lww(stamps[key], "b", values[key]))
        assert data[key] == want or key not in fresh[0]
    assert data["older"] == lww(4, "b", "o2") and data["newer"] == lww(9, "b", "keep")
    assert data["tie_higher_id"] == lww(5, "c", "wins") and data["counter"] == pn({"b": 1})
    again, left = LWWRegister.join_column(data, "b", (dict(stamps), dict(values)))
    assert again == ({}, {}) and sorted(left) == ["counter", "new"]
    all_new = ({"older": 100}, {"older": None})
    fresh, left = LWWRegister.join_column(data, "b", all_new)
    assert fresh is all_new and left == [] and data["older"] == lww(100, "b", None)


def test_lww_join_columns_keeps_the_later_write_per_key() -> None:
    have = ({"a": 5, "b": 5, "c": 1}, {"a": "x", "b": "m", "c": 1})
    LWWRegister.join_columns(have, ({"a": 4, "b": 5, "d": 2}, {"a": "y", "b": "z", "d": [2]}))
    assert have == ({"a": 5, "b": 5, "c": 1, "d": 2}, {"a": "x", "b": "z", "c": 1, "d": [2]})
    empty: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    LWWRegister.join_columns(empty, ({"a": 1}, {"a": 2}))
    assert empty == ({"a": 1}, {"a": 2})
    g1 = Group({}, {(LWWRegister, "r"): ({"k": 1, "j": 9}, {"k": "one", "j": "nine"})})
    g2 = Group({"k": lww(3, "s", "s3")}, {(LWWRegister, "r"): ({"k": 2}, {"k": "two"})})
    joined = Group.join_all([g1, g2])
    assert joined == {"k": lww(3, "s", "s3"), "j": lww(9, "r", "nine")}
    assert joined.counts == {(LWWRegister, "r"): ({"k": 2, "j": 9}, {"k": "two", "j": "nine"})}
    assert g1.counts[(LWWRegister, "r")] == ({"k": 1, "j": 9}, {"k": "one", "j": "nine"})


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(("col", "match"), [
    (["lww", 1, "r", {"k": 1}, {}], "same keys"),
    (["lww", 1, "r", {}, {"k": 1}], "same keys"),
    (["lww", 1, "r", {"k": -1}, {"k": 1}], "out of range"),
    (["lww", 1, "r", {"k": 2**63}, {"k": 1}], "out of range"),
    (["lww", 1, "r", {"k": "1"}, {"k": 1}], "got str"),
    (["lww", 1, "r", {"k": 1}, {"k": _nested(40)}], "nested deeper"),
    (["lww", 1, "r", {"k": 1}, {"k": 2**64}], "out of the 64-bit range"),
    (["lww", 1, "r", {"k": 1}, {"k": "\ud800"}], "surrogate|encode"),
    (["lww", 1, "r", {"": 1}, {"": 1}], "key must have"),
    # the log's form of one timestamp is checked as the timestamps it stands for
    (["lww", 1, "r", -1, {"k": 1}], "out of range"),
    (["lww", 1, "r", 2**63, {"k": 1}], "out of range"),
    (["lww", 1, "r", 5, {"k": 2**64}], "out of the 64-bit range"),
    (["lww", 1, "r", True, {"k": 1}], "must be an object"),
    (["pncounter", 1, "r", 5, {"k": 1}], "must be an object"),
])
def test_bad_lww_columns_raise_decode_error(col: list[Any], match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        group_from_json({"d": [], "c": [col]})


def test_the_log_writes_an_lww_column_of_one_timestamp_once() -> None:
    values = {"a": "x", "b": [1], "c": 3}
    one = Group({}, {(LWWRegister, "r"): (dict.fromkeys(values, 77), values)})
    cols = group_json(one, log=True)["c"]
    assert [list(c) for c in cols] == [["lww", 1, "r", 77, values]]
    back = decode_group(orjson.dumps(group_json(one, log=True)))
    assert back == one and back.counts == one.counts
    assert group_json(one)["c"][0][3] == dict.fromkeys(values, 77)  # canonical: by key
    mixed = Group({}, {(LWWRegister, "r"): ({"a": 1, "b": 2, "c": 2}, values)})
    assert group_json(mixed, log=True)["c"][0][3] == {"a": 1, "b": 2, "c": 2}
    assert decode_group(orjson.dumps(group_json(mixed, log=True))).counts == mixed.counts


def test_lww_column_round_trips_with_any_json_value() -> None:
    values = {"a": {"z": 1, "b": [None, True, 1.5]}, "b": "é", "c": -(2**63), "d": 2**64 - 1}
    g = Group({}, {(LWWRegister, "r"): ({k: i for i, k in enumerate(values)}, values)})
    blob = encode_group(g)
    back = decode_group(blob)
    assert back == g and back.counts == g.counts and encode_group(back) == blob


def test_commit_of_register_writes_logs_a_column_and_advances_a_receivers_clock() -> None:
    r = Replica.open(None, name="a", clock=lambda: 1_000)
    r.register("t").assign("first")
    r.register("u").assign([1])
    r.commit()  # the keys exist: the next writes take the fast path
    got: list[Committed] = []
    r.on_commit.append(got.extend)
    r.register("t").assign("second")
    r.register("u").assign({"n": 2})
    r.commit()
    (entry,) = got
    rid, grp = r.replica_id, entry.group
    assert not grp.deltas and list(grp.counts) == [(LWWRegister, rid)]
    assert grp == {"t": r.state("t"), "u": r.state("u")}
    assert decode_group(list(r.store.log())[-1].blob) == grp
    b = Replica.open(None, name="b", clock=lambda: 1_000)
    before = b.now()
    novel = b.apply_remote(grp, origin=rid)
    assert novel == grp and (b.get("t"), b.get("u")) == ("second", {"n": 2})
    assert b.now() > max(grp.counts[(LWWRegister, rid)][0].values()) > before
    later = b.register("t")
    later.assign("third")  # the receiver's write after it has seen "second" wins everywhere
    b.commit()
    (own,) = [e for e in b.store.log() if e.origin is None]
    r.apply_remote(decode_group(own.blob), "b")
    assert r.get("t") == b.get("t") == "third"


def test_a_remote_write_that_beats_a_stamped_assignment_leaves_it_in_the_batch() -> None:
    r = Replica.open(None, name="a", clock=lambda: 1_000)
    r.register("t").assign("mine")
    r.commit()
    r.register("t").assign("mine again")
    mine = r.state("t")  # a read stamps the assignment
    assert mine is not None and mine.value == "mine again"
    far = mine.timestamp + (1 << 20)  # type: ignore[attr-defined]
    r.apply_remote({"t": lww(far, "z.1", "theirs")}, origin="z.1")
    got: list[Committed] = []
    r.on_commit.append(got.extend)
    r.commit()
    (local,) = [e for e in got if e.origin is None]
    # the batch still carries the write it made (it loses wherever the later one is seen)
    assert local.group == {"t": mine}
    assert r.get("t") == "theirs"
    other = Replica.open(None, name="b", clock=lambda: 1_000)
    for e in reversed(got):
        other.apply_remote(e.group, "a")
    assert other.state("t") == r.state("t")


def test_an_assignment_is_stamped_later_than_a_remote_write_joined_before_its_stamp() -> None:
    r = Replica.open(None, name="a", clock=lambda: 1_000)
    r.register("t").assign("mine")
    r.commit()
    later = r.state("t").timestamp + (1 << 20)  # type: ignore[union-attr]  # 16 ms ahead
    r.register("t").assign("mine again")  # waits for its stamp
    r.apply_remote({"t": lww(later, "z.1", "theirs")}, origin="z.1")
    assert r.get("t") == "mine again"  # stamped after the clock saw the remote write
    assert r.state("t").timestamp > later  # type: ignore[union-attr]
    # unless the clock refused to follow it (too far ahead): then the assignment loses
    far = r.state("t").timestamp + (120_000 << 16)  # type: ignore[union-attr]
    r.commit()
    r.register("t").assign("lost")
    r.apply_remote({"t": lww(far, "z.1", "future")}, origin="z.1")
    got: list[Committed] = []
    r.on_commit.append(got.extend)
    r.commit()
    # the batch carries the write that lost (as above): it loses at every replica too
    assert [e.origin for e in got] == [None, "z.1"]
    assert got[0].group["t"].value == "lost"
    assert r.get("t") == "future" and r.stats["clock_skew"] == 1
    for order in (got, got[::-1]):
        other = Replica.open(None, name="b", clock=lambda: 1_000)
        for e in order:
            other.apply_remote(e.group, "a")
        assert other.get("t") == "future" and other.state("t") == r.state("t")
