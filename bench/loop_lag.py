"""Acknowledged writes and event-loop lag under the background group committer.

Usage (from the repository root)::

    python -m bench.loop_lag                       # SQLite FULL and NORMAL, 3 runs each
    python -m bench.loop_lag --writers 64 --ops 200000 --runs 5 --out /tmp/lag.jsonl

An asyncio app, as the replica server is one: ``--writers`` tasks each write a counter
increment and ``await`` it (durable: the background committer's group commit), until
``--ops`` writes are acknowledged in all; meanwhile a probe task sleeps 1 ms at a time and
records how late it wakes up (the time the loop could not run it: a commit, or writes,
holding the loop). Prints one JSON line per run and a table: acknowledged writes per
second, commits, and the probe's lateness (median, 99th percentile, max). Nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from crdtsync.replica import Replica
from crdtsync.store import SQLiteStore

PROBE_S = 0.001


async def _run(synchronous: str, writers: int, ops: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "replica.db")
        replica = Replica(SQLiteStore(db, synchronous=synchronous),  # type: ignore[arg-type]
                          store_path=db, name="lag")
        replica.start()
        per_writer = ops // writers
        late: list[float] = []
        done = asyncio.Event()

        async def probe() -> None:
            while not done.is_set():
                asked = time.perf_counter()
                await asyncio.sleep(PROBE_S)
                late.append(time.perf_counter() - asked - PROBE_S)

        async def writer(i: int) -> None:
            counter = replica.counter(f"c{i % 100}")
            for _ in range(per_writer):
                await counter.increment()

        probe_task = asyncio.create_task(probe())
        commits0 = replica.stats["commits"]
        started = time.perf_counter()
        await asyncio.gather(*(writer(i) for i in range(writers)))
        seconds = time.perf_counter() - started
        done.set()
        await probe_task
        commits = replica.stats["commits"] - commits0
        total = sum(replica.get(f"c{i}", 0) for i in range(100))
        await replica.aclose()
    late.sort()
    return {
        "bench": "loop_lag", "synchronous": synchronous, "writers": writers,
        "ops": per_writer * writers, "seconds": round(seconds, 4),
        "acked_ops_per_s": round(per_writer * writers / seconds),
        "commits": commits, "check": "pass" if total == per_writer * writers else "FAIL",
        "probe_wakeups": len(late),
        "lag_ms_p50": round(1000 * statistics.median(late), 3) if late else None,
        "lag_ms_p99": round(1000 * late[int(0.99 * (len(late) - 1))], 3) if late else None,
        "lag_ms_max": round(1000 * late[-1], 3) if late else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the measurement; print JSON lines and a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writers", type=int, default=64)
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--synchronous", default="FULL,NORMAL")
    ap.add_argument("--out", default=None, help="also append the JSON lines to this file")
    args = ap.parse_args(argv)
    if args.writers < 1 or args.ops < args.writers or args.runs < 1:
        ap.error("need --writers >= 1, --ops >= --writers and --runs >= 1")
    rows = []
    for mode in args.synchronous.split(","):
        for run in range(args.runs):
            print(f"loop_lag: {mode} run {run + 1}/{args.runs}", file=sys.stderr)
            row = asyncio.run(_run(mode, args.writers, args.ops))
            rows.append(row)
            line = orjson.dumps(row).decode()
            print(line)
            if args.out:
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
    print("\n| synchronous | acked ops/s | commits | lag p50 ms | lag p99 ms | lag max ms |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['synchronous']} | {r['acked_ops_per_s']:,} | {r['commits']} | "
              f"{r['lag_ms_p50']} | {r['lag_ms_p99']} | {r['lag_ms_max']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
