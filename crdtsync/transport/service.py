"""SyncService: pumps the sans-I/O sync engine over websockets for one replica.

The engine (:mod:`crdtsync.sync`) decides what to send, apply, ack and trim; this module
only moves bytes and carries out the engine's outputs:

- every websocket (accepted at ``/sync`` or dialled to a peer URL) is one *link*; frames
  are binary, one encoded sync message each;
- ``Apply`` -> ``replica.apply_remote`` (joined in memory, committed by the replica's group
  committer) -> after the commit, ``engine.applied`` (acks and forwarding happen only then);
- every local commit -> ``engine.logged``; ``Trim`` -> ``replica.trim_log``;
- dialled links reconnect with exponential back-off and jitter (:mod:`.backoff`);
- a link's send queue is bounded: a peer that cannot keep up is disconnected (the engine
  resends what it had not acknowledged when it comes back), so a slow peer never makes
  this replica's memory grow without bound; the engine's window bounds deltas in flight;
- with a shared secret, a link is authenticated (:mod:`.auth`) before any of its frames
  reaches the engine; with TLS (:mod:`.tls`) the peer's certificate must name the replica
  it says it is; remote groups pass the delta rule (:mod:`.validate`) before they are
  joined. See docs/security.md.

Pending local writes are committed (and a commit the replica's background committer has in
flight is finished) when the engine reads the state for a catch-up (:class:`ReplicaHost`
settles the replica), so a peer never sees a write that is not durable here. Only then: a
delta, an ack or a tick reads no state, so under sync traffic the background committer
keeps its batches, and its store transactions off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from crdtsync.errors import DecodeError, PeerError
from crdtsync.gcpause import gc_paused
from crdtsync.replica import Committed, Replica
from crdtsync.sync import (
    Apply,
    Close,
    Delta,
    Hello,
    Send,
    States,
    SyncConfig,
    SyncEngine,
    Trim,
    decode_message,
    default_digest,
    encode_message,
)
from crdtsync.sync.digest import DigestIndex
from crdtsync.sync.log import DEFAULT_HOT_BYTES

from .auth import MAX_AUTH_FRAME, AuthError, is_auth_frame, load_secret
from .backoff import backoff
from .gate import Link, LinkGate
from .progress import CatchupProgress
from .validate import DEFAULT_MAX_SEQ, DeltaRules

__all__ = ["SyncService", "ReplicaHost"]

log = logging.getLogger("crdtsync.transport")

MARK_PREFIX = "sync.mark."
PEERS_META = "sync.peers"
TICK_SECONDS = 0.5
AUTH_TIMEOUT = 10.0
GOOD_LINK_SECONDS = 1.0
INFLATE_FACTOR = 4
"""A received frame's message may be at most this many times the frame limit once inflated."""
MAX_PENDING_AUTH = 64
"""Most inbound links authenticating at once; more are closed at once (1013, try later)."""


class ReplicaHost:
    """The engine's read access to the replica's state: durable, or remote-joined.

    The engine reads the state only for a state catch-up (hashes of buckets and keys, then
    the states that differ), which may leave the replica at once. Before each read the host
    *settles* the replica: if local writes wait for a commit (or the background committer
    has one in flight), ``settle`` makes them durable first, so no write that is not
    durable ever leaves (see :class:`~crdtsync.sync.SyncHost`). The default commits at once;
    :class:`SyncService` passes its own, which holds back the engine calls of that commit's
    ``on_commit`` hook until the engine call that read the state has returned. Messages that
    read no state (a delta, an ack) then need no commit at all.
    """

    def __init__(self, replica: Replica, settle: Callable[[], None] | None = None) -> None:
        self.replica = replica
        self._settle = settle or self._commit
        # Catch-up hashes kept between catch-ups (the replica's own: each commit marks the
        # keys it changed, and it outlives this host).
        self._index = replica.digest_index

    def _commit(self) -> None:
        replica = self.replica
        if replica.has_local_writes() or replica.commit_in_flight:
            replica.commit()

    @property
    def digest_index(self) -> DigestIndex:
        """The replica's catch-up hashes, read after settling (the engine refreshes them)."""
        self._settle()
        return self._index

    def keys(self) -> list[str]:
        """Every key holding a value."""
        self._settle()
        return self.replica.keys()

    def digest(self, key: str) -> bytes:
        """Digest of the key's state (blake2b of its canonical encoding)."""
        self._settle()
        return default_digest(self._held(key))

    def state(self, key: str) -> Any:
        """The key's state (the engine copies it)."""
        self._settle()
        return self._held(key)

    def _held(self, key: str) -> Any:
        """The replica's live value of ``key``; KeyError if it holds none (as a dict)."""
        x = self.replica._live(key)
        if x is None:
            raise KeyError(key)
        return x

    def served_upto(self) -> int | None:
        """The states served hold nothing beyond the log up to the last commit, unless
        remote data is joined but not yet committed (it is logged at a later seq)."""
        replica = self.replica
        return None if replica._remote or replica.commit_in_flight else replica.log_seq


class SyncService:
    """Connect one replica to its peers (see the module docstring).

    ``peers`` are ws:// or wss:// URLs of peer ``/sync`` endpoints to dial; peers that dial
    in are accepted through :meth:`accept` (the server routes ``/sync`` there). Identity
    comes from the handshake, never from the address. ``window`` is the number of unacked
    Delta messages in flight per peer (:class:`~crdtsync.sync.SyncConfig`): 1 joins what
    is logged during a round trip into one message; more sends sooner on slow links.
    ``hot_log_bytes``: the newest delta-log entries, up to this many encoded bytes, are kept
    decoded for the peers (older ones are decoded when a peer that fell behind collects them).
    """

    def __init__(self, replica: Replica, *, peers: list[str] | tuple[str, ...] = (),
                 cluster: str = "default", secret_file: str | None = None,
                 metrics: Any = None, max_frame_bytes: int = 4 << 20,
                 retransmit_after: float = 2.0, rng: random.Random | None = None,
                 tls: ssl.SSLContext | None = None, members: Iterable[str] | None = None,
                 max_dot_seq: int = DEFAULT_MAX_SEQ, auth_timeout: float = AUTH_TIMEOUT,
                 window: int = 1, hot_log_bytes: int = DEFAULT_HOT_BYTES) -> None:
        self.replica = replica
        self.urls = list(peers)
        self.metrics = metrics
        self.max_frame_bytes = max_frame_bytes
        # A compressed frame may inflate to at most this much JSON (docs/security.md).
        self.max_message_bytes = INFLATE_FACTOR * max_frame_bytes
        self.cluster = cluster
        self._rng = rng or random.Random()
        self._tls = tls  # context for dialling wss:// peers; also turns on the name binding
        self.rules = DeltaRules.of(members=members, own_name=replica.name, max_seq=max_dot_seq)
        self.gate = LinkGate(replica=replica.replica_id, cluster=cluster,
                             secret=load_secret(secret_file) if secret_file else None,
                             tls=tls is not None, members=self.rules.members,
                             timeout=auth_timeout, max_frame_bytes=max_frame_bytes,
                             metrics=metrics)
        replica.hold_log_for_sync()  # log entries stay until the engine says peers have them
        meta = replica.store.meta()
        known = frozenset(meta.get(PEERS_META, [])) - {replica.replica_id}
        marks = {k[len(MARK_PREFIX):]: int(v) for k, v in meta.items() if k.startswith(MARK_PREFIX)}
        self._known = set(known)
        config = SyncConfig(replica=replica.replica_id, cluster=cluster,
                            follower=replica.follower, peers=known,
                            max_message_bytes=max(4096, max_frame_bytes // 2),
                            retransmit_after=retransmit_after, window=window,
                            hot_log_bytes=hot_log_bytes)
        records = [] if replica.follower else self._load_log()
        # commits made while the engine reads the state: their entries wait here for the
        # engine call to return (see _settle)
        self._held: list[Committed] | None = None
        self.engine = SyncEngine(ReplicaHost(replica, self._settle), config, log=records,
                                 marks=marks, last_seq=replica.log_seq)
        self._links: dict[Hashable, Link] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._seq_times: dict[int, float] = {}
        self._stopping = False
        self.bytes_sent = 0
        self.bytes_received = 0
        self.rejected_groups = 0
        self._corrupt_reported = 0
        self.progress = CatchupProgress()  # logs how far state catch-ups got
        replica.on_commit.append(self._on_commit)

    def _load_log(self) -> list[tuple[int, str | None, bytes, None, int | None]]:
        # kept encoded: the engine decodes an entry only if a peer collects it; with each
        # entry's bound as logged (Replica.apply_remote), so it is left out as before
        return [(e.seq, e.origin, e.blob, None, e.upto) for e in self.replica.store.log()]

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start dialling the configured peers and the periodic tick."""
        self.replica.start()
        for url in self.urls:
            self._spawn(self._dial_forever(url))
        self._spawn(self._tick_forever())

    async def stop(self) -> None:
        """Flush pending writes, close every link, stop dialling."""
        self._stopping = True
        try:
            self.replica.commit()
        except Exception:  # noqa: BLE001 - the replica closes later and reports it
            log.exception("final commit failed")
        for link in list(self._links.values()):
            link.close_after_sends()
        await asyncio.sleep(0)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self._on_commit in self.replica.on_commit:
            self.replica.on_commit.remove(self._on_commit)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- links ------------------------------------------------------------------------------

    @property
    def handshake_frame_limit(self) -> int:
        """Largest frame a link may carry before it is authenticated (the server sets it)."""
        return MAX_AUTH_FRAME if self.gate.secret is not None else self.max_frame_bytes

    async def accept(self, conn: Any) -> None:
        """Serve one inbound peer connection until it closes."""
        if self.gate.authenticating >= MAX_PENDING_AUTH:
            log.warning("refusing a link from %s: %d links are authenticating already",
                        conn.remote_address, self.gate.authenticating)
            await conn.close(1013, "too many links authenticating; try again later")
            return
        await self._serve_link(conn, f"in:{conn.remote_address}", "accept")

    async def _dial_forever(self, url: str) -> None:
        delays = backoff(self._rng)
        tls: dict[str, Any] = {}
        if self._tls is not None and url.startswith("wss:"):
            tls["ssl"] = self._tls
        while not self._stopping:
            await asyncio.sleep(next(delays))
            try:
                async with connect(url, compression=None, max_size=self.max_frame_bytes,
                                   ping_interval=20, ping_timeout=20, open_timeout=10,
                                   **tls) as conn:
                    if await self._serve_link(conn, f"out:{url}", "dial"):
                        delays = backoff(self._rng)  # back off again only after a good link
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ConnectionClosed) as exc:
                log.debug("peer %s unreachable: %s", url, exc)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - drop the link, keep the replica
                log.exception("link to %s failed", url)

    async def _serve_link(self, conn: Any, label: str, role: str) -> bool:
        """Authenticate, then pump one link; return True if it carried sync for a while."""
        link = Link(conn, label)
        try:
            await self.gate.authenticate(link, role)
        except AuthError as exc:
            self.gate.refuse(link, exc)
            await conn.close(1008, "authentication failed")
            return False
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == 1008:
                self.gate.refuse(link, AuthError(
                    f"the peer closed the link during authentication ({exc.rcvd.reason}): "
                    f"it refused this replica's proof, or it has no shared secret"))
            return False
        key: Hashable = id(link)
        self._links[key] = link
        writer = self._spawn(self._write_loop(key, link))
        code, reason = 1000, ""
        opened = time.monotonic()
        try:
            self._call(self.engine.connect, key, time.monotonic())
            async for frame in conn:
                if not isinstance(frame, bytes):
                    raise PeerError(f"{label}: text frame on a sync link")
                self._received(link, len(frame))
                self._deliver(key, link, frame)
                link.delivered = True
        except AuthError as exc:
            self.gate.refuse(link, exc)
            code, reason = 1008, "authentication failed"
        except (PeerError, DecodeError) as exc:
            log.warning("dropping link %s (%s): %s", label, link.peer, exc)
            if self.metrics is not None:
                self.metrics.rejected("peer_protocol")
            code, reason = 1002, "protocol error"
        except ConnectionClosed:
            pass
        finally:
            self.engine.disconnect(key)
            self._links.pop(key, None)
            link.close_after_sends()
            writer.cancel()
            self._peer_gauge(link.peer, False)
            if link.peer:
                self.progress.forget(link.peer)
            await conn.close(code, reason)
        # A link refused at once (bad hello, protocol error) must not reset the back-off.
        return link.delivered and time.monotonic() - opened >= GOOD_LINK_SECONDS

    def _deliver(self, key: Hashable, link: Link, frame: bytes) -> None:
        if link.closing:
            return  # the engine closed this link; what still arrives on it is moot
        # Decoding a Delta builds thousands of short-lived containers (the parsed JSON, the
        # decoded values, the joined interval an ack releases); they die by reference
        # counting when the frame is handled, so the collector need not see them.
        with gc_paused():
            self._handle(key, link, frame)

    def _handle(self, key: Hashable, link: Link, frame: bytes) -> None:
        try:
            message = decode_message(frame, max_bytes=self.max_message_bytes)
        except DecodeError as exc:
            if is_auth_frame(frame):
                raise AuthError("the peer requires authentication with a shared secret, and "
                                "this replica has none (--secret-file)") from exc
            raise
        if isinstance(message, Hello):
            self.gate.check_identity(link, message.replica)
        elif isinstance(message, (Delta, States)) and link.peer:
            fresh = isinstance(message, States) and self.progress.received(
                link.peer, message, len(frame))
            if self.metrics is not None:
                self.metrics.deltas_received.labels(link.peer).inc()
                if fresh:  # the first part of a catch-up
                    self.metrics.catchups.labels(link.peer).inc()
        self._call(self.engine.receive, key, message, time.monotonic())
        if isinstance(message, Hello) and not link.closing:  # the engine accepted it
            link.peer = message.replica
            self._peer_gauge(link.peer, True)
            self._remember_peer(message.replica)

    async def _write_loop(self, key: Hashable, link: Link) -> None:
        while True:
            data = await link.queue.get()
            if data is None:
                await link.conn.close()
                return
            try:
                await link.conn.send(data)
            except ConnectionClosed:
                return

    def _received(self, link: Link, n: int) -> None:
        self.bytes_received += n
        if self.metrics is not None and link.peer:
            self.metrics.bytes_received.labels(link.peer).inc(n)

    def _peer_gauge(self, peer: str | None, up: bool) -> None:
        if self.metrics is not None and peer:
            self.metrics.peer_connected.labels(peer).set(1 if up else 0)

    def _remember_peer(self, peer: str) -> None:
        if peer not in self._known and peer != self.replica.replica_id:
            self._known.add(peer)
            self.replica.set_meta(PEERS_META, sorted(self._known))

    # -- engine outputs ---------------------------------------------------------------------

    def _call(self, call: Callable[..., list[Any]], *args: Any) -> None:
        """Call the engine, carry out its outputs, then hand it the commits that
        :meth:`_settle` held during the call (also if the call raised)."""
        try:
            outputs = call(*args)
        except BaseException:
            self._release_held()
            raise
        self._run(outputs)
        self._release_held()

    def _release_held(self) -> None:
        while self._held is not None:
            held, self._held = self._held, None
            if held:
                self._on_commit(held)

    def _run(self, outputs: list[Any]) -> None:
        for out in outputs:
            if isinstance(out, Send):
                self._send(out)
            elif isinstance(out, Apply):
                reason = self.rules.check(out.group)
                if reason is not None:
                    self._reject_group(out, reason)
                self.replica.apply_remote({} if reason else out.group, out.peer, token=out,
                                          bound=out.bound)
                if out.mark is not None:
                    self.replica.set_meta(MARK_PREFIX + out.peer, out.mark)
            elif isinstance(out, Trim):
                self.replica.trim_log(out.upto)
            elif isinstance(out, Close):
                link = self._links.get(out.link)
                log.info("closing link %s: %s", link.label if link else out.link, out.reason)
                self.engine.disconnect(out.link)
                if link is not None:
                    link.close_after_sends()

    def _reject_group(self, out: Apply, reason: str) -> None:
        """The delta rule refused a group: join none of it, count it, still ack it."""
        self.rejected_groups += 1
        log.warning("rejected a group of %d keys from %s: %s", len(out.group), out.peer, reason)
        if self.metrics is not None:
            self.metrics.rejected("delta_rule")

    def _send(self, out: Send) -> None:
        link = self._links.get(out.link)
        if link is None or link.closing:
            return
        data = encode_message(out.message)
        if not link.send(data):
            log.warning("peer %s is not keeping up; dropping the link", link.peer or link.label)
            self.engine.disconnect(out.link)
            link.close_after_sends()
            return
        self.bytes_sent += len(data)
        if isinstance(out.message, States) and link.peer:
            self.progress.sent(link.peer, out.message, len(data))
        if self.metrics is not None and link.peer:
            self.metrics.bytes_sent.labels(link.peer).inc(len(data))
            if isinstance(out.message, (Delta, States)):
                self.metrics.deltas_sent.labels(link.peer).inc()

    def _settle(self) -> None:
        """Make the local writes durable before the engine reads the state (ReplicaHost).

        Runs inside an engine call, so the commit's ``on_commit`` entries are held until
        that call returns and its outputs are carried out (:meth:`_call`): the engine is
        never re-entered. Meanwhile its log lacks them, so a catch-up it opens says "up to"
        an earlier seq than the state it hashes holds; the peer then receives those writes
        twice (in the states, then in a delta), which joins to the same state.
        """
        replica = self.replica
        if replica.has_local_writes() or replica.commit_in_flight:
            if self._held is None:
                self._held = []
            replica.commit()

    def _on_commit(self, entries: list[Committed]) -> None:
        if self._held is not None:  # committed by _settle, inside an engine call
            self._held += entries
            return
        self._call(self._tell_engine, entries)

    def _tell_engine(self, entries: list[Committed]) -> list[Any]:
        """Hand the engine a commit's entries (``logged``, ``applied``); return its outputs."""
        now = time.monotonic()
        outputs: list[Any] = []
        for entry in entries:
            if entry.seq:
                self._seq_times[entry.seq] = now
            if isinstance(entry.token, Apply):
                outputs += self.engine.applied(entry.token, entry.seq or None, entry.group, now,
                                               blob=entry.blob)
            elif entry.origin is None and not self.replica.follower:
                outputs += self.engine.logged(entry.seq, entry.group, now, blob=entry.blob)
        return outputs

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self._call(self.engine.tick, time.monotonic())
            self.update_peer_metrics()
            self._report_corrupt()

    def _report_corrupt(self) -> None:
        """Log each delta-log entry the engine dropped because it did not decode."""
        corrupt = self.engine.log_stats()["corrupt"]
        for why in corrupt[self._corrupt_reported:]:
            log.error("%s; the peers that needed it catch up from state", why)
        self._corrupt_reported = len(corrupt)

    # -- status -----------------------------------------------------------------------------

    def update_peer_metrics(self) -> None:
        """Refresh the per-peer gauges (lag, origins relayed) from :meth:`peer_status`; run
        on every tick, and by the server before it answers a scrape."""
        status = self.peer_status()
        floor = min((p["acked"] for p in status.values()), default=self.engine.last_seq)
        for seq in [s for s in self._seq_times if s <= floor]:
            del self._seq_times[seq]
        if self.metrics is not None:
            for peer, info in status.items():
                self.metrics.peer_lag_batches.labels(peer).set(info["lag_batches"])
                self.metrics.peer_lag_seconds.labels(peer).set(info["lag_seconds"])
                self.metrics.peer_relayed_origins.labels(peer).set(len(info["relayed"]))

    def peer_status(self) -> dict[str, dict[str, Any]]:
        """Per peer id: connected, lag in batches and seconds, acked and received marks, the
        origins relayed to it whole."""
        now = time.monotonic()
        out: dict[str, dict[str, Any]] = {}
        for peer, st in self.engine.status().items():
            oldest = self._seq_times.get(st.acked + 1)
            out[peer] = {"connected": st.connected, "lag_batches": st.lag,
                         "lag_seconds": round(now - oldest, 3) if st.lag and oldest else 0.0,
                         "acked": st.acked, "received": st.received,
                         "catching_up": st.catching_up, "follower": st.follower,
                         "relayed": list(st.relayed)}
        return out

    async def wait_acked(self, seq: int, mode: str, timeout: float) -> bool:
        """Wait until a majority (``mode="majority"``) or all replicas hold log entry ``seq``."""
        total = 1 + max(len(self.urls), len(self._known))
        need = total if mode == "all" else total // 2 + 1
        deadline = time.monotonic() + timeout
        while True:
            have = 1 + sum(1 for st in self.engine.status().values() if st.acked >= seq)
            if have >= need:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(left, 0.01))
