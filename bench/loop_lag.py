"""Acknowledged writes and event-loop lag under the background group committer.

Usage (from the repository root)::

    python -m bench.loop_lag                       # SQLite FULL and NORMAL, 3 runs each
    python -m bench.loop_lag --writers 64 --ops 200000 --runs 5 --out /tmp/lag.jsonl
    python -m bench.loop_lag --peers 2 --synchronous FULL    # under sync traffic

An asyncio app, as the replica server is one: ``--writers`` tasks each write a counter
increment and ``await`` it (durable: the background committer's group commit), until
``--ops`` writes are acknowledged in all; meanwhile a probe task sleeps 1 ms at a time and
records how late it wakes up (the time the loop could not run it: a commit, or writes,
holding the loop). Prints one JSON line per run and a table: acknowledged writes per
second, commits, and the probe's lateness (median, 99th percentile, max). Nothing here
asserts a time.

With ``--peers N`` the replica also runs a :class:`~crdtsync.transport.SyncService`
behind a websockets server on 127.0.0.1, and N peer processes (this module with
``--child``: a SQLite replica with ``synchronous=NORMAL``, its own service dialling in,
``--peer-writers`` tasks awaiting increments of their own counters) keep Deltas and Acks
coming while the timed writes run. The row then also counts the frames the replica
received and its commits made outside the background committer (``loop_commits``: the
store's transaction on the event loop). The peers stop when the run ends (their stdin
closes), or after :data:`CHILD_LIMIT_S` at most.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.server import serve

from bench.common import emit
from crdtsync.replica import Replica
from crdtsync.store import SQLiteStore
from crdtsync.transport import SyncService

PROBE_S = 0.001
LINK_LIMIT_S = 30.0
"""Longest wait for the peers to link up (each run)."""
CHILD_LIMIT_S = 300.0
"""A peer process stops by itself after this long, whatever happens to its parent."""


async def _run(synchronous: str, writers: int, ops: int, peers: int = 0,
               peer_writers: int = 16, commit_delay: float | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "replica.db")
        options: dict[str, Any] = {} if commit_delay is None else {"commit_delay": commit_delay}
        replica = Replica(SQLiteStore(db, synchronous=synchronous),  # type: ignore[arg-type]
                          store_path=db, name="lag", **options)
        on_loop = _count_loop_commits(replica)
        sync = await _Sync.open(replica, peers, peer_writers) if peers else None
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

        try:
            probe_task = asyncio.create_task(probe())
            commits0, loop0 = replica.stats["commits"], on_loop[0]
            frames0 = sync.received if sync else 0
            if sync is not None:
                sync.go()
            started, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(writer(i) for i in range(writers)))
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            done.set()
            await probe_task
            commits, loop_commits = replica.stats["commits"] - commits0, on_loop[0] - loop0
            frames = (sync.received - frames0) if sync else 0
            total = sum(replica.get(f"c{i}", 0) for i in range(100))
        finally:
            reports = await sync.close() if sync is not None else []
            await replica.aclose()
    late.sort()
    row: dict[str, Any] = {
        "bench": "loop_lag", "synchronous": synchronous, "writers": writers,
        "ops": per_writer * writers, "seconds": round(seconds, 4), "cpu_seconds": round(cpu, 4),
        "acked_ops_per_s": round(per_writer * writers / seconds),
        "commit_delay": replica.commit_delay,
        "commits": commits, "loop_commits": loop_commits,
        "check": "pass" if total == per_writer * writers else "FAIL",
        "probe_wakeups": len(late),
        "lag_ms_p50": round(1000 * statistics.median(late), 3) if late else None,
        "lag_ms_p99": round(1000 * late[int(0.99 * (len(late) - 1))], 3) if late else None,
        "lag_ms_max": round(1000 * late[-1], 3) if late else None,
    }
    if peers:
        row.update(peers=peers, peer_writers=peer_writers, frames_received=frames,
                   peer_acked_ops_per_s=[round(p["ops"] / p["seconds"]) for p in reports])
    return row


def _count_loop_commits(replica: Replica) -> list[int]:
    """Count the store transactions that run on the event loop's thread (a one-item list):
    the background committer runs them in its worker thread, anything else on the loop."""
    count = [0]
    store = replica.store
    inner = store.commit

    def commit(what: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            count[0] += 1
        inner(what)

    store.commit = commit  # type: ignore[method-assign, assignment]
    return count


class _Sync:
    """The measured replica's SyncService, its websockets server and the peer processes."""

    def __init__(self, service: SyncService, server: Any) -> None:
        self.service, self.server = service, server
        self.children: list[Any] = []
        self.received = 0  # frames received from the peers so far
        inner = service._received

        def received(link: Any, n: int) -> None:  # once per frame
            self.received += 1
            inner(link, n)

        service._received = received  # type: ignore[method-assign]

    @classmethod
    async def open(cls, replica: Replica, peers: int, peer_writers: int) -> _Sync:
        service = SyncService(replica, cluster="lag", rng=random.Random(0))
        server = await serve(service.accept, "127.0.0.1", 0, compression=None,
                             ping_interval=None)
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/sync"
        sync = cls(service, server)
        try:
            for k in range(peers):  # each one in sync.children as soon as it runs
                sync.children.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.loop_lag", "--child", url, "--child-name",
                    f"p{k}", "--peer-writers", str(peer_writers), stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE, cwd=str(Path(__file__).resolve().parents[1])))
            await service.start()
            deadline = time.monotonic() + LINK_LIMIT_S
            while sum(st.connected for st in service.engine.status().values()) < peers:
                if time.monotonic() > deadline or any(c.returncode is not None
                                                      for c in sync.children):
                    raise RuntimeError(f"the {peers} peers did not link up in {LINK_LIMIT_S} s")
                await asyncio.sleep(0.05)
        except BaseException:
            await sync.close()
            raise
        return sync

    def go(self) -> None:
        """Tell the peers the timed part starts (they count their writes from here)."""
        for child in self.children:
            assert child.stdin is not None
            child.stdin.write(b"go\n")

    async def close(self) -> list[dict[str, Any]]:
        """Stop the peers (their stdin closes); return what each wrote after :meth:`go`."""
        for child in self.children:
            if child.stdin is not None:
                child.stdin.close()
        reports = []
        for child in self.children:
            try:
                assert child.stdout is not None
                out = await asyncio.wait_for(child.stdout.read(), 10)
                await asyncio.wait_for(child.wait(), 10)
                if out.strip():
                    reports.append(orjson.loads(out.strip().splitlines()[-1]))
            except TimeoutError:
                child.kill()
                await child.wait()
        await self.service.stop()
        self.server.close()
        await self.server.wait_closed()
        return reports


async def _child(url: str, name: str, writers: int) -> None:
    """A peer: a SQLite replica (``synchronous=NORMAL``) syncing with ``url``, whose writers
    await increments of their own counters until stdin closes (or :data:`CHILD_LIMIT_S`).
    Prints one JSON line at the end: the writes acknowledged from the parent's "go" line
    until stdin closed, and the seconds in between."""
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "peer.db")
        replica = Replica(SQLiteStore(db, synchronous="NORMAL"), store_path=db, name=name)
        service = SyncService(replica, peers=[url], cluster="lag", rng=random.Random(name))
        await service.start()
        stop = asyncio.Event()
        acked = [0]

        async def writer(i: int) -> None:
            counter = replica.counter(f"{name}.c{i}")
            while not stop.is_set():
                await counter.increment()
                acked[0] += 1

        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        tasks = [asyncio.create_task(writer(i)) for i in range(writers)]
        deadline = time.monotonic() + CHILD_LIMIT_S
        go = (0, time.perf_counter())
        try:
            while line := await asyncio.wait_for(reader.readline(),
                                                 max(deadline - time.monotonic(), 0)):
                if line.strip() == b"go":
                    go = (acked[0], time.perf_counter())
        except TimeoutError:
            pass  # EOF (the parent is done) ends the loop too
        ops, seconds = acked[0] - go[0], time.perf_counter() - go[1]
        stop.set()
        await asyncio.gather(*tasks)
        await service.stop()
        await replica.aclose()
    print(orjson.dumps({"peer": name, "ops": ops, "seconds": round(seconds, 4)}).decode(),
          flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the measurement; print JSON lines and a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writers", type=int, default=64)
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--synchronous", default="FULL,NORMAL")
    ap.add_argument("--peers", type=int, default=0,
                    help="peer processes syncing with the replica meanwhile (default 0)")
    ap.add_argument("--peer-writers", type=int, default=16,
                    help="writer tasks in each peer process (default 16)")
    ap.add_argument("--commit-delay", type=float, default=None,
                    help="the replica's commit_delay in seconds (default: the replica's)")
    ap.add_argument("--out", default=None, help="also append the JSON lines to this file")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)  # a peer: dial this URL
    ap.add_argument("--child-name", default="peer", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        asyncio.run(_child(args.child, args.child_name, args.peer_writers))
        return 0
    if args.peers < 0 or args.peer_writers < 1:
        ap.error("need --peers >= 0 and --peer-writers >= 1")
    if args.writers < 1 or args.ops < args.writers or args.runs < 1:
        ap.error("need --writers >= 1, --ops >= --writers and --runs >= 1")
    rows = []
    for mode in args.synchronous.split(","):
        for run in range(args.runs):
            print(f"loop_lag: {mode} run {run + 1}/{args.runs}", file=sys.stderr)
            row = asyncio.run(_run(mode, args.writers, args.ops, args.peers,
                                          args.peer_writers, args.commit_delay))
            rows.append(row)
            emit(row, args.out)
    print("\n| synchronous | peers | acked ops/s | peers' acked ops/s | commits | on the loop "
          "| frames in | lag p50 ms | lag p99 ms | lag max ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        theirs = ", ".join(f"{n:,}" for n in r.get("peer_acked_ops_per_s", [])) or "-"
        print(f"| {r['synchronous']} | {r.get('peers', 0)} | {r['acked_ops_per_s']:,} | "
              f"{theirs} | {r['commits']} | {r['loop_commits']} | "
              f"{r.get('frames_received', 0):,} | {r['lag_ms_p50']} | {r['lag_ms_p99']} | "
              f"{r['lag_ms_max']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
