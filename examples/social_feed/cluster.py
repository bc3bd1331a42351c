"""Run the demo's three regions: replica server processes whose peer links pass through
fault proxies owned by the demo, so one switch can cut a region off and heal it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from crdtsync_server.faultproxy import FaultProxy

__all__ = ["Region", "DemoCluster", "REGIONS"]

REGIONS = ("us", "eu", "ap")
_READY = re.compile(r"serving on ws://[\d.]+:(\d+)")


@dataclass
class Region:
    """One region: its replica process, port and live status."""

    name: str
    port: int
    data: Path
    proc: subprocess.Popen[bytes] | None = None
    cut: bool = False
    health: dict[str, Any] = field(default_factory=dict)


class DemoCluster:
    """Three replica servers in a full mesh through per-link fault proxies."""

    def __init__(self, data_dir: Path, *, base_port: int = 7101, fresh: bool = False) -> None:
        if fresh and data_dir.exists():
            shutil.rmtree(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.regions = {n: Region(n, base_port + i, data_dir / n) for i, n in enumerate(REGIONS)}
        self.proxies: dict[tuple[str, str], FaultProxy] = {}
        self.links_cut: set[frozenset[str]] = set()  # links cut on their own (both ways)

    async def start(self) -> None:
        """Start the proxies, then the replicas, and wait until each listens."""
        for a in REGIONS:
            for b in REGIONS:
                if a != b:
                    self.proxies[(a, b)] = await FaultProxy(self.regions[b].port).start()
        for region in self.regions.values():
            await self._start_replica(region)

    async def _start_replica(self, region: Region) -> None:
        peers: list[str] = []
        for (a, _b), proxy in self.proxies.items():
            if a == region.name:
                peers += ["--peer", f"ws://127.0.0.1:{proxy.port}/sync"]
        args = [
            sys.executable,
            "-m",
            "crdtsync_server.cli",
            "serve",
            "--id",
            region.name,
            "--listen",
            f"127.0.0.1:{region.port}",
            "--data",
            str(region.data),
            "--cluster",
            "social-feed",
            "--log-level",
            "WARNING",
            *peers,
        ]
        region.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        assert region.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(region.proc.stdout.readline), 20)
        if not _READY.search(line.decode()):
            raise RuntimeError(f"region {region.name} failed to start (port {region.port} busy?)")

    def set_cut(self, name: str, cut: bool) -> None:
        """Cut region ``name`` off from the others (cut=True) or heal it."""
        self.regions[name].cut = cut
        self._apply()

    def set_link_cut(self, a: str, b: str, cut: bool) -> None:
        """Cut the link between regions ``a`` and ``b`` alone (both ways), or heal it: a
        partial partition, where each still reaches the third region."""
        if a == b:
            raise ValueError(f"no link from {a} to itself")
        (self.links_cut.add if cut else self.links_cut.discard)(frozenset((a, b)))
        self._apply()

    def _apply(self) -> None:
        """Set every proxy from the switches: a link is up unless one of its regions, or
        the link itself, is cut."""
        for (a, b), proxy in self.proxies.items():
            if (self.regions[a].cut or self.regions[b].cut
                    or frozenset((a, b)) in self.links_cut):
                proxy.cut()
            else:
                proxy.heal()

    async def poll_health(self) -> None:
        """Refresh every region's /health document."""
        for region in self.regions.values():
            region.health = await _get_health(region.port)

    def status(self) -> dict[str, Any]:
        """Regions, their links, lag and switch positions, for the pages."""
        out: dict[str, Any] = {}
        for name, region in self.regions.items():
            peers = {}
            for rid, info in region.health.get("peers", {}).items():
                peer = rid.split(".", 1)[0]
                if peer in self.regions and peer != name:
                    peers[peer] = {
                        k: info.get(k) for k in ("connected", "lag_batches", "lag_seconds")
                    }
                    # origins whose writes this region relays to that peer, by region name
                    peers[peer]["relayed"] = sorted(o.split(".", 1)[0]
                                                    for o in info.get("relayed") or [])
            for peer in self.regions:
                if peer != name:
                    peers.setdefault(peer, {})["link_cut"] = (
                        frozenset((name, peer)) in self.links_cut)
            out[name] = {
                "up": bool(region.health),
                "cut": region.cut,
                "port": region.port,
                "keys": region.health.get("keys"),
                "peers": peers,
            }
        return out

    async def stop(self) -> None:
        """Stop every replica gracefully (SIGTERM, pending writes flushed), then the proxies."""
        for region in self.regions.values():
            if region.proc is not None and region.proc.poll() is None:
                region.proc.send_signal(signal.SIGTERM)
        for region in self.regions.values():
            if region.proc is not None:
                try:
                    await asyncio.wait_for(asyncio.to_thread(region.proc.wait), 15)
                except TimeoutError:
                    region.proc.kill()
        for proxy in self.proxies.values():
            await proxy.close()


async def _get_health(port: int) -> dict[str, Any]:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
    except (OSError, TimeoutError):
        return {}
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(1 << 20), 2)
        body = raw.split(b"\r\n\r\n", 1)[1]
        doc: dict[str, Any] = orjson.loads(body)
        return doc
    except (OSError, TimeoutError, IndexError, orjson.JSONDecodeError):
        return {}
    finally:
        writer.close()
