"""The demo's web server: the region pages, their assets, and a control websocket.

Pages talk to their region's replica directly (its ``/client`` websocket). The control
socket ``/control`` pushes the regions' link status twice a second and takes the partition
switches: ``{"op": "cut" | "heal", "region": "us"}`` for a whole region, and
``{"op": "cut-link" | "heal-link", "region": "us", "peer": "ap"}`` for the link between
two regions alone.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlparse

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .cluster import REGIONS, DemoCluster

__all__ = ["DemoWeb"]

log = logging.getLogger("crdtsync.demo")
STATIC = Path(__file__).parent / "static"
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}
USERS = ["alice", "bob", "carol", "dave", "erin"]


class DemoWeb:
    """Serve the pages and the control socket on one port."""

    def __init__(self, cluster: DemoCluster, *, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.cluster = cluster
        self.host = host
        self.port = port
        self._server: Server | None = None
        self._clients: set[ServerConnection] = set()
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen and start pushing status."""
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._http,
            compression=None,
            max_size=64 * 1024,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._pump = asyncio.get_running_loop().create_task(self._status_loop())

    async def stop(self) -> None:
        """Stop serving."""
        if self._pump is not None:
            self._pump.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url(self, region: str) -> str:
        """The page of ``region``."""
        return f"http://{self.host}:{self.port}/{region}"

    def _http(self, conn: ServerConnection, request: Request) -> Response | None:
        path = urlparse(request.path).path.rstrip("/") or "/"
        if path == "/control":
            return None
        if path == "/":
            return _respond(conn, (STATIC / "index.html").read_text(), ".html")
        name = path.lstrip("/")
        if name in REGIONS:
            cfg = {
                "region": name,
                "regions": list(REGIONS),
                "users": USERS,
                "clientUrl": f"ws://{self.host}:{self.cluster.regions[name].port}/client",
                "controlUrl": f"ws://{self.host}:{self.port}/control",
            }
            page = (
                (STATIC / "region.html")
                .read_text()
                .replace("/*DEMO_CONFIG*/", f"window.DEMO = {orjson.dumps(cfg).decode()};")
            )
            return _respond(conn, page.replace("{{REGION}}", name.upper()), ".html")
        if path.startswith("/static/"):
            target = (STATIC / path[len("/static/") :]).resolve()
            if target.parent == STATIC.resolve() and target.is_file():
                return _respond(conn, target.read_text(), target.suffix)
        return conn.respond(HTTPStatus.NOT_FOUND, "not found\n")

    async def _handle(self, conn: ServerConnection) -> None:
        self._clients.add(conn)
        try:
            await conn.send(self._status())
            async for frame in conn:
                try:
                    msg = orjson.loads(frame)
                    op, region = msg["op"], msg["region"]
                    if region not in REGIONS:
                        raise ValueError(region)
                    if op in ("cut", "heal"):
                        self.cluster.set_cut(region, op == "cut")
                        log.info("%s %s", op, region)
                    elif op in ("cut-link", "heal-link") and msg["peer"] in REGIONS:
                        self.cluster.set_link_cut(region, msg["peer"], op == "cut-link")
                        log.info("%s %s-%s", op, region, msg["peer"])
                    else:
                        raise ValueError(op)
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    await conn.send(
                        orjson.dumps({"type": "error", "message": "bad request"}).decode()
                    )
                    continue
                await self._broadcast()
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(conn)

    def _status(self) -> str:
        return orjson.dumps({"type": "status", "regions": self.cluster.status()}).decode()

    async def _broadcast(self) -> None:
        text = self._status()
        for conn in list(self._clients):
            try:
                await conn.send(text)
            except ConnectionClosed:
                self._clients.discard(conn)

    async def _status_loop(self) -> None:
        while True:
            await self.cluster.poll_health()
            await self._broadcast()
            await asyncio.sleep(0.5)


def _respond(conn: ServerConnection, body: str, suffix: str) -> Response:
    resp = conn.respond(HTTPStatus.OK, body)
    resp.headers["Content-Type"] = _TYPES.get(suffix, "text/plain")
    resp.headers["Cache-Control"] = "no-store"
    return resp
