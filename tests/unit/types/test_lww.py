"""LWWRegister: the greatest (timestamp, replica id) wins, on HLC timestamps."""

from __future__ import annotations

import pytest

from crdtsync.clock import HLCTimestamp, HybridLogicalClock, pack
from crdtsync.codec import MAX_INT, decode, encode
from crdtsync.errors import TypeMismatchError
from crdtsync.types import LWWRegister, MVRegister, join


def test_later_timestamp_wins_whatever_the_merge_order() -> None:
    a, b = LWWRegister(), LWWRegister()
    a.assign("a", "old", 10)
    b.assign("b", "new", 20)
    assert join(a, b).value == join(b, a).value == "new"


def test_assign_of_an_older_write_keeps_the_newer_one() -> None:
    r = LWWRegister()
    r.assign("a", "new", 20)
    delta = r.assign("a", "old", 10)
    assert r.value == "new" and r.timestamp == 20
    assert delta.value == "old"  # the delta is the write itself; it loses at every replica


def test_equal_timestamps_greater_replica_id_wins_commutatively() -> None:
    a, b = LWWRegister(), LWWRegister()
    a.assign("a", "from a", 7)
    b.assign("b", "from b", 7)
    ab, ba = join(a, b), join(b, a)
    assert ab.value == ba.value == "from b"
    assert ab.writer == ba.writer == "b"
    assert ab == ba and encode(ab) == encode(ba)


def test_reused_timestamp_by_one_replica_is_still_commutative() -> None:
    a, b = LWWRegister(), LWWRegister()
    a.assign("r", 1, 5)
    b.assign("r", "1", 5)
    assert join(a, b) == join(b, a)
    assert join(a, b).value == join(b, a).value


def test_hlc_timestamp_accepted_and_equal_to_its_packed_int() -> None:
    a, b = LWWRegister(), LWWRegister()
    a.assign("a", "x", HLCTimestamp(1000, 3))
    b.assign("a", "x", pack(1000, 3))
    assert a == b
    assert a.timestamp == pack(1000, 3)
    c = LWWRegister()
    c.assign("a", "y", HLCTimestamp(1000, 4))
    assert join(a, c).value == "y"


def test_hlc_orders_causally_later_writes_after_a_backwards_clock_step() -> None:
    clock_a, clock_b = HybridLogicalClock(), HybridLogicalClock()
    a, b = LWWRegister(), LWWRegister()
    d = a.assign("z", "first", clock_a.now(5_000))
    b.merge(d)
    # b's wall clock is far behind, but it saw the write: its own write must win.
    clock_b.update(d.timestamp, 1_000)
    b.assign("a", "second", clock_b.now(1_000))
    assert join(a, b).value == "second"


def test_value_is_a_private_copy() -> None:
    r = LWWRegister()
    value = {"list": [1, 2]}
    r.assign("a", value, 1)
    value["list"].append(3)
    assert r.value == {"list": [1, 2]}


def test_bottom_register() -> None:
    r = LWWRegister()
    assert r.is_bottom()
    assert r.value is None and r.timestamp is None and r.writer is None
    assert decode(encode(r)) == r
    r.assign("a", None, 0)
    assert not r.is_bottom() and r.timestamp == 0 and r.writer == "a"
    assert decode(encode(r)) == r


DISTINCT_VALUES = [1, 1.0, True, "1", [1], {"1": 1}, None]


@pytest.mark.parametrize("index", range(len(DISTINCT_VALUES)))
def test_distinct_json_values_stay_distinct(index: int) -> None:
    value = DISTINCT_VALUES[index]
    r = LWWRegister()
    r.assign("a", value, 3)
    y = decode(encode(r))
    assert y == r
    assert type(y.value) is type(value)
    assert encode(y) == encode(r)
    for j, other in enumerate(DISTINCT_VALUES):
        s = LWWRegister()
        s.assign("a", other, 3)
        assert (s == r) is (j == index)


@pytest.mark.parametrize(("timestamp", "error"), [
    (-1, ValueError), (1.5, TypeError), (True, TypeError), ("5", TypeError),
    (None, TypeError), (MAX_INT + 1, ValueError), (2**70, ValueError),
    (HLCTimestamp(-1, 0), ValueError), (HLCTimestamp(0, 1 << 16), ValueError),
])
def test_assign_rejects_bad_timestamps(timestamp: object, error: type) -> None:
    r = LWWRegister()
    with pytest.raises(error):
        r.assign("a", "x", timestamp)  # type: ignore[arg-type]
    assert r.is_bottom()


@pytest.mark.parametrize(("replica", "error"), [
    (1, TypeError), (None, TypeError), ("", ValueError), ("r" * 129, ValueError),
])
def test_assign_rejects_bad_replicas(replica: object, error: type) -> None:
    r = LWWRegister()
    with pytest.raises(error):
        r.assign(replica, "x", 1)  # type: ignore[arg-type]
    assert r.is_bottom()


@pytest.mark.parametrize(("value", "error"), [
    (float("nan"), ValueError), (float("inf"), ValueError), ({1: "x"}, TypeError),
    (object(), TypeError), ({"s": {1, 2}}, TypeError), (2**64, ValueError),
    (-(2**63) - 1, ValueError),
])
def test_assign_rejects_non_json_values(value: object, error: type) -> None:
    r = LWWRegister()
    with pytest.raises(error):
        r.assign("a", value, 1)
    assert r.is_bottom()


def test_merge_of_another_type_raises() -> None:
    with pytest.raises(TypeMismatchError):
        LWWRegister().merge(MVRegister())
