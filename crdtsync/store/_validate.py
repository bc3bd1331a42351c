"""Validation of a :class:`~crdtsync.store.base.Commit`, shared by every store.

Both stores run the same checks in the same order, so they accept and reject exactly the
same commits with the same errors. A commit is checked in two steps, both before anything is
written:

1. :func:`prepare` checks the commit on its own (types, a key's tag agreeing between
   ``bases`` and ``deltas``, log seqs strictly increasing) and serializes meta values;
2. :func:`check_against` checks it against what is stored (a key's tag never changes, log
   seqs above every seq the store ever held). It costs one lookup per touched key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from crdtsync.store.base import MAX_UPTO, Commit, LogEntry

__all__ = [
    "MAX_SEQ",
    "Prepared",
    "prepare",
    "check_against",
    "as_blob",
    "check_text",
    "check_upto",
    "json_value",
]

MAX_SEQ = 2**63 - 2
"""Highest log seq a store accepts (SQLite integers are signed 64-bit; ``next_seq`` must fit)."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated commit, normalized: blobs are ``bytes``, meta values are JSON text."""

    bases: list[tuple[str, str, bytes]]
    deltas: list[tuple[str, str, bytes]]
    log: list[LogEntry]
    meta: list[tuple[str, str]]
    trim_log_below: int | None
    tags: dict[str, str]


def check_text(what: str, value: object) -> str:
    """Return ``value`` if it is a ``str`` storable as UTF-8, else raise TypeError/ValueError."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} {value!r} is not valid unicode: {exc.reason}") from exc
    return value


def as_blob(what: str, value: object) -> bytes:
    """Return ``value`` as immutable ``bytes`` (bytes, bytearray and memoryview accepted)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


def _check_seq(what: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be int, not {type(value).__name__}")
    if not 0 <= value <= MAX_SEQ:
        raise ValueError(f"{what} {value} is out of range 0..{MAX_SEQ}")
    return value


def _keyed(section: str, items: object, tags: dict[str, str]) -> list[tuple[str, str, bytes]]:
    if not isinstance(items, dict):
        raise TypeError(f"commit.{section} must be a dict, not {type(items).__name__}")
    out: list[tuple[str, str, bytes]] = []
    for key, pair in items.items():
        if (type(key) is str and type(pair) is tuple and len(pair) == 2
                and type(pair[0]) is str and pair[0] and type(pair[1]) is bytes
                and key.isascii() and pair[0].isascii()):
            tag, blob = pair  # the common case, checked without building error messages
        else:
            check_text(f"commit.{section} key", key)
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise TypeError(f"commit.{section}[{key!r}] must be a (tag, bytes) tuple")
            tag = check_text(f"commit.{section}[{key!r}] tag", pair[0])
            if not tag:
                raise ValueError(f"commit.{section}[{key!r}] tag is empty")
            blob = as_blob(f"commit.{section}[{key!r}] state", pair[1])
        known = tags.setdefault(key, tag)
        if known != tag:
            raise ValueError(f"key {key!r} is tagged {known!r} in bases but {tag!r} in deltas")
        out.append((key, tag, blob))
    return out


def _log(entries: object) -> list[LogEntry]:
    if not isinstance(entries, list):
        raise TypeError(f"commit.log must be a list, not {type(entries).__name__}")
    out: list[LogEntry] = []
    last = -1
    for entry in entries:
        if not isinstance(entry, LogEntry):
            raise TypeError(f"commit.log items must be LogEntry, not {type(entry).__name__}")
        seq = _check_seq("log seq", entry.seq)
        if seq <= last:
            raise ValueError(f"log seq {seq} does not follow {last} within the commit")
        last = seq
        if entry.origin is not None:
            check_text(f"log entry {seq} origin", entry.origin)
        out.append(LogEntry(seq, entry.origin, as_blob(f"log entry {seq} blob", entry.blob),
                            check_upto(seq, entry.origin, entry.upto)))
    return out


def check_upto(seq: int, origin: str | None, upto: object) -> int | None:
    """Return a log entry's ``upto`` if valid: None, or for an entry from a peer an int
    in ``1 .. MAX_UPTO``; else raise TypeError or ValueError."""
    if upto is None:
        return None
    if origin is None:
        raise ValueError(f"log entry {seq} is local (origin None) but has upto {upto!r}")
    if not isinstance(upto, int) or isinstance(upto, bool):
        raise TypeError(f"log entry {seq} upto must be int, not {type(upto).__name__}")
    if not 1 <= upto <= MAX_UPTO:
        raise ValueError(f"log entry {seq} upto {upto} is out of range 1..{MAX_UPTO}")
    return upto


def _meta(values: object) -> list[tuple[str, str]]:
    if not isinstance(values, dict):
        raise TypeError(f"commit.meta must be a dict, not {type(values).__name__}")
    out: list[tuple[str, str]] = []
    for name, value in values.items():
        check_text("meta name", name)
        try:
            text = orjson.dumps(value).decode("utf-8")
        except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
            raise TypeError(f"meta {name!r} is not a JSON value: {exc}") from exc
        out.append((name, text))
    return out


def prepare(commit: Commit) -> Prepared:
    """Check ``commit`` on its own and normalize it; raise TypeError or ValueError."""
    if not isinstance(commit, Commit):
        raise TypeError(f"expected a Commit, not {type(commit).__name__}")
    tags: dict[str, str] = {}
    bases = _keyed("bases", commit.bases, tags)
    deltas = _keyed("deltas", commit.deltas, tags)
    trim = commit.trim_log_below
    if trim is not None:
        trim = _check_seq("trim_log_below", trim)
    return Prepared(bases, deltas, _log(commit.log), _meta(commit.meta), trim, tags)


def check_against(
    prepared: Prepared, stored_tag: Callable[[str], str | None], next_seq: int
) -> None:
    """Check ``prepared`` against the store; raise ValueError if it would break a rule.

    ``stored_tag(key)`` returns the tag a key holds (None: a new key); ``next_seq`` is the
    lowest log seq the store still accepts (one above every seq it ever held).
    """
    rebased = {key for key, _, _ in prepared.bases}
    for key, tag in prepared.tags.items():
        if key in rebased:
            continue  # a base replaces the key whole, its type included
        stored = stored_tag(key)
        if stored is not None and stored != tag:
            raise ValueError(f"key {key!r} holds type {stored!r}, not {tag!r}")
    if prepared.log and prepared.log[0].seq < next_seq:
        raise ValueError(
            f"log seq {prepared.log[0].seq} is not above every stored seq (next is {next_seq})"
        )


def json_value(text: str | bytes) -> Any:
    """Decode a stored meta value."""
    return orjson.loads(text)
