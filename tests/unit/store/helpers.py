"""Helpers shared by the store tests: snapshots, the two store kinds, a fixed workload."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crdtsync.store import Commit, KeyRecord, LogEntry, MemoryStore, SQLiteStore, Store

Snapshot = tuple[list[KeyRecord], list[LogEntry], dict[str, Any], int]


def snapshot(store: Store) -> Snapshot:
    """Everything a store holds, as plain values that compare with ==."""
    return list(store.keys()), list(store.log()), store.meta(), store.next_seq()


@dataclass
class Kind:
    """How to make a store of one kind in a directory, and how to open its backups."""

    name: str
    directory: Path

    def open(self) -> Store:
        if self.name == "memory":
            return MemoryStore()
        return SQLiteStore(str(self.directory / "store.db"))

    def load_backup(self, path: str) -> Store:
        if self.name == "memory":
            return MemoryStore.from_file(path)
        return SQLiteStore(path, create=False)


def commit_for(i: int) -> Commit:
    """Commit number ``i`` (from 1) of a fixed workload touching chains, bases, log and trim."""
    key = f"k{i % 7}"
    commit = Commit(meta={"count": i, "last": [key, i]})
    if i % 10 == 0:
        commit.bases[key] = ("t", b"base%d" % i)
    else:
        commit.deltas[key] = ("t", b"delta%d" % i)
    commit.log.append(LogEntry(i, None if i % 3 else "peer", b"log%d;" % i * (1 + i % 40),
                               None if i % 3 or i % 2 else i // 2))
    if i % 25 == 0:
        commit.trim_log_below = i - 20
    return commit


def model_after(n: int, into: MemoryStore | None = None, start: int = 1) -> MemoryStore:
    """A MemoryStore holding commits ``start..n`` of the workload (added to ``into``)."""
    model = into if into is not None else MemoryStore()
    for i in range(start, n + 1):
        model.commit(commit_for(i))
    return model
