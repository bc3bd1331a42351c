"""W5: three replicas over real websockets on 127.0.0.1, in one process and one event loop.

Workload (``shared/peers-bench/README.md``): replica r (0, 1, 2) performs its stream of
increments (``workloads.w5``: 100,000 each, ``Random(501 + r)``) in batches of 1,000, with
``await asyncio.sleep(0)`` after each batch, so local work interleaves with network I/O.
The clock starts after every connection is open and its handshake done, and stops when all
three replicas hold identical counters equal to the sum of the three streams (polled every
1 ms once local work is over; hard limits 120 s timed, 30 s setup, 10 s teardown). Loopback
only, websockets with permessage-deflate off and no keepalive pings on the listening side.

Byte accounting: ``bytes`` = websocket message payload bytes sent in both directions
during the timed phase; ``wire_bytes`` adds the RFC 6455 frame headers worked out from each
payload length (2 bytes, +2 from 126 bytes, +8 from 65,536; +4 masking key on frames a
client sends); no TCP/IP headers, no HTTP upgrade. "up" = from the side that dialled, "down"
= from the side that accepted (the server, the room or the relay).

Topologies:

- **crdtsync**: each replica has a :class:`~crdtsync.transport.SyncService` (engine,
  group committer, reconnecting dialler, bounded send queues) and a websockets server on an
  ephemeral port routing every connection to ``service.accept``. Full mesh: replica i dials
  replica j for j > i (three links, each carrying both directions). Each batch of 1,000
  increments (``replica.counter(k).increment()`` per op) ends with ``replica.commit()``,
  which hands the entry to the engine at once. ``bytes`` = the services' ``bytes_sent``;
  the per-message lengths used for the frame headers (and ``bytes_up``/``bytes_down``) are
  read by a counting wrapper around each accepted connection.
- **pycrdt** (pycrdt-websocket's recommended topology, as the peers' README describes it):
  a ``WebsocketServer`` with one room holding its own server-side ``Doc``, served with
  ``websockets.asyncio.server.serve``; each replica is a ``pycrdt.Provider`` over a
  websockets client connection; byte-counting ``Channel`` adapters on both ends. The room
  applies every update and broadcasts it to all clients, the sender included, and each
  Provider sends every transaction it sees (its echoes of remote updates included).
  Convergence: every replica's state vector holds every replica's final clock.
- **loro** / **loro-rootctr**: a relay written here with ``websockets`` (no server-side
  doc): each replica queues the bytes of every local commit from
  ``doc.subscribe_local_update`` and sends them to the relay, which forwards each message
  to the two other replicas, which ``import_`` it. Convergence: every replica's oplog
  version vector holds every peer's final counter.

Every topology runs in this harness, in the same process layout, so the rows compare
side by side; the code is written anew from the peers' descriptions.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import rss_now_mb, settle, workloads
from bench.runners import _fields

TIMED_LIMIT_S = 120.0
SETUP_LIMIT_S = 30.0
TEARDOWN_LIMIT_S = 10.0
POLL_S = 0.001


def ws_header_bytes(n: int, masked: bool) -> int:
    """RFC 6455 frame header size for a payload of ``n`` bytes (one unfragmented frame)."""
    size = 2
    if n >= 65536:
        size += 8
    elif n >= 126:
        size += 2
    return size + (4 if masked else 0)


class WireStats:
    """Payload bytes, messages and frame header bytes per direction, while active."""

    def __init__(self) -> None:
        self.active = False
        self.bytes = {"up": 0, "down": 0}
        self.messages = {"up": 0, "down": 0}
        self.headers = 0

    def add(self, direction: str, n: int) -> None:
        if self.active:
            self.bytes[direction] += n
            self.messages[direction] += 1
            self.headers += ws_header_bytes(n, masked=direction == "up")

    def fields(self) -> dict[str, int]:
        return {"bytes_up": self.bytes["up"], "bytes_down": self.bytes["down"],
                "messages_up": self.messages["up"], "messages_down": self.messages["down"],
                "frame_header_bytes": self.headers}


def _expected(streams: list[Any]) -> list[int]:
    W = workloads()
    out = [0] * W.N_COUNTERS
    for ops in streams:
        for i in ops:
            out[i] += 1
    return out


async def _within(coro: Awaitable[Any], limit: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(coro, limit)
    except TimeoutError:
        raise RuntimeError(f"{what} did not finish within {limit:g} s") from None


async def _poll(done: Callable[[], bool], t0: float, what: str) -> float:
    """Poll ``done()`` every millisecond; return perf_counter() when it first holds."""
    deadline = t0 + TIMED_LIMIT_S
    while True:
        if done():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{what}: no convergence within {TIMED_LIMIT_S:g} s")
        await asyncio.sleep(POLL_S)


async def _peer_result(label: str, work: Callable[[int], Awaitable[Any]],
                       converged: Callable[[], bool], *, reps: list[Any], expected: list[int],
                       streams: list[Any], stats: Any, finished: list[float], t0: float,
                       c0: float, before: float, setup_s: float) -> dict[str, Any]:
    """Run the three peer replicas' work, wait for convergence, check and report (W5)."""
    tasks = [asyncio.ensure_future(work(r)) for r in range(3)]
    t_end = await _poll(converged, t0, label)
    stats.active = False
    cpu = time.process_time() - c0
    await asyncio.gather(*tasks)
    after = rss_now_mb()
    vals = [rep.counter_values() for rep in reps]
    ok = vals[0] == vals[1] == vals[2] == expected
    check = "pass" if ok else f"FAIL sums={[sum(v) for v in vals]} expected={sum(expected)}"
    sent = stats.bytes["up"] + stats.bytes["down"]
    return _fields(sum(len(x) for x in streams), t_end - t0, cpu, check, before, after,
                   bytes=sent, wire_bytes=sent + stats.headers, **stats.fields(),
                   local_work_seconds=round(max(finished) - t0, 4),
                   setup_seconds=round(setup_s, 4))


def _run(coro: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    return asyncio.run(coro)  # type: ignore[arg-type]


# ---------------------------------------------------------------- crdtsync


class _CountingConn:
    """Wraps an accepted websocket: counts frames received (up) and sent (down).

    With ``capture`` (a list), also records ``(sender replica id, frame)`` for every frame
    while the stats are active; the dialler's id is read from its Hello (for
    :mod:`bench.profile`'s byte attribution).
    """

    def __init__(self, conn: Any, stats: WireStats, me: str,
                 capture: list[tuple[str, bytes]] | None = None) -> None:
        self._conn = conn
        self._stats = stats
        self._me = me
        self._dialler = "?"
        self._capture = capture

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __aiter__(self) -> Any:
        return self._frames()

    def _up(self, frame: Any) -> None:
        self._stats.add("up", len(frame))
        if self._capture is not None:
            if self._dialler == "?":
                from crdtsync.sync import Hello, decode_message

                msg = decode_message(frame)
                if isinstance(msg, Hello):
                    self._dialler = msg.replica
            if self._stats.active:
                self._capture.append((self._dialler, bytes(frame)))

    async def _frames(self) -> Any:
        async for frame in self._conn:
            self._up(frame)
            yield frame

    async def recv(self) -> Any:
        frame = await self._conn.recv()
        self._up(frame)
        return frame

    async def send(self, data: Any) -> None:
        self._stats.add("down", len(data))
        if self._capture is not None and self._stats.active:
            self._capture.append((self._me, bytes(data)))
        await self._conn.send(data)


def w5_crdtsync(kind: Any, scale: float) -> dict[str, Any]:
    return _run(_w5_crdtsync(kind, scale))


async def _w5_crdtsync(kind: Any, scale: float, *,
                       capture: list[tuple[str, bytes]] | None = None) -> dict[str, Any]:
    from websockets.asyncio.server import serve

    from bench.replica_common import Replicas, fs_type, replica_id
    from bench.syncpump import MAX_FRAME_BYTES
    from crdtsync.transport import SyncService

    W = workloads()
    streams = W.w5(scale)
    expected = _expected(streams)
    names = W.COUNTER_NAMES
    stats = WireStats()
    replicas = Replicas(kind)
    reps = [replicas.open(i) for i in range(3)]
    ids = [replica_id(i) for i in range(3)]
    services: list[Any] = [None, None, None]
    servers: list[Any] = []
    try:
        t_setup = time.perf_counter()
        ports = []
        for i in range(3):
            async def handler(conn: Any, i: int = i) -> None:
                await services[i].accept(_CountingConn(conn, stats, ids[i], capture))

            server = await serve(handler, "127.0.0.1", 0, compression=None,
                                 max_size=MAX_FRAME_BYTES, ping_interval=None)
            servers.append(server)
            ports.append(server.sockets[0].getsockname()[1])
        for i in range(3):
            peers = [f"ws://127.0.0.1:{ports[j]}/sync" for j in range(3) if j > i]
            services[i] = SyncService(reps[i], peers=peers, cluster="bench",
                                      max_frame_bytes=MAX_FRAME_BYTES, rng=random.Random(i))
        for svc in services:
            await svc.start()

        def linked() -> bool:
            for i, svc in enumerate(services):
                st = svc.engine.status()
                if any(j != i and not (ids[j] in st and st[ids[j]].connected)
                       for j in range(3)):
                    return False
            return True

        await _within(_poll(linked, time.perf_counter(), "setup"), SETUP_LIMIT_S, "setup")
        await asyncio.sleep(0.01)  # the last Accepts are on their way
        setup_s = time.perf_counter() - t_setup

        local_last = [0, 0, 0]
        finished = [0.0, 0.0, 0.0]
        before = settle()
        sent0 = sum(s.bytes_sent for s in services)
        stats.active = True
        c0 = time.process_time()
        t0 = time.perf_counter()

        async def work(r: int) -> None:
            rep = reps[r]
            counter = rep.counter
            ops = streams[r]
            for a, b in W.batches(len(ops)):
                for i in ops[a:b]:
                    counter(names[i]).increment()
                seq = rep.log_seq
                rep.commit()
                local_last[r] = seq + 1  # the local entry comes first in a commit
                await asyncio.sleep(0)
            finished[r] = time.perf_counter()

        def converged() -> bool:
            if not all(finished):
                return False
            for j, svc in enumerate(services):
                st = svc.engine.status()
                for i in range(3):
                    if i != j and st[ids[i]].received < local_last[i]:
                        return False
            vals = [[rep.get(n, 0) for n in names] for rep in reps]
            return vals[0] == vals[1] == vals[2] == expected

        tasks = [asyncio.ensure_future(work(r)) for r in range(3)]
        t_end = await _poll(converged, t0, "crdtsync W5")
        stats.active = False
        cpu = time.process_time() - c0
        sent = sum(s.bytes_sent for s in services) - sent0
        await asyncio.gather(*tasks)
        after = rss_now_mb()
        # What the engines still send after convergence (queued forwards, acks, empty
        # intervals): wait until no byte moves for 0.2 s (at most 5 s; untimed).
        quiet_until = time.perf_counter() + 5.0
        last, still = -1, time.perf_counter()
        while time.perf_counter() < quiet_until:
            now_sent = sum(s.bytes_sent for s in services)
            if now_sent != last:
                last, still = now_sent, time.perf_counter()
            elif time.perf_counter() - still >= 0.2:
                break
            await asyncio.sleep(0.01)
        extra = dict(bytes=sent, wire_bytes=sent + stats.headers, **stats.fields(),
                     bytes_observed=stats.bytes["up"] + stats.bytes["down"],
                     bytes_until_quiet=last - sent0,
                     local_work_seconds=round(max(finished) - t0, 4),
                     setup_seconds=round(setup_s, 4), store=kind.describe(),
                     commits=sum(r.stats["commits"] for r in reps))
        if replicas.tmp is not None:
            extra["store_fs"] = fs_type(replicas.tmp)
        return _fields(sum(len(s) for s in streams), t_end - t0, cpu, "pass", before,
                       after, **extra)
    finally:
        stats.active = False

        async def teardown() -> None:
            for svc in services:
                if svc is not None:
                    await svc.stop()
            for server in servers:
                server.close()
                await server.wait_closed()

        try:
            await _within(teardown(), TEARDOWN_LIMIT_S, "teardown")
        finally:
            replicas.close()


# ---------------------------------------------------------------- pycrdt


class _Channel:
    """A pycrdt ``Channel`` over a websockets connection, counting what it sends."""

    def __init__(self, conn: Any, path: str, stats: WireStats, direction: str) -> None:
        self._conn = conn
        self._path = path
        self._stats = stats
        self._direction = direction

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> _Channel:
        return self

    async def __anext__(self) -> bytes:
        from websockets.exceptions import ConnectionClosed

        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def send(self, message: bytes) -> None:
        self._stats.add(self._direction, len(message))
        await self._conn.send(bytes(message))

    async def recv(self) -> bytes:
        data = await self._conn.recv()
        return bytes(data)


def _read_varuint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def yjs_state_vector(sv: bytes) -> dict[int, int]:
    """Decode a Yjs state vector (varuint count, then (client, clock) varuint pairs)."""
    n, pos = _read_varuint(sv, 0)
    out = {}
    for _ in range(n):
        client, pos = _read_varuint(sv, pos)
        clock, pos = _read_varuint(sv, pos)
        out[client] = clock
    return out


def w5_pycrdt(scale: float) -> dict[str, Any]:
    return _run(_w5_pycrdt(scale))


async def _w5_pycrdt(scale: float) -> dict[str, Any]:
    from contextlib import AsyncExitStack

    from pycrdt import Provider
    from pycrdt.websocket import WebsocketServer
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    from bench.drivers.pycrdt_driver import PycrdtReplica

    W = workloads()
    streams = W.w5(scale)
    expected = _expected(streams)
    stats = WireStats()
    reps = [PycrdtReplica(i) for i in range(3)]
    path = "/bench-room"
    t_setup = time.perf_counter()
    stack = AsyncExitStack()
    try:
        room_server = await stack.enter_async_context(WebsocketServer(auto_clean_rooms=False))

        async def handler(conn: Any) -> None:
            await room_server.serve(_Channel(conn, path, stats, "down"))

        server = await stack.enter_async_context(
            serve(handler, "127.0.0.1", 0, compression=None, max_size=None,
                  ping_interval=None))
        port = server.sockets[0].getsockname()[1]
        providers = []
        for rep in reps:
            conn = await stack.enter_async_context(
                connect(f"ws://127.0.0.1:{port}{path}", compression=None, max_size=None,
                        ping_interval=None))
            providers.append(Provider(rep.doc, _Channel(conn, path, stats, "up")))
        for p in providers:
            await stack.enter_async_context(p)
        await _within(asyncio.gather(*(p.synced.wait() for p in providers)), SETUP_LIMIT_S,
                      "pycrdt setup")
        await asyncio.sleep(0.01)
        setup_s = time.perf_counter() - t_setup
        ids = [rep.doc.client_id for rep in reps]
        final: dict[int, int] = {}
        finished = [0.0, 0.0, 0.0]
        before = settle()
        stats.active = True
        c0 = time.process_time()
        t0 = time.perf_counter()

        async def work(r: int) -> None:
            rep, ops = reps[r], streams[r]
            for a, b in W.batches(len(ops)):
                rep.inc_batch(ops, a, b)
                await asyncio.sleep(0)
            final[ids[r]] = yjs_state_vector(bytes(rep.doc.get_state()))[ids[r]]
            finished[r] = time.perf_counter()

        def converged() -> bool:
            if not all(finished):
                return False
            for rep in reps:
                sv = yjs_state_vector(bytes(rep.doc.get_state()))
                if any(sv.get(c, 0) < n for c, n in final.items()):
                    return False
            return True

        return await _peer_result("pycrdt W5", work, converged, reps=reps, expected=expected,
                                  streams=streams, stats=stats, finished=finished, t0=t0,
                                  c0=c0, before=before, setup_s=setup_s)
    finally:
        stats.active = False
        # anyio task groups (Provider, WebsocketServer) must be left by the task that
        # entered them: close here, bounded by a timeout in this same task.
        async with asyncio.timeout(TEARDOWN_LIMIT_S):
            await stack.aclose()


# ---------------------------------------------------------------- loro


def w5_loro(replica_cls: Any, scale: float) -> dict[str, Any]:
    return _run(_w5_loro(replica_cls, scale))


async def _w5_loro(replica_cls: Any, scale: float) -> dict[str, Any]:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    W = workloads()
    streams = W.w5(scale)
    expected = _expected(streams)
    stats = WireStats()
    reps = [replica_cls(i) for i in range(3)]
    clients: list[Any] = []
    t_setup = time.perf_counter()

    async def relay(conn: Any) -> None:
        clients.append(conn)
        try:
            async for msg in conn:
                for other in list(clients):
                    if other is not conn:
                        stats.add("down", len(msg))
                        try:
                            await other.send(msg)
                        except ConnectionClosed:
                            pass
        finally:
            clients.remove(conn)

    server = await serve(relay, "127.0.0.1", 0, compression=None, max_size=None,
                         ping_interval=None)
    conns: list[Any] = []
    bg: list[asyncio.Task[Any]] = []
    subs: list[Any] = []
    try:
        port = server.sockets[0].getsockname()[1]
        for _ in reps:
            conns.append(await connect(f"ws://127.0.0.1:{port}", compression=None,
                                       max_size=None, ping_interval=None))
        await _within(_poll(lambda: len(clients) == 3, time.perf_counter(), "relay"),
                      SETUP_LIMIT_S, "loro setup")
        for rep, conn in zip(reps, conns, strict=True):
            queue: asyncio.Queue[bytes] = asyncio.Queue()

            def on_local(update: bytes, q: asyncio.Queue[bytes] = queue) -> bool:
                q.put_nowait(bytes(update))
                return True

            subs.append(rep.doc.subscribe_local_update(on_local))

            async def sender(conn: Any = conn, q: asyncio.Queue[bytes] = queue) -> None:
                while True:
                    data = await q.get()
                    stats.add("up", len(data))
                    await conn.send(data)

            async def receiver(conn: Any = conn, rep: Any = rep) -> None:
                async for msg in conn:
                    rep.doc.import_(msg)

            bg += [asyncio.ensure_future(sender()), asyncio.ensure_future(receiver())]
        setup_s = time.perf_counter() - t_setup
        ids = [rep.doc.peer_id for rep in reps]
        final: dict[int, int] = {}
        finished = [0.0, 0.0, 0.0]
        before = settle()
        stats.active = True
        c0 = time.process_time()
        t0 = time.perf_counter()

        async def work(r: int) -> None:
            rep, ops = reps[r], streams[r]
            for a, b in W.batches(len(ops)):
                rep.inc_batch(ops, a, b)
                await asyncio.sleep(0)
            final[ids[r]] = rep.doc.oplog_vv.get_last(ids[r])
            finished[r] = time.perf_counter()

        def converged() -> bool:
            if not all(finished):
                return False
            for rep in reps:
                vv = rep.doc.oplog_vv
                if any((vv.get_last(p) or 0) < n for p, n in final.items()):
                    return False
            return True

        return await _peer_result("loro W5", work, converged, reps=reps, expected=expected,
                                  streams=streams, stats=stats, finished=finished, t0=t0,
                                  c0=c0, before=before, setup_s=setup_s)
    finally:
        stats.active = False

        async def teardown() -> None:
            for t in bg:
                t.cancel()
            await asyncio.gather(*bg, return_exceptions=True)
            for conn in conns:
                await conn.close()
            server.close()
            await server.wait_closed()

        await _within(teardown(), TEARDOWN_LIMIT_S, "loro teardown")
