"""Read the replicas' stores after a run, from copies, and gather what the checker needs.

Each data directory's ``replica.db`` (with its ``-wal`` if any) is copied to a scratch
directory and read there, so the run's data directories are only ever read: first raw
(``SQLiteStore(create=False)``: every encoded value the store still holds, bases, delta
chains and delta-log entries, is scanned for event ids: for a set, which element each dot
tags; for a register, which value each (timestamp, replica id) stamps), then through
``Replica.open`` for each key's final state.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from crdtsync.causal import store_dots
from crdtsync.codec import decode, decode_group, encode
from crdtsync.replica import Replica
from crdtsync.store import SQLiteStore
from crdtsync.types import AWORSet, Crdt, LWWRegister

from .checker import RegisterState

__all__ = ["StoreDump", "dump_store"]


class StoreDump:
    """One replica's store, read after the run."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.replica_id = ""
        self.values: dict[str, Any] = {}
        self.states: dict[str, bytes] = {}
        self.registers: dict[str, RegisterState] = {}
        self.dots: dict[tuple[str, Any], set[Any]] = defaultdict(set)
        self.stamps: dict[tuple[str, int, str], set[bytes]] = defaultdict(set)

    def scan(self, key: str, x: Crdt) -> None:
        """Record the event ids in ``x`` (a state or a delta of ``key``)."""
        if isinstance(x, AWORSet):
            for element, dots in x._store.entries.items():  # noqa: SLF001 - test-side audit
                for dot in store_dots(dots):  # a one-dot entry may be compact
                    self.dots[(key, dot)].add(element)
        elif isinstance(x, LWWRegister) and x.timestamp is not None:
            self.stamps[(key, x.timestamp, x.writer or "")].add(encode(x))


def _value(x: Crdt) -> Any:
    value = x.value
    if isinstance(value, frozenset):
        return sorted(value, key=repr)
    return value


def dump_store(data_dir: Path, scratch: Path, name: str) -> StoreDump:
    """Copy ``data_dir``'s store into ``scratch`` and read it (see the module docstring)."""
    scratch.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal"):
        src = data_dir / f"replica.db{suffix}"
        if src.exists():
            shutil.copyfile(src, scratch / src.name)
    dump = StoreDump(name)
    store = SQLiteStore(scratch / "replica.db", create=False)
    try:
        dump.replica_id = str(store.meta().get("replica_id", ""))
        for rec in store.keys():
            for blob in ([rec.base] if rec.base is not None else []) + list(rec.deltas):
                dump.scan(rec.key, decode(blob))
        for entry in store.log():
            for key, delta in decode_group(entry.blob).items():
                dump.scan(key, delta)
    finally:
        store.close()
    # The public way to a key's state; opening the copy gives it a new replica id (and may
    # fold its log into bases), which changes no key's state.
    with Replica.open(str(scratch)) as replica:
        for key in replica.keys():
            x = replica.state(key)
            assert x is not None
            dump.values[key] = _value(x)
            dump.states[key] = encode(x)
            dump.scan(key, x)
            if isinstance(x, LWWRegister):
                dump.registers[key] = RegisterState(x.timestamp, x.writer, x.value)
    return dump
