"""A deterministic simulator of replicas running SyncEngine over a hostile network.

- :class:`~tests.sync.fakehost.FakeHost`: an in-memory replica whose crash loses all but
  its durable part (state, delta log, marks, last seq);
- :class:`Cluster`: hosts, a topology (mesh, ring, star, plus followers), links that carry
  encoded messages which may be lost, duplicated, reordered and delayed, partitions that
  cut links, crashes and restarts, and the oracle: the join of every committed local write.

All randomness comes from the ``random.Random`` handed in, so a seed replays a schedule.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from crdtsync.clock import HybridLogicalClock
from crdtsync.errors import PeerError
from crdtsync.sync import (
    Apply,
    Close,
    Output,
    Send,
    SyncConfig,
    Trim,
    decode_message,
    encode_message,
)
from crdtsync.types import AWORSet, Crdt, LWWRegister, PNCounter
from tests.sync.fakehost import KEY_TYPES, FakeHost

__all__ = ["FakeHost", "Cluster", "topology_edges", "random_step", "run_schedule", "KEY_TYPES"]

def topology_edges(kind: str, rids: list[str], rng: random.Random) -> set[frozenset[str]]:
    """Return the links of a topology over ``rids``: mesh, ring or star."""
    n = len(rids)
    if kind == "mesh":
        return {frozenset((a, b)) for i, a in enumerate(rids) for b in rids[i + 1:]}
    if kind == "ring":
        return {frozenset((rids[i], rids[(i + 1) % n])) for i in range(n)}
    if kind == "star":
        center = rng.choice(rids)
        return {frozenset((center, r)) for r in rids if r != center}
    raise ValueError(kind)


class Cluster:
    """Replicas, links and a hostile network, driven step by step from one Random."""

    def __init__(self, rng: random.Random, *, n: int, topology: str, followers: int = 0,
                 loss: float = 0.0, dup: float = 0.0, codec: bool = True,
                 **knobs: Any) -> None:
        self.rng = rng
        self.now = 0.0
        self.loss, self.dup, self.codec = loss, dup, codec
        primaries = [f"r{i}" for i in range(n)]
        self.edges = topology_edges(topology, primaries, rng)
        self.followers = [f"f{i}" for i in range(followers)]
        for f in self.followers:
            for p in rng.sample(primaries, min(len(primaries), rng.choice((1, 2)))):
                self.edges.add(frozenset((f, p)))
        self.primaries = primaries
        self.hosts: dict[str, FakeHost] = {}
        for rid in primaries + self.followers:
            peers = frozenset(p for e in self.edges if rid in e for p in e if p != rid)
            cfg = SyncConfig(replica=rid, cluster="sim", follower=rid in self.followers,
                             peers=peers, **knobs)
            self.hosts[rid] = FakeHost(cfg)
        self.up = set(self.hosts)
        self.cut: set[frozenset[str]] = set()
        self.links: dict[int, tuple[str, str]] = {}
        self.pair_link: dict[frozenset[str], int] = {}
        self.next_link = 0
        self.inflight: list[tuple[int, str, Any]] = []
        self.oracle: dict[str, Crdt] = {}
        self.messages = 0
        self.bytes = 0
        self.sends: list[tuple[str, str, Any]] | None = None  # see record()
        self.connect_all()

    def record(self) -> list[tuple[str, str, Any]]:
        """Record every message sent from now on, as (sender, receiver, message)."""
        if self.sends is None:
            self.sends = []
        return self.sends

    # -- links ------------------------------------------------------------------------------

    def connect_all(self) -> None:
        """Open a link on every edge whose ends are up and not cut (the transport redials)."""
        for edge in sorted(self.edges, key=sorted):
            if edge in self.pair_link or edge in self.cut or not edge <= self.up:
                continue
            a, b = sorted(edge)
            self.next_link += 1
            lid = self.next_link
            self.links[lid] = (a, b)
            self.pair_link[edge] = lid
            self.run(a, self.hosts[a].engine.connect(lid, self.now))
            self.run(b, self.hosts[b].engine.connect(lid, self.now))

    def close(self, lid: int) -> None:
        """Close a link at both ends; what was in flight on it is lost."""
        ends = self.links.pop(lid, None)
        if ends is None:
            return
        del self.pair_link[frozenset(ends)]
        for rid in ends:
            if rid in self.up:
                self.hosts[rid].engine.disconnect(lid)

    def run(self, rid: str, outputs: list[Output]) -> None:
        """Carry out an engine's outputs as the host and the transport would."""
        host = self.hosts[rid]
        for out in outputs:
            if isinstance(out, Send):
                ends = self.links.get(out.link)  # type: ignore[call-overload]
                if ends is None:
                    continue
                dst = ends[1] if ends[0] == rid else ends[0]
                if self.sends is not None:
                    self.sends.append((rid, dst, out.message))
                payload: Any = encode_message(out.message)
                self.messages += 1
                self.bytes += len(payload)
                if not self.codec:
                    payload = out.message
                self.inflight.append((out.link, dst, payload))  # type: ignore[arg-type]
            elif isinstance(out, Apply):
                host.apply(out)
            elif isinstance(out, Trim):
                host.trim(out.upto)
            elif isinstance(out, Close):
                self.close(out.link)  # type: ignore[arg-type]

    # -- network events -------------------------------------------------------------------

    def deliver(self, index: int) -> None:
        """Deliver the in-flight message at ``index`` (maybe lost or duplicated first)."""
        lid, dst, payload = self.inflight.pop(index)
        if lid not in self.links:
            return
        if self.rng.random() < self.loss:
            return
        if self.rng.random() < self.dup:
            self.inflight.insert(self.rng.randrange(len(self.inflight) + 1), (lid, dst, payload))
        message = decode_message(payload) if self.codec else payload
        try:
            outputs = self.hosts[dst].engine.receive(lid, message, self.now)
        except PeerError as exc:
            raise AssertionError(f"honest peer broke the protocol at {dst}: {exc}") from exc
        self.run(dst, outputs)

    def partition(self, mode: str) -> None:
        """Cut links: ``halves`` (random split), ``isolate`` (one replica), ``edges`` (two)."""
        rids = sorted(self.hosts)
        if mode == "halves":
            side = set(self.rng.sample(rids, len(rids) // 2))
            self.cut = {e for e in self.edges if len(e & side) == 1}
        elif mode == "isolate":
            lone = self.rng.choice(rids)
            self.cut = {e for e in self.edges if lone in e}
        else:
            edges = sorted(self.edges, key=sorted)
            self.cut = set(self.rng.sample(edges, min(2, len(edges))))
        for edge in self.cut:
            if edge in self.pair_link:
                self.close(self.pair_link[edge])

    def heal(self) -> None:
        self.cut = set()
        self.connect_all()

    def crash(self, rid: str) -> None:
        """Crash ``rid``: its links drop, everything not committed is lost."""
        for lid, ends in list(self.links.items()):
            if rid in ends:
                self.close(lid)
        self.up.discard(rid)
        self.hosts[rid].restart()  # the engine is rebuilt now; it runs again on restart()

    def restart(self, rid: str) -> None:
        self.up.add(rid)
        self.connect_all()

    # -- host events ----------------------------------------------------------------------

    def commit(self, rid: str) -> None:
        self.run(rid, self.hosts[rid].commit(self.now, self.oracle))

    def tick(self, rid: str) -> None:
        self.run(rid, self.hosts[rid].engine.tick(self.now))

    def write(self, rid: str) -> None:
        """A random local write on ``rid``."""
        host, rng = self.hosts[rid], self.rng
        key = rng.choice("cgslm") + str(rng.randrange(3))
        host.write(key, _mutator(key[0], rid, rng, host.clock, int(self.now * 1000)))

    # -- settling ---------------------------------------------------------------------------

    def pump(self, *, commit: bool = True, limit: int = 100_000) -> None:
        """Deliver in order (FIFO) until nothing is in flight, committing as replicas would."""
        for _ in range(limit):
            if not self.inflight and not (commit and any(h.queue for h in self.hosts.values())):
                return
            while self.inflight:
                self.deliver(0)
            if commit:
                for rid in sorted(self.up):
                    self.commit(rid)
        raise AssertionError("pump did not finish")

    def peek(self) -> list[tuple[str, Any]]:
        """Return the in-flight messages as (destination, decoded message)."""
        return [(dst, decode_message(p) if self.codec else p) for _, dst, p in self.inflight]


    def settle(self, *, max_rounds: int = 80) -> int:
        """Heal, restart, deliver everything without loss, tick until quiet; return rounds."""
        self.loss = self.dup = 0.0
        for rid in sorted(set(self.hosts) - self.up):
            self.restart(rid)
        self.heal()
        retransmit = next(iter(self.hosts.values())).config.retransmit_after
        for rounds in range(1, max_rounds + 1):
            while self.inflight or any(h.queue for h in self.hosts.values()):
                while self.inflight:
                    self.deliver(self.rng.randrange(len(self.inflight)))
                for rid in sorted(self.hosts):
                    self.commit(rid)
            if rounds > 3 and self.quiet():
                return rounds
            self.now += retransmit
            for rid in sorted(self.hosts):
                self.tick(rid)
        raise AssertionError(f"no quiescence after {max_rounds} rounds")

    def quiet(self) -> bool:
        """Nothing in flight, nothing to commit, every log empty, no catch-up under way."""
        return not self.inflight and all(
            not h.queue and h.engine.log_size() == (0, 0)
            and not any(s.catching_up for s in h.engine.status().values())
            for h in self.hosts.values())

    def check(self) -> None:
        """Every replica equals every other and the join of all committed local writes."""
        for rid, host in sorted(self.hosts.items()):
            assert host.live == host.durable, f"{rid}: live state differs from durable state"
            mine, oracle = _unbottom(host.durable), _unbottom(self.oracle)
            diff = sorted(k for k in oracle.keys() | mine.keys() if oracle.get(k) != mine.get(k))
            assert not diff, f"{rid} differs from the join of all writes on keys {diff}"
            assert not host.dlog, f"{rid}: log not trimmed: {sorted(host.dlog)}"
            assert host.rejected == 0


    def check_invariants(self) -> None:
        """Hold at every step: durable states never exceed what was written, a replica that
        holds a peer's log up to a mark holds the peer's durable state as of that mark
        (whatever BP and relayed marks left out of the intervals), and nothing is acked
        that the receiver has not made durable."""
        for rid, host in self.hosts.items():
            for key, value in host.durable.items():
                if not value.is_bottom():
                    assert key in self.oracle, f"{rid} holds {key!r}, never committed anywhere"
                    joined = self.oracle[key].copy()
                    joined.merge(value)
                    assert joined == self.oracle[key], f"{rid}: {key!r} exceeds the oracle"
            for peer, mark in host.dmarks.items():
                # "I hold your log up to mark": my durable state holds yours as of mark
                for key, value in self.hosts[peer].state_as_of(mark).items():
                    joined = value.copy()
                    if key in host.durable:
                        joined.merge(host.durable[key])
                    assert value.is_bottom() or joined == host.durable.get(key), (
                        f"{rid} holds {peer}'s log up to {mark} but lacks its {key!r}")
            for peer, status in host.engine.status().items():
                durable = self.hosts[peer].dmarks.get(rid, 0) if peer in self.hosts else 0
                assert status.acked <= durable or not status.connected, (
                    f"{rid} thinks {peer} acked {status.acked}, {peer} holds {durable}")


def _unbottom(state: dict[str, Crdt]) -> dict[str, Crdt]:
    """Drop bottom values: a key never written and a key holding bottom are the same."""
    return {k: v for k, v in state.items() if not v.is_bottom()}


def _mutator(kind: str, rid: str, rng: random.Random, clock: HybridLogicalClock,
             ms: int) -> Callable[[Any], Crdt]:
    """Return a random mutator for a value of the type that ``kind`` names."""
    n = rng.randrange(1, 4)
    elem = rng.choice(("a", "b", "c", 1, 2))
    if kind == "c":
        return (lambda v: v.increment(rid, n)) if rng.random() < 0.6 else (
            lambda v: v.decrement(rid, n))
    if kind == "g":
        return lambda v: v.increment(rid, n)
    if kind == "s":
        return (lambda v: v.add(rid, elem)) if rng.random() < 0.6 else (
            lambda v: v.remove(rid, elem))
    if kind == "l":
        ts = clock.now(ms)
        return lambda v: v.assign(rid, rng.randrange(100), ts)
    field = rng.choice(("likes", "title", "n"))
    if rng.random() < 0.2:
        return lambda v: v.remove(rid, field)
    if field == "likes":
        return lambda v: v.update(rid, field, AWORSet, lambda s: s.add(rid, elem))
    if field == "title":
        ts = clock.now(ms)
        return lambda v: v.update(rid, field, LWWRegister, lambda r: r.assign(rid, elem, ts))
    return lambda v: v.update(rid, field, PNCounter, lambda c: c.increment(rid, n))


_EVENTS = (("write", 25), ("commit", 12), ("deliver", 40), ("tick", 10), ("partition", 1),
           ("heal", 2), ("crash", 1), ("restart", 2))


def random_step(cluster: Cluster, *, dt: float = 0.1) -> str:
    """Advance time by ``dt`` and run one random event; return its name."""
    rng = cluster.rng
    cluster.now += dt
    event = rng.choices([e for e, _ in _EVENTS], [w for _, w in _EVENTS])[0]
    up = sorted(cluster.up)
    writers = [r for r in up if r in cluster.primaries]
    if event == "write" and writers:
        cluster.write(rng.choice(writers))
    elif event == "commit" and up:
        cluster.commit(rng.choice(up))
    elif event == "deliver" and cluster.inflight:
        # Mostly the oldest message; sometimes any (reordering, delay).
        n = len(cluster.inflight)
        cluster.deliver(0 if rng.random() < 0.6 else rng.randrange(n))
    elif event == "tick" and up:
        cluster.tick(rng.choice(up))
    elif event == "partition" and not cluster.cut:
        cluster.partition(rng.choice(("halves", "isolate", "edges")))
    elif event == "heal":
        cluster.heal()
    elif event == "crash" and len(up) > 1:
        cluster.crash(rng.choice(up))
    elif event == "restart" and len(up) < len(cluster.hosts):
        cluster.restart(rng.choice(sorted(set(cluster.hosts) - cluster.up)))
    else:
        return "idle"
    return event


def run_schedule(seed: int, *, steps: tuple[int, int] | None = None) -> Cluster:
    """Run one seeded schedule to quiescence and check convergence; return the cluster.

    The seed picks the topology (mesh, ring, star by ``seed % 3``), 3 to 7 replicas, maybe a
    follower, loss and duplication rates, the knobs (window, log bound, message bound, the
    log's decoded part: none, a few entries or all), then
    random steps (100 to 300; 600 to 1,200 for every tenth seed); then everything heals and
    settles.
    """
    if steps is None:
        steps = (600, 1200) if seed % 10 == 9 else (100, 300)
    rng = random.Random(seed)
    cluster = Cluster(
        rng, n=rng.randint(3, 7), topology=("mesh", "ring", "star")[seed % 3],
        followers=rng.choice((0, 0, 1)), loss=rng.choice((0.0, 0.05, 0.2)),
        dup=rng.choice((0.0, 0.05, 0.2)), codec=rng.random() < 0.5,
        retransmit_after=1.0, window=rng.choice((1, 4, 16)),
        max_log_entries=rng.choice((3, 8, 1000)),
        max_message_bytes=rng.choice((300, 2000, 1 << 20)),
        # from the seed, not the rng, so the other choices of a seed stay as they were
        hot_log_bytes=(0, 500, 1 << 20)[seed // 3 % 3])
    for i in range(rng.randint(*steps)):
        random_step(cluster)
        if i % 25 == 0:
            cluster.check_invariants()
    cluster.check_invariants()
    cluster.settle()
    cluster.check()
    return cluster
