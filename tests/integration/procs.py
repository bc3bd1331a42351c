"""Start and stop real ``crdtsync serve`` processes on 127.0.0.1 for integration tests."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import connect

__all__ = ["ServerProc", "start_server", "Client", "free_port"]

_READY = re.compile(r"serving on ws://([\d.]+):(\d+)")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(rng: random.Random | None = None) -> int:
    """Return a port free on 127.0.0.1 a moment ago, *below* the ephemeral range.

    A replica keeps its port across restarts; while it is down, a port of the ephemeral
    range may become the local end of any outgoing connection on the machine, and the
    restart could not bind it. Ports below the range are only taken by listeners.
    """
    import socket

    rng = rng or random.Random()
    low = _ephemeral_range()[0]
    for _ in range(200):
        port = rng.randrange(max(1024, low - 20000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # everything below the range is taken: any free port
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProc:
    """A running server process."""

    name: str
    data: Path
    port: int
    proc: subprocess.Popen[str]
    args: list[str]

    @property
    def url(self) -> str:
        """Base ws:// URL."""
        return f"ws://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Send ``sig`` and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def start_server(data: Path, name: str, *, port: int = 0, extra: list[str] | None = None,
                 timeout: float = 15, log_path: Path | None = None) -> ServerProc:
    """Start ``crdtsync serve`` and wait until it reports its port.

    With ``log_path``, the server's stderr (its log) is appended to that file instead of a
    pipe nobody drains, so a long-running, chatty server can never block on a full pipe.
    """
    args = [sys.executable, "-m", "crdtsync_server.cli", "serve", "--id", name,
            "--listen", f"127.0.0.1:{port}", "--data", str(data), "--log-level", "WARNING",
            *(extra or [])]
    stderr: Any = subprocess.PIPE
    if log_path is not None:
        stderr = open(log_path, "a")  # noqa: SIM115 - the child holds it; closed below
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    finally:
        if log_path is not None:
            stderr.close()
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = _READY.search(line)
        if m:
            return ServerProc(name, data, int(m.group(2)), proc, args)
    proc.kill()
    _, err = proc.communicate(timeout=5)
    if log_path is not None:
        err = log_path.read_text(errors="replace")
    raise RuntimeError(f"server {name} did not start: {err[-2000:]}")


class Client:
    """A minimal client-API client: request() sends and waits for the matching response."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._next = 0
        self._ws: Any = None
        self.events: list[dict[str, Any]] = []

    async def __aenter__(self) -> Client:
        self._ws = await connect(self.url + "/client")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()

    def abort(self) -> None:
        """Drop the connection at once, without a closing handshake (the server may be gone)."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def request(self, op: str, timeout: float = 10, **fields: Any) -> dict[str, Any]:
        """Send one request; return its response (events seen meanwhile go to .events)."""
        self._next += 1
        rid = self._next
        await self._ws.send(orjson.dumps({"id": rid, "op": op, **fields}).decode())
        async with asyncio.timeout(timeout):
            while True:
                msg = orjson.loads(await self._ws.recv())
                if msg.get("id") == rid:
                    return msg  # type: ignore[no-any-return]
                self.events.append(msg)

    async def send_raw(self, frame: str | bytes) -> dict[str, Any]:
        """Send a raw frame; return the next message."""
        await self._ws.send(frame)
        async with asyncio.timeout(10):
            return orjson.loads(await self._ws.recv())  # type: ignore[no-any-return]
