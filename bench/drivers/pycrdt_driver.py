"""pycrdt (Python binding of yrs, the Rust port of Yjs), modelled as in shared/peers-bench.

pycrdt has no counter and no OR-set:

- counters: one root ``Map "counters"`` holding a G-counter as per-replica entries with
  flat keys ``"<counter>/<client_id>" -> number``; an increment reads the replica's own
  entry and writes entry + 1; a counter's value is the sum of its entries. (A nested Map
  per counter would lose concurrent creations: Yjs map entries are last-writer-wins.)
- sets: one root ``Map`` per set, ``element -> True``; remove = ``del``. LWW-map
  semantics, not add-wins (no workload has a concurrent add and remove).
- LWW map: root ``Map "lww"``, key -> int.
- batch: one ``doc.transaction()`` per batch of ops.
- sync: ``get_state()`` / ``get_update(state)`` / ``apply_update()``.
- W5: pycrdt-websocket's server with one room (server-side Doc) and a ``pycrdt.Provider``
  per replica over websockets (:mod:`bench.w5`); needs ``pycrdt-websocket``.

pycrdt returns numbers as floats; the checks convert them to int.
"""

from __future__ import annotations

import functools
import importlib.metadata
from typing import Any

from bench import runners, w5
from bench.common import PYCRDT_CLIENT_IDS, workloads

LIBRARY = "pycrdt"
KIND = "peer"
REQUIRES = ("pycrdt",)
MODEL = {
    "counter": "root Map 'counters', flat key '<counter>/<client_id>' -> number "
    "(per-replica entries; value = sum); increment = read own entry + write",
    "set": "root Map per set, element -> True; remove = del key (LWW map, not add-wins)",
    "lww": "root Map 'lww', key -> int",
    "batch": "1 doc.transaction() per batch",
    "sync": "get_state() / get_update(state) / apply_update()",
    "w5": "pycrdt-websocket WebsocketServer (one room with a server-side Doc) served with "
    "websockets; each replica a pycrdt.Provider over a websockets client (see bench/w5.py)",
}
PENDING: dict[str, str] = {}
WORKLOAD_REQUIRES = {"W5": ("pycrdt.websocket",)}  # pip install pycrdt-websocket==0.16.5


def version() -> str:
    return importlib.metadata.version("pycrdt")


class PycrdtReplica:
    def __init__(self, idx: int = 0) -> None:
        from pycrdt import Doc, Map

        W = workloads()
        self.W = W
        self.doc = Doc(client_id=PYCRDT_CLIENT_IDS[idx])
        me = self.doc.client_id
        self.counters = self.doc.get("counters", type=Map)
        self.own_keys = [f"{name}/{me}" for name in W.COUNTER_NAMES]
        self.sets = [self.doc.get(f"set:{name}", type=Map) for name in W.SET_NAMES]
        self.lww = self.doc.get("lww", type=Map)

    def inc_batch(self, ops: Any, a: int, b: int) -> None:
        m = self.counters
        get = m.get
        keys = self.own_keys
        with self.doc.transaction():
            for i in ops[a:b]:
                key = keys[i]
                m[key] = get(key, 0) + 1

    def counter_values(self) -> list[int]:
        out = [0] * self.W.N_COUNTERS
        for key, n in self.counters.to_py().items():
            out[int(key[1:key.index("/")])] += int(n)
        return out

    def add_batch(self, sidx: Any, eidx: Any, a: int, b: int) -> None:
        sets = self.sets
        el = self.W.ELEMENTS
        with self.doc.transaction():
            for s, e in zip(sidx[a:b], eidx[a:b], strict=True):
                sets[s][el[e]] = True

    def remove_batch(self, sidx: Any, eidx: Any, a: int, b: int) -> None:
        sets = self.sets
        el = self.W.ELEMENTS
        with self.doc.transaction():
            for s, e in zip(sidx[a:b], eidx[a:b], strict=True):
                del sets[s][el[e]]

    def set_values(self) -> list[set[int]]:
        return [{int(x[1:]) for x in m.keys()} for m in self.sets]

    def lww_batch(self, keys: Any, values: Any, a: int, b: int) -> None:
        m = self.lww
        kn = self.W.KEY_NAMES
        with self.doc.transaction():
            for k, v in zip(keys[a:b], values[a:b], strict=True):
                m[kn[k]] = v

    def lww_values(self) -> dict[int, int]:
        return {int(k[1:]): int(v) for k, v in self.lww.to_py().items()}

    def state_vector(self) -> bytes:
        return bytes(self.doc.get_state())

    def diff_since(self, sv: bytes) -> bytes:
        return bytes(self.doc.get_update(sv))

    def apply(self, update: bytes) -> None:
        self.doc.apply_update(update)

    def state_bytes(self) -> dict[str, int]:
        """Size of the update that brings an empty doc to this state."""
        return {"full_state_bytes": len(self.doc.get_update())}


WORKLOADS = {
    "W1": functools.partial(runners.w1, PycrdtReplica),
    "W2": functools.partial(runners.w2, PycrdtReplica),
    "W3": functools.partial(runners.w3, PycrdtReplica),
    "W4": functools.partial(runners.w4, PycrdtReplica),
    "W6": functools.partial(runners.w6, PycrdtReplica),
    "W5": w5.w5_pycrdt,
}
