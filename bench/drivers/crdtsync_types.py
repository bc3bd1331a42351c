"""crdtsync at the type level: plain CRDT values, no replica, no store, no sync.

- W1: a dict of ``GCounter`` objects (one per counter name, created on first use);
  ``increment(replica_id)`` per op.
- W2: 10 ``AWORSet`` objects; ``add``/``remove`` per op, replaying the op stream exactly
  (the removed element is the one ``workloads.w2`` chose, always present).
- W3: a dict of ``LWWRegister`` objects, one per key; ``assign(replica, value, timestamp)``
  with timestamps from one ``HybridLogicalClock`` fed a fake physical time that starts at a
  fixed instant and advances 1 ms per batch of 1,000 ops. (Chosen over one ``ORMap`` of
  LWW fields, which gives the same final values but ran about 8x slower in a trial at full
  size: 4.3 s against 0.51 s.)

Every mutator returns its delta; here the deltas are dropped (joining them into a delta
group and shipping it is the replica layer's job, not built yet), so these figures are the
cost of the lattice operations alone. A "batch" has no meaning at this level except the HLC
millisecond in W3.

W4/W5/W6 need the replica and sync layers: they are not applicable at this level and are
run by ``crdtsync-replica`` and the durable variants (:mod:`bench.drivers.crdtsync_replica`).
"""

from __future__ import annotations

import functools
import subprocess
from typing import Any

from bench import runners
from bench.common import CRDTSYNC_REPLICA_IDS, REPO, workloads
from crdtsync import AWORSet, GCounter, HybridLogicalClock, LWWRegister
from crdtsync.codec import FORMAT_VERSION, dumps, encode

LIBRARY = "crdtsync-types"
KIND = "crdtsync"
REQUIRES = ("crdtsync",)
MODEL = {
    "counter": "dict name -> crdtsync.GCounter; increment(replica_id) per op (delta dropped)",
    "set": "10 crdtsync.AWORSet; add(replica_id, element) / remove(replica_id, element) per op "
    "(deltas dropped)",
    "lww": "dict key -> crdtsync.LWWRegister; assign(replica_id, value, ts) with ts from one "
    "HybridLogicalClock.now(fake physical ms: fixed start + 1 per batch) (faster than one "
    "ORMap of LWW fields: 0.51 s vs 4.3 s at full size in a trial)",
    "batch": "no delta groups at type level (deltas dropped); batch = 1 HLC ms in W3",
    "replica_id": "16 hex digits (64-bit id), fixed",
    "full_state_bytes": "sum of len(crdtsync.codec.encode(x)) over the objects",
}
PENDING: dict[str, str] = {}  # W4-W6 need replicas and sync: see crdtsync-replica

# Fake wall clock for W3: a fixed instant (2023-11-14T22:13:20Z), +1 ms per batch.
FAKE_EPOCH_MS = 1_700_000_000_000


def version() -> str:
    import crdtsync

    return str(crdtsync.__version__)


def commit() -> str:
    """Short git commit of the checkout being measured ("-dirty" if it has changes)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "crdtsync"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha or "unknown") + ("-dirty" if dirty else "")


class TypesReplica:
    """Plain crdtsync values for one replica id (see the module docstring)."""

    def __init__(self, idx: int = 0) -> None:
        W = workloads()
        self.W = W
        self.rid = CRDTSYNC_REPLICA_IDS[idx]
        self.counters: dict[str, Any] = {}
        self.sets = [AWORSet() for _ in W.SET_NAMES]
        self.lww: dict[str, Any] = {}
        self.clock = HybridLogicalClock()
        self.lww_batches = 0

    # --- W1
    def inc_batch(self, ops: Any, a: int, b: int) -> None:
        counters = self.counters
        get = counters.get
        names = self.W.COUNTER_NAMES
        rid = self.rid
        for i in ops[a:b]:
            name = names[i]
            c = get(name)
            if c is None:
                c = counters[name] = GCounter()
            c.increment(rid)

    def counter_values(self) -> list[int]:
        return [c.value if (c := self.counters.get(n)) is not None else 0
                for n in self.W.COUNTER_NAMES]

    # --- W2
    def add_batch(self, sidx: Any, eidx: Any, a: int, b: int) -> None:
        sets = self.sets
        el = self.W.ELEMENTS
        rid = self.rid
        for s, e in zip(sidx[a:b], eidx[a:b], strict=True):
            sets[s].add(rid, el[e])

    def remove_batch(self, sidx: Any, eidx: Any, a: int, b: int) -> None:
        sets = self.sets
        el = self.W.ELEMENTS
        rid = self.rid
        for s, e in zip(sidx[a:b], eidx[a:b], strict=True):
            sets[s].remove(rid, el[e])

    def set_values(self) -> list[set[int]]:
        return [{int(x[1:]) for x in s.value} for s in self.sets]

    # --- W3
    def lww_batch(self, keys: Any, values: Any, a: int, b: int) -> None:
        regs = self.lww
        get = regs.get
        kn = self.W.KEY_NAMES
        rid = self.rid
        now = self.clock.now
        phys = FAKE_EPOCH_MS + self.lww_batches
        self.lww_batches += 1
        for k, v in zip(keys[a:b], values[a:b], strict=True):
            name = kn[k]
            r = get(name)
            if r is None:
                r = regs[name] = LWWRegister()
            r.assign(rid, v, now(phys))

    def lww_values(self) -> dict[int, int]:
        return {int(k[1:]): r.value for k, r in self.lww.items()}

    # --- sizes
    def _objects(self) -> dict[str, Any]:
        objs: dict[str, Any] = dict(self.counters)
        named = zip(self.W.SET_NAMES, self.sets, strict=True)
        objs.update((n, s) for n, s in named if not s.is_bottom())
        objs.update(self.lww)
        return objs

    def state_bytes(self) -> dict[str, int]:
        """Sum of the objects' canonical encodings, and one JSON object of all of them."""
        objs = self._objects()
        return {
            "full_state_bytes": sum(len(encode(x)) for x in objs.values()),
            "combined_state_bytes": len(dumps(
                {name: [x.TYPE, FORMAT_VERSION, x.to_json()] for name, x in objs.items()})),
            "objects": len(objs),
        }


def _run(runner: Any, scale: float) -> dict[str, Any]:
    out: dict[str, Any] = runner(TypesReplica, scale, memory=True)
    out["commit"] = commit()
    return out


WORKLOADS = {
    "W1": functools.partial(_run, runners.w1),
    "W2": functools.partial(_run, runners.w2),
    "W3": functools.partial(_run, runners.w3),
}
