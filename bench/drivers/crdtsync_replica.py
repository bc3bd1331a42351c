"""crdtsync at the replica and sync level, in memory (``crdtsync-replica``).

- W1-W3: one :class:`~crdtsync.replica.Replica` on a :class:`~crdtsync.store.MemoryStore`;
  one public-API call per op (``replica.counter(k).increment()``, ``replica.set(s).add(e)``
  / ``.remove(e)``, ``replica.register(k).assign(v)`` on the replica's own HLC fed a fake
  wall clock: fixed start + 1 ms per batch) and one ``replica.commit()`` per batch of 1,000
  (one store transaction, one delta-log entry). See :mod:`bench.replica_common`.
- W4, W6: two replicas, each with a :class:`~crdtsync.sync.SyncEngine` driven as
  ``SyncService`` drives it, over an in-memory link carrying the encoded messages
  (:mod:`bench.sync_runners`, :mod:`bench.syncpump`).
- W5: three replicas, each with a real :class:`~crdtsync.transport.SyncService`, over
  websockets on 127.0.0.1 (:mod:`bench.w5`).

The durable variants (``crdtsync-durable``: SQLite ``synchronous=FULL``;
``crdtsync-durable-normal``: ``NORMAL``) are built by :func:`workloads_for`.
"""

from __future__ import annotations

import functools
from typing import Any

from bench import runners, sync_runners, w5
from bench.drivers.crdtsync_types import commit, version  # noqa: F401 -- part of the API
from bench.replica_common import MEMORY, Replicas, StoreKind, fs_type, new_ops

LIBRARY = "crdtsync-replica"
KIND = "crdtsync"
REQUIRES = ("crdtsync",)
PENDING: dict[str, str] = {}


def model(kind: StoreKind) -> dict[str, str]:
    return {
        "store": kind.describe(),
        "counter": "replica.counter(name).increment() per op (PNCounter key per counter; "
        "the replica's fast path bumps its own entry, the batch delta is built at commit)",
        "set": "replica.set(name).add(e) / .remove(e) per op (AWORSet key per set)",
        "lww": "replica.register(key).assign(v) per op (LWWRegister key per key; the "
        "replica's HLC fed a fake wall clock: fixed start + 1 ms per batch)",
        "batch": "1 replica.commit() per batch (one store transaction + one delta-log entry)",
        "sync": "W4/W6: SyncEngine per replica, driven as SyncService does, over an "
        "in-memory link of encoded messages; W5: SyncService over websockets, full mesh",
        "replica_id": "'<name>.<8 hex>' (e.g. 'us.90c192cf'), fixed",
        "full_state_bytes": "sum of len(crdtsync.codec.encode(x)) over the replica's keys",
    }


MODEL = model(MEMORY)


def _local(runner: Any, kind: StoreKind, memory: bool, scale: float) -> dict[str, Any]:
    with Replicas(kind) as replicas:
        out: dict[str, Any] = runner(lambda idx: new_ops(replicas, idx), scale,
                                     memory=memory)
        out["store"] = kind.describe()
        if replicas.tmp is not None:
            out["store_fs"] = fs_type(replicas.tmp)
    out["commit"] = commit()
    return out


def _with_commit(fn: Any, kind: StoreKind, scale: float) -> dict[str, Any]:
    out: dict[str, Any] = fn(kind, scale)
    out["commit"] = commit()
    return out


def workloads_for(kind: StoreKind, *, memory: bool) -> dict[str, Any]:
    """W1-W6 on replicas of store ``kind``; ``memory``: also tracemalloc W1-W3."""
    return {
        "W1": functools.partial(_local, runners.w1, kind, memory),
        "W2": functools.partial(_local, runners.w2, kind, memory),
        "W3": functools.partial(_local, runners.w3, kind, memory),
        "W4": functools.partial(_with_commit, sync_runners.w4, kind),
        "W5": functools.partial(_with_commit, w5.w5_crdtsync, kind),
        "W6": functools.partial(_with_commit, sync_runners.w6, kind),
    }


WORKLOADS = workloads_for(MEMORY, memory=True)
