"""Durable storage of a replica: the Store protocol and its two implementations.

- :class:`SQLiteStore`: the embedded default, one SQLite file in WAL mode;
- :class:`MemoryStore`: the same semantics in memory, for tests and benchmarks.

A store keeps per-key state (a base plus a chain of key deltas), the numbered delta log and
small JSON meta values, and applies each :class:`Commit` atomically. It never decodes a
CRDT: everything is bytes in, bytes out. See docs/storage.md.
"""

from __future__ import annotations

from crdtsync.store.base import Commit, KeyRecord, LogEntry, Store
from crdtsync.store.memory import MemoryStore
from crdtsync.store.sqlite import SQLiteStore

__all__ = ["Store", "Commit", "KeyRecord", "LogEntry", "SQLiteStore", "MemoryStore"]
