"""Counter and LWW fields as they live inside an ORMap (crdtsync.types.embedded)."""

from __future__ import annotations

from typing import Any

import pytest

from crdtsync.clock import HLCTimestamp, pack
from crdtsync.codec import MAX_INT, decode, encode
from crdtsync.types import GCounter, LWWRegister, ORMap, PNCounter, join


def inc(m: ORMap, replica: str, by: int = 1, key: Any = "n") -> ORMap:
    return m.update(replica, key, PNCounter, lambda c: c.increment(replica, by))


def dec(m: ORMap, replica: str, by: int = 1, key: Any = "n") -> ORMap:
    return m.update(replica, key, PNCounter, lambda c: c.decrement(replica, by))


def assign(m: ORMap, replica: str, value: Any, ts: Any, key: Any = "t") -> ORMap:
    return m.update(replica, key, LWWRegister, lambda r: r.assign(replica, value, ts))


def test_counter_field_sums_concurrent_updates() -> None:
    a, b = ORMap(), ORMap()
    inc(a, "a", 5)
    dec(a, "a", 2)
    inc(b, "b", 10)
    assert join(a, b).value == {"n": 13}


def test_counter_field_duplicated_and_reordered_deltas_count_once() -> None:
    a, b = ORMap(), ORMap()
    deltas = [inc(a, "a", 1), inc(a, "a", 2), dec(a, "a", 4)]
    for d in [deltas[2], deltas[0], deltas[2], deltas[1], deltas[0]]:
        b.merge(d)
    assert a.value == b.value == {"n": -1}
    assert a == b


def test_counter_field_keeps_one_live_dot_per_replica() -> None:
    m = ORMap()
    for _ in range(10):
        inc(m, "a")
    inc(m, "b")
    raw = encode(m)
    assert decode(raw) == m
    field = decode(raw).to_json()[0][0][2]
    assert [entry[0] for entry in field] == ["a", "b"]


def test_counter_field_counts_from_zero_after_a_remove() -> None:
    m = ORMap()
    inc(m, "a", 5)
    m.remove("a", "n")
    assert m.value == {}
    inc(m, "a", 1)
    assert m.value == {"n": 1}


def test_gcounter_field() -> None:
    m = ORMap()
    m.update("a", "g", GCounter, lambda c: c.increment("a", 3))
    assert m.value == {"g": 3}
    with pytest.raises(TypeError):
        m.update("a", "g", GCounter, lambda c: c.decrement("a", 1))
    assert m.value == {"g": 3}


@pytest.mark.parametrize(("by", "error"), [(0, ValueError), (-1, ValueError),
                                           (True, TypeError), (1.5, TypeError)])
def test_counter_field_rejects_bad_amounts(by: object, error: type) -> None:
    m = ORMap()
    inc(m, "a", 1)
    before = m.copy()
    with pytest.raises(error):
        inc(m, "a", by)  # type: ignore[arg-type]
    with pytest.raises(error):
        dec(m, "a", by)  # type: ignore[arg-type]
    assert m == before


def test_counter_field_overflow_is_refused_like_the_standalone_counter() -> None:
    m = ORMap()
    inc(m, "a", MAX_INT)
    before = m.copy()
    with pytest.raises(ValueError):
        inc(m, "a", 1)
    assert m == before
    assert decode(encode(m)) == m


def test_lww_field_greatest_timestamp_wins() -> None:
    a, b = ORMap(), ORMap()
    assign(a, "a", "late", 20)
    assign(b, "b", "early", 10)
    assert join(a, b).value == join(b, a).value == {"t": "late"}


def test_lww_field_tie_goes_to_greater_replica_id() -> None:
    a, b = ORMap(), ORMap()
    assign(a, "a", "from a", 7)
    assign(b, "b", "from b", 7)
    assert join(a, b).value == join(b, a).value == {"t": "from b"}
    assert join(a, b) == join(b, a)


def test_lww_field_older_assign_after_a_newer_one_keeps_the_newer() -> None:
    m = ORMap()
    assign(m, "a", "new", 20)
    assign(m, "b", "old", 10)
    assert m.value == {"t": "new"}
    other = ORMap()
    other.merge(m)
    assert other.value == {"t": "new"}


def test_lww_field_agrees_with_the_standalone_register() -> None:
    writes = [("a", "x", 5), ("b", "y", 5), ("c", "z", 3), ("a", 1, 9), ("b", True, 9)]
    maps = {replica: ORMap() for replica in "abc"}  # one map per replica, never merged
    r = LWWRegister()
    for replica, value, ts in writes:
        assign(maps[replica], replica, value, ts)
        r.assign(replica, value, ts)
    m = ORMap()
    for part in maps.values():
        m.merge(part)
    assert r.value is True
    assert m.value == {"t": True}


def test_lww_field_accepts_hlc_timestamps() -> None:
    m = ORMap()
    assign(m, "a", "x", HLCTimestamp(100, 1))
    assign(m, "b", "y", pack(100, 0))
    assert m.value == {"t": "x"}


@pytest.mark.parametrize(("ts", "error"), [(-1, ValueError), (True, TypeError),
                                           (1.5, TypeError), (MAX_INT + 1, ValueError)])
def test_lww_field_rejects_bad_timestamps(ts: object, error: type) -> None:
    m = ORMap()
    with pytest.raises(error):
        assign(m, "a", "x", ts)
    assert m.is_bottom()
