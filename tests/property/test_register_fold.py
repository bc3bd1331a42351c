"""Stateful test: a replica's register writes, folded into their registers lazily.

A commit leaves the replica's stamped register writes beside the registers
(``Replica._fold``); a read, a checkpoint or a remote join folds them in. Whatever the
order of assignments, commits, remote writes (older, tied, newer, too far ahead) and reads,
the replica must hold exactly the join of what it logged: a mirror replica that applies
every logged entry is compared with it, through ``get``, ``state`` and ``items``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from crdtsync.replica import Committed, Replica
from crdtsync.store import MemoryStore
from crdtsync.types import LWWRegister

KEYS = st.sampled_from(["k0", "k1", "k2"])
# a remote write's timestamp against the replica's clock: older, equal, newer, or too far
# ahead for the clock to follow (max drift 60 s)
OFFSETS = st.sampled_from([-(2 << 16), -1, 0, 1, 2 << 16, 120_000 << 16])


class RegisterFoldMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ms = 1_000_000
        self.replica = Replica(MemoryStore(), name="r", clock=lambda: self.ms,
                               checkpoint_entries=3)
        self.mirror = Replica(MemoryStore(), name="m", clock=lambda: self.ms)
        self.replica.on_commit.append(self._mirror)

    def _mirror(self, entries: list[Committed]) -> None:
        for e in entries:
            if e.seq:  # logged: the mirror gets what the replica would send
                self.mirror.apply_remote(e.group, e.origin or self.replica.replica_id)
        self.mirror.commit()

    @rule(key=KEYS, value=st.integers(0, 9))
    def assign(self, key: str, value: int) -> None:
        self.replica.register(key).assign(value)

    @rule()
    def commit(self) -> None:
        self.replica.commit()

    @rule(ms=st.integers(0, 3))
    def tick(self, ms: int) -> None:
        self.ms += ms

    @rule(key=KEYS, offset=OFFSETS, rid=st.sampled_from(["a.0", "z.1"]),
          value=st.integers(10, 19))
    def remote(self, key: str, offset: int, rid: str, value: int) -> None:
        w = LWWRegister()
        w.assign(rid, value, max(0, self.replica.hlc.last + offset))
        self.replica.apply_remote({key: w}, origin=rid)

    @rule(key=KEYS)
    def timestamp_for_another_write(self, key: str) -> None:
        self.replica.now()  # stamps what waits, folds nothing

    @rule(how=st.sampled_from(["get", "state", "items"]))
    def check(self, how: str) -> None:
        r, m = self.replica, self.mirror
        r.commit()  # the mirror has what is committed
        keys = r.keys()
        assert keys == m.keys()
        if how == "items":
            mine: dict[str, Any] = {k: x for k, x in r.items()}
            assert mine == {k: x for k, x in m.items()}
        elif how == "state":
            assert all(r.state(k) == m.state(k) for k in keys)
        else:
            assert all(r.get(k) == m.get(k) for k in keys)


RegisterFoldMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40,
                                                 deadline=None)
TestRegisterFold = RegisterFoldMachine.TestCase
