"""FakeHost: an in-memory replica for the sync tests, with a durable part that survives crashes.

The *durable* part (state, delta log, marks, last seq) is what a store would hold; the
*live* part (state with uncommitted changes, the queue of work to commit, the engine) is
lost by a crash. :meth:`FakeHost.restart` rebuilds the live part, and the engine, from the
durable part only, as a real replica does after ``kill -9``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from crdtsync.clock import HybridLogicalClock
from crdtsync.codec import encode_group
from crdtsync.group import Group
from crdtsync.sync import Apply, Output, SyncConfig, SyncEngine, default_digest
from crdtsync.types import AWORSet, Crdt, GCounter, LWWRegister, ORMap, PNCounter

__all__ = ["FakeHost", "KEY_TYPES", "join_into"]

KEY_TYPES: dict[str, type[Crdt]] = {
    "c": PNCounter, "g": GCounter, "s": AWORSet, "l": LWWRegister, "m": ORMap,
}
"""Key prefix -> type: a key's first letter fixes its type on every replica."""


def with_columns(group: dict[str, Crdt], rid: str) -> Group:
    """A local batch as the replica commits it: counters' own entries and registers' own
    writes by column.

    Non-empty counter deltas of a local batch hold only ``rid``'s entries (its totals), so
    they move to one column per counter type, as do the registers ``rid`` wrote; everything
    else stays a per-key delta.
    """
    deltas: dict[str, Crdt] = {}
    counts: dict[tuple[type, str], tuple[dict[str, int], dict[str, int]]] = {}
    for key, delta in group.items():
        if isinstance(delta, (PNCounter, GCounter)) and not delta.is_bottom():
            assert set(delta._p) | set(getattr(delta, "_n", ())) == {rid}
            up, down = counts.setdefault((type(delta), rid), ({}, {}))
            if rid in delta._p:
                up[key] = delta._p[rid]
            if rid in getattr(delta, "_n", ()):
                down[key] = delta._n[rid]  # type: ignore[attr-defined]
        elif isinstance(delta, LWWRegister) and delta.writer == rid:
            stamps, values = counts.setdefault((LWWRegister, rid), ({}, {}))
            stamps[key], values[key] = delta.timestamp, delta.value
        else:
            deltas[key] = delta
    return Group(deltas, counts)


def join_into(target: dict[str, Crdt], group: Mapping[str, Crdt]) -> None:
    """Join every value of ``group`` into ``target`` (copying values new to it)."""
    for key, value in group.items():
        mine = target.get(key)
        if mine is None:
            target[key] = value.copy()
        else:
            mine.merge(value)


class FakeHost:
    """An in-memory replica: live state, a durable part, and a queue of uncommitted work."""

    def __init__(self, config: SyncConfig) -> None:
        self.config = config
        self.rid = config.replica
        self.durable: dict[str, Crdt] = {}
        # seq -> (origin, group, upto): the log as a store keeps it, bounds included
        self.dlog: dict[int, tuple[str | None, dict[str, Crdt], int | None]] = {}
        self.dmarks: dict[str, int] = {}
        self.dlast = 0
        self.rejected = 0
        # (seq, durable state) after each commit that logged an entry, oldest first: what
        # "a peer holds my log up to seq" promises it holds (Cluster.check_invariants)
        self.history: list[tuple[int, dict[str, Crdt]]] = []
        self.restart()

    def restart(self) -> None:
        """Come back from a crash: only the durable part is left."""
        self.live = {k: v.copy() for k, v in self.durable.items()}
        self.queue: list[tuple[str, Any, dict[str, Crdt]]] = []
        self.clock = HybridLogicalClock(last=0)
        # odd entries come back encoded, as a SyncService restores its log (decoded only if
        # collected); even ones as groups; each with its bound, as the store logged it
        self.engine = SyncEngine(
            self, self.config,
            log=[(s, o, encode_group(g) if s % 2 else g, None, upto)
                 for s, (o, g, upto) in self.dlog.items()],
            marks=dict(self.dmarks), last_seq=self.dlast)

    # -- SyncHost -------------------------------------------------------------------------

    def keys(self) -> list[str]:
        return list(self.durable)

    def digest(self, key: str) -> bytes:
        return default_digest(self.durable[key])

    def state(self, key: str) -> Crdt:
        return self.durable[key]

    def served_upto(self) -> int:
        return self.dlast  # the durable state is the join of the log up to dlast

    # -- the host's duties ----------------------------------------------------------------

    def apply(self, apply: Apply) -> None:
        """Join a remote group into the live state (RR per key); queue it for commit."""
        novel: dict[str, Crdt] = {}
        for key, delta in apply.group.items():
            mine = self.live.get(key)
            if mine is None:
                mine = type(delta)()
            elif type(mine) is not type(delta):
                self.rejected += 1
                continue
            fresh = mine.novel(delta)
            if fresh is not None:
                mine.merge(delta)
                self.live[key] = mine
                novel[key] = fresh.copy()
        self.queue.append(("apply", apply, novel))

    def write(self, key: str, mutate: Callable[[Any], Crdt]) -> None:
        """Run a local mutator on the live state; its delta joins the open local batch."""
        value = self.live.get(key)
        if value is None:
            value = self.live[key] = KEY_TYPES[key[0]]()
        delta = mutate(value)
        if self.queue and self.queue[-1][0] == "local":
            join_into(self.queue[-1][2], {key: delta})
        else:
            self.queue.append(("local", None, {key: delta}))

    def commit(self, now: float, oracle: dict[str, Crdt]) -> list[Output]:
        """Make the queue durable in one atomic step, then tell the engine."""
        out: list[Output] = []
        queue, self.queue = self.queue, []
        for kind, apply, group in queue:
            if kind == "local" and self.dlast % 2:  # every other batch: columns, as a replica
                group = with_columns(group, self.rid)
            join_into(self.durable, group)
            seq = None
            if group and not self.config.follower:
                seq = self.dlast = self.dlast + 1
                self.dlog[seq] = (apply.peer, group, apply.bound) if apply else (None, group, None)
            if kind == "local":
                join_into(oracle, group)
                assert seq is not None
                out += self.engine.logged(seq, group, now)
                continue
            if apply.mark is not None:
                self.dmarks[apply.peer] = max(self.dmarks.get(apply.peer, 0), apply.mark)
            out += self.engine.applied(apply, seq, group, now)
        if queue and (not self.history or self.history[-1][0] < self.dlast):
            self.history.append((self.dlast, {k: v.copy() for k, v in self.durable.items()}))
        return out

    def state_as_of(self, seq: int) -> dict[str, Crdt]:
        """Return the durable state after the last commit whose entries end at or before
        ``seq`` (a lower bound of this replica's state as of its log entry ``seq``)."""
        best: dict[str, Crdt] = {}
        for at, state in self.history:
            if at > seq:
                break
            best = state
        return best

    def trim(self, upto: int) -> None:
        for seq in [s for s in self.dlog if s <= upto]:
            del self.dlog[seq]
