"""Loro, modelled as in shared/peers-bench (``loro``).

Loro has a counter (``LoroCounter``) but no OR-set:

- counters: a ``LoroCounter`` per counter inside one root ``LoroMap "counters"``, from
  ``ensure_mergeable_counter(name)`` (a mergeable child: two replicas creating the same
  key concurrently get one merged counter, not one replacing the other); ``increment(1)``.
- sets: one root ``LoroMap`` per set, ``element -> True``; remove = ``delete``. LWW-map
  semantics, not add-wins.
- LWW map: root ``LoroMap "lww"``, key -> int.
- batch: the ops, then one ``doc.commit()``.
- sync: ``oplog_vv.encode()`` / ``export(ExportMode.Updates(vv))`` / ``import_()``.
- W5: a websockets relay forwarding each replica's local-update bytes (:mod:`bench.w5`).

The root-counter variant (``loro-rootctr``) lives in :mod:`bench.drivers.loro_rootctr_driver`.
"""

from __future__ import annotations

import functools
import importlib.metadata
from typing import Any

from bench import runners, w5
from bench.common import LORO_PEER_IDS, workloads

LIBRARY = "loro"
KIND = "peer"
REQUIRES = ("loro",)
MODEL = {
    "counter": "root LoroMap 'counters' -> ensure_mergeable_counter(name) LoroCounter; "
    "increment(1)",
    "set": "root LoroMap per set, element -> True; remove = delete(key) (LWW map, not add-wins)",
    "lww": "root LoroMap 'lww', key -> int",
    "batch": "1 doc.commit() per batch",
    "sync": "oplog_vv.encode() / export(ExportMode.Updates(vv)) / import_()",
    "w5": "websockets relay (no server-side doc) forwarding each replica's "
    "subscribe_local_update bytes to the two others, which import_() them (bench/w5.py)",
}
PENDING: dict[str, str] = {}


def version() -> str:
    return importlib.metadata.version("loro")


class LoroReplica:
    def __init__(self, idx: int = 0) -> None:
        from loro import LoroDoc

        W = workloads()
        self.W = W
        self.doc = LoroDoc()
        self.doc.peer_id = LORO_PEER_IDS[idx]
        self.cmap = self.doc.get_map("counters")
        self.handles: list[Any] = [None] * W.N_COUNTERS
        self.sets = [self.doc.get_map(f"set:{name}") for name in W.SET_NAMES]
        self.lww = self.doc.get_map("lww")

    def inc_batch(self, ops: Any, a: int, b: int) -> None:
        handles = self.handles
        names = self.W.COUNTER_NAMES
        for i in ops[a:b]:
            h = handles[i]
            if h is None:
                h = handles[i] = self.cmap.ensure_mergeable_counter(names[i])
            h.increment(1)
        self.doc.commit()

    def counter_values(self) -> list[int]:
        out = [0] * self.W.N_COUNTERS
        for name, n in self.cmap.get_deep_value().items():
            out[int(name[1:])] = int(n)
        return out

    def add_batch(self, sidx: Any, eidx: Any, a: int, b: int) -> None:
        sets = self.sets
        el = self.W.ELEMENTS
        for s, e in zip(sidx[a:b], eidx[a:b], strict=True):
            sets[s].insert(el[e], True)
        self.doc.commit()

    def remove_batch(self, sidx: Any, eidx: Any, a: int, b: int) -> None:
        sets = self.sets
        el = self.W.ELEMENTS
        for s, e in zip(sidx[a:b], eidx[a:b], strict=True):
            sets[s].delete(el[e])
        self.doc.commit()

    def set_values(self) -> list[set[int]]:
        return [{int(x[1:]) for x in m.keys()} for m in self.sets]

    def lww_batch(self, keys: Any, values: Any, a: int, b: int) -> None:
        m = self.lww
        kn = self.W.KEY_NAMES
        for k, v in zip(keys[a:b], values[a:b], strict=True):
            m.insert(kn[k], v)
        self.doc.commit()

    def lww_values(self) -> dict[int, int]:
        return {int(k[1:]): int(v) for k, v in self.lww.get_value().items()}

    def state_vector(self) -> bytes:
        return bytes(self.doc.oplog_vv.encode())

    def diff_since(self, sv: bytes) -> bytes:
        from loro import ExportMode, VersionVector

        return bytes(self.doc.export(ExportMode.Updates(VersionVector.decode(sv))))

    def apply(self, update: bytes) -> None:
        self.doc.import_(update)

    def state_bytes(self) -> dict[str, int]:
        """Snapshot size, and the size of all updates from an empty version."""
        from loro import ExportMode, VersionVector

        return {
            "full_state_bytes": len(self.doc.export(ExportMode.Snapshot())),
            "updates_from_empty_bytes": len(self.doc.export(ExportMode.Updates(VersionVector()))),
        }


WORKLOADS = {
    "W1": functools.partial(runners.w1, LoroReplica),
    "W2": functools.partial(runners.w2, LoroReplica),
    "W3": functools.partial(runners.w3, LoroReplica),
    "W4": functools.partial(runners.w4, LoroReplica),
    "W6": functools.partial(runners.w6, LoroReplica),
    "W5": functools.partial(w5.w5_loro, LoroReplica),
}
