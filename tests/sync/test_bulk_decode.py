"""The codec's bulk group decoder agrees with the item-by-item one.

:func:`crdtsync.codec.group_from_json` decodes a group (received, or read from the delta
log) in bulk: one pass per check over the whole group, counters through
``from_json_many``; on anything unusual it falls back to the item-by-item ``_group_items``.
Here both run on random groups, mostly valid with random defects, and must give the same
group (same keys, order, values) or the same error (type and message).
"""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync.codec import MAX_INT, _bulk_group, _group_items, group_from_json, group_json
from crdtsync.sync.messages import Delta
from crdtsync.sync.wire import decode_message, encode_message
from crdtsync.types import AWORSet, GCounter, LWWRegister, PNCounter

REPLICAS = ["us.00000001", "eu.00000002", "ap.00000003"]


def _value(rng: random.Random) -> Any:
    kind = rng.choice(["pn", "pn", "pn", "g", "set", "lww"])
    rid = rng.choice(REPLICAS)
    if kind == "pn":
        c = PNCounter()
        for _ in range(rng.randint(0, 3)):
            (c.increment if rng.random() < 0.7 else c.decrement)(rng.choice(REPLICAS),
                                                                 rng.randint(1, 50))
        return c
    if kind == "g":
        g = GCounter()
        for _ in range(rng.randint(0, 3)):
            g.increment(rng.choice(REPLICAS), rng.randint(1, 50))
        return g
    if kind == "set":
        s = AWORSet()
        for e in range(rng.randint(0, 3)):
            s.add(rid, f"e{e}")
        return s
    r = LWWRegister()
    r.assign(rid, "v", rng.randint(1, 10**12))
    return r


_BAD_COUNTS: list[Any] = [0, -1, True, 1.5, MAX_INT + 1, "3", None]
_BAD_REPLICAS: list[Any] = ["", "x" * 200, "bad\ud800"]


def _healthy(item: Any) -> bool:
    """Whether ``item`` is still ``[key, [tag, version, state]]`` with a well-shaped state."""
    if not (type(item) is list and len(item) == 2 and type(item[1]) is list
            and len(item[1]) == 3):
        return False
    tag, state = item[1][0], item[1][2]
    if tag == "pncounter":
        return type(state) is list and len(state) == 2 and all(type(d) is dict for d in state)
    return tag != "gcounter" or type(state) is dict


def _defect(rng: random.Random, obj: list[Any]) -> None:
    """Break one thing in the parsed group ``obj``, in place."""
    healthy = [i for i, item in enumerate(obj) if _healthy(item)]
    if not healthy:
        obj.append(rng.choice([[], ["k"], "k", ["k", ["pncounter", 1]]]))
        return
    i = rng.choice(healthy)
    item = obj[i]
    what = rng.randrange(12)
    if what == 0:
        obj[i] = rng.choice([None, "k", [item[0]], [item[0], item[1], 1], {"k": 1}])
    elif what == 1:
        item[0] = rng.choice(["", "k" * 1025, 7, None, "é-key", "bad\ud800", ["k"]])
    elif what == 2:
        obj.append(copy.deepcopy(item))  # a duplicate key
    elif what == 3:
        item[1] = rng.choice([None, "x", [item[1][0]], [*item[1], 0], {"a": 1}])
    elif what == 4:
        item[1][0] = rng.choice(["nope", 3, None, ["pncounter"], True])
    elif what == 5:
        item[1][1] = rng.choice([0, 2, True, 1.0, "1", None])
    elif item[1][0] == "pncounter" and what < 10:
        state = item[1][2]
        if what == 6:
            item[1][2] = rng.choice([None, [state[0]], [*state, {}], {"a": 1}, "s"])
        elif what == 7:
            state[rng.randrange(2)] = rng.choice([None, [], "x", 3, [["us.1", 1]]])
        elif what == 8:
            state[0][rng.choice(REPLICAS)] = rng.choice(_BAD_COUNTS)
        else:
            state[1][rng.choice(_BAD_REPLICAS)] = 1
    elif item[1][0] == "gcounter" and what < 10:
        if what in (6, 7):
            item[1][2] = rng.choice([None, [], "x", [{"a": 1}]])
        elif what == 8:
            item[1][2][rng.choice(REPLICAS)] = rng.choice(_BAD_COUNTS)
        else:
            item[1][2][rng.choice(_BAD_REPLICAS)] = 1
    else:
        item[1][2] = rng.choice([None, [], "x", [[], []], [[["a", [["zz", 0]]]], [[], []]]])


def _outcome(fn: Any, obj: Any) -> Any:
    try:
        group = fn(copy.deepcopy(obj))
    except Exception as exc:  # noqa: BLE001 -- compared below
        return ("error", type(exc), str(exc))
    return ("ok", list(group.keys()), [(type(v), v) for v in group.values()])


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 12), defects=st.integers(0, 2))
def test_bulk_group_decoding_equals_item_by_item(seed: int, n: int, defects: int) -> None:
    rng = random.Random(seed)
    group = {f"k{rng.randrange(10**6)}": _value(rng) for _ in range(n)}
    obj = orjson.loads(orjson.dumps(group_json(group)))
    for _ in range(defects):
        _defect(rng, obj)
    bulk, ref = _outcome(group_from_json, obj), _outcome(_group_items, obj)
    assert bulk == ref
    if not defects:
        assert _bulk_group(copy.deepcopy(obj)) is not None  # the bulk path took it
        assert bulk[0] == "ok" and bulk[2] == [(type(v), v) for v in
                                                [group[k] for k in sorted(group)]]


def test_counter_groups_take_the_bulk_path() -> None:
    rng = random.Random(5)
    group: dict[str, Any] = {}
    for i in range(300):
        c = PNCounter()
        c.increment(rng.choice(REPLICAS), i + 1)
        group[f"c{i}"] = c
    g = GCounter()
    g.increment("us.00000001", 4)
    group["g"] = g
    obj = orjson.loads(orjson.dumps(group_json(group)))
    fast = _bulk_group(obj)
    assert fast is not None and fast == group
    assert type(fast["g"]) is GCounter and type(fast["c1"]) is PNCounter
    msg = decode_message(encode_message(Delta(1, 2, group)))
    assert isinstance(msg, Delta) and msg.group == group


@pytest.mark.parametrize("states", [[], [[{}, {}]], [[{"us.00000001": 3}, {"eu.00000002": 1}]]])
def test_from_json_many_equals_from_json(states: list[Any]) -> None:
    many = PNCounter.from_json_many(copy.deepcopy(states))
    assert many == [PNCounter.from_json(s) for s in states]
    assert PNCounter.from_json_many([[{"us.00000001": 0}, {}]]) is None
    assert PNCounter.from_json_many([[{"us.00000001": 1}]]) is None
    assert GCounter.from_json_many([{"us.00000001": 2}, {}]) == [
        GCounter.from_json({"us.00000001": 2}), GCounter()]
    assert GCounter.from_json_many([{"": 2}]) is None
