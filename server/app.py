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
from crdtsync.transport.auth import load_secret

from .access import origin_ok, request_token, token_ok
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
        self._token = load_secret(config.client_token_file) if config.client_token_file else None
        self._origins = frozenset(config.allow_origins)
        self.clients = 0  # open client API connections

    async def start(self) -> None:
        """Start committing, listening and dialling peers."""
        self.replica.start()
        tls: dict[str, Any] = {}
        if self.config.tls:
            from crdtsync.transport.tls import server_context

            assert self.config.tls_key and self.config.tls_ca and self.config.tls_cert
            tls["ssl"] = server_context(self.config.tls_cert, self.config.tls_key,
                                        self.config.tls_ca)
        # permessage-deflate stays off everywhere (compression=None): a compressed frame
        # can inflate far beyond max_size's intent, and it leaks secrets next to
        # attacker-chosen data (CRIME/BREACH).
        self._server = await serve(
            self._handle, self.config.host, self.config.port,
            process_request=self._http, compression=None,
            max_size=self.config.max_frame_bytes, ping_interval=20, ping_timeout=20,
            max_queue=self.config.max_queue, **tls)
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
        if path in ("/health", "/metrics"):
            if self.config.protect_health and not self._token_ok(request):
                return self._refuse(conn, HTTPStatus.UNAUTHORIZED, "client_unauthorized")
            if path == "/health":
                return self._health_response(conn)
            return self._metrics_response(conn)
        if path == "/client":
            return self._client_handshake(conn, request)
        if path == "/sync":
            if request.headers.get_all("Origin"):  # peers never send one: a browser
                return self._refuse(conn, HTTPStatus.FORBIDDEN, "sync_origin")
            if self.sync is not None:
                conn.protocol.max_message_size = self.sync.handshake_frame_limit
            return None
        return conn.respond(HTTPStatus.NOT_FOUND, f"no endpoint {path}\n")

    def _client_handshake(self, conn: ServerConnection, request: Request) -> Response | None:
        if not origin_ok(request.headers.get_all("Origin"), self._origins):
            return self._refuse(conn, HTTPStatus.FORBIDDEN, "client_origin")
        if self._token is not None and not self._token_ok(request):
            return self._refuse(conn, HTTPStatus.UNAUTHORIZED, "client_unauthorized")
        if self.clients >= self.config.max_clients:
            return self._refuse(conn, HTTPStatus.SERVICE_UNAVAILABLE, "client_capacity")
        conn.protocol.max_message_size = self.config.client_max_frame_bytes
        return None

    def _token_ok(self, request: Request) -> bool:
        assert self._token is not None
        return token_ok(request_token(request.path, request.headers), self._token)

    def _refuse(self, conn: ServerConnection, status: HTTPStatus, reason: str) -> Response:
        self.metrics.rejected(reason)
        resp = conn.respond(status, f"{status.phrase}\n")
        if status == HTTPStatus.UNAUTHORIZED:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="crdtsync"'
        return resp

    def _health_response(self, conn: ServerConnection) -> Response:
        resp = conn.respond(HTTPStatus.OK, orjson.dumps(self.health()).decode() + "\n")
        resp.headers["Content-Type"] = "application/json"
        return resp

    def _metrics_response(self, conn: ServerConnection) -> Response:
        self.metrics.keys.set(len(self.replica))
        if self.sync is not None:
            self.metrics.entries_left_out.set(self.sync.engine.log_stats()["left_out"])
            self.sync.update_peer_metrics()
        resp = conn.respond(HTTPStatus.OK, self.metrics.render().decode())
        resp.headers["Content-Type"] = "text/plain; version=0.0.4"
        return resp

    async def _handle(self, conn: ServerConnection) -> None:
        path = urlparse(conn.request.path).path if conn.request else ""
        if path == "/client":
            if self.clients >= self.config.max_clients:  # handshakes that raced past _http
                self.metrics.rejected("client_capacity")
                await conn.close(1013, "too many client connections")
                return
            self.clients += 1
            try:
                await ClientSession(self, conn, rate=self.config.client_rate,
                                    burst=self.config.client_burst).run()
            finally:
                self.clients -= 1
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
    cfg = server.config
    tls = None
    if cfg.tls:
        from crdtsync.transport.tls import client_context

        assert cfg.tls_cert and cfg.tls_key and cfg.tls_ca
        tls = client_context(cfg.tls_cert, cfg.tls_key, cfg.tls_ca)
    return SyncService(server.replica, peers=cfg.peers, cluster=cfg.cluster,
                       secret_file=cfg.secret_file, metrics=server.metrics,
                       max_frame_bytes=cfg.max_frame_bytes, tls=tls,
                       members=cfg.members or None, max_dot_seq=cfg.max_dot_seq,
                       window=cfg.sync_window, hot_log_bytes=cfg.sync_hot_log_mb << 20)


async def run_server(config: Config, *, ready: Any = None) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    server = ReplicaServer(config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    scheme = "wss" if config.tls else "ws"
    print(f"crdtsync: replica {server.replica.name} ({server.replica.replica_id}) serving on "
          f"{scheme}://{config.host}:{server.port} (client API at /client)", flush=True)
    if ready is not None:
        ready(server)
    await stop.wait()
    log.info("shutting down")
    await server.stop()
