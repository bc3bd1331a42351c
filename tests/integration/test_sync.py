"""Replicas over real websockets on 127.0.0.1: real server processes, peer links through
fault proxies run by the test (cut, heal), SIGKILL and restart, a replica added later."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from crdtsync_server.faultproxy import FaultProxy

from tests.integration.procs import Client, ServerProc, free_port, start_server


class Cluster:
    """N servers; each link i->j goes through its own fault proxy owned by the test."""

    def __init__(self, root: Path, names: list[str], links: set[tuple[int, int]],
                 extra: list[str] | None = None) -> None:
        self.root = root
        self.extra = extra or []  # flags for every server
        self.names = names
        self.links = links  # (i, j): i dials j
        self.ports = [free_port() for _ in names]
        self.proxies: dict[tuple[int, int], FaultProxy] = {}
        self.procs: list[ServerProc | None] = [None] * len(names)

    async def start(self) -> None:
        for link in sorted(self.links):
            self.proxies[link] = await FaultProxy(self.ports[link[1]]).start()
        for i in range(len(self.names)):
            await self.start_one(i)

    async def start_one(self, i: int) -> None:
        peers: list[str] = []
        for (a, _b), proxy in self.proxies.items():
            if a == i:
                peers += ["--peer", f"ws://127.0.0.1:{proxy.port}/sync"]
        self.procs[i] = await asyncio.to_thread(
            start_server, self.root / self.names[i], self.names[i], port=self.ports[i],
            extra=peers + self.extra)

    def isolate(self, i: int, cut: bool = True) -> None:
        for (a, b), proxy in self.proxies.items():
            if i in (a, b):
                proxy.cut() if cut else proxy.heal()

    async def stop(self) -> None:
        for proc in self.procs:
            if proc is not None:
                await asyncio.to_thread(proc.stop)
        for proxy in self.proxies.values():
            await proxy.close()

    def url(self, i: int) -> str:
        proc = self.procs[i]
        assert proc is not None
        return proc.url

    async def values(self, keys: list[str], which: list[int] | None = None) -> list[list[Any]]:
        out = []
        for i in which if which is not None else range(len(self.names)):
            async with Client(self.url(i)) as c:
                out.append([(await c.request("get", key=k))["value"] for k in keys])
        return out

    async def linked(self, *, timeout: float = 20) -> None:
        """Wait until every server's /health shows a live link to every other one."""
        deadline = time.monotonic() + timeout
        while True:
            docs = [orjson.loads(await asyncio.to_thread(
                lambda p=p: urllib.request.urlopen(f"http://127.0.0.1:{p.port}/health").read()))
                for p in self.procs if p is not None]
            if all(len(d["peers"]) == len(self.names) - 1
                   and all(i["connected"] for i in d["peers"].values()) for d in docs):
                return
            assert time.monotonic() < deadline, "the links did not all come up"
            await asyncio.sleep(0.05)

    async def converge(self, keys: list[str], expect: list[Any], *, timeout: float = 20,
                       which: list[int] | None = None) -> float:
        """Wait until every replica shows ``expect``; return the seconds it took."""
        start = time.monotonic()
        vals: list[list[Any]] = []
        while time.monotonic() - start < timeout:
            vals = await self.values(keys, which)
            if all(v == expect for v in vals):
                return time.monotonic() - start
            await asyncio.sleep(0.1)
        raise AssertionError(f"no convergence in {timeout} s: {vals} != {expect}")


async def _write(url: str, n: int, tag: str) -> None:
    async with Client(url) as c:
        for _ in range(n):
            assert (await c.request("counter.increment", key="c"))["ok"]
        assert (await c.request("set.add", key="s", element=tag))["ok"]
        assert (await c.request("map.set.add", key="post:1", field="likes", element=tag))["ok"]


def _metric(cl: Cluster, i: int, name: str) -> float:
    """Read one unlabelled metric from server ``i``'s /metrics."""
    proc = cl.procs[i]
    assert proc is not None
    text = urllib.request.urlopen(f"http://127.0.0.1:{proc.port}/metrics").read().decode()
    [line] = [ln for ln in text.splitlines() if ln.startswith(name + " ")]
    return float(line.split()[1])


def _run(coro: Any) -> None:
    asyncio.run(asyncio.wait_for(coro, 120))


def test_mesh_and_ring_converge(tmp_path: Path) -> None:
    async def main() -> None:
        names = ["a", "b", "c", "d"]
        ring = {(0, 1), (1, 2), (2, 3), (3, 0)}  # a and c only meet through b or d
        cl = Cluster(tmp_path, names, ring)
        await cl.start()
        try:
            await asyncio.gather(*(_write(cl.url(i), 10, n) for i, n in enumerate(names)))
            await cl.converge(["c", "s"], [40, names])
            assert (await cl.values(["post:1"]))[0] == [{"likes": names}]
        finally:
            await cl.stop()

    _run(main())


def test_a_wider_sync_window_converges_too(tmp_path: Path) -> None:
    """--sync-window 4: several deltas in flight per peer, same result as the default 1."""

    async def main() -> None:
        names = ["a", "b", "c"]
        cl = Cluster(tmp_path, names, {(0, 1), (1, 2), (0, 2)}, extra=["--sync-window", "4"])
        await cl.start()
        try:
            await asyncio.gather(*(_write(cl.url(i), 30, n) for i, n in enumerate(names)))
            await cl.converge(["c", "s"], [90, names])
        finally:
            await cl.stop()

    _run(main())


@contextlib.asynccontextmanager
async def _three_regions(root: Path) -> AsyncIterator[Cluster]:
    """us, eu and ap in a full mesh, each link through its own proxy and up; us wrote once
    and all three hold it."""
    cl = Cluster(root, ["us", "eu", "ap"], {(0, 1), (1, 2), (2, 0), (1, 0), (2, 1), (0, 2)})
    await cl.start()
    try:
        # every link up first: a region that never met another is caught up from state
        # by it (after it trimmed its log), and one that hears a forwarded write before
        # its own link to the origin is up relays that origin for a while
        await cl.linked()
        await _write(cl.url(0), 1, "us")
        await cl.converge(["c"], [1])
        yield cl
    finally:
        await cl.stop()


def test_cut_region_heals_and_converges(tmp_path: Path) -> None:
    async def main() -> None:
        async with _three_regions(tmp_path) as cl:
            cl.isolate(0)
            await asyncio.gather(_write(cl.url(0), 5, "us2"), _write(cl.url(1), 7, "eu"))
            await asyncio.sleep(0.5)
            assert (await cl.values(["c"], [0]))[0] == [6]  # us alone
            await cl.converge(["c"], [8], which=[1, 2])  # eu and ap still talk
            cl.isolate(0, cut=False)
            took = await cl.converge(["c", "s"], [13, ["eu", "us", "us2"]])
            assert took < 20
            # us came back to eu's and ap's backlogs, each holding the other's writes: each
            # left those out for us (it gets them from their origin), as /metrics shows. us
            # may converge through one of them before its link to the other is back (the
            # redial backs off): give the other the time to send.
            deadline = time.monotonic() + 20
            while True:
                left_out = [_metric(cl, i, "crdtsync_sync_entries_left_out") for i in (1, 2)]
                if all(n > 0 for n in left_out):
                    break
                assert time.monotonic() < deadline, f"left out for us: {left_out}"
                await asyncio.sleep(0.1)

    _run(main())


def test_a_region_cut_from_one_peer_gets_its_writes_through_another(tmp_path: Path) -> None:
    """A partial partition: us and ap cannot reach each other, both reach eu. ap gets us's
    writes through eu (whole, once ap said it does not get them from us), and eu's
    /health, /metrics and ``crdtsync status`` say that it relays us to ap."""

    async def main() -> None:
        async with _three_regions(tmp_path) as cl:
            for link in ((0, 2), (2, 0)):
                cl.proxies[link].cut()
            await _write(cl.url(0), 4, "us2")
            await cl.converge(["c", "s"], [5, ["us", "us2"]])  # ap too, through eu
            eu = cl.procs[1]
            assert eu is not None
            doc = orjson.loads(urllib.request.urlopen(
                f"http://127.0.0.1:{eu.port}/health").read())
            relayed = {p.split(".")[0]: info["relayed"] for p, info in doc["peers"].items()}
            assert {k: [o.split(".")[0] for o in v] for k, v in relayed.items()} == {
                "us": [], "ap": ["us"]}
            text = urllib.request.urlopen(f"http://127.0.0.1:{eu.port}/metrics").read().decode()
            gauges = {ln.split('peer="')[1].split(".")[0]: float(ln.split()[-1])
                      for ln in text.splitlines()
                      if ln.startswith("crdtsync_peer_relayed_origins{")}
            assert gauges == {"us": 0.0, "ap": 1.0}
            status = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "crdtsync_server.cli", "status",
                                 eu.url], capture_output=True, text=True, timeout=30)
            assert status.returncode == 0
            [line] = [ln for ln in status.stdout.splitlines() if "relaying" in ln]
            assert line.split()[0].startswith("ap.") and "relaying us." in line

    _run(main())


def test_sigkill_restart_and_late_replica_catch_up(tmp_path: Path) -> None:
    async def main() -> None:
        names = ["a", "b", "late"]
        cl = Cluster(tmp_path, names, {(0, 1), (1, 0), (2, 0), (2, 1)})
        for link in sorted(cl.links):
            cl.proxies[link] = await FaultProxy(cl.ports[link[1]]).start()
        await cl.start_one(0)
        await cl.start_one(1)
        try:
            await _write(cl.url(0), 20, "a")
            await cl.converge(["c"], [20], which=[0, 1])
            proc_b = cl.procs[1]
            assert proc_b is not None
            proc_b.stop(signal.SIGKILL)
            await _write(cl.url(0), 5, "a2")  # b is down
            await cl.start_one(1)  # same data directory
            await cl.converge(["c", "s"], [25, ["a", "a2"]], which=[0, 1])
            await _write(cl.url(1), 3, "b")
            await cl.start_one(2)  # a new replica joins with an empty store
            await cl.converge(["c", "s"], [28, ["a", "a2", "b"]])
        finally:
            await cl.stop()

    _run(main())
