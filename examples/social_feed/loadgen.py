"""Load generator: simulated users post, like, unlike and comment in every region at once.

``python -m examples.social_feed.loadgen --ports 7101,7102,7103 --users 30 --seconds 10``
prints a progress line each second, then waits until every region shows the same feed and
reports how long that took after the load stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from typing import Any

import orjson
from websockets.asyncio.client import connect

__all__ = ["run_load"]

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]


class _Conn:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next = 0

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        self.next += 1
        await self.ws.send(orjson.dumps({"id": self.next, "op": op, **fields}).decode())
        while True:
            msg: dict[str, Any] = orjson.loads(await self.ws.recv())
            if msg.get("id") == self.next:
                return msg


async def _user(
    port: int, region: str, rng: random.Random, until: float, counts: dict[str, int]
) -> None:
    name = rng.choice(USERS)
    async with connect(f"ws://127.0.0.1:{port}/client", compression=None) as ws:
        c = _Conn(ws)
        while time.monotonic() < until:
            posts = (await c.request("keys", prefix="post:"))["value"]
            roll = rng.random()
            if not posts or roll < 0.05:
                hlc = (await c.request("clock.now"))["value_str"].zfill(20)
                key = f"post:{hlc}:{region}"
                res = await c.request(
                    "batch",
                    ops=[
                        {"op": "map.register.assign", "key": key, "field": f, "value": v}
                        for f, v in (
                            ("author", name),
                            ("text", f"{name} says hi from {region}"),
                            ("region", region),
                            ("created", hlc),
                        )
                    ],
                )
            elif roll < 0.75:
                op = "map.set.add" if rng.random() < 0.7 else "map.set.remove"
                res = await c.request(op, key=rng.choice(posts), field="likes", element=name)
            else:
                hlc = (await c.request("clock.now"))["value_str"].zfill(20)
                cid = f"{hlc}.{region}.{rng.randrange(1 << 16):04x}"
                res = await c.request(
                    "map.register.assign",
                    key=rng.choice(posts),
                    field=["comments", cid],
                    value={"author": name, "text": "nice"},
                )
            counts["ok" if res.get("ok") else "errors"] += 1


async def _feed(port: int) -> dict[str, Any]:
    async with connect(f"ws://127.0.0.1:{port}/client", compression=None) as ws:
        c = _Conn(ws)
        keys = (await c.request("keys", prefix="post:"))["value"]
        return {k: (await c.request("get", key=k))["value"] for k in keys}


async def run_load(
    ports: list[int],
    *,
    users: int = 12,
    seconds: float = 10,
    seed: int | None = None,
    regions: tuple[str, ...] = ("us", "eu", "ap"),
    out: Any = sys.stdout,
) -> dict[str, Any]:
    """Run the load, then wait for convergence; return a summary."""
    rng = random.Random(seed)
    counts = {"ok": 0, "errors": 0}
    start = time.monotonic()
    until = start + seconds
    tasks = [
        asyncio.create_task(
            _user(
                ports[i % len(ports)],
                regions[i % len(regions)],
                random.Random(rng.random()),
                until,
                counts,
            )
        )
        for i in range(users)
    ]
    while not all(t.done() for t in tasks):
        await asyncio.sleep(1)
        elapsed = time.monotonic() - start
        print(
            f"\rload: {elapsed:4.1f}/{seconds:.0f} s  {counts['ok']} writes  "
            f"{counts['errors']} errors  {counts['ok'] / max(elapsed, 1e-9):.0f} writes/s",
            end="",
            file=out,
            flush=True,
        )
    await asyncio.gather(*tasks, return_exceptions=True)
    stopped = time.monotonic()
    converged = None
    feeds: list[dict[str, Any]] = []
    while time.monotonic() - stopped < 30:
        feeds = [await _feed(p) for p in ports]
        if all(f == feeds[0] for f in feeds):
            converged = time.monotonic() - stopped
            break
        await asyncio.sleep(0.1)
    summary = {
        "writes": counts["ok"],
        "errors": counts["errors"],
        "posts": len(feeds[0]),
        "converged_after_s": None if converged is None else round(converged, 3),
    }
    print(
        f"\nload done: {summary['writes']} writes, {summary['errors']} errors, "
        f"{summary['posts']} posts; regions identical "
        + (
            f"{converged:.2f} s after the load stopped"
            if converged is not None
            else "NOT within 30 s"
        ),
        file=out,
        flush=True,
    )
    return summary


def main() -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ports", default="7101,7102,7103", help="replica client ports")
    p.add_argument("--users", type=int, default=30)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    ports = [int(x) for x in args.ports.split(",")]
    summary = asyncio.run(run_load(ports, users=args.users, seconds=args.seconds, seed=args.seed))
    sys.exit(0 if summary["converged_after_s"] is not None else 1)


if __name__ == "__main__":
    main()
