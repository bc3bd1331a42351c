"""Stateful test: SQLiteStore and MemoryStore against a plain dict model.

Random commits (valid and invalid: tag changes, stale or unordered seqs), trims, close and
reopen of the SQLite file, a MemoryStore reloaded from its own backup, and SQLite backups;
after every step both stores must hold exactly what the model holds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from crdtsync.store import Commit, KeyRecord, LogEntry, MemoryStore, SQLiteStore, Store

# This test checks logic, not durability: on tmpfs an fsync costs nothing.
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
KEYS = ["a", "b", "c", "é", "\u4e00", "a\x00"]
TAG = {k: f"t{i % 3}" for i, k in enumerate(KEYS)}
BLOBS = st.binary(max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)


@dataclass
class Model:
    """What a store must hold."""

    keys: dict[str, tuple[str, bytes | None, list[bytes]]] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    next_seq: int = 0

    def error(self, c: Commit) -> bool:
        """Tell whether the store must reject ``c`` (with ValueError)."""
        tags: dict[str, str] = {}
        for key, (tag, _) in [*c.bases.items(), *c.deltas.items()]:
            if tags.setdefault(key, tag) != tag:
                return True
            if key in self.keys and self.keys[key][0] != tag and key not in c.bases:
                return True  # only a base may change a key's tag (it replaces the key)
        seqs = [e.seq for e in c.log]
        if seqs and (seqs[0] < self.next_seq or seqs != sorted(set(seqs))):
            return True
        return False

    def apply(self, c: Commit) -> None:
        for key, (tag, blob) in c.bases.items():
            self.keys[key] = (tag, blob, [])
        for key, (tag, blob) in c.deltas.items():
            _, base, chain = self.keys.get(key, (tag, None, []))
            self.keys[key] = (tag, base, [*chain, blob])
        self.log.extend(c.log)
        if c.log:
            self.next_seq = c.log[-1].seq + 1
        self.meta.update(c.meta)
        if c.trim_log_below is not None:
            self.log = [e for e in self.log if e.seq >= c.trim_log_below]

    def snapshot(self) -> tuple[list[KeyRecord], list[LogEntry], dict[str, Any], int]:
        keys = [KeyRecord(k, t, b, tuple(ch)) for k, (t, b, ch) in sorted(self.keys.items())]
        return keys, list(self.log), self.meta, self.next_seq


def _keyed(draw: st.DrawFn, flip: bool) -> dict[str, tuple[str, bytes]]:
    chosen = draw(st.lists(st.sampled_from(KEYS), max_size=3, unique=True))
    out = {k: (TAG[k], draw(BLOBS)) for k in chosen}
    if flip and out:
        key = draw(st.sampled_from(sorted(out)))
        out[key] = ("other", out[key][1])
    return out


def _entry(draw: Any, seq: int) -> LogEntry:
    """A log entry: local, or from a peer with or without a bound."""
    origin = draw(st.none() | st.sampled_from(["eu", "ap"]))
    upto = None if origin is None else draw(st.none() | st.integers(1, 2**63 - 2))
    return LogEntry(seq, origin, draw(BLOBS), upto)


@st.composite
def commits(draw: st.DrawFn, next_seq: int) -> Commit:
    flip = draw(st.integers(0, 9)) == 0  # now and then a key changes its tag (by delta: rejected)
    shift = draw(st.sampled_from([0, 0, 0, 0, 2, -1]))  # -1: a seq already used: rejected
    gaps = draw(st.lists(st.integers(1, 3), max_size=3))
    if gaps and draw(st.integers(0, 9)) == 0:
        gaps[-1] = 0  # two entries with the same seq: rejected
    seqs, seq = [], max(0, next_seq + shift)
    for gap in gaps:
        seqs.append(seq)
        seq += gap
    trim = draw(st.none() | st.integers(max(0, next_seq - 5), next_seq + 3))
    return Commit(
        bases=_keyed(draw, flip),
        deltas=_keyed(draw, False),
        log=[_entry(draw, s) for s in seqs],
        meta=draw(st.dictionaries(st.sampled_from(["x", "y", "z"]), JSON, max_size=2)),
        trim_log_below=trim if draw(st.integers(0, 3)) == 0 else None,
    )


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="crdtsync-store-", dir=SCRATCH)
        self.path = f"{self.dir}/s.db"
        self.sqlite = SQLiteStore(self.path, synchronous="NORMAL")
        self.memory = MemoryStore()
        self.model = Model()
        self.backups = 0

    def teardown(self) -> None:
        self.sqlite.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        c = data.draw(commits(self.model.next_seq))
        rejected = self.model.error(c)
        event("commit rejected" if rejected else "commit accepted")
        if rejected:
            for store in (self.sqlite, self.memory):
                try:
                    store.commit(c)
                except ValueError:
                    continue
                raise AssertionError(f"{type(store).__name__} accepted {c}")
        else:
            self.sqlite.commit(c)
            self.memory.commit(c)
            self.model.apply(c)

    @rule()
    def reopen_sqlite(self) -> None:
        self.sqlite.close()
        self.sqlite = SQLiteStore(self.path, create=False, synchronous="NORMAL")

    @rule()
    def reload_memory_from_backup(self) -> None:
        target = self._next_backup()
        self.memory.backup(target)
        self.memory.close()
        self.memory = MemoryStore.from_file(target)

    @rule()
    def backup_sqlite(self) -> None:
        target = self._next_backup()
        self.sqlite.backup(target)
        with SQLiteStore(target, create=False) as copy:
            assert _snapshot(copy) == self.model.snapshot()

    def _next_backup(self) -> str:
        self.backups += 1
        return f"{self.dir}/backup{self.backups}"

    @invariant()
    def stores_match_the_model(self) -> None:
        expected = self.model.snapshot()
        assert _snapshot(self.sqlite) == expected
        assert _snapshot(self.memory) == expected


def _snapshot(store: Store) -> tuple[list[KeyRecord], list[LogEntry], dict[str, Any], int]:
    return list(store.keys()), list(store.log()), store.meta(), store.next_seq()


StoreMachine.TestCase.settings = settings(stateful_step_count=40)  # over the loaded profile
test_stores_match_a_model = StoreMachine.TestCase
