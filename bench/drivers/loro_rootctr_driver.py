"""Loro, root-counter variant (``loro-rootctr``), as in shared/peers-bench.

Each counter is a *root* ``LoroCounter`` from ``doc.get_counter("ctr:<name>")``: root
containers are identified by name, so concurrent use on two replicas always merges. Sets
and the LWW map are as in :mod:`bench.drivers.loro_driver`, so this variant only runs the
workloads that use counters (W1, W4, W5, W6).
"""

from __future__ import annotations

import functools
from typing import Any

from bench import runners, w5
from bench.drivers.loro_driver import MODEL as _LORO_MODEL
from bench.drivers.loro_driver import LoroReplica, version  # noqa: F401 -- part of the API

LIBRARY = "loro-rootctr"
KIND = "peer"
REQUIRES = ("loro",)
MODEL = dict(_LORO_MODEL, counter="root LoroCounter per counter, "
             "doc.get_counter('ctr:<name>'); increment(1)")
PENDING: dict[str, str] = {}


class LoroRootCounterReplica(LoroReplica):
    def __init__(self, idx: int = 0) -> None:
        super().__init__(idx)
        self.handles = [self.doc.get_counter(f"ctr:{n}") for n in self.W.COUNTER_NAMES]

    def inc_batch(self, ops: Any, a: int, b: int) -> None:
        handles = self.handles
        for i in ops[a:b]:
            handles[i].increment(1)
        self.doc.commit()

    def counter_values(self) -> list[int]:
        return [int(h.value) for h in self.handles]


WORKLOADS = {
    "W1": functools.partial(runners.w1, LoroRootCounterReplica),
    "W4": functools.partial(runners.w4, LoroRootCounterReplica),
    "W6": functools.partial(runners.w6, LoroRootCounterReplica),
    "W5": functools.partial(w5.w5_loro, LoroRootCounterReplica),
}
