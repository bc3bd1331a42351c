"""An in-memory store with the same semantics as SQLiteStore, for tests and benchmarks.

It validates commits with the same code as :class:`~crdtsync.store.SQLiteStore`, so both
accept and reject exactly the same commits, and a commit is atomic: it is first staged
(cost: the commit), then installed by steps that cannot fail. Meta values are kept as JSON
text, so what reads back is what SQLiteStore would give (a tuple comes back as a list).

Backup file format (:meth:`MemoryStore.backup`, :meth:`MemoryStore.from_file`): one JSON
document (UTF-8), bytes in standard base64::

    {"format": "crdtsync-memory-store", "version": 2, "next_seq": 8,
     "meta": {"name": <JSON value>, ...},
     "keys": [[key, tag, base_b64_or_null, [delta_b64, ...]], ...],    # key order
     "log":  [[seq, origin_or_null, blob_b64, upto_or_null], ...]}     # seq order

Version 1 (written before the log kept ``upto``) has 3-item log rows; it still loads.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from types import TracebackType
from typing import Any

import orjson

from crdtsync.errors import LocalError, StoreError
from crdtsync.store._files import fsync_file, publish, remove_quietly, temp_beside
from crdtsync.store._validate import (
    Prepared,
    check_against,
    check_text,
    check_upto,
    json_value,
    prepare,
)
from crdtsync.store.base import Commit, KeyRecord, LogEntry

__all__ = ["MemoryStore", "BACKUP_FORMAT", "BACKUP_VERSION"]

BACKUP_FORMAT = "crdtsync-memory-store"
"""The ``format`` field of a MemoryStore backup file."""
BACKUP_VERSION = 2
"""The ``version`` field of the backup files this module writes (it reads 1 too)."""

_seq = attrgetter("seq")


@dataclass(slots=True)
class _Key:
    tag: str
    base: bytes | None
    deltas: list[bytes]


@dataclass(slots=True)
class _Staged:
    """What one commit installs: per key (tag, base replaced?, new base, deltas to append)."""

    keys: dict[str, tuple[str, bool, bytes | None, list[bytes]]] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)
    meta: list[tuple[str, str]] = field(default_factory=list)
    trim: int | None = None


class MemoryStore:
    """A :class:`~crdtsync.store.Store` held in memory; nothing survives the process.

    Same rules as SQLiteStore: a key's tag never changes, log seqs only grow (trimmed ones
    included), a commit is all or nothing, iterators are invalidated by a later call to
    :meth:`commit` (LocalError), and any call after :meth:`close` but ``close`` raises
    LocalError.
    Thread-safe (calls are serialized).
    """

    def __init__(self) -> None:
        self._keys: dict[str, _Key] = {}
        self._log: list[LogEntry] = []
        self._meta: dict[str, str] = {}
        self._next_seq = 0
        self._generation = 0
        self._closed = False
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._keys)} keys"
        return f"<MemoryStore {state}>"

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------

    def commit(self, commit: Commit) -> None:
        """Apply ``commit`` atomically; ValueError/TypeError for a bad one (nothing applied)."""
        with self._lock:
            self._live()
            self._generation += 1  # as in SQLiteStore: any commit call invalidates iterators
            prepared = prepare(commit)
            check_against(prepared, self._tag_of, self._next_seq)
            staged = _Staged()
            self._write_bases(staged, prepared)
            self._write_deltas(staged, prepared)
            self._write_log(staged, prepared)
            self._write_meta(staged, prepared)
            self._write_trim(staged, prepared)
            self._install(staged)

    def _tag_of(self, key: str) -> str | None:
        entry = self._keys.get(key)
        return None if entry is None else entry.tag

    def _write_bases(self, staged: _Staged, p: Prepared) -> None:
        for key, tag, blob in p.bases:
            staged.keys[key] = (tag, True, _own(blob), [])

    def _write_deltas(self, staged: _Staged, p: Prepared) -> None:
        for key, tag, blob in p.deltas:
            if key in staged.keys:
                staged.keys[key][3].append(_own(blob))
            else:
                staged.keys[key] = (tag, False, None, [_own(blob)])

    def _write_log(self, staged: _Staged, p: Prepared) -> None:
        staged.log = [LogEntry(e.seq, e.origin, _own(e.blob), e.upto) for e in p.log]

    def _write_meta(self, staged: _Staged, p: Prepared) -> None:
        staged.meta = p.meta

    def _write_trim(self, staged: _Staged, p: Prepared) -> None:
        staged.trim = p.trim_log_below

    def _install(self, staged: _Staged) -> None:
        # Only dict and list operations from here on: nothing can fail half-way.
        for key, (tag, reset, base, appended) in staged.keys.items():
            entry = self._keys.get(key)
            if entry is None:
                self._keys[key] = _Key(tag, base, appended)
            elif reset:
                entry.tag, entry.base, entry.deltas = tag, base, appended
            else:
                entry.deltas.extend(appended)
        if staged.log:
            self._log.extend(staged.log)
            self._next_seq = staged.log[-1].seq + 1
        self._meta.update(staged.meta)
        if staged.trim is not None:
            del self._log[: bisect_left(self._log, staged.trim, key=_seq)]

    # -- reading ------------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """Return every meta value (decoded JSON), as a new dict."""
        with self._lock:
            self._live()
            return {name: json_value(text) for name, text in self._meta.items()}

    def next_seq(self) -> int:
        """Return the lowest seq a new log entry may take (see :meth:`Store.next_seq`)."""
        with self._lock:
            self._live()
            return self._next_seq

    def keys(self) -> Iterator[KeyRecord]:
        """Iterate over every key with its base and delta chain, in key order."""
        with self._lock:
            self._live()
            return self._iter_keys(self._generation, sorted(self._keys))

    def _iter_keys(self, gen: int, names: list[str]) -> Iterator[KeyRecord]:
        for name in names:
            with self._lock:
                self._check(gen)
                entry = self._keys[name]
                record = KeyRecord(name, entry.tag, entry.base, tuple(entry.deltas))
            yield record

    def log(self, start: int = 0) -> Iterator[LogEntry]:
        """Iterate over the log entries with seq >= ``start``, in seq order."""
        if not isinstance(start, int):
            raise TypeError(f"start must be int, not {type(start).__name__}")
        with self._lock:
            self._live()
            return self._iter_log(self._generation, bisect_left(self._log, start, key=_seq))

    def _iter_log(self, gen: int, index: int) -> Iterator[LogEntry]:
        while True:
            with self._lock:
                self._check(gen)
                if index >= len(self._log):
                    return
                entry = self._log[index]
            index += 1
            yield entry

    def _check(self, gen: int) -> None:
        self._live()
        if gen != self._generation:
            raise LocalError("memory store changed during iteration")

    # -- backup, load, close ------------------------------------------------------------------

    def backup(self, path: str | os.PathLike[str]) -> None:
        """Write the whole store to a new file at ``path`` (format: see the module doc).

        Written beside ``path``, fsynced, then linked into place; an existing ``path`` is
        never overwritten (LocalError), as with SQLiteStore.
        """
        target = os.fspath(path)
        with self._lock:
            self._live()
            if os.path.lexists(target):
                raise LocalError(f"backup target {target!r} already exists")
            data = orjson.dumps(self._document())
        tmp: str | None = None
        try:
            tmp = temp_beside(target)
            with open(tmp, "wb") as f:
                f.write(data)
            fsync_file(tmp)
            if not publish(tmp, target):
                raise LocalError(f"backup target {target!r} already exists")
        except OSError as exc:
            raise StoreError(f"cannot write memory store backup {target!r}: {exc}") from exc
        finally:
            if tmp is not None:
                remove_quietly(tmp)

    def _document(self) -> dict[str, Any]:
        return {
            "format": BACKUP_FORMAT,
            "version": BACKUP_VERSION,
            "next_seq": self._next_seq,
            "meta": {name: orjson.Fragment(text) for name, text in self._meta.items()},
            "keys": [
                [
                    key,
                    e.tag,
                    _b64(e.base) if e.base is not None else None,
                    list(map(_b64, e.deltas)),
                ]
                for key, e in sorted(self._keys.items())
            ],
            "log": [[e.seq, e.origin, _b64(e.blob), e.upto] for e in self._log],
        }

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> MemoryStore:
        """Load a store written by :meth:`backup`; StoreError naming ``path`` if it is not one."""
        name = os.fspath(path)
        try:
            with open(name, "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise StoreError(f"memory store backup {name!r} cannot be read: {exc}") from exc
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise StoreError(f"memory store backup {name!r} is not valid JSON: {exc}") from exc
        store = cls()
        try:
            store._load(doc)
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise StoreError(f"memory store backup {name!r} is damaged: {exc}") from exc
        return store

    def _load(self, doc: Any) -> None:
        if not isinstance(doc, dict) or doc.get("format") != BACKUP_FORMAT:
            raise ValueError("not a crdtsync memory store backup")
        version = doc.get("version")
        if version not in (1, BACKUP_VERSION) or type(version) is not int:
            raise ValueError(f"format version {version!r}, expected 1 or {BACKUP_VERSION}")
        next_seq = doc["next_seq"]
        if not isinstance(next_seq, int) or next_seq < 0:
            raise ValueError(f"bad next_seq {next_seq!r}")
        if not isinstance(doc["meta"], dict):
            raise TypeError("meta must be an object")
        self._meta = {name: orjson.dumps(v).decode() for name, v in doc["meta"].items()}
        for item in _rows(doc["keys"], 4):
            key, tag, base, deltas = item
            check_text("key", key)
            if not isinstance(deltas, list):
                raise TypeError(f"deltas of key {key!r} must be a list")
            if key in self._keys or not check_text("tag", tag):
                raise ValueError(f"key {key!r} is repeated or has an empty tag")
            chain = [_unb64(d) for d in deltas]
            self._keys[key] = _Key(tag, None if base is None else _unb64(base), chain)
        last = -1
        for row in _rows(doc["log"], 3 if version == 1 else 4):
            seq, origin, blob = row[:3]
            if not isinstance(seq, int) or not last < seq < next_seq:
                raise ValueError(f"log seq {seq!r} out of order or not below next_seq")
            if origin is not None:
                check_text("origin", origin)
            upto = check_upto(seq, origin, row[3] if version != 1 else None)
            self._log.append(LogEntry(seq, origin, _unb64(blob), upto))
            last = seq
        self._next_seq = next_seq

    def close(self) -> None:
        """Close the store; later calls (but close) raise LocalError. Idempotent."""
        with self._lock:
            self._closed = True

    def _live(self) -> None:
        if self._closed:
            raise LocalError("memory store is closed")


def _own(blob: bytes) -> bytes:
    """Return an exact-size copy of ``blob``.

    Bytes made by orjson keep about 4 KiB of process memory alive however short they are;
    a store that keeps thousands of small blobs must not hold on to those.
    """
    return memoryview(blob).tobytes()


def _b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"expected base64 text, got {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"bad base64: {exc}") from exc


def _rows(value: object, width: int) -> list[list[Any]]:
    if not isinstance(value, list) or not all(
        isinstance(row, list) and len(row) == width for row in value
    ):
        raise TypeError(f"expected a list of {width}-item lists")
    return value
