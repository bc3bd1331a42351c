"""Writes and reads through the replica server's client API: requests/s and latency.

Usage (from the repository root)::

    python -m bench.client_api                          # 4 connections x 64 in flight
    python -m bench.client_api --connections 1 --depth 1 --requests 5000
    python -m bench.client_api --op get --runs 5 --out /tmp/client.jsonl

A real ``crdtsync serve`` process (SQLite, the default ``synchronous=FULL``, in a temp
directory; 127.0.0.1 only) and, in this process, ``--connections`` websocket clients, each
keeping ``--depth`` requests in flight (the server answers a write once it is durable, so a
deeper pipeline shares group commits) until ``--requests`` are answered in all. The op is
``counter.increment`` on one of 1,000 keys, ``register.assign`` of an int, or ``get`` (of
keys written first). Latency is from sending a request to reading its answer. Prints one JSON
line per run and a table; nothing here asserts a time. The clients run in this process's
event loop, one core of the machine's: on a 2-core machine the client side's JSON and
websocket work is part of what is measured, as it is for any Python client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import connect

from bench.common import REPO, emit

START_LIMIT_S = 30.0
RUN_LIMIT_S = 300.0
KEYS = 1000
_READY = re.compile(r"serving on ws://([\d.]+):(\d+)")


class Server:
    """One ``crdtsync serve`` process on 127.0.0.1 with its data in a temp directory."""

    def __init__(self, tmp: str) -> None:
        args = [sys.executable, "-m", "crdtsync_server.cli", "serve", "--id", "bench",
                "--listen", "127.0.0.1:0", "--data", str(Path(tmp) / "data"),
                "--log-level", "WARNING"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, cwd=REPO,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + START_LIMIT_S
        assert self.proc.stdout is not None
        self.port = 0
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if m := _READY.search(line):
                self.port = int(m.group(2))
                return
        self.stop()
        raise RuntimeError("the server did not start")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/client"

    def cpu_seconds(self) -> tuple[float, float]:
        """User and system CPU time the server process has used (from /proc), or -1s."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            tick = os.sysconf("SC_CLK_TCK")
            return int(fields[11]) / tick, int(fields[12]) / tick
        except (OSError, ValueError, IndexError):
            return -1.0, -1.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _request(op: str, rid: int, rng: random.Random) -> bytes:
    key = f"c{rng.randrange(KEYS)}"
    if op == "counter.increment":
        return orjson.dumps({"id": rid, "op": op, "key": key})
    if op == "register.assign":
        return orjson.dumps({"id": rid, "op": op, "key": f"r{key}", "value": rid})
    return orjson.dumps({"id": rid, "op": "get", "key": key})


async def _connection(url: str, op: str, depth: int, count: int, seed: int,
                      latencies: list[float]) -> int:
    """Send ``count`` requests, ``depth`` in flight; return how many were answered ok."""
    rng = random.Random(seed)
    ok = 0
    sent: dict[int, float] = {}
    async with connect(url, compression=None, max_size=1 << 20) as conn:
        next_id = 0
        while next_id < min(depth, count):
            sent[next_id] = time.perf_counter()
            await conn.send(_request(op, next_id, rng).decode())
            next_id += 1
        answered = 0
        while answered < count:
            reply = orjson.loads(await conn.recv())
            latencies.append(time.perf_counter() - sent.pop(reply["id"]))
            ok += reply.get("ok") is True
            answered += 1
            if next_id < count:
                sent[next_id] = time.perf_counter()
                await conn.send(_request(op, next_id, rng).decode())
                next_id += 1
    return ok


async def _fill(url: str) -> None:
    """Write every key once (for ``get``), in one batch request per 500 keys."""
    async with connect(url, compression=None, max_size=1 << 20) as conn:
        for start in range(0, KEYS, 500):
            ops = [{"op": "counter.increment", "key": f"c{i}"} for i in range(start, start + 500)]
            await conn.send(orjson.dumps({"id": start, "op": "batch", "ops": ops}).decode())
            reply = orjson.loads(await conn.recv())
            if reply.get("ok") is not True:
                raise RuntimeError(f"filling the keys failed: {reply}")


async def _run(op: str, connections: int, depth: int, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(tmp)
        try:
            if op == "get":
                await _fill(server.url)
            per = requests // connections
            latencies: list[float] = []
            cpu0 = server.cpu_seconds()
            started, own = time.perf_counter(), time.process_time()
            oks = await asyncio.wait_for(asyncio.gather(*(
                _connection(server.url, op, depth, per, seed, latencies)
                for seed in range(connections))), RUN_LIMIT_S)
            seconds, own = time.perf_counter() - started, time.process_time() - own
            cpu1 = server.cpu_seconds()
        finally:
            server.stop()
    latencies.sort()
    n = per * connections
    return {
        "bench": "client_api", "op": op, "connections": connections, "depth": depth,
        "requests": n, "ok": sum(oks), "check": "pass" if sum(oks) == n else "FAIL",
        "seconds": round(seconds, 4), "requests_per_s": round(n / seconds),
        "latency_ms_p50": round(1000 * statistics.median(latencies), 3),
        "latency_ms_p99": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 3),
        "latency_ms_max": round(1000 * latencies[-1], 3),
        "server_user_seconds": round(cpu1[0] - cpu0[0], 3),
        "server_system_seconds": round(cpu1[1] - cpu0[1], 3),
        "client_cpu_seconds": round(own, 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the measurement; print JSON lines and a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--op", default="counter.increment",
                    choices=("counter.increment", "register.assign", "get"))
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--depth", type=int, default=64, help="requests in flight per connection")
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=None, help="also append the JSON lines to this file")
    args = ap.parse_args(argv)
    if not (1 <= args.connections <= 256 and 1 <= args.depth <= 1024 and args.runs >= 1
            and args.requests >= args.connections):
        ap.error("need 1 <= --connections <= 256, 1 <= --depth <= 1024, --runs >= 1 and "
                 "--requests >= --connections")
    rows = []
    for run in range(args.runs):
        print(f"client_api: {args.op} run {run + 1}/{args.runs}", file=sys.stderr)
        row = asyncio.run(_run(args.op, args.connections, args.depth, args.requests))
        rows.append(row)
        emit(row, args.out)
    print("\n| op | connections × depth | requests/s | latency p50 / p99 / max ms "
          "| server CPU user + system s | client CPU s | check |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['op']} | {r['connections']} × {r['depth']} | {r['requests_per_s']:,} | "
              f"{r['latency_ms_p50']} / {r['latency_ms_p99']} / {r['latency_ms_max']} | "
              f"{r['server_user_seconds']} + {r['server_system_seconds']} | "
              f"{r['client_cpu_seconds']} | {r['check']} |")
    return 0 if all(r["check"] == "pass" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
