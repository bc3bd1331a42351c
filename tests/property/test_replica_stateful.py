"""Stateful test: a replica on SQLite against a model, with commits, reopens and crashes."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from crdtsync.replica import Replica

ELEMS = st.sampled_from(["a", "b", "c", 1, 2])
KEYS = st.sampled_from(["c0", "c1"])


class ReplicaMachine(RuleBasedStateMachine):
    """Model: the values a replica must show (pending) and must recover (committed)."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="crdtsync-stateful-")
        self.replica = Replica.open(self.dir, name="m")
        self.abandoned: list[Replica] = []
        self.pending: dict[str, Any] = {"c0": 0, "c1": 0, "s": set(), "r": None}
        self.committed = self._snapshot()

    def _snapshot(self) -> dict[str, Any]:
        return {k: set(v) if isinstance(v, set) else v for k, v in self.pending.items()}

    @rule(key=KEYS, by=st.integers(1, 5))
    def increment(self, key: str, by: int) -> None:
        self.replica.counter(key).increment(by)
        self.pending[key] += by

    @rule(e=ELEMS)
    def add(self, e: Any) -> None:
        self.replica.set("s").add(e)
        self.pending["s"].add(e)

    @rule(e=ELEMS)
    def remove(self, e: Any) -> None:
        self.replica.set("s").remove(e)
        self.pending["s"].discard(e)

    @rule(v=st.integers(0, 100))
    def assign(self, v: int) -> None:
        self.replica.register("r").assign(v)
        self.pending["r"] = v

    @rule(by=st.integers(1, 3), e=ELEMS, fail=st.booleans())
    def batch(self, by: int, e: Any, fail: bool) -> None:
        try:
            with self.replica.batch() as b:
                b.counter("c0").increment(by)
                b.set("s").add(e)
                if fail:
                    raise KeyError("abort")
        except KeyError:
            return
        self.pending["c0"] += by
        self.pending["s"].add(e)

    @rule()
    def commit(self) -> None:
        self.replica.commit()
        self.committed = self._snapshot()

    @rule()
    def reopen(self) -> None:
        self.replica.close()
        self.committed = self._snapshot()
        self.replica = Replica.open(self.dir)

    @precondition(lambda self: len(self.abandoned) < 5)
    @rule()
    def crash(self) -> None:
        self.abandoned.append(self.replica)  # never committed, never closed
        self.replica = Replica.open(self.dir)
        self.pending = {k: set(v) if isinstance(v, set) else v for k, v in self.committed.items()}

    @invariant()
    def matches_model(self) -> None:
        r = self.replica
        assert r.get("c0", 0) == self.pending["c0"]
        assert r.get("c1", 0) == self.pending["c1"]
        assert r.get("s", frozenset()) == frozenset(self.pending["s"])
        assert r.get("r") == self.pending["r"]

    def teardown(self) -> None:
        self.replica.close()
        for old in self.abandoned:
            old.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


ReplicaMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestReplicaMachine = ReplicaMachine.TestCase
