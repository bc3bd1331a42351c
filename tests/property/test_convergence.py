"""Convergence of random replicas under a hostile network, checked against specifications.

The simulation follows delta-interval anti-entropy (Almeida et al. §6, Algorithm 2): every
replica keeps a log of the deltas it made or received (only those that changed it), sends a
peer the join of the entries the peer has not acked, and a receiver applies a message only if
it leaves no gap in that sender's entries (per-sender FIFO, with retransmission). Messages and
acks are lost, duplicated and reordered at random; replicas also merge each other's full
states. Delivery is therefore causal, as the sync protocol guarantees.

Every op is recorded with the set of ops its replica had seen (its causal past). Each type has
an *oracle*: the value its specification predicts for a causally closed set of ops. Checked:
every replica, at every point, shows the oracle's value over the ops it has seen; after
healing every replica holds the same state, with the oracle's value over all ops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdtsync.codec import dumps, encode
from crdtsync.types.lww import check_timestamp
from tests.strategies import (
    AWORSET,
    EWFLAG,
    GCOUNTER,
    LWW,
    MIXED_KINDS,
    MVREGISTER,
    ORMAP_MIXED,
    PNCOUNTER,
    REPLICA_IDS,
    RWORSET,
    SPECS,
    TypeSpec,
    op_sequences,
)

# -- recorded ops and oracles -------------------------------------------------------------------


@dataclass(frozen=True)
class Rec:
    """One op as issued: its id, replica, op tuple and causal past (ids of ops seen)."""

    id: int
    replica: str
    op: tuple[Any, ...]
    past: frozenset[int]


Oracle = Callable[[list[Rec], list[Rec]], tuple[Any, bool]]
"""(ops on this value, resets = map removes covering it) -> (value, holds any live dot)."""


def _killed(rec: Rec, killers: Iterable[Rec]) -> bool:
    """True if some op in ``killers`` had seen ``rec`` (so cleared its dot)."""
    return any(rec.id in k.past for k in killers)


def oracle_counter(recs: list[Rec], resets: list[Rec]) -> tuple[Any, bool]:
    total = sum(r.op[1] if r.op[0] == "inc" else -r.op[1] for r in recs)
    return total, bool(recs)


def oracle_aworset(recs: list[Rec], resets: list[Rec]) -> tuple[Any, bool]:
    """An element is present iff some add of it was seen by no remove of it (nor reset)."""
    present = set()
    for r in recs:
        if r.op[0] == "add":
            killers = [k for k in recs if k.op == ("remove", r.op[1])] + resets
            if not _killed(r, killers):
                present.add(r.op[1])
    return frozenset(present), bool(present)


def oracle_rworset(recs: list[Rec], resets: list[Rec]) -> tuple[Any, bool]:
    """Live ops of an element are those no later op on it saw; present iff all are adds."""
    present, live_any = set(), False
    for e in {r.op[1] for r in recs}:
        ops = [r for r in recs if r.op[1] == e]
        live = [r for r in ops if not _killed(r, [o for o in ops if o is not r] + resets)]
        live_any = live_any or bool(live)
        if live and all(r.op[0] == "add" for r in live):
            present.add(e)
    return frozenset(present), live_any


def oracle_ewflag(recs: list[Rec], resets: list[Rec]) -> tuple[Any, bool]:
    """On iff some enable was seen by no disable (nor reset)."""
    disables = [r for r in recs if r.op[0] == "disable"] + resets
    on = any(r.op[0] == "enable" and not _killed(r, disables) for r in recs)
    return on, on


def oracle_mvregister(recs: list[Rec], resets: list[Rec]) -> tuple[Any, bool]:
    """The values of the assigns that no other assign or clear (nor reset) saw."""
    live = [r for r in recs if r.op[0] == "assign"
            and not _killed(r, [o for o in recs if o is not r] + resets)]
    unique = {dumps(r.op[1]): r.op[1] for r in live}  # shown once, in canonical order
    return tuple(unique[k] for k in sorted(unique)), bool(live)


Write = tuple[int, str, bytes, Any]  # (timestamp, replica, canonical value, value)


def _lww_write(rec: Rec) -> Write:
    return (check_timestamp(rec.op[2]), rec.replica, dumps(rec.op[1]), rec.op[1])


def _rank(write: Write) -> tuple[int, str, bytes]:
    return write[:3]


def oracle_lww(recs: list[Rec], resets: list[Rec]) -> tuple[Any, bool]:
    """The write with the greatest (timestamp, replica id, canonical value)."""
    if not recs:
        return None, False
    return max(map(_lww_write, recs), key=_rank)[3], True


def oracle_map_counter(recs: list[Rec], resets: list[Rec]) -> tuple[Any, bool]:
    """Counter field: each replica's live dot carries its running total (embedded.py)."""
    value, live_any = 0, False
    for replica in {r.replica for r in recs}:
        total, prev = 0, None
        for r in (r for r in recs if r.replica == replica):
            seen_resets = [k for k in resets if k.id in r.past]
            if prev is None or _killed(prev, seen_resets):
                total = 0
            total += r.op[1] if r.op[0] == "inc" else -r.op[1]
            prev = r
        if prev is not None and not _killed(prev, resets):
            value += total
            live_any = True
    return value, live_any


def oracle_map_lww(recs: list[Rec], resets: list[Rec]) -> tuple[Any, bool]:
    """LWW field: an assign carries the best of its write and the live writes it saw."""
    carried: dict[int, Write] = {}

    def live_in(universe: list[Rec], universe_resets: list[Rec]) -> list[Rec]:
        return [r for r in universe
                if not _killed(r, [o for o in universe if o is not r] + universe_resets)]

    for r in recs:  # in issue order: everything in r.past was issued before r
        seen = [o for o in recs if o.id in r.past]
        seen_resets = [k for k in resets if k.id in r.past]
        candidates = [_lww_write(r)] + [carried[o.id] for o in live_in(seen, seen_resets)]
        carried[r.id] = max(candidates, key=_rank)
    live = live_in(recs, resets)
    if not live:
        return None, False
    return max((carried[r.id] for r in live), key=_rank)[3], True


def oracle_map(spec: TypeSpec) -> Oracle:
    """A map's value: each key's nested oracle, removes of the key acting as resets."""

    def oracle(recs: list[Rec], resets: list[Rec]) -> tuple[Any, bool]:
        value = {}
        for key, child in spec.children.items():
            inner = [Rec(r.id, r.replica, r.op[2], r.past) for r in recs
                     if r.op[0] == "update" and r.op[1] == key]
            removes = [r for r in recs if r.op == ("remove", key)]
            child_value, live = oracle_for(child, embedded=True)(inner, resets + removes)
            if live:
                value[key] = child_value
        return value, bool(value)

    return oracle


def oracle_mixed_map(recs: list[Rec], resets: list[Rec]) -> tuple[Any, bool]:
    """Type conflicts: every type kept apart; ``value`` shows the tag that sorts last."""
    value = {}
    for key in {r.op[1] for r in recs}:
        removes = [r for r in recs if r.op == ("remove", key)]
        for tag in sorted(MIXED_KINDS):
            inner = [Rec(r.id, r.replica, r.op[3], r.past) for r in recs
                     if r.op[0] == "update" and r.op[1] == key and r.op[2] == tag]
            child_value, live = oracle_for(MIXED_KINDS[tag], embedded=True)(
                inner, resets + removes)
            if live:
                value[key] = child_value
    return value, bool(value)


def oracle_for(spec: TypeSpec, *, embedded: bool = False) -> Oracle:
    if spec is ORMAP_MIXED:
        return oracle_mixed_map
    if spec.children:
        return oracle_map(spec)
    if spec.cls in (GCOUNTER.cls, PNCOUNTER.cls):
        return oracle_map_counter if embedded else oracle_counter
    if spec.cls is LWW.cls:
        return oracle_map_lww if embedded else oracle_lww
    return {
        AWORSET.cls: oracle_aworset, RWORSET.cls: oracle_rworset, EWFLAG.cls: oracle_ewflag,
        MVREGISTER.cls: oracle_mvregister,
    }[spec.cls]


def canon(v: Any) -> Any:
    """A comparable form of a value that keeps 1, 1.0, True and "1" apart."""
    if isinstance(v, frozenset):
        return ("set", frozenset(canon(e) for e in v))
    if isinstance(v, (tuple, list)):
        return (type(v).__name__, tuple(canon(e) for e in v))
    if isinstance(v, dict):
        return ("dict", frozenset((canon(k), canon(e)) for k, e in v.items()))
    return (type(v).__name__, v)


# -- the simulated cluster ----------------------------------------------------------------------


@dataclass
class Node:
    rid: str
    state: Any
    log: list[tuple[Any, frozenset[int]]] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    acked: dict[str, int] = field(default_factory=dict)  # peer -> entries of mine it applied
    applied: dict[str, int] = field(default_factory=dict)  # sender -> its entries applied


@dataclass
class Cluster:
    spec: TypeSpec
    nodes: list[Node]
    records: list[Rec] = field(default_factory=list)
    network: list[tuple[Any, ...]] = field(default_factory=list)

    @classmethod
    def new(cls, spec: TypeSpec, n: int) -> Cluster:
        return cls(spec, [Node(rid, spec.new()) for rid in REPLICA_IDS[:n]])

    def node(self, i: int) -> Node:
        return self.nodes[i % len(self.nodes)]

    def op(self, i: int, op: tuple[Any, ...]) -> None:
        node = self.node(i)
        rec = Rec(len(self.records), node.rid, op, frozenset(node.seen))
        delta = self.spec.apply(node.state, node.rid, op)
        if delta is None:  # refused (type conflict): no effect, not an op
            return
        self.records.append(rec)
        node.seen.add(rec.id)
        node.log.append((delta, frozenset(node.seen)))

    def _absorb(self, node: Node, x: Any, seen: frozenset[int]) -> None:
        """Join ``x`` into ``node``; log it for forwarding only if it changed the state."""
        before = node.state.copy()
        node.state.merge(x)
        node.seen |= seen
        if node.state != before:
            node.log.append((x, frozenset(node.seen)))

    def message(self, src: Node, dst: Node) -> tuple[Any, ...] | None:
        start = src.acked.get(dst.rid, 0)
        if start >= len(src.log):
            return None
        delta = self.spec.new()
        for entry, _ in src.log[start:]:
            delta.merge(entry)
        return ("delta", src.rid, dst.rid, start, len(src.log), delta, src.log[-1][1])

    def by_id(self, rid: str) -> Node:
        return next(n for n in self.nodes if n.rid == rid)

    def deliver(self, msg: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """Deliver one message; return the ack it triggers, if any."""
        if msg[0] == "ack":
            _, src, dst, upto = msg
            node = self.by_id(dst)
            node.acked[src] = max(node.acked.get(src, 0), upto)
            return None
        _, src, dst, start, end, delta, seen = msg
        node = self.by_id(dst)
        have = node.applied.get(src, 0)
        if start <= have:  # no gap: every earlier entry of src is applied (causal delivery)
            self._absorb(node, delta, seen)
            node.applied[src] = max(have, end)
        return ("ack", dst, src, node.applied.get(src, 0))

    def full(self, i: int, j: int) -> None:
        src, dst = self.node(i), self.node(j)
        self._absorb(dst, src.state.copy(), frozenset(src.seen))

    def run(self, action: tuple[Any, ...]) -> None:
        kind = action[0]
        if kind == "op":
            self.op(action[1], action[2])
        elif kind == "send":
            src, dst = self.node(action[1]), self.node(action[2])
            if src is not dst and (msg := self.message(src, dst)) is not None:
                self.network.append(msg)
        elif kind == "deliver" and self.network:
            k = action[1] % len(self.network)
            msg = self.network[k] if action[2] else self.network.pop(k)  # keep: duplicate
            if (ack := self.deliver(msg)) is not None:
                self.network.append(ack)
        elif kind == "drop" and self.network:
            self.network.pop(action[1] % len(self.network))
        elif kind == "full":
            self.full(action[1], action[2])

    def heal(self) -> None:
        """Reliable delta sync between every pair until nothing is left unacked."""
        self.network.clear()
        progress = True
        while progress:
            progress = False
            for src in self.nodes:
                for dst in self.nodes:
                    if src is not dst and (msg := self.message(src, dst)) is not None:
                        ack = self.deliver(msg)
                        assert ack is not None
                        self.deliver(ack)
                        progress = True

    def expected(self, seen: Iterable[int] | None = None) -> Any:
        ids = set(seen) if seen is not None else {r.id for r in self.records}
        recs = [r for r in self.records if r.id in ids]
        for r in recs:
            assert r.past <= ids, "seen set is not causally closed"
        return oracle_for(self.spec)(recs, [])[0]

    def check_every_replica_against_the_oracle(self) -> None:
        for node in self.nodes:
            assert canon(node.state.value) == canon(self.expected(node.seen)), node.rid

    def check_converged(self) -> None:
        first = self.nodes[0]
        for node in self.nodes[1:]:
            assert node.seen == first.seen
            assert node.state == first.state
            assert encode(node.state) == encode(first.state)
        assert first.seen == {r.id for r in self.records}
        assert canon(first.state.value) == canon(self.expected())


def schedules(spec: TypeSpec, *, max_actions: int = 60) -> st.SearchStrategy[list[Any]]:
    index = st.integers(min_value=0, max_value=len(REPLICA_IDS) - 1)
    slot = st.integers(min_value=0, max_value=63)
    op = st.tuples(st.just("op"), index, spec.ops)
    send = st.tuples(st.just("send"), index, index)
    deliver = st.tuples(st.just("deliver"), slot, st.booleans())
    return st.lists(
        st.one_of(op, send, deliver, op, deliver, send, op,
                  st.tuples(st.just("drop"), slot),
                  st.tuples(st.just("full"), index, index)),
        min_size=max_actions // 4,
        max_size=max_actions,
    )


specs = pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)


@specs
@given(data=st.data())
def test_delta_sync_over_a_lossy_network_converges_to_the_specification(
        spec: TypeSpec, data: st.DataObject) -> None:
    cluster = Cluster.new(spec, data.draw(st.integers(min_value=3, max_value=5)))
    for action in data.draw(schedules(spec)):
        cluster.run(action)
        cluster.check_every_replica_against_the_oracle()
    cluster.heal()
    cluster.check_converged()


@specs
@given(data=st.data())
def test_full_states_merged_in_any_order_converge_to_the_specification(
        spec: TypeSpec, data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=3, max_value=5))
    cluster = Cluster.new(spec, n)
    index = st.integers(min_value=0, max_value=n - 1)
    steps = data.draw(st.lists(st.one_of(
        st.tuples(st.just("op"), index, spec.ops),
        st.tuples(st.just("full"), index, index),
    ), max_size=20))
    for step in steps:
        cluster.run(step)
    cluster.check_every_replica_against_the_oracle()
    snapshots = [(node.state.copy(), frozenset(node.seen)) for node in cluster.nodes]
    for node in cluster.nodes:
        extra = data.draw(st.lists(st.sampled_from(snapshots), max_size=3))
        for state, seen in data.draw(st.permutations(snapshots + extra)):
            node.state.merge(state)
            node.seen |= seen
    cluster.check_converged()


# -- sequential specifications: no concurrency --------------------------------------------------


def run_sequentially(spec: TypeSpec, ops: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
    """Run each op on its replica after that replica has seen every earlier op."""
    replicas = {rid: spec.new() for rid in REPLICA_IDS[:3]}
    deltas: list[Any] = []
    for rid, op in ops:
        for delta in deltas:
            replicas[rid].merge(delta)
        delta = spec.apply(replicas[rid], rid, op)
        if delta is not None:
            deltas.append(delta)
    out = spec.new()
    for delta in deltas:
        out.merge(delta)
    return [out, *replicas.values()]


@pytest.mark.parametrize("spec", [AWORSET, RWORSET], ids=lambda s: s.name)
@given(data=st.data())
def test_sets_without_concurrency_behave_like_a_set(spec: TypeSpec,
                                                    data: st.DataObject) -> None:
    ops = data.draw(op_sequences(spec, max_size=20))
    model: set[Any] = set()
    for _, (kind, element) in ops:
        (model.add if kind == "add" else model.discard)(element)
    assert run_sequentially(spec, ops)[0].value == frozenset(model)


@given(ops=op_sequences(EWFLAG, max_size=12))
def test_flag_without_concurrency_shows_the_last_op(ops: list[Any]) -> None:
    expected = bool(ops) and ops[-1][1] == ("enable",)
    assert run_sequentially(EWFLAG, ops)[0].value is expected


@given(ops=op_sequences(MVREGISTER, max_size=12))
def test_mv_register_without_concurrency_holds_the_last_assign(ops: list[Any]) -> None:
    value = run_sequentially(MVREGISTER, ops)[0].value
    if not ops or ops[-1][1] == ("clear",):
        assert value == ()
    else:
        assert [dumps(v) for v in value] == [dumps(ops[-1][1][1])]


@pytest.mark.parametrize("spec", [GCOUNTER, PNCOUNTER], ids=lambda s: s.name)
@given(data=st.data())
def test_counters_sum_their_ops(spec: TypeSpec, data: st.DataObject) -> None:
    ops = data.draw(op_sequences(spec, max_size=20))
    expected = sum(by if kind == "inc" else -by for _, (kind, by) in ops)
    assert run_sequentially(spec, ops)[0].value == expected


@given(ops=op_sequences(LWW, max_size=12))
def test_lww_shows_the_greatest_timestamp_then_replica(ops: list[Any]) -> None:
    value = run_sequentially(LWW, ops)[0]
    if not ops:
        assert value.is_bottom()
        return
    best = max(ops, key=lambda o: (check_timestamp(o[1][2]), o[0], dumps(o[1][1])))
    assert dumps(value.value) == dumps(best[1][1])
