"""Stateful test: three engines with fake hosts over a network hypothesis controls.

Rules: write, commit, deliver (any in-flight message: reordering and delay), drop (loss),
duplicate, tick (time passes), crash, restart, partition, heal. After every step the
invariants hold (no state beyond what was written; nothing acked that is not durable);
at the end everything heals and must converge to the join of every committed write.
"""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.sync.sim import Cluster

REPLICAS = st.sampled_from(["r0", "r1", "r2"])
INDEX = st.integers(min_value=0, max_value=10_000)


class SyncMachine(RuleBasedStateMachine):
    """Drive a three-replica cluster step by step."""

    def __init__(self) -> None:
        super().__init__()
        self.cluster = Cluster(random.Random(0), n=3, topology="mesh", retransmit_after=1.0,
                               max_log_entries=4, max_message_bytes=400, window=2)

    @rule(rid=REPLICAS, count=st.integers(1, 3))
    def write(self, rid: str, count: int) -> None:
        if rid in self.cluster.up:
            for _ in range(count):
                self.cluster.write(rid)

    @rule(rid=REPLICAS)
    def commit(self, rid: str) -> None:
        if rid in self.cluster.up:
            self.cluster.commit(rid)

    @precondition(lambda self: self.cluster.inflight)
    @rule(i=INDEX)
    def deliver(self, i: int) -> None:
        self.cluster.deliver(i % len(self.cluster.inflight))

    @precondition(lambda self: self.cluster.inflight)
    @rule(i=INDEX)
    def drop(self, i: int) -> None:
        self.cluster.inflight.pop(i % len(self.cluster.inflight))

    @precondition(lambda self: self.cluster.inflight)
    @rule(i=INDEX)
    def duplicate(self, i: int) -> None:
        inflight = self.cluster.inflight
        inflight.append(inflight[i % len(inflight)])

    @rule(rid=REPLICAS, dt=st.sampled_from([0.2, 1.0]))
    def tick(self, rid: str, dt: float) -> None:
        self.cluster.now += dt
        if rid in self.cluster.up:
            self.cluster.tick(rid)

    @precondition(lambda self: len(self.cluster.up) > 1)
    @rule(rid=REPLICAS)
    def crash(self, rid: str) -> None:
        if rid in self.cluster.up:
            self.cluster.crash(rid)

    @rule(rid=REPLICAS)
    def restart(self, rid: str) -> None:
        if rid not in self.cluster.up:
            self.cluster.restart(rid)

    @rule(mode=st.sampled_from(["halves", "isolate", "edges"]))
    def partition(self, mode: str) -> None:
        self.cluster.partition(mode)

    @rule()
    def heal(self) -> None:
        self.cluster.heal()

    @invariant()
    def bounded_and_acked_only_when_durable(self) -> None:
        self.cluster.check_invariants()

    def teardown(self) -> None:
        self.cluster.settle()
        self.cluster.check()


TestSyncProtocol = SyncMachine.TestCase
TestSyncProtocol.settings = settings(settings.default, stateful_step_count=60)
