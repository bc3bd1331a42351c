"""The one canonical codec of protocol messages.

A message is a JSON object ``{"type": <tag>, <field>: <value>, ...}`` serialized by orjson
with sorted keys, so equal messages give equal bytes. A group is encoded as by
:func:`crdtsync.codec.encode_group`: ``[[key, [type_tag, format_version, state]], ...]``
sorted by key, each value a :mod:`crdtsync.codec` envelope; a group holding columns
(:mod:`crdtsync.group`) is ``{"d": [...], "c": [[type_tag, format_version, replica,
{key: ...}, {key: ...}], ...]}``. Tags and fields are listed
in ``docs/protocol.md`` and pinned by the golden vectors in
``tests/vectors/sync_messages.json``.

:func:`decode_message` treats its input as hostile: it checks size, JSON syntax, the exact
set of fields, types and ranges, and decodes every CRDT through :mod:`crdtsync.codec`; the
first problem raises :class:`~crdtsync.errors.DecodeError` naming the message and field.
It builds fresh values, so nothing is half-applied.

Framing: a message of more than :data:`COMPRESS_ABOVE` bytes is sent as the byte ``0x01``
followed by its zlib (level 1) compression, when that is smaller. JSON never starts with
``0x01``, so the two forms cannot be confused. Delta groups repeat type tags, field names
and replica ids, and typically shrink 3-6x. Decompression is bounded by ``max_bytes``
(a compressed "bomb" is refused before it is inflated past the limit).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from crdtsync.codec import (
    MAX_INT,
    MAX_KEY_LEN,
    MAX_REPLICA_LEN,
    check_replica,
    dumps,
    group_from_json,
    group_json,
    parse_json,
)
from crdtsync.errors import DecodeError
from crdtsync.sync.messages import (
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
)

__all__ = [
    "MAX_MESSAGE_BYTES",
    "COMPRESS_ABOVE",
    "encode_message_json",
    "MAX_BUCKETS",
    "encode_message",
    "decode_message",
]

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
COMPRESS_ABOVE = 512
"""Messages larger than this many bytes are zlib-compressed when that makes them smaller."""
_COMPRESSED = b"\x01"
"""Default upper bound on the size of one encoded message accepted by decode_message."""
MAX_BUCKETS = 4096
"""Most buckets a BucketDigests message may carry (a power of two)."""
MAX_REASON_LEN = 1024
MAX_MARKS = 4096
"""Most marks an accept or ack may carry (one per peer of the sender)."""
MAX_GATES = 1 << 16
"""Most needs a delta may carry (at most one per log entry it covers)."""
_HEX = frozenset("0123456789abcdef")


# -- field kinds: (to JSON, from JSON raising ValueError/TypeError/DecodeError) -------------


def _int(x: Any) -> int:
    if type(x) is not int:
        raise TypeError(f"expected an int, got {type(x).__name__}")
    if not 0 <= x <= MAX_INT:
        raise ValueError(f"int {x} out of range [0, 2**63-1]")
    return x


def _seq(x: Any) -> int:
    if _int(x) == 0:
        raise ValueError("expected a seq >= 1 (omit the field when there is none)")
    return x  # type: ignore[no-any-return]


def _str(x: Any) -> str:
    if type(x) is not str:
        raise TypeError(f"expected a str, got {type(x).__name__}")
    if len(x) > MAX_REASON_LEN:
        raise ValueError(f"str of {len(x)} characters exceeds {MAX_REASON_LEN}")
    return x


def _bool(x: Any) -> bool:
    if type(x) is not bool:
        raise TypeError(f"expected a bool, got {type(x).__name__}")
    return x


def _hex16(x: Any) -> str:
    if type(x) is not str or len(x) != 16 or not _HEX.issuperset(x):
        raise ValueError(f"expected 16 lowercase hex digits, got {x!r:.40}")
    return x


def _hashes(x: Any) -> tuple[str, ...]:
    if not isinstance(x, list):
        raise TypeError("expected a list of hashes")
    n = len(x)
    if not 0 < n <= MAX_BUCKETS or n & (n - 1):
        raise ValueError(f"bucket count {n} is not a power of two in [1, {MAX_BUCKETS}]")
    return tuple(_hex16(h) for h in x)


def _ints(x: Any) -> tuple[int, ...]:
    if not isinstance(x, list):
        raise TypeError("expected a list of ints")
    out = tuple(_int(i) for i in x)
    if len(set(out)) != len(out):
        raise ValueError("duplicate bucket id")
    return out


def _pairs(x: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(x, list):
        raise TypeError("expected a list of [key, digest] pairs")
    out = []
    for item in x:
        if not isinstance(item, list) or len(item) != 2 or type(item[0]) is not str:
            raise ValueError(f"expected [key, digest], got {item!r:.60}")
        if not 0 < len(item[0]) <= MAX_KEY_LEN:
            raise ValueError(f"key must have 1 to {MAX_KEY_LEN} characters")
        out.append((item[0], _hex16(item[1])))
    if len({k for k, _ in out}) != len(out):
        raise ValueError("duplicate key in digests")
    return tuple(out)


def _marks(x: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(x, dict):
        raise TypeError("expected an object replica -> seq")
    if not 0 < len(x) <= MAX_MARKS:
        raise ValueError(f"{len(x)} marks: expected 1 to {MAX_MARKS} (omit the field "
                         f"when there are none)")
    return tuple(sorted((check_replica(replica), _seq(seq)) for replica, seq in x.items()))


def _origins(x: Any) -> tuple[str, ...]:
    if not isinstance(x, list):
        raise TypeError("expected a list of replica ids")
    if not 0 < len(x) <= MAX_MARKS or len(set(x)) != len(x):
        raise ValueError(f"expected 1 to {MAX_MARKS} distinct replica ids")
    return tuple(sorted(check_replica(r) for r in x))


def _gates(x: Any) -> tuple[tuple[int, str, int], ...]:
    if not isinstance(x, list):
        raise TypeError("expected a list of [seq, replica, upto]")
    if not 0 < len(x) <= MAX_GATES:
        raise ValueError(f"expected 1 to {MAX_GATES} needs (omit the field when there are none)")
    out = []
    for item in x:
        if not isinstance(item, list) or len(item) != 3:
            raise ValueError(f"expected [seq, replica, upto], got {item!r:.60}")
        out.append((_seq(item[0]), check_replica(item[1]), _seq(item[2])))
    if any(a[0] >= b[0] for a, b in zip(out, out[1:], strict=False)):
        raise ValueError("needs must be in strictly increasing seq order")
    return tuple(out)


def _same(x: Any) -> Any:
    return x


_KINDS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "int": (_same, _int),
    "seq": (_same, _seq),
    "str": (_same, _str),
    "bool": (_same, _bool),
    "hashes": (list, _hashes),
    "ints": (list, _ints),
    "pairs": (lambda ps: [list(p) for p in ps], _pairs),
    "group": (group_json, group_from_json),
    "marks": (dict, _marks),
    "origins": (list, _origins),
    "gates": (lambda gs: [list(g) for g in gs], _gates),
}

_SCHEMA: dict[str, tuple[type[Any], dict[str, str]]] = {
    "hello": (Hello, {"version": "int", "cluster": "str", "replica": "str",
                      "follower": "bool", "last_seq": "int"}),
    "accept": (Accept, {"have": "int", "marks": "marks"}),
    "refuse": (Refuse, {"reason": "str"}),
    "delta": (Delta, {"start": "int", "end": "int", "group": "group", "needs": "gates"}),
    "ack": (Ack, {"upto": "int", "marks": "marks"}),
    "nack": (Nack, {"have": "int", "needs": "origins"}),
    "buckets": (BucketDigests, {"cid": "int", "upto": "int", "hashes": "hashes"}),
    "keys": (KeyDigests, {"cid": "int", "part": "int", "parts": "int",
                          "buckets": "ints", "digests": "pairs"}),
    "states": (States, {"cid": "int", "upto": "int", "part": "int", "parts": "int",
                        "group": "group", "bound": "seq"}),
}
_OPTIONAL = frozenset({("accept", "marks"), ("ack", "marks"), ("states", "bound"),
                       ("delta", "needs"), ("nack", "needs")})
"""Fields left out of the JSON when empty (their default); absent, they decode as empty."""
_TAG_OF: dict[type[Any], str] = {cls: tag for tag, (cls, _) in _SCHEMA.items()}


def encode_message(msg: Message, *, compress: bool = True) -> bytes:
    """Return the bytes of a protocol message (compressed if large, see the module doc)."""
    raw = encode_message_json(msg)
    if compress and len(raw) > COMPRESS_ABOVE:
        packed = zlib.compress(raw, 1)
        if len(packed) + 1 < len(raw):
            return _COMPRESSED + packed
    return raw


def encode_message_json(msg: Message) -> bytes:
    """Return the canonical (uncompressed) JSON bytes of a protocol message."""
    tag = _TAG_OF.get(type(msg))
    if tag is None:
        raise TypeError(f"not a protocol message: {msg!r:.80}")
    obj: dict[str, Any] = {"type": tag}
    for name, kind in _SCHEMA[tag][1].items():
        value = getattr(msg, name)
        if value or (tag, name) not in _OPTIONAL:
            obj[name] = _KINDS[kind][0](value)
    return dumps(obj)


def decode_message(data: bytes | bytearray | memoryview | str, *,
                   max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Decode bytes made by :func:`encode_message`; raise DecodeError on anything else."""
    if isinstance(data, (bytes, bytearray, memoryview)) and bytes(data[:1]) == _COMPRESSED:
        data = _inflate(data[1:], max_bytes)
    obj = parse_json(data, max_bytes, "message")
    if not isinstance(obj, dict):
        raise DecodeError("message must be a JSON object")
    tag = obj.get("type")
    if not isinstance(tag, str) or tag not in _SCHEMA:
        raise DecodeError(f"unknown message type {tag!r:.40}")
    cls, fields = _SCHEMA[tag]
    extra = obj.keys() - fields.keys() - {"type"}
    missing = {f for f in fields.keys() - obj.keys() if (tag, f) not in _OPTIONAL}
    if extra or missing:
        raise DecodeError(f"{tag} message: missing fields {sorted(missing)}, "
                          f"unexpected fields {sorted(extra)[:5]}")
    values = {}
    for name, kind in fields.items():
        if name not in obj:
            continue  # an optional field left out: the dataclass default
        try:
            values[name] = _KINDS[kind][1](obj[name])
        except (ValueError, TypeError) as exc:  # DecodeError is a ValueError
            raise DecodeError(f"{tag}.{name}: {exc}") from exc
    return _check(cls(**values))  # type: ignore[no-any-return]


def _check(msg: Any) -> Any:
    """Check the invariants that tie fields together."""
    if isinstance(msg, Delta) and not 1 <= msg.start <= msg.end:
        raise DecodeError(f"delta interval [{msg.start}, {msg.end}] is not 1 <= start <= end")
    if isinstance(msg, Delta) and msg.needs and not (
            msg.start <= msg.needs[0][0] and msg.needs[-1][0] <= msg.end):
        raise DecodeError(f"delta.needs: seqs outside the interval [{msg.start}, {msg.end}]")
    if isinstance(msg, (KeyDigests, States)) and not msg.part < msg.parts:
        raise DecodeError(f"part {msg.part} of {msg.parts} is out of range")
    if isinstance(msg, Hello) and not 0 < len(msg.replica) <= MAX_REPLICA_LEN:
        raise DecodeError(f"hello.replica: replica id must have 1 to {MAX_REPLICA_LEN} characters")
    return msg


def _inflate(data: Any, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise DecodeError(f"compressed message is corrupt: {exc}") from exc
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise DecodeError(f"compressed message inflates beyond the limit of {max_bytes} bytes")
    if not inflater.eof:
        raise DecodeError("compressed message is truncated")
    if inflater.unused_data:
        raise DecodeError("bytes follow the compressed message")
    return out
