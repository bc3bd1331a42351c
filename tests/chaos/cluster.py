"""The chaos cluster: replica processes on 127.0.0.1, a fault proxy on every peer link.

Extends :class:`tests.integration.test_sync.Cluster` (a full mesh: i dials j through
proxy (i, j) for every i != j) with the process faults the nemesis needs: SIGKILL, SIGSTOP /
SIGCONT, restarting a replica on its data directory with a clock offset, and a teardown that
leaves no process behind, whatever failed. Every server is also recorded in a module-level
set that an ``atexit`` hook reaps, as a last resort.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import random
import signal
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from crdtsync_server.faultproxy import FaultProxy

from tests.integration.procs import ServerProc, free_port, start_server
from tests.integration.test_sync import Cluster

__all__ = ["ChaosCluster"]

_LIVE: set[subprocess.Popen[str]] = set()


@atexit.register
def _reap() -> None:
    for proc in list(_LIVE):
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)
        _LIVE.discard(proc)


def _terminate(server: ServerProc, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    """Stop ``server`` with ``sig`` (SIGCONT first, a stopped process ignores SIGTERM)."""
    proc = server.proc
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    _LIVE.discard(proc)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def listen_port(rng: random.Random) -> int:
    """A free port below the ephemeral range (see :func:`tests.integration.procs.free_port`)."""
    return free_port(rng)


class ChaosCluster(Cluster):
    """``names`` replicas in a full mesh of proxied links under ``root``."""

    def __init__(self, root: Path, names: list[str]) -> None:
        n = len(names)
        super().__init__(root, names, {(i, j) for i in range(n) for j in range(n) if i != j})
        rng = random.Random()
        self.ports = [listen_port(rng) for _ in names]
        self.offsets = [0] * n
        self.paused: set[int] = set()
        self._starting: set[asyncio.Future[ServerProc]] = set()

    def log_path(self, i: int) -> Path:
        """Where replica i's server log goes (all its incarnations, appended)."""
        return self.root / f"{self.names[i]}.log"

    async def start(self) -> None:
        """Start every proxy, then every server at once."""
        for link in sorted(self.links):
            self.proxies[link] = await FaultProxy(self.ports[link[1]]).start()
        await asyncio.gather(*(self.start_one(i) for i in range(len(self.names))))

    async def start_one(self, i: int) -> None:
        """Start replica i on its data directory (with its current clock offset)."""
        peers: list[str] = []
        for (a, _), proxy in sorted(self.proxies.items()):
            if a == i:
                peers.append(f"--peer=ws://127.0.0.1:{proxy.port}/sync")
        if self.offsets[i]:
            peers.append(f"--clock-offset-ms={self.offsets[i]}")

        def spawn() -> ServerProc:
            for attempt in range(3):
                try:
                    server = start_server(self.root / self.names[i], self.names[i],
                                          port=self.ports[i], extra=peers,
                                          log_path=self.log_path(i))
                    break
                except RuntimeError as exc:  # someone took the port: move to another one
                    if "address already in use" not in str(exc) or attempt == 2:
                        raise
                    self._move(i, listen_port(random.Random()))
            _LIVE.add(server.proc)
            self.procs[i] = server  # even if the awaiting task was cancelled meanwhile
            return server

        # A thread cannot be cancelled: keep its future so teardown waits for it and stops
        # whatever it started.
        fut = asyncio.get_running_loop().run_in_executor(None, spawn)
        self._starting.add(fut)
        fut.add_done_callback(self._starting.discard)
        await fut

    def _move(self, i: int, port: int) -> None:
        """Give replica i a new port: its peers' proxies and its clients follow."""
        self.ports[i] = port
        for (_, b), proxy in self.proxies.items():
            if b == i:
                proxy.target_port = port

    def running(self, i: int) -> bool:
        """True if replica i's process is alive (maybe stopped)."""
        proc = self.procs[i]
        return proc is not None and proc.proc.poll() is None

    # -- network faults ------------------------------------------------------------------

    def _proxies(self, pairs: Iterable[tuple[int, int]]) -> list[FaultProxy]:
        out = []
        for a, b in pairs:
            out += [self.proxies[(a, b)], self.proxies[(b, a)]]
        return out

    def cut(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Cut both directions of every replica pair in ``pairs``."""
        for proxy in self._proxies(pairs):
            proxy.cut()

    def delay(self, pairs: Iterable[tuple[int, int]], seconds: float) -> None:
        """Delay every chunk on both directions of the pairs by ``seconds``."""
        for proxy in self._proxies(pairs):
            proxy.delay = seconds

    def flap(self) -> None:
        """Reset every open peer connection (they reconnect)."""
        for proxy in self.proxies.values():
            proxy.drop_connections()

    def heal_network(self) -> None:
        """Heal every link and remove every delay."""
        for proxy in self.proxies.values():
            proxy.heal()
            proxy.delay = 0.0

    # -- process faults ------------------------------------------------------------------

    async def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        """Stop replica i with ``sig`` and wait until it is gone."""
        proc = self.procs[i]
        self.paused.discard(i)
        if proc is not None:
            await asyncio.to_thread(_terminate, proc, sig)

    def pause(self, i: int) -> None:
        """SIGSTOP replica i."""
        proc = self.procs[i]
        if proc is not None and proc.proc.poll() is None:
            os.kill(proc.proc.pid, signal.SIGSTOP)
            self.paused.add(i)

    def resume(self, i: int) -> None:
        """SIGCONT replica i."""
        proc = self.procs[i]
        self.paused.discard(i)
        if proc is not None and proc.proc.poll() is None:
            os.kill(proc.proc.pid, signal.SIGCONT)

    async def heal_all(self) -> None:
        """Undo every fault: links healed, processes continued, dead replicas restarted."""
        self.heal_network()
        for i in list(self.paused):
            self.resume(i)
        await asyncio.gather(*(self.start_one(i) for i in range(len(self.names))
                               if not self.running(i)))

    async def health(self, i: int) -> dict[str, Any]:
        """Replica i's /health document."""
        import orjson

        reader, writer = await asyncio.open_connection("127.0.0.1", self.ports[i])
        try:
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            raw = await reader.read()
        finally:
            writer.close()
        body = raw.split(b"\r\n\r\n", 1)[1]
        doc: dict[str, Any] = orjson.loads(body)
        return doc

    async def stop(self) -> None:
        """Stop everything (SIGCONT, SIGTERM, SIGKILL after 10 s), proxies last. Never raises
        before every process is gone."""
        if self._starting:
            await asyncio.wait(set(self._starting), timeout=30)
        await asyncio.gather(*(asyncio.to_thread(_terminate, p) for p in self.procs
                               if p is not None), return_exceptions=True)
        for proxy in self.proxies.values():
            await proxy.close()  # a connection still dialling upstream is dropped when it lands
