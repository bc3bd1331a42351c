"""The message codec: golden vectors pin the format; hostile input raises DecodeError.

Regenerate the vectors after a *deliberate* format change (and bump PROTOCOL_VERSION):
``CRDTSYNC_REGEN_VECTORS=1 pytest tests/sync/test_wire.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from crdtsync.errors import DecodeError
from crdtsync.group import Group
from crdtsync.sync import (
    PROTOCOL_VERSION,
    Accept,
    Ack,
    BucketDigests,
    Delta,
    Hello,
    KeyDigests,
    Message,
    Nack,
    Refuse,
    States,
    decode_message,
    encode_message,
)
from crdtsync.types import AWORSet, GCounter, LWWRegister, ORMap, PNCounter

VECTORS = Path(__file__).parent.parent / "vectors" / "sync_messages.json"


def _group() -> dict[str, Any]:
    likes = AWORSet()
    likes.add("eu-1", "alice")
    likes.add("us-1", 7)
    views = GCounter()
    views.increment("eu-1", 3)
    return {"likes": likes, "views": views}


def _states() -> dict[str, Any]:
    title = LWWRegister()
    title.assign("eu-1", {"text": "hi"}, 1_700_000_000_000 << 16)
    post = ORMap()
    post.update("us-1", "score", PNCounter, lambda c: c.increment("us-1", 2))
    return {"title": title, "post": post}


def _columns() -> Group:
    title = LWWRegister()
    title.assign("eu-1", "hi", 1_700_000_000_000 << 16)
    return Group({"post:1:title": title}, {
        (PNCounter, "eu-1"): ({"post:1:likes": 3, "post:2:likes": 1}, {"post:2:likes": 1}),
        (GCounter, "us-1"): ({"post:1:views": 5}, {}),
        (LWWRegister, "us-1"): ({"post:2:title": 1_700_000_000_001 << 16},
                                {"post:2:title": {"text": "yo", "tags": [1, 2]}}),
    })


MESSAGES: dict[str, Message] = {
    "hello": Hello(3, "feed", "eu-1", False, 42),
    "hello_follower": Hello(3, "feed", "eu-ro", True, 0),
    "accept": Accept(41),
    "accept_marks": Accept(41, (("ap-1", 7), ("us-1", 1_000_000))),
    "refuse": Refuse("replica 'x' is in cluster 'a', not 'feed'"),
    "delta": Delta(3, 5, _group()),
    "delta_skip": Delta(6, 6, {}),
    "delta_needs": Delta(10, 14, _group(), ((11, "us-1", 7), (13, "ap-1", 2), (14, "us-1", 9))),
    "delta_columns": Delta(7, 9, _columns()),
    "ack": Ack(5),
    "ack_marks": Ack(5, (("us-1", 12),)),
    "nack": Nack(2),
    "nack_needs": Nack(2, ("ap-1", "us-1")),
    "buckets": BucketDigests(1, 42, ("0000000000000000", "0123456789abcdef",
                                     "ffffffffffffffff", "00000000deadbeef")),
    "keys": KeyDigests(1, 0, 2, (1, 3), (("likes", "0123456789abcdef"),
                                         ("views", "fedcba9876543210"))),
    "states": States(1, 42, 1, 2, _states()),
    "states_bound": States(1, 42, 0, 2, {}, 45),
}

INVALID: dict[str, tuple[bytes, str]] = {
    "not_json": (b"{nope", "not valid JSON"),
    "not_object": (b"[1, 2]", "must be a JSON object"),
    "unknown_type": (b'{"type":"gossip"}', "unknown message type"),
    "missing_field": (b'{"type":"ack"}', "missing fields ['upto']"),
    "extra_field": (b'{"type":"ack","upto":1,"x":2}', "unexpected fields ['x']"),
    "negative_int": (b'{"type":"ack","upto":-1}', "ack.upto"),
    "bool_as_int": (b'{"type":"nack","have":true}', "expected an int, got bool"),
    "float_as_int": (b'{"type":"ack","upto":1.0}', "expected an int, got float"),
    "huge_int": (b'{"type":"ack","upto":9223372036854775808}', "out of range"),
    "bad_interval": (b'{"type":"delta","start":5,"end":4,"group":[]}', "not 1 <= start"),
    "zero_start": (b'{"type":"delta","start":0,"end":4,"group":[]}', "not 1 <= start"),
    "group_not_list": (b'{"type":"delta","start":1,"end":1,"group":{}}', "delta.group"),
    "column_not_columnar": (b'{"type":"delta","start":1,"end":1,"group":{"d":[],"c":'
                            b'[["aworset",1,"r",{"k":1},{}]]}}', "must be a counter or lww"),
    "column_lww_keys": (b'{"type":"delta","start":1,"end":1,"group":{"d":[],"c":'
                        b'[["lww",1,"r",{"k":1},{}]]}}', "same keys"),
    "column_lww_value": (b'{"type":"delta","start":1,"end":1,"group":{"d":[],"c":'
                         b'[["lww",1,"r",{"k":1},{"k":' + b"[" * 40 + b"]" * 40 + b'}]]}}',
                         "nested deeper"),
    "column_zero": (b'{"type":"delta","start":1,"end":1,"group":{"d":[],"c":'
                    b'[["pncounter",1,"r",{"k":0},{}]]}}', "invalid pncounter column"),
    "column_gcounter_down": (b'{"type":"delta","start":1,"end":1,"group":{"d":[],"c":'
                             b'[["gcounter",1,"r",{},{"k":1}]]}}', "cannot hold decrements"),
    "column_twice": (b'{"type":"delta","start":1,"end":1,"group":{"d":[],"c":'
                     b'[["gcounter",1,"r",{"k":1},{}],["gcounter",1,"r",{"j":1},{}]]}}',
                     "two gcounter columns"),
    "unknown_crdt": (b'{"type":"delta","start":1,"end":1,"group":[["k",["blob",1,{}]]]}',
                     "unknown type tag 'blob'"),
    "bad_crdt_state": (b'{"type":"delta","start":1,"end":1,"group":[["k",["gcounter",1,[]]]]}',
                       "invalid gcounter state"),
    "duplicate_key": (b'{"type":"delta","start":1,"end":1,"group":'
                      b'[["k",["gcounter",1,{}]],["k",["gcounter",1,{}]]]}', "appears twice"),
    "bad_hash": (b'{"type":"buckets","cid":1,"upto":1,"hashes":["xyz"]}', "16 lowercase hex"),
    "bucket_count": (b'{"type":"buckets","cid":1,"upto":1,"hashes":'
                     b'["0000000000000000","0000000000000000","0000000000000000"]}',
                     "not a power of two"),
    "part_range": (b'{"type":"states","cid":1,"upto":1,"part":2,"parts":2,"group":[]}',
                   "part 2 of 2"),
    "dup_digest_key": (b'{"type":"keys","cid":1,"part":0,"parts":1,"buckets":[0],"digests":'
                       b'[["a","0000000000000000"],["a","0000000000000000"]]}', "duplicate key"),
    "states_bound_zero": (b'{"type":"states","cid":1,"upto":1,"part":0,"parts":1,"group":[],'
                          b'"bound":0}', "states.bound"),
    "needs_empty": (b'{"type":"delta","start":1,"end":1,"group":[],"needs":[]}',
                    "omit the field"),
    "needs_order": (b'{"type":"delta","start":1,"end":5,"group":[],"needs":[[3,"a",1],[3,"b",1]]}',
                    "strictly increasing"),
    "needs_outside": (b'{"type":"delta","start":2,"end":5,"group":[],"needs":[[1,"a",1]]}',
                      "outside the interval"),
    "needs_zero_upto": (b'{"type":"delta","start":1,"end":5,"group":[],"needs":[[2,"a",0]]}',
                        "delta.needs"),
    "needs_shape": (b'{"type":"delta","start":1,"end":5,"group":[],"needs":[[2,"a"]]}',
                    "expected [seq, replica, upto]"),
    "nack_needs_twice": (b'{"type":"nack","have":1,"needs":["a","a"]}', "distinct replica ids"),
    "marks_empty": (b'{"type":"ack","upto":1,"marks":{}}', "omit the field"),
    "marks_not_object": (b'{"type":"ack","upto":1,"marks":[["a",1]]}', "ack.marks"),
    "marks_zero": (b'{"type":"accept","have":1,"marks":{"a":0}}', "seq >= 1"),
    "marks_negative": (b'{"type":"ack","upto":1,"marks":{"a":-1}}', "out of range"),
    "marks_bool": (b'{"type":"ack","upto":1,"marks":{"a":true}}', "got bool"),
    "marks_long_replica": (b'{"type":"ack","upto":1,"marks":{"' + b"r" * 129 + b'":1}}',
                           "replica id must have"),
    "empty_replica": (b'{"type":"hello","version":1,"cluster":"c","replica":"",'
                      b'"follower":false,"last_seq":0}', "hello.replica"),
    "follower_not_bool": (b'{"type":"hello","version":1,"cluster":"c","replica":"r",'
                          b'"follower":0,"last_seq":0}', "hello.follower"),
}


def _load() -> dict[str, Any]:
    if os.environ.get("CRDTSYNC_REGEN_VECTORS"):
        data = {
            "comment": "Golden wire vectors of crdtsync.sync messages; see docs/protocol.md.",
            "protocol_version": PROTOCOL_VERSION,
            "valid": {name: encode_message(m).decode() for name, m in MESSAGES.items()},
            "invalid": {name: {"wire": raw.decode(), "error": err}
                        for name, (raw, err) in INVALID.items()},
        }
        VECTORS.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return json.loads(VECTORS.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    return _load()


def test_vectors_cover_every_message(vectors: dict[str, Any]) -> None:
    assert vectors["protocol_version"] == PROTOCOL_VERSION
    assert sorted(vectors["valid"]) == sorted(MESSAGES)
    assert sorted(vectors["invalid"]) == sorted(INVALID)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_encoding_matches_golden_vector(name: str, vectors: dict[str, Any]) -> None:
    wire = vectors["valid"][name].encode()
    assert encode_message(MESSAGES[name]) == wire
    decoded = decode_message(wire)
    assert decoded == MESSAGES[name]
    assert encode_message(decoded) == wire


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_input_raises_decode_error(name: str, vectors: dict[str, Any]) -> None:
    vector = vectors["invalid"][name]
    with pytest.raises(DecodeError, match=None) as info:
        decode_message(vector["wire"].encode())
    assert vector["error"] in str(info.value)


def test_size_limit_and_non_bytes() -> None:
    with pytest.raises(DecodeError, match="exceeds the limit"):
        decode_message(b'{"type":"ack","upto":1}', max_bytes=10)
    with pytest.raises(DecodeError, match="expected bytes"):
        decode_message(123)  # type: ignore[arg-type]


def test_encoding_is_canonical_whatever_the_group_order() -> None:
    a, b = _group(), _group()
    assert encode_message(Delta(1, 1, a)) == encode_message(Delta(1, 1, dict(reversed(b.items()))))


def test_encode_rejects_non_messages() -> None:
    with pytest.raises(TypeError):
        encode_message("hello")  # type: ignore[arg-type]


# -- compressed framing ------------------------------------------------------------------------


def _big_delta() -> Delta:
    from crdtsync.types import GCounter

    group = {}
    for i in range(500):
        c = GCounter()
        c.increment("us.0123abcd", i + 1)
        group[f"c{i:04d}"] = c
    return Delta(1, 7, group)


def test_large_messages_are_compressed_and_round_trip() -> None:
    import zlib

    from crdtsync.sync.wire import encode_message_json

    msg = _big_delta()
    raw = encode_message_json(msg)
    packed = encode_message(msg)
    assert packed[:1] == b"\x01" and len(packed) * 3 < len(raw)
    assert decode_message(packed) == msg == decode_message(raw)
    assert zlib.decompress(packed[1:]) == raw
    assert encode_message(msg, compress=False) == raw


def test_compressed_frames_are_bounded_and_checked() -> None:
    import zlib

    bomb = b"\x01" + zlib.compress(b"[" + b" " * 10_000_000 + b"]", 9)
    with pytest.raises(DecodeError, match="beyond the limit"):
        decode_message(bomb, max_bytes=1_000_000)
    packed = encode_message(_big_delta())
    with pytest.raises(DecodeError, match="truncated"):
        decode_message(packed[:-5])
    with pytest.raises(DecodeError, match="follow"):
        decode_message(packed + b"xx")
    with pytest.raises(DecodeError, match="corrupt"):
        decode_message(b"\x01not zlib at all")
