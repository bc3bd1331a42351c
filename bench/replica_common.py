"""crdtsync at the replica level: opening benchmark replicas and the W1-W3 op adapters.

Shared by the drivers ``crdtsync-replica`` (in-memory :class:`~crdtsync.store.MemoryStore`),
``crdtsync-durable`` (SQLite, ``synchronous=FULL``) and ``crdtsync-durable-normal``
(SQLite, ``synchronous=NORMAL``), and by :mod:`bench.scaling` and :mod:`bench.profile`.

Every op goes through the public write API, one call per op, as an application would:
``replica.counter(k).increment()``, ``replica.set(s).add(e)`` / ``.remove(e)``,
``replica.register(k).assign(v)``; each batch of ops (1,000 by default) ends with one
``replica.commit()`` (one store transaction, one delta-log entry); no event loop.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from bench.common import CRDTSYNC_REPLICA_IDS, workloads
from crdtsync.codec import FORMAT_VERSION, dumps, encode
from crdtsync.identity import fingerprint
from crdtsync.replica import Replica
from crdtsync.store import Commit, MemoryStore, SQLiteStore

# Replica names as in a three-region deployment; ids are "<name>.<8 hex>", fixed (seeded
# into the store's meta before the replica opens it) so encodings repeat from run to run.
NAMES = ("us", "eu", "ap", "sa")
# Fake wall clock for W3 (as the crdtsync-types driver): fixed start, +1 ms per batch.
FAKE_EPOCH_MS = 1_700_000_000_000


def replica_id(idx: int) -> str:
    return f"{NAMES[idx]}.{CRDTSYNC_REPLICA_IDS[idx][:8]}"


@dataclass(frozen=True)
class StoreKind:
    """Where a benchmark replica keeps its data."""

    name: str  # "memory" | "sqlite"
    synchronous: str | None = None  # SQLite: "FULL" | "NORMAL"

    def describe(self) -> str:
        if self.name == "memory":
            return "MemoryStore (in memory)"
        return f"SQLiteStore (WAL, synchronous={self.synchronous}) in a temp dir"


MEMORY = StoreKind("memory")
SQLITE_FULL = StoreKind("sqlite", "FULL")
SQLITE_NORMAL = StoreKind("sqlite", "NORMAL")


class Replicas:
    """Opens benchmark replicas of one store kind; removes their files on :meth:`close`."""

    def __init__(self, kind: StoreKind, tmp_root: str | None = None) -> None:
        self.kind = kind
        self.tmp: str | None = None
        if kind.name == "sqlite":
            self.tmp = tempfile.mkdtemp(prefix="crdtsync-bench-", dir=tmp_root)
        self.opened: list[Replica] = []
        self._n = 0

    def open(self, idx: int, **options: Any) -> Replica:
        """A fresh replica named ``NAMES[idx]`` with the fixed id ``replica_id(idx)``."""
        name = NAMES[idx]
        path: str | None = None
        store: Any
        if self.kind.name == "memory":
            store = MemoryStore()
        else:
            assert self.tmp is not None
            self._n += 1
            path = os.path.join(self.tmp, f"{name}-{self._n}.db")
            store = SQLiteStore(path, synchronous=self.kind.synchronous)  # type: ignore[arg-type]
        store.commit(Commit(meta={"name": name, "replica_id": replica_id(idx),
                                  "fingerprint": fingerprint(path)}))
        rep = Replica(store, name=name, store_path=path, **options)
        self.opened.append(rep)
        return rep

    def close(self) -> None:
        for rep in self.opened:
            try:
                rep.close()
            except Exception:  # noqa: BLE001 -- best effort at teardown
                pass
        self.opened = []
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self) -> Replicas:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fs_type(path: str) -> str:
    """Filesystem type of the mount holding ``path`` (from /proc/mounts), or "unknown"."""
    try:
        real = os.path.realpath(path)
        best, kind = "", "unknown"
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and (real == parts[1] or real.startswith(
                        parts[1].rstrip("/") + "/")) and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
        return kind
    except OSError:
        return "unknown"


class ReplicaOps:
    """The runner interface of :mod:`bench.runners` on top of one :class:`Replica`."""

    def __init__(self, replica: Replica) -> None:
        self.W = workloads()
        self.replica = replica
        self.fake_ms = FAKE_EPOCH_MS
        self.batches = 0

    # --- counters (W1, W4, W5, W6)
    def inc_batch(self, ops: Any, a: int, b: int) -> None:
        rep = self.replica
        counter = rep.counter
        names = self.W.COUNTER_NAMES
        for i in ops[a:b]:
            counter(names[i]).increment()
        rep.commit()

    def counter_values(self) -> list[int]:
        get = self.replica.get
        return [get(n, 0) for n in self.W.COUNTER_NAMES]

    # --- sets (W2, W6)
    def add_batch(self, sidx: Any, eidx: Any, a: int, b: int) -> None:
        rep = self.replica
        aset = rep.set
        names = self.W.SET_NAMES
        el = self.W.ELEMENTS
        for s, e in zip(sidx[a:b], eidx[a:b], strict=True):
            aset(names[s]).add(el[e])
        rep.commit()

    def remove_batch(self, sidx: Any, eidx: Any, a: int, b: int) -> None:
        rep = self.replica
        aset = rep.set
        names = self.W.SET_NAMES
        el = self.W.ELEMENTS
        for s, e in zip(sidx[a:b], eidx[a:b], strict=True):
            aset(names[s]).remove(el[e])
        rep.commit()

    def set_values(self) -> list[set[int]]:
        return [{int(x[1:]) for x in self.replica.get(n, frozenset())}
                for n in self.W.SET_NAMES]

    # --- LWW registers (W3)
    def lww_batch(self, keys: Any, values: Any, a: int, b: int) -> None:
        rep = self.replica
        register = rep.register
        kn = self.W.KEY_NAMES
        self.fake_ms = FAKE_EPOCH_MS + self.batches  # read by the replica's clock
        self.batches += 1
        for k, v in zip(keys[a:b], values[a:b], strict=True):
            register(kn[k]).assign(v)
        rep.commit()

    def lww_values(self) -> dict[int, int]:
        return {int(k[1:]): v for k, v in ((k, self.replica.get(k)) for k in
                                            self.replica.keys("k"))}

    # --- sizes
    def state_bytes(self) -> dict[str, int]:
        """Sum of the keys' canonical encodings, and one JSON object of all of them."""
        objs = dict(self.replica.items())
        return {
            "full_state_bytes": sum(len(encode(x)) for x in objs.values()),
            "combined_state_bytes": len(dumps(
                {name: [x.TYPE, FORMAT_VERSION, x.to_json()] for name, x in objs.items()})),
            "objects": len(objs),
        }


def new_ops(replicas: Replicas, idx: int) -> ReplicaOps:
    """A :class:`ReplicaOps` on a fresh replica whose clock is the adapter's fake clock."""
    holder: list[ReplicaOps] = []
    rep = replicas.open(idx, clock=lambda: holder[0].fake_ms)
    ops = ReplicaOps(rep)
    holder.append(ops)
    return ops
