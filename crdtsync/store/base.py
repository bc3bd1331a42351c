"""The Store protocol: what a replica needs from durable storage.

A store holds, for one replica:

- ``meta``: small named values (replica id, counters, HLC high-water mark, sync bookkeeping),
  each a JSON value;
- per-key state as a *base* (the key's full encoded state) plus a chain of *key deltas*
  appended since (so a write to a big set appends its delta instead of rewriting the set;
  the replica folds the chain into a new base when the chain outgrows the base);
- the *delta log*: numbered entries ``(seq, origin, blob, upto)`` the sync layer ships to
  peers, trimmed from the front once every peer has them.

``commit`` applies one :class:`Commit` atomically: after it returns, all of it is durable;
after a crash mid-commit, none of it is visible. Everything is bytes in, bytes out: the store
never decodes a CRDT.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Commit", "KeyRecord", "LogEntry", "Store", "MAX_UPTO"]

MAX_UPTO = 2**63 - 1
"""Highest :attr:`LogEntry.upto`: a peer's seq, as high as the wire allows (a signed 64-bit
int; unlike a store's own seqs, no ``next_seq`` must fit above it)."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One delta-log entry: ``origin`` is None for a local batch, else the peer it came from.

    ``upto``, for an entry from a peer: that peer's log seq the entry is known to hold
    nothing beyond (sync bookkeeping: a third peer that holds the origin's log up to
    ``upto`` need not be sent the entry; see docs/protocol.md, "Relayed marks"), or None.
    """

    seq: int
    origin: str | None
    blob: bytes
    upto: int | None = None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key as stored: its type tag, its base state and the key deltas appended since."""

    key: str
    tag: str
    base: bytes | None
    deltas: tuple[bytes, ...]


@dataclass(slots=True)
class Commit:
    """One atomic unit of durable change.

    - ``bases``: key -> (tag, full state bytes); replaces the key whole (its tag too: the
      replica's rule for concurrent creation with different types) and drops its deltas;
    - ``deltas``: key -> (tag, delta bytes); appended to the key's chain (after ``bases``);
    - ``log``: delta-log entries to append, seqs strictly increasing and above every seq
      ever stored, trimmed ones included (see :meth:`Store.next_seq`);
    - ``meta``: name -> JSON value to upsert;
    - ``trim_log_below``: drop log entries with seq < this (None: keep all).

    A key's tag is fixed by the first commit that writes the key: a commit giving it another
    tag raises ValueError, as does a log seq that is not above every stored one; a rejected
    commit writes nothing.
    """

    bases: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    deltas: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    trim_log_below: int | None = None


class Store(Protocol):
    """Durable storage of one replica. Implementations: SQLiteStore, MemoryStore."""

    def commit(self, commit: Commit) -> None:
        """Apply ``commit`` atomically and durably."""

    def meta(self) -> dict[str, Any]:
        """Return every meta value."""

    def keys(self) -> Iterator[KeyRecord]:
        """Iterate over every stored key with its base and delta chain, in key order."""

    def log(self, start: int = 0) -> Iterator[LogEntry]:
        """Iterate over the delta-log entries with seq >= ``start``, in seq order."""

    def next_seq(self) -> int:
        """Return the lowest seq a new log entry may take: one above every seq ever stored.

        Trimmed entries count: a seq is never accepted twice, so a peer's ack of batch ``n``
        can never be mistaken for a later, different batch ``n``. 0 for a new store.
        """

    def backup(self, path: str) -> None:
        """Write a consistent snapshot of the store to ``path`` (while it is in use)."""

    def close(self) -> None:
        """Release the store; further calls raise."""
