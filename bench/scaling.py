"""Sync cost against state size at a fixed change rate, and digest catch-up of one change.

Usage (from the repository root)::

    python -m bench.scaling                                  # 10k, 100k, 1M keys (~5 min)
    python -m bench.scaling --sizes 1000,10000 --rounds 5    # quick
    python -m bench.scaling --summarize bench/results/scaling.jsonl

For each keyspace size N (one fresh child process each, so peak RSS is that size's):

1. Replicas A and B (in-memory stores by default; ``--store sqlite-full`` / ``sqlite-normal``)
   are pre-populated with the same N PNCounter keys ``k0000000``... (joined from a third
   replica id in chunks of 10,000 keys, committed; untimed). Each gets a
   :class:`~crdtsync.sync.SyncEngine` (driven as ``SyncService`` drives it, see
   :mod:`bench.syncpump`) rebuilt as after a restart with its log trimmed and each holding
   the other's log up to its last seq: two replicas that are in sync. They connect.
2. ``--rounds`` sync rounds (after ``--warmup`` rounds not counted): A makes ``--changes``
   (default 1,000) ``replica.counter(k).increment()`` on keys drawn uniformly from the N,
   commits once, and the link is pumped until quiescent (Delta A->B, B joins and commits,
   Ack B->A; the engines' tick every 0.5 s as in the service). Per round: bytes both ways,
   wall and CPU seconds of the whole round (A's writes + commit + sync) and of the sync
   alone. Cost must follow the change, not the state: these should stay flat as N grows.
3. Catch-up: the link is cut, A changes **one** key, then both engines are rebuilt with
   their logs trimmed (as after a restart where the log no longer holds what B lacks), so
   A must bring B up to date from state: BucketDigests (about sqrt(N) bucket hashes) ->
   KeyDigests of the differing bucket -> States of the one key -> Ack. Reported: bytes by
   message type, messages, wall and CPU seconds, and whether B then equals A.

Output: one JSON line per size (``--out``, default ``bench/out/scaling-<UTC>.jsonl``), a
markdown table beside it (``.md``) and on stdout. ``python -m bench.plot --scaling FILE``
draws the curve. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import REPO, peak_rss_mb, rss_now_mb, settle

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
SEED_RID = "seed.00000000"
CHUNK = 10_000


def _key(i: int) -> str:
    return f"k{i:07d}"


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def measure(n_keys: int, *, rounds: int, warmup: int, changes: int, store: str,
            seed: int = 42, gc_freeze: bool = False) -> dict[str, Any]:
    """Run steps 1-3 for a keyspace of ``n_keys``; return the measured fields."""
    from bench.drivers.crdtsync_types import commit
    from bench.replica_common import (
        MEMORY,
        SQLITE_FULL,
        SQLITE_NORMAL,
        Replicas,
        fs_type,
    )
    from bench.syncpump import TICK_SECONDS, Net, Node
    from crdtsync.types import PNCounter

    kind = {"memory": MEMORY, "sqlite-full": SQLITE_FULL, "sqlite-normal": SQLITE_NORMAL}[store]
    out: dict[str, Any] = {"keys": n_keys, "changes_per_round": changes, "rounds": rounds,
                           "warmup_rounds": warmup, "store": kind.describe(),
                           "commit": commit()}
    rng = random.Random(seed)
    with Replicas(kind) as replicas:
        if replicas.tmp is not None:
            out["store_fs"] = fs_type(replicas.tmp)
        A, B = replicas.open(0), replicas.open(1)
        t0 = time.perf_counter()
        for start in range(0, n_keys, CHUNK):
            group: dict[str, Any] = {}
            for i in range(start, min(start + CHUNK, n_keys)):
                c = PNCounter()
                c.increment(SEED_RID, 1 + i % 7)
                group[_key(i)] = c
            for rep in (A, B):
                rep.apply_remote(group, SEED_RID)
                rep.commit()
        out["setup_seconds"] = round(time.perf_counter() - t0, 2)

        net = Net()

        def nodes(mark_a: int, mark_b: int) -> tuple[Node, Node]:
            # Rebuilt as after a restart whose log holds nothing: trimmed up to last_seq.
            na = Node(A, net, log=[], marks={B.replica_id: mark_b}, last_seq=A.log_seq,
                      peers=[B.replica_id])
            nb = Node(B, net, log=[], marks={A.replica_id: mark_a}, last_seq=B.log_seq,
                      peers=[A.replica_id])
            return na, nb

        na, nb = nodes(A.log_seq, B.log_seq)  # B holds A's log up to A's last seq, and back
        net.connect(na, nb)
        net.pump()
        handshake = na.bytes_sent + nb.bytes_sent
        out["handshake_bytes"] = handshake
        keys = [_key(i) for i in range(n_keys)]
        before = settle()
        if gc_freeze:  # move everything alive now out of the cyclic GC's sight
            import gc

            gc.freeze()
            out["gc_freeze"] = True
        out["rss_before_mb"] = round(before, 1)
        last_tick = time.monotonic()
        per_round: list[dict[str, float]] = []
        for r in range(warmup + rounds):
            sent0 = na.bytes_sent + nb.bytes_sent
            c0 = time.process_time()
            t0 = time.perf_counter()
            counter = A.counter
            chosen = rng.choices(keys, k=changes)
            for k in chosen:
                counter(k).increment()
            A.commit()
            ts = time.perf_counter()
            cs = time.process_time()
            msgs = net.pump()
            now = time.monotonic()
            if now - last_tick >= TICK_SECONDS:
                last_tick = now
                na.tick()
                nb.tick()
                msgs += net.pump()
            t1 = time.perf_counter()
            c1 = time.process_time()
            if r >= warmup:
                per_round.append({"bytes": na.bytes_sent + nb.bytes_sent - sent0,
                                  "seconds": t1 - t0, "cpu_seconds": c1 - c0,
                                  "sync_seconds": t1 - ts, "sync_cpu_seconds": c1 - cs,
                                  "messages": msgs, "keys_touched": len(set(chosen))})
        out["rss_after_mb"] = round(rss_now_mb(), 1)
        for field in ("bytes", "seconds", "cpu_seconds", "sync_seconds", "sync_cpu_seconds",
                      "messages", "keys_touched"):
            xs = [p[field] for p in per_round]
            med = statistics.median(xs)
            out[f"round_{field}_median"] = round(med, 6) if isinstance(med, float) else med
            out[f"round_{field}_min"] = round(min(xs), 6)
            out[f"round_{field}_p90"] = round(_pct(xs, 0.9), 6)
            out[f"round_{field}_max"] = round(max(xs), 6)
        out["round_bytes_per_change"] = round(out["round_bytes_median"] / changes, 2)
        out["round_bytes_per_key_touched"] = round(
            out["round_bytes_median"] / out["round_keys_touched_median"], 2)
        delta_bytes = na.sent_bytes["delta"] + nb.sent_bytes["delta"]
        delta_msgs = na.sent_msgs["delta"] + nb.sent_msgs["delta"]
        out["delta_bytes_per_message"] = round(delta_bytes / max(delta_msgs, 1), 1)

        # -- catch-up of one changed key, from state (digests), with the logs trimmed
        vals_ok = all(A.get(k) == B.get(k) for k in keys)
        out["rounds_check"] = "pass" if vals_ok else "FAIL A != B after the rounds"
        # The first catch-up in a process hashes every key (the replica's DigestIndex is
        # built); a second one, after another change, rehashes only what changed.
        for prefix in ("catchup", "warm_catchup"):
            na, nb = _catch_up_one(A, B, na, nb, nodes, net, keys, rng, out, prefix)
        out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def _catch_up_one(A: Any, B: Any, na: Any, nb: Any, nodes: Any, net: Any, keys: list[str],
                  rng: random.Random, out: dict[str, Any], prefix: str) -> tuple[Any, Any]:
    """Cut the link, change one key at A, reconnect with logs trimmed: B catches up from
    state (digests). Records ``<prefix>_seconds``, ``_cpu_seconds``, bytes and a check."""
    mark_b_of_a = nb.engine.status()[A.replica_id].received
    # B's log holds only A's own data forwarded back (never sent to A: BP), so A holds
    # all of B's log that matters; say so, or B would start a catch-up of A as well.
    mark_a_of_b = B.log_seq
    net.disconnect(na, nb)
    na.detach()
    nb.detach()
    changed = keys[rng.randrange(len(keys))]
    A.counter(changed).increment()
    A.commit()
    na, nb = nodes(mark_b_of_a, mark_a_of_b)
    c0 = time.process_time()
    t0 = time.perf_counter()
    net.connect(na, nb)
    msgs = net.pump()
    out[f"{prefix}_seconds"] = round(time.perf_counter() - t0, 4)
    out[f"{prefix}_cpu_seconds"] = round(time.process_time() - c0, 4)
    out[f"{prefix}_messages"] = msgs
    out[f"{prefix}_bytes"] = na.bytes_sent + nb.bytes_sent
    for tag in ("hello", "accept", "buckets", "keys", "states", "ack", "delta"):
        n = na.sent_bytes[tag] + nb.sent_bytes[tag]
        if n:
            out[f"{prefix}_bytes_{tag}"] = n
    same = A.get(changed) == B.get(changed) and all(A.get(k) == B.get(k) for k in keys)
    out[f"{prefix}_check"] = "pass" if same else "FAIL B differs from A after catch-up"
    return na, nb


# ---------------------------------------------------------------- parent / CLI


def _child(n: int, a: argparse.Namespace, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.scaling", "--child", str(n), "--rounds", str(a.rounds),
           "--warmup", str(a.warmup), "--changes", str(a.changes), "--store", a.store]
    if a.gc_freeze:
        cmd.append("--gc-freeze")
    try:
        p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"keys": n, "error": f"child timeout after {timeout:g} s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"keys": n, "error": f"child exit {p.returncode}: {p.stderr.strip()[-800:]}"}
    row: dict[str, Any] = json.loads(lines[-1])
    return row


def _warm(r: dict[str, Any]) -> str:
    if "warm_catchup_seconds" not in r:
        return ""
    return (f"; again: {r['warm_catchup_seconds']:.2f} / {r['warm_catchup_cpu_seconds']:.2f}"
            f" ({r['warm_catchup_bytes']:,} B, {r['warm_catchup_check']})")


def summarize(rows: list[dict[str, Any]]) -> str:
    out = ["### Sync cost vs keyspace size (fixed change rate)\n",
           "| keys | store | bytes / round median [min–max] | B per change (per key touched) "
           "| wall s / round "
           "median (p90) | CPU s / round median | sync CPU s / round | catch-up of 1 key: "
           "bytes (buckets / keys / states) | catch-up wall s / CPU s (first; again, index kept) "
           "| peak RSS MB | checks |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["keys"]):
        if "error" in r:
            out.append(f"| {r['keys']:,} | – | – | – | – | – | – | – | – | – | {r['error']} |")
            continue
        cu = (f"{r['catchup_bytes']:,} ({r.get('catchup_bytes_buckets', 0):,} / "
              f"{r.get('catchup_bytes_keys', 0):,} / {r.get('catchup_bytes_states', 0):,})")
        out.append(
            f"| {r['keys']:,} | {r['store'].split(' (')[0]}"
            f"{', gc.freeze()' if r.get('gc_freeze') else ''} | {round(r['round_bytes_median']):,} "
            f"[{r['round_bytes_min']:,}–{r['round_bytes_max']:,}] | "
            f"{r['round_bytes_per_change']} ({r.get('round_bytes_per_key_touched', '–')}) | "
            f"{r['round_seconds_median']:.4f} "
            f"({r['round_seconds_p90']:.4f}) | {r['round_cpu_seconds_median']:.4f} | "
            f"{r['round_sync_cpu_seconds_median']:.4f} | {cu} | "
            f"{r['catchup_seconds']:.2f} / {r['catchup_cpu_seconds']:.2f}"
            f"{_warm(r)} | "
            f"{r['peak_rss_mb']:.0f} | rounds {r['rounds_check']}, catch-up "
            f"{r['catchup_check']} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                    help="comma-separated keyspace sizes (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=20, help="measured rounds (default 20)")
    ap.add_argument("--warmup", type=int, default=2, help="rounds not counted (default 2)")
    ap.add_argument("--changes", type=int, default=1000,
                    help="counter increments per round (default 1000)")
    ap.add_argument("--store", choices=("memory", "sqlite-full", "sqlite-normal"),
                    default="memory")
    ap.add_argument("--gc-freeze", action="store_true",
                    help="gc.freeze() after loading the keyspace (what a long-running "
                    "replica holding millions of objects may do)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--timeout", type=float, default=1200.0,
                    help="seconds before a size's child is killed (default %(default)s)")
    ap.add_argument("--summarize", type=Path, metavar="JSONL")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if min(a.rounds, a.changes) < 1 or a.warmup < 0:
        ap.error("--rounds and --changes must be >= 1, --warmup >= 0")
    if a.child is not None:
        print(json.dumps(measure(a.child, rounds=a.rounds, warmup=a.warmup,
                                 changes=a.changes, store=a.store, gc_freeze=a.gc_freeze)),
              flush=True)
        return 0
    if a.summarize:
        rows = [json.loads(ln) for ln in a.summarize.read_text().splitlines() if ln.strip()]
        print(summarize(rows), end="")
        return 0
    sizes = [int(x) for x in a.sizes.split(",") if x.strip()]
    if not sizes or min(sizes) < 1:
        ap.error("--sizes must be positive ints")
    stamp = datetime.now(UTC)
    out = a.out or REPO / "bench" / "out" / f"scaling-{stamp:%Y%m%d-%H%M%S}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("")
    rows = []
    for n in sizes:
        print(f"[scaling] {n:,} keys ... ", end="", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        row = _child(n, a, a.timeout)
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        print(row.get("error") or f"{row['wall_s']} s", file=sys.stderr, flush=True)
        rows.append(row)
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
    table = summarize(rows)
    out.with_suffix(".md").write_text(
        f"command: `python -m bench.scaling {' '.join(sys.argv[1:] if argv is None else argv)}`"
        f", {stamp:%Y-%m-%d %H:%M} UTC\n\n" + table)
    print(table, end="")
    print(f"JSON lines: {out}; table: {out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
