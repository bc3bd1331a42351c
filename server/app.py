"""The replica server process: one websocket port for peers, clients, health and metrics."""

from __future__ import annotations

import asyncio
import logging
import signal
from http import HTTPStatus
from typing import Any
from urllib.parse import urlparse

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from crdtsync.replica import Replica, wall_clock_ms

from .client_api import ClientSession
from .config import Config
from .metrics import Metrics

__all__ = ["ReplicaServer", "run_server"]

log = logging.getLogger("crdtsync.server")


class ReplicaServer:
    """One region's replica served over websockets (see the package docstring)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics()
        offset = config.clock_offset_ms
        self.replica = Replica.open(
            config.data, name=config.id, follower=config.follower,
            clock=(lambda: wall_clock_ms() + offset) if offset else wall_clock_ms,
            commit_delay=config.commit_delay_ms / 1000, max_drift_ms=config.max_drift_ms)
        self.replica.on_commit_latency = self.metrics.commit_seconds.observe
        self.sync: Any = None
        self._server: Server | None = None
        self.port: int = config.port

    async def start(self) -> None:
        """Start committing, listening and dialling peers."""
        self.replica.start()
        self._server = await serve(
            self._handle, self.config.host, self.config.port,
            process_request=self._http, compression=None,
            max_size=self.config.max_frame_bytes, ping_interval=20, ping_timeout=20,
            max_queue=16)
        self.port = self._server.sockets[0].getsockname()[1]
        self.sync = _make_sync(self)
        if self.sync is not None:
            await self.sync.start()
        log.info("replica %s (%s) listening on %s:%d", self.replica.name,
                 self.replica.replica_id, self.config.host, self.port)

    async def stop(self) -> None:
        """Flush, close links and the listener, close the store."""
        if self.sync is not None:
            await self.sync.stop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self.replica.aclose()

    def health(self) -> dict[str, Any]:
        """The /health document."""
        peers = self.sync.peer_status() if self.sync is not None else {}
        return {"id": self.replica.name, "replica_id": self.replica.replica_id,
                "keys": len(self.replica), "log_seq": self.replica.log_seq, "peers": peers}

    async def wait_replicated(self, seq: int, mode: str, timeout: float) -> bool:
        """Wait until a majority of / all replicas hold log entry ``seq`` durably."""
        if self.sync is None:
            return True
        return bool(await self.sync.wait_acked(seq, mode, timeout))

    def _http(self, conn: ServerConnection, request: Request) -> Response | None:
        path = urlparse(request.path).path
        if path == "/health":
            resp = conn.respond(HTTPStatus.OK, orjson.dumps(self.health()).decode() + "\n")
            resp.headers["Content-Type"] = "application/json"
            return resp
        if path == "/metrics":
            self.metrics.keys.set(len(self.replica))
            resp = conn.respond(HTTPStatus.OK, self.metrics.render().decode())
            resp.headers["Content-Type"] = "text/plain; version=0.0.4"
            return resp
        if path in ("/client", "/sync"):
            return None
        return conn.respond(HTTPStatus.NOT_FOUND, f"no endpoint {path}\n")

    async def _handle(self, conn: ServerConnection) -> None:
        path = urlparse(conn.request.path).path if conn.request else ""
        if path == "/client":
            conn.protocol.max_size = self.config.client_max_frame_bytes
            await ClientSession(self, conn).run()
        elif path == "/sync" and self.sync is not None:
            await self.sync.accept(conn)
        else:
            await conn.close(1008, "no such endpoint")


def _make_sync(server: ReplicaServer) -> Any:
    try:
        from crdtsync.transport import SyncService
    except ImportError:
        if server.config.peers:
            log.warning("peer sync is not available in this build; running standalone")
        return None
    return SyncService(server.replica, peers=server.config.peers, cluster=server.config.cluster,
                       secret_file=server.config.secret_file, metrics=server.metrics,
                       max_frame_bytes=server.config.max_frame_bytes)


async def run_server(config: Config, *, ready: Any = None) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    server = ReplicaServer(config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"crdtsync: replica {server.replica.name} ({server.replica.replica_id}) serving on "
          f"ws://{config.host}:{server.port} (client API at /client)", flush=True)
    if ready is not None:
        ready(server)
    await stop.wait()
    log.info("shutting down")
    await server.stop()
