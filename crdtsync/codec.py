"""Canonical encoding of CRDT values and deltas, and validation of untrusted input.

Every value encodes as the JSON array ``[type_tag, format_version, state]`` (orjson, sorted
object keys, every set-like collection sorted), so equal states give equal bytes. Set elements
and map keys are ``str`` or ``int`` and keep their type: ``1`` and ``"1"`` stay distinct
because collections are encoded as arrays of pairs, never as JSON objects keyed by element.

:func:`decode` treats its input as hostile: it checks size, JSON syntax, shape, types, integer
ranges, nesting depth and the causal invariants (every live dot lies in the context, no dot
is held twice) and raises :class:`~crdtsync.errors.DecodeError` on the first problem. It builds
a fresh value, so nothing is ever half-applied.
"""

from __future__ import annotations

import math
from itertools import chain, islice, repeat
from operator import itemgetter
from typing import Any

import orjson

from crdtsync.causal import CausalContext, Dot, DotMap, store_dots, store_is_bottom
from crdtsync.errors import DecodeError
from crdtsync.group import Group

__all__ = [
    "FORMAT_VERSION",
    "MAX_BYTES",
    "MAX_INT",
    "encode",
    "decode",
    "encode_group",
    "decode_group",
    "group_json",
    "check_column_keys",
    "dotmap_columns",
    "dotmap_from_columns",
    "check_key",
    "dumps",
    "dumps_unsorted",
    "check_int",
    "check_text",
    "check_replica",
    "remember_replica",
    "KNOWN_REPLICAS",
    "check_dot",
    "check_dots",
    "parse_json",
    "check_element",
    "check_json_value",
    "element_order",
    "sorted_items",
    "value_order",
]

FORMAT_VERSION = 1
MAX_BYTES = 64 * 1024 * 1024
"""Default upper bound on the size of one encoded value accepted by :func:`decode`."""
MAX_INT = 2**63 - 1
MAX_REPLICA_LEN = 128
MAX_ELEMENT_LEN = 4096
MAX_VALUE_DEPTH = 32
MAX_KEY_LEN = 1024

_OPTS = orjson.OPT_SORT_KEYS


def dumps(obj: Any) -> bytes:
    """Serialize a JSON-able object canonically (sorted keys, compact)."""
    return orjson.dumps(obj, option=_OPTS)


def dumps_unsorted(obj: Any) -> bytes:
    """Serialize a JSON-able object compactly, dict keys in their own order (not canonical:
    for bytes that are only ever decoded, such as the delta log's; sorting a batch's
    columns of a thousand keys took 3/4 of their encoding)."""
    return orjson.dumps(obj)


def encode(x: Any) -> bytes:
    """Return the canonical bytes of a CRDT value or delta."""
    return dumps((x.TYPE, FORMAT_VERSION, x.to_json()))


def decode(data: bytes | bytearray | memoryview | str, *, max_bytes: int = MAX_BYTES) -> Any:
    """Decode bytes made by :func:`encode`; raise DecodeError on anything else."""
    return from_envelope(parse_json(data, max_bytes, "encoded value"))


def parse_json(data: Any, max_bytes: int, what: str) -> Any:
    """Check the size of untrusted bytes and parse them as JSON; raise DecodeError."""
    if not isinstance(data, (bytes, bytearray, memoryview, str)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise DecodeError(f"{what} of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"{what} is not valid JSON: {exc}") from exc


def group_json(group: Any, *, log: bool = False) -> Any:
    """Return the JSON form of a delta group (a :class:`~crdtsync.group.Group` or a dict
    ``{key: value}``).

    A group without columns is ``[[key, envelope], ...]``; one with columns is ``{"d":
    [[key, envelope], ...], "c": [[type_tag, format_version, replica, {key: ...}, {key:
    ...}], ...]}`` (see :mod:`crdtsync.group` for what the two objects hold per type).
    Canonical (keys sorted, columns sorted by type and replica, each value's
    :meth:`~crdtsync.types.Crdt.to_json`) unless ``log``: then the group's own order, each
    value's ``log_json``, and each column in its type's ``column_log_json`` form if it has
    one (the replica's delta log; it decodes to the same group, but its bytes are not
    canonical). Built of tuples, which
    serialize as the same JSON arrays as lists, faster.
    """
    v = FORMAT_VERSION
    deltas, counts = (group.deltas, group.counts) if type(group) is Group else (group, None)
    if log:
        items: Any = [(k, (x.TYPE, v, x.log_json())) for k, x in deltas.items()]
    else:
        items = [(k, (x.TYPE, v, x.to_json())) for k, x in sorted(deltas.items())]
    if not counts:
        return items
    if log:  # a type may write its columns more compactly in the log (LWW: one timestamp)
        cols = [(kind.TYPE, v, replica, *getattr(kind, "column_log_json", _as_is)(up, down))
                for (kind, replica), (up, down) in counts.items() if up or down]
    else:
        cols = sorted(((kind.TYPE, v, replica, up, down)
                       for (kind, replica), (up, down) in counts.items() if up or down),
                      key=itemgetter(0, 2))
    if not cols:
        return items
    return {"d": items, "c": cols}


def _as_is(up: Any, down: Any) -> tuple[Any, Any]:
    return up, down


def encode_group(group: Any) -> bytes:
    """Return the canonical bytes of a delta group (one atomic batch)."""
    return dumps(group_json(group))


def decode_group(data: bytes | bytearray | memoryview | str, *,
                 max_bytes: int = MAX_BYTES) -> Group:
    """Decode bytes made by :func:`encode_group`; raise DecodeError on anything else."""
    return group_from_json(parse_json(data, max_bytes, "encoded group"))


def group_from_json(obj: Any) -> Group:
    """Build a delta group from its freshly parsed JSON form (see :func:`group_json`);
    raise DecodeError.

    A group that passes the bulk checks is decoded in one pass per check (types with a
    ``from_json_many`` class method, the counters, decode all their states in one call and
    take ownership of the parsed objects: pass objects nothing else holds); anything unusual
    is decoded item by item, which raises the precise error.
    """
    counts = None
    if type(obj) is dict:
        if obj.keys() != {"d", "c"}:
            raise DecodeError('a delta group with columns must be {"d": [...], "c": [...]}')
        counts = _columns(obj["c"])
        obj = obj["d"]
    deltas = _bulk_group(obj)
    return Group(_group_items(obj) if deltas is None else deltas, counts)


def _columns(obj: Any) -> dict[tuple[type[Any], str], tuple[dict[str, Any], dict[str, Any]]]:
    """Decode a group's columns ``[[tag, version, replica, {key: ...}, {key: ...}], ...]``.

    The envelope is checked here; the two entry objects by the type's ``column_from_json``
    (counters: totals; LWW registers: timestamps and values).
    """
    if type(obj) is not list:
        raise DecodeError("a delta group's columns must be a list")
    counts: dict[tuple[type[Any], str], tuple[dict[str, Any], dict[str, Any]]] = {}
    for col in obj:
        if type(col) is not list or len(col) != 5:
            raise DecodeError("a column must be [type, version, replica, {key: ...}, "
                              "{key: ...}]")
        tag, version, replica, up, down = col
        cls = (_REGISTRY or _registry()).get(tag) if type(tag) is str else None
        if cls is None or not hasattr(cls, "column_from_json"):
            raise DecodeError(f"a column's type must be a counter or lww, got {tag!r:.40}")
        from_log = getattr(cls, "column_from_log", None)
        if from_log is not None:  # the log's compact form, if the type writes one
            up, down = from_log(up, down)
        if type(version) is not int or version != FORMAT_VERSION:
            raise DecodeError(f"unsupported format version {version!r} for {tag}")
        try:
            if replica not in KNOWN_REPLICAS:
                remember_replica(replica)
            if type(up) is not dict or type(down) is not dict:
                raise TypeError("column entries must be an object {key: ...}")
            check_column_keys(up)
            check_column_keys(down)
            up, down = cls.column_from_json(up, down)
        except (TypeError, ValueError) as exc:
            raise DecodeError(f"invalid {tag} column: {exc}") from exc
        if (cls, replica) in counts:
            raise DecodeError(f"two {tag} columns of replica {replica!r:.80}")
        counts[(cls, replica)] = (up, down)
    return counts


def check_column_keys(obj: dict[Any, Any]) -> None:
    """Check that every key of a column's entry object is a valid keyspace key."""
    if obj:
        keys = "".join(obj)
        if not (keys.isascii() and min(map(len, obj)) >= 1
                and max(map(len, obj)) <= MAX_KEY_LEN):
            for key in obj:
                check_key(key)


def _bulk_group(obj: Any) -> dict[str, Any] | None:
    """Return the group of parsed ``[[key, envelope], ...]`` if every check passes in bulk.

    None: something is unusual (a bad or non-ASCII key, a bad envelope or state); then
    :func:`_group_items` decodes it item by item. What this accepts, that one accepts too,
    with the same result.
    """
    if type(obj) is not list:
        return None
    if not obj:
        return {}
    if set(map(type, obj)) != {list} or set(map(len, obj)) != {2}:
        return None
    keys, envs = zip(*obj, strict=True)
    if set(map(type, keys)) != {str} or len(set(keys)) != len(keys):
        return None
    sizes = set(map(len, keys))
    if min(sizes) < 1 or max(sizes) > MAX_KEY_LEN or not "".join(keys).isascii():
        return None
    if set(map(type, envs)) != {list} or set(map(len, envs)) != {3}:
        return None
    tags, versions, states = zip(*envs, strict=True)
    if set(map(type, versions)) != {int} or set(versions) != {FORMAT_VERSION}:
        return None
    if set(map(type, tags)) != {str}:
        return None
    kinds = set(tags)
    if len(kinds) == 1:
        values = _values_of(tags[0], list(states), envs)
    else:
        values = [None] * len(envs)
        for tag in kinds:
            where = [i for i, t in enumerate(tags) if t == tag]
            some = _values_of(tag, [states[i] for i in where], [envs[i] for i in where])
            if some is None:
                return None
            for i, x in zip(where, some, strict=True):
                values[i] = x
    return None if values is None else dict(zip(keys, values, strict=True))


def _values_of(tag: str, states: list[Any], envs: Any) -> list[Any] | None:
    """Decode the states of one type tag (None: decode the group item by item instead)."""
    cls = (_REGISTRY or _registry()).get(tag)
    if cls is None:
        return None
    many = getattr(cls, "from_json_many", None)
    if many is not None:
        try:
            return many(states)  # type: ignore[no-any-return]
        except (ValueError, TypeError, KeyError, RecursionError):
            return None
    try:
        return [from_envelope(env) for env in envs]
    except DecodeError:
        return None


def _group_items(obj: Any) -> dict[str, Any]:
    """:func:`group_from_json` item by item: the reference, and the precise errors."""
    if not isinstance(obj, list):
        raise DecodeError("a delta group must be a list of [key, value]")
    group: dict[str, Any] = {}
    for item in obj:
        if not isinstance(item, list) or len(item) != 2:
            raise DecodeError("a delta group entry must be [key, value]")
        try:
            key = check_key(item[0])
        except (TypeError, ValueError) as exc:
            raise DecodeError(f"bad key in delta group: {exc}") from exc
        if key in group:
            raise DecodeError(f"key {key!r} appears twice in a delta group")
        group[key] = from_envelope(item[1])
    return group


_REGISTRY: dict[str, Any] = {}


def _registry() -> dict[str, Any]:
    """The type registry, imported on first use (the types import this module)."""
    from crdtsync.types.base import REGISTRY

    global _REGISTRY
    _REGISTRY = REGISTRY
    return REGISTRY


def from_envelope(obj: Any) -> Any:
    """Build a value from an already parsed ``[tag, version, state]``; raise DecodeError."""
    if not isinstance(obj, list) or len(obj) != 3:
        raise DecodeError("expected [type, version, state]")
    tag, version, state = obj
    cls = (_REGISTRY or _registry()).get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise DecodeError(f"unknown type tag {tag!r}")
    if type(version) is not int or version != FORMAT_VERSION:
        raise DecodeError(f"unsupported format version {version!r} for {tag}")
    try:
        return cls.from_json(state)
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise DecodeError(f"invalid {tag} state: {exc}") from exc


# -- validation helpers (raise ValueError/TypeError; decode wraps them in DecodeError) ----------


def check_text(x: str) -> str:
    """Return ``x`` if it can be encoded as UTF-8 (no lone surrogates); raise ValueError."""
    if not x.isascii():
        x.encode("utf-8")  # UnicodeEncodeError is a ValueError
    return x


def check_int(x: Any, *, low: int = 0, high: int = MAX_INT) -> int:
    """Return ``x`` if it is an int (not a bool) in ``[low, high]``."""
    if type(x) is not int:
        raise TypeError(f"expected an int, got {type(x).__name__}")
    if not low <= x <= high:
        raise ValueError(f"int {x} out of range [{low}, {high}]")
    return x


def check_replica(x: Any) -> str:
    """Return ``x`` if it is a valid replica id: a non-empty str of at most 128 chars."""
    if type(x) is not str:
        raise TypeError(f"replica id must be a str, got {type(x).__name__}")
    if not 0 < len(x) <= MAX_REPLICA_LEN:
        raise ValueError(f"replica id must have 1 to {MAX_REPLICA_LEN} characters")
    return check_text(x)


def check_key(x: Any) -> str:
    """Return ``x`` if it is a valid keyspace key: a non-empty str of at most 1024 chars."""
    if type(x) is not str:
        raise TypeError(f"key must be a str, got {type(x).__name__}")
    if not 0 < len(x) <= MAX_KEY_LEN:
        raise ValueError(f"key must have 1 to {MAX_KEY_LEN} characters")
    return check_text(x)


KNOWN_REPLICAS: set[str] = set()
"""Replica ids that passed :func:`check_replica` (mutators' fast path: one set lookup)."""


def remember_replica(x: Any) -> str:
    """Validate ``x`` as a replica id and remember it (at most 4,096 are remembered)."""
    check_replica(x)
    if len(KNOWN_REPLICAS) < 4096:
        KNOWN_REPLICAS.add(x)
    return x  # type: ignore[no-any-return]


def check_dot(x: Any) -> Dot:
    """Return the dot encoded as ``[replica, seq]``."""
    if not isinstance(x, list) or len(x) != 2:
        raise ValueError(f"a dot must be [replica, seq], got {x!r:.60}")
    replica, seq = x
    if replica not in KNOWN_REPLICAS:
        remember_replica(replica)
    if type(seq) is not int or not 0 < seq <= MAX_INT:
        check_int(seq, low=1)
    return (replica, seq)


def check_dots(items: list[Any]) -> list[Dot]:
    """Return the dots encoded as the list ``[[replica, seq], ...]``; raise as :func:`check_dot`.

    The whole list is checked at once (type and range sets, one lookup per replica id); only
    if that finds a problem is it checked dot by dot, to raise the same error as before.
    """
    dots = _bulk_dots(items)
    if dots is None:
        return [check_dot(x) for x in items]
    return dots


def _bulk_dots(items: list[Any]) -> list[Dot] | None:
    """Return the dots of ``items`` if they are all valid, or None: check them one by one."""
    if not items:
        return []
    if set(map(type, items)) != {list} or set(map(len, items)) != {2}:
        return None
    replicas, seqs = zip(*items, strict=True)
    if set(map(type, seqs)) != {int} or min(seqs) < 1 or max(seqs) > MAX_INT:
        return None
    if set(map(type, replicas)) != {str}:
        return None
    for replica in set(replicas).difference(KNOWN_REPLICAS):
        try:
            remember_replica(replica)
        except (TypeError, ValueError):
            return None
    return list(zip(replicas, seqs, strict=True))


def _bulk_elements_ok(keys: tuple[Any, ...] | list[Any]) -> bool:
    """Return True if :func:`check_element` accepts every key (False: check one by one)."""
    types = set(map(type, keys))
    if not types <= {str, int}:
        return False
    strs = keys if int not in types else [k for k in keys if type(k) is str]
    if strs:
        if max(map(len, strs)) > MAX_ELEMENT_LEN:
            return False
        text = "".join(strs)
        if not text.isascii():
            try:
                text.encode("utf-8")  # a lone surrogate fails, joined or not
            except UnicodeEncodeError:
                return False
    if int in types:
        ints = keys if str not in types else [k for k in keys if type(k) is int]
        if min(ints) < -MAX_INT - 1 or max(ints) > MAX_INT:
            return False
    return True


def check_element(x: Any) -> str | int:
    """Return ``x`` if it may be a set element or map key: a str or an int (not a bool)."""
    t = type(x)
    if t is str:
        if len(x) > MAX_ELEMENT_LEN:
            raise ValueError(f"element of {len(x)} characters exceeds {MAX_ELEMENT_LEN}")
        return check_text(x)
    if t is int:
        if not -MAX_INT - 1 <= x <= MAX_INT:
            raise ValueError(f"int element {x} out of the 64-bit range")
        return x  # type: ignore[no-any-return]
    raise TypeError(f"elements and keys must be str or int, got {t.__name__}")


def check_json_value(x: Any, depth: int = 0) -> Any:
    """Return ``x`` if it is a JSON value (null, bool, int, finite float, str, list, dict)."""
    if depth > MAX_VALUE_DEPTH:
        raise ValueError(f"value nested deeper than {MAX_VALUE_DEPTH}")
    t = type(x)
    if t is str:
        return check_text(x)
    if x is None or t is bool:
        return x
    if t is int:
        if not -MAX_INT - 1 <= x <= 2**64 - 1:
            raise ValueError(f"int value {x} out of the 64-bit range")
        return x
    if t is float:
        if not math.isfinite(x):
            raise ValueError("float value must be finite")
        return x
    if t is list or t is tuple:
        return [check_json_value(v, depth + 1) for v in x]
    if t is dict:
        out = {}
        for k, v in x.items():
            if type(k) is not str:
                raise TypeError(f"object keys must be str, got {type(k).__name__}")
            out[check_text(k)] = check_json_value(v, depth + 1)
        return out
    raise TypeError(f"not a JSON value: {t.__name__}")


def element_order(x: str | int) -> tuple[bool, Any]:
    """Sort key that orders ints before strs, each in natural order."""
    return (type(x) is str, x)


def sorted_items(entries: dict[Any, Any]) -> list[tuple[Any, Any]]:
    """Return the items of a dict keyed by set elements, sorted by :func:`element_order`.

    Keys of one type sort directly; a mix of ints and strs makes ``sorted`` raise TypeError
    (any sort of them must compare an int with a str) and is sorted with the key function.
    """
    try:
        return sorted(entries.items(), key=itemgetter(0))
    except TypeError:
        return sorted(entries.items(), key=lambda item: element_order(item[0]))


def value_order(x: Any) -> bytes:
    """Sort key for arbitrary JSON values: their canonical encoding."""
    return dumps(x)


def check_store_in_context(store: Any, ctx: CausalContext) -> None:
    """Raise ValueError unless every dot of ``store`` lies in ``ctx``."""
    missing = ctx.missing(store_dots(store))
    if missing:
        raise ValueError(f"live dot {missing[0]} is missing from the causal context")


def dotmap_from_json(obj: Any, key_of: Any, nested_of: Any) -> DotMap:
    """Build a DotMap from ``[[key..., nested], ...]`` checking that no dot repeats."""
    if not isinstance(obj, list):
        raise ValueError("store must be a list")
    dm = DotMap()
    for item in obj:
        if not isinstance(item, list) or not item:
            raise ValueError("store entry must be a non-empty list")
        key = key_of(item)
        if key in dm.entries:
            raise ValueError(f"duplicate key {key!r} in store")
        nested = nested_of(item)
        for dot in store_dots(nested):
            if dot in dm.owner:
                raise ValueError(f"dot {dot} held by two entries")
            dm.owner[dot] = key
        if store_is_bottom(nested):
            raise ValueError(f"empty entry for {key!r} in store")
        dm.entries[key] = nested
    return dm


def dotmap_from_columns(obj: Any) -> DotMap:
    """Build an AWORSet store from ``{replica: [[element, ...], [seq, ...]], ...}``.

    Each ``(replica, seq)`` is one dot held by the element beside it; an element may hold
    dots of several replicas (concurrent adds). Raises ValueError or TypeError unless every
    replica id, element and seq is valid, each replica's two lists are non-empty and of one
    length, and no dot appears twice. The checks run in bulk; only a failing one looks at
    the items one by one, for the precise error.
    """
    if type(obj) is not dict:
        raise ValueError("aworset store must be an object {replica: [elements, seqs]}")
    if not obj:
        return DotMap()
    elements: list[Any] = []
    dots: list[Dot] = []
    for replica, cols in obj.items():
        if replica not in KNOWN_REPLICAS:
            remember_replica(replica)
        if type(cols) is not list or len(cols) != 2:
            raise ValueError("an aworset replica's entries must be [[element, ...], [seq, ...]]")
        els, seqs = cols
        if type(els) is not list or type(seqs) is not list or not els or len(els) != len(seqs):
            raise ValueError(f"the elements and seqs of replica {replica!r:.80} must be "
                             "non-empty lists of one length")
        if not _bulk_elements_ok(els):
            for e in els:
                check_element(e)
        if set(map(type, seqs)) != {int} or min(seqs) < 1 or max(seqs) > MAX_INT:
            for n in seqs:
                check_int(n, low=1)
        elements += els
        dots += zip(repeat(replica), seqs)
    owner = dict(zip(dots, elements, strict=True))
    if len(owner) != len(dots):
        raise ValueError("a dot appears twice in the aworset store")
    return DotMap.of_dots(owner)


def dotmap_columns(owner: dict[Dot, Any], *, canonical: bool = True) -> dict[str, list[Any]]:
    """Return the JSON form :func:`dotmap_from_columns` reads, of a store's dot index.

    ``canonical``: each replica's entries in ascending seq (a dot is unique, so this orders
    any store, whatever its elements); else in the index's own order (the delta log).
    """
    if not owner:
        return {}
    dots: Any = sorted(owner) if canonical else owner
    first = next(iter(dots))[0]
    if (dots[-1][0] == first) if canonical else set(map(_FIRST, owner)) == {first}:
        # one replica, the usual case: two lists built in C
        return {first: [list(map(owner.__getitem__, dots)), list(map(_SECOND, dots))]}
    runs: dict[str, list[Any]] = {}
    for dot in dots:
        run = runs.get(dot[0])
        if run is None:
            run = runs[dot[0]] = [[], []]
        run[0].append(owner[dot])
        run[1].append(dot[1])
    return runs


_FIRST, _SECOND = itemgetter(0), itemgetter(1)


def dotsets_from_json(obj: Any) -> DotMap | None:
    """Build the DotMap of ``[[element, [[replica, seq], ...]], ...]`` checking it in bulk.

    Returns None if the bulk checks find any problem: :func:`dotmap_from_json` then checks it
    entry by entry and raises the precise error. What this accepts, that one accepts too,
    with the same result (an AWORSet store, an element of one dot held compact: the dot).
    """
    if type(obj) is not list:
        return None
    dm = DotMap()
    if not obj:
        return dm
    if set(map(type, obj)) != {list} or set(map(len, obj)) != {2}:
        return None
    keys, lists = zip(*obj, strict=True)
    if set(map(type, lists)) != {list} or not _bulk_elements_ok(keys):
        return None
    sizes = list(map(len, lists))
    if min(sizes) == 0:
        return None
    dots = _bulk_dots(list(chain.from_iterable(lists)))
    if dots is None:
        return None
    if len(dots) == len(keys):  # one dot per element, the usual case: all compact
        dm.entries = dict(zip(keys, dots, strict=True))
        dm.owner = dict(zip(dots, keys, strict=True))
    else:
        it = iter(dots)
        dm.entries = {k: next(it) if n == 1 else set(islice(it, n))
                      for k, n in zip(keys, sizes, strict=True)}
        dm.owner = dict(zip(dots, chain.from_iterable(
            repeat(k, n) for k, n in zip(keys, sizes, strict=True)), strict=True))
    # the dicts are smaller than their inputs if an element or a dot appears twice
    if len(dm.entries) != len(keys) or len(dm.owner) != len(dots):
        return None
    return dm


def dotset_from_json(obj: Any) -> set[Dot]:
    """Build a DotSet from ``[[replica, seq], ...]``."""
    if not isinstance(obj, list):
        raise ValueError("dot set must be a list")
    dots = set(check_dots(obj))
    if len(dots) != len(obj):
        raise ValueError("duplicate dot in dot set")
    return dots


def sorted_dots(dots: Any) -> list[list[Any]]:
    """Return dots as sorted ``[[replica, seq], ...]``."""
    if len(dots) == 1:
        return [list(*dots)]  # the only dot, a (replica, seq) tuple, as a list
    return [[r, s] for r, s in sorted(dots)]
