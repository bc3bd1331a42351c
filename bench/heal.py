"""Heal: a third region rejoins a full mesh of three after a partition (crdtsync only).

Not one of DESIGN.md's W1-W6 (the peers' harness has no such workload): this measures
what a region that was cut off receives when it comes back, which is where forwarding in a
mesh costs most. Each of two regions also holds what the other wrote, and offers it on.

- Three replicas A, B, C (store chosen by ``--store``), each with a
  :class:`~crdtsync.sync.SyncEngine` driven by :class:`bench.syncpump.Node` exactly as
  ``SyncService`` drives it, over in-memory links carrying the encoded messages (FIFO).
- Setup: the full mesh connects and handshakes, then C is cut off from A and B.
- Apart (not timed): A and B run W6's two op streams (each 50,000 increments over 1,000
  counters, then 20,000 set adds over 10 sets; ``workloads.w6``), batch by batch in turn,
  each batch one commit, the A-B link pumped after each pair of batches.
- Timed: C reconnects to A and to B, and the links are pumped until no frame is in flight
  (ticks every ``TICK_SECONDS`` of wall time, as the service). ``bytes_to_c`` counts what
  C received, ``bytes_from_c`` what it sent (what it forwards of A's data to B and of B's
  to A, plus its acks), ``bytes`` everything sent by anyone in that phase.
- Check: all three hold W6's expected counters and sets.
- ``--restart``: before C comes back, A's and B's engines are rebuilt from their stores
  (log entries with the bounds they were logged with, marks), as after a restart of both
  services (a rolling deploy while C is away).

Run: ``python -m bench.heal [--scale S] [--runs N] [--store memory|sqlite-full|sqlite-normal]
[--join | --restart]``.
Prints one JSON line per run and a table; asserts no time.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from bench.common import emit, rss_now_mb, settle, workloads
from bench.replica_common import MEMORY, SQLITE_FULL, SQLITE_NORMAL, Replicas, StoreKind, new_ops
from bench.runners import _fields, w6_check
from bench.syncpump import TICK_SECONDS, Net, Node


def heal(kind: StoreKind, scale: float, *, join: bool = False,
         restart: bool = False) -> dict[str, Any]:
    """Run the heal workload once; return its figures. ``join``: C is a new region that
    A and B never saw (their logs trim without it), so both catch it up from state.
    ``restart``: A's and B's engines are rebuilt from their stores while C is away."""
    W = workloads()
    work = W.w6(scale)
    exp_counts, exp_sets = W.w6_expected(work)
    with Replicas(kind) as replicas:
        ops = [new_ops(replicas, i) for i in range(3)]
        net = Net()
        na, nb, nc = nodes = [Node(o.replica, net) for o in ops]
        for x, y in ((na, nb),) if join else ((na, nb), (na, nc), (nb, nc)):
            net.connect(x, y)
        net.pump()
        net.disconnect(nc, na)
        net.disconnect(nc, nb)
        _apart(W, ops[0], ops[1], work, net)
        if join:
            for node in (na, nb):
                node.tick()  # trims what both acked
            net.pump()
        if restart:
            net.disconnect(na, nb)
            for node in (na, nb):
                node.detach()
            na, nb = Node(ops[0].replica, net), Node(ops[1].replica, net)
            nodes = [na, nb, nc]
            net.connect(na, nb)
            net.pump()
        for node in nodes:
            node.sent_bytes.clear()
            node.sent_msgs.clear()
        received = nc.received_bytes
        before = settle()
        c0 = time.process_time()
        t0 = time.perf_counter()
        net.connect(nc, na)
        net.connect(nc, nb)
        delivered = _pump(net, nodes)
        dt = time.perf_counter() - t0
        cpu = time.process_time() - c0
        after = rss_now_mb()
        check = w6_check(ops[0], ops[2], exp_counts, exp_sets)
        if check == "pass":
            check = w6_check(ops[1], ops[2], exp_counts, exp_sets)
        tags: Counter[str] = Counter()
        for node in nodes:
            tags.update(node.sent_bytes)
        n_ops = sum(len(o.incs) + len(o.add_set) for o in work)
        mode = "join" if join else "heal after a restart" if restart else "heal"
        return _fields(n_ops, dt, cpu, check, before, after, mode=mode,
                       bytes=sum(n.bytes_sent for n in nodes),
                       bytes_to_c=nc.received_bytes - received,
                       bytes_from_c=nc.bytes_sent,
                       messages=delivered, store=kind.describe(),
                       **{f"bytes_{t}": b for t, b in sorted(tags.items())})


def _apart(W: Any, a: Any, b: Any, work: Any, net: Net) -> None:
    """A and B run their op streams in turn, batch by batch, synced after each pair."""
    steps = []
    for rep, o in ((a, work[0]), (b, work[1])):
        mine = [(rep.inc_batch, o.incs, s, e) for s, e in W.batches(len(o.incs))]
        mine += [(rep.add_batch, (o.add_set, o.add_elem), s, e)
                 for s, e in W.batches(len(o.add_set))]
        steps.append(mine)
    for i in range(max(len(s) for s in steps)):
        for mine in steps:
            if i < len(mine):
                fn, args, s, e = mine[i]
                if isinstance(args, tuple):
                    fn(*args, s, e)
                else:
                    fn(args, s, e)
        net.pump()


def _pump(net: Net, nodes: list[Node], limit_s: float = 60.0) -> int:
    """Pump until quiet, ticking every TICK_SECONDS of wall time (bounded by ``limit_s``)."""
    delivered = 0
    start = last = time.monotonic()
    while True:
        delivered += net.pump()
        now = time.monotonic()
        if now - start > limit_s:
            raise RuntimeError(f"bench.heal: not quiet after {limit_s} s")
        if now - last >= TICK_SECONDS:
            last = now
            for node in nodes:
                node.tick()
        if not net.queue:
            return delivered


STORES = {"memory": MEMORY, "sqlite-full": SQLITE_FULL, "sqlite-normal": SQLITE_NORMAL}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--store", choices=sorted(STORES), default="memory")
    ap.add_argument("--out", help="also append the JSON lines to this file")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--join", action="store_true",
                      help="C is a new region: A and B catch it up from state")
    mode.add_argument("--restart", action="store_true",
                      help="A's and B's engines restart from their stores while C is away")
    args = ap.parse_args(argv)
    rows = []
    for run in range(args.runs):
        row = {"bench": "heal", "run": run, "scale": args.scale,
               **heal(STORES[args.store], args.scale, join=args.join, restart=args.restart)}
        rows.append(row)
        emit(row, args.out)
    print()
    print("| run | seconds | CPU s | bytes to C | bytes from C | bytes (all) | messages | check |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['seconds']:.3f} | {r['cpu_seconds']:.3f} | "
              f"{r['bytes_to_c']:,} | {r['bytes_from_c']:,} | {r['bytes']:,} | "
              f"{r['messages']:,} | {r['check']} |")


if __name__ == "__main__":
    main()
