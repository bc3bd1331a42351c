"""W4 and W6 for crdtsync: two replicas with sync engines over an in-memory link.

The replicas are real :class:`~crdtsync.replica.Replica` objects (store chosen by the
driver); each has a :class:`~crdtsync.sync.SyncEngine` driven by :class:`bench.syncpump.Node`
exactly as ``SyncService`` drives it, and every message crosses the link as its encoded
bytes. ``bytes`` counts every message in both directions (handshake, deltas, acks, empty
intervals, digests, states). The engines' periodic tick runs every ``TICK_SECONDS``
(0.5 s) of wall time, as in the service, at the points where the runners pump the link.

- **W4** (persistent link): A and B are connected once (handshake before the clock).
  A replays W1 in 100 rounds; each batch of 1,000 ops is one ``commit()``, which makes
  A's engine emit a Delta for that batch (as the service would, at once). After each
  round the link is pumped until quiescent (B joins, commits, acks). Extras report the
  same workload with **one link per round** (connect, handshake, one Delta joining the
  round's ten entries, ack, disconnect), the like-for-like analogue of the peers'
  state-vector exchange, measured separately after the main figures.
- **W6**: A and B each run their partitioned op stream (counters, then set adds; a commit
  per batch; each has its engine but no link), then connect; the clock covers connecting
  and pumping until quiescent (handshake, deltas both ways, acks).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.common import rss_now_mb, settle, workloads
from bench.replica_common import Replicas, StoreKind, fs_type, new_ops
from bench.runners import _fields, w6_apart, w6_check
from bench.syncpump import TICK_SECONDS, Net, Node


class _Ticker:
    """Tick every node once ``TICK_SECONDS`` of wall time have passed (SyncService)."""

    def __init__(self, nodes: list[Node], net: Net) -> None:
        self.nodes = nodes
        self.net = net
        self.last = time.monotonic()
        self.ticks = 0

    def maybe(self) -> None:
        now = time.monotonic()
        if now - self.last >= TICK_SECONDS:
            self.last = now
            self.ticks += 1
            for node in self.nodes:
                node.tick()
            self.net.pump()


def _by_type(nodes: list[Node]) -> dict[str, Any]:
    b: Counter[str] = Counter()
    m: Counter[str] = Counter()
    for n in nodes:
        b.update(n.sent_bytes)
        m.update(n.sent_msgs)
    out: dict[str, Any] = {}
    for tag in sorted(b):
        out[f"bytes_{tag}"] = b[tag]
        out[f"messages_{tag}"] = m[tag]
    return out


def _store_fields(replicas: Replicas) -> dict[str, Any]:
    out: dict[str, Any] = {"store": replicas.kind.describe()}
    if replicas.tmp is not None:
        out["store_fs"] = fs_type(replicas.tmp)
    return out


# ---------------------------------------------------------------- W4


def w4(kind: StoreKind, scale: float) -> dict[str, Any]:
    W = workloads()
    ops = W.w1(scale)
    expected = W.counter_expected(ops)
    n = len(ops)
    per = -(-n // W.W4_BATCHES)
    rounds = [(s, min(s + per, n)) for s in range(0, n, per)]
    with Replicas(kind) as replicas:
        A, B = new_ops(replicas, 0), new_ops(replicas, 1)
        net = Net()
        na, nb = Node(A.replica, net), Node(B.replica, net)
        net.connect(na, nb)
        net.pump()  # handshake, before the clock (the peers' W4 has none)
        hs = na.bytes_sent + nb.bytes_sent
        for node in (na, nb):
            node.sent_bytes.clear()
            node.sent_msgs.clear()
        ticker = _Ticker([na, nb], net)
        before = settle()
        t_sync = 0.0
        delivered = 0
        max_delta = 0
        c0 = time.process_time()
        t0 = time.perf_counter()
        for start, stop in rounds:
            for a, b in W.batches(stop - start):
                A.inc_batch(ops, start + a, start + b)
            ts = time.perf_counter()
            for _, _, data in net.queue:
                max_delta = max(max_delta, len(data))
            delivered += net.pump()
            ticker.maybe()
            t_sync += time.perf_counter() - ts
        dt = time.perf_counter() - t0
        cpu = time.process_time() - c0
        after = rss_now_mb()
        va, vb = A.counter_values(), B.counter_values()
        ok = va == vb == expected
        check = "pass" if ok else f"FAIL sumA={sum(va)} sumB={sum(vb)} expected={n}"
        total = na.bytes_sent + nb.bytes_sent
        out = _fields(n, dt, cpu, check, before, after,
                      bytes=total, bytes_a_to_b=na.bytes_sent, bytes_b_to_a=nb.bytes_sent,
                      bytes_per_op=round(total / n, 3), max_message_bytes=max_delta,
                      messages=delivered, sync_rounds=len(rounds),
                      sync_seconds=round(t_sync, 4),
                      encode_seconds=round(na.encode_seconds + nb.encode_seconds, 4),
                      ticks=ticker.ticks, handshake_bytes=hs, **_by_type([na, nb]),
                      **_store_fields(replicas))
    out.update(_w4_link_per_round(kind, ops, rounds, expected))
    return out


def _w4_link_per_round(kind: StoreKind, ops: Any, rounds: list[tuple[int, int]],
                       expected: list[int]) -> dict[str, Any]:
    """W4 with one link per round: connect, handshake, one joined Delta, ack, disconnect."""
    W = workloads()
    with Replicas(kind) as replicas:
        A, B = new_ops(replicas, 0), new_ops(replicas, 1)
        net = Net()
        na, nb = Node(A.replica, net), Node(B.replica, net)
        c0 = time.process_time()
        t0 = time.perf_counter()
        for start, stop in rounds:
            for a, b in W.batches(stop - start):
                A.inc_batch(ops, start + a, start + b)
            net.connect(na, nb)
            net.pump()
            net.disconnect(na, nb)
            for node in (na, nb):  # the tick that trims acked entries (no link: no sends)
                node.tick()
        dt = time.perf_counter() - t0
        cpu = time.process_time() - c0
        ok = A.counter_values() == B.counter_values() == expected
        total = na.bytes_sent + nb.bytes_sent
        by = _by_type([na, nb])
        return {"link_per_round_bytes": total,
                "link_per_round_bytes_per_op": round(total / len(ops), 3),
                "link_per_round_delta_bytes": by.get("bytes_delta", 0),
                "link_per_round_seconds": round(dt, 4),
                "link_per_round_cpu_seconds": round(cpu, 4),
                "link_per_round_check": "pass" if ok else "FAIL"}


# ---------------------------------------------------------------- W6


def w6(kind: StoreKind, scale: float) -> dict[str, Any]:
    W = workloads()
    work = W.w6(scale)
    exp_counts, exp_sets = W.w6_expected(work)
    with Replicas(kind) as replicas:
        A, B = new_ops(replicas, 0), new_ops(replicas, 1)
        net = Net()
        na, nb = Node(A.replica, net), Node(B.replica, net)
        before = settle()
        t0 = time.perf_counter()
        w6_apart(W, A, B, work)
        t_local = time.perf_counter() - t0
        c0 = time.process_time()
        ts = time.perf_counter()
        net.connect(na, nb)
        delivered = net.pump()
        dt = time.perf_counter() - ts
        cpu = time.process_time() - c0
        after = rss_now_mb()
        check = w6_check(A, B, exp_counts, exp_sets)
        n_ops = sum(len(o.incs) + len(o.add_set) for o in work)
        return _fields(n_ops, dt, cpu, check, before, after,
                       bytes=na.bytes_sent + nb.bytes_sent,
                       bytes_a_to_b=na.bytes_sent, bytes_b_to_a=nb.bytes_sent,
                       messages=delivered, encode_seconds=round(
                           na.encode_seconds + nb.encode_seconds, 4),
                       local_work_seconds=round(t_local, 4), **_by_type([na, nb]),
                       **_store_fields(replicas))
