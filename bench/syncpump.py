"""Replicas synced in one process with no sockets: the SyncService's duties, pumped by hand.

:class:`Node` is one :class:`~crdtsync.replica.Replica` with a
:class:`~crdtsync.sync.SyncEngine`, and does for its engine exactly what
``crdtsync/transport/service.py`` (``SyncService``) does, minus the sockets, the event loop
and the background committer:

- every message goes out as ``encode_message(msg)`` bytes and comes in through
  ``decode_message`` (so every byte a websocket would carry is counted, by message type);
- ``Apply`` -> the delta rule (``DeltaRules.check``), ``replica.apply_remote(group, peer,
  token=apply)``, the peer's mark staged with ``set_meta("sync.mark.<peer>")``; then, once
  the outputs of that step are carried out, ``replica.commit()`` (the service's group
  committer would do it ``commit_delay`` later, possibly joining several Applies);
- the ``on_commit`` hook calls ``engine.applied`` for Apply tokens and ``engine.logged``
  for local entries (with the logged size), as ``SyncService._on_commit``;
- pending local writes are committed when the engine reads the state for a catch-up (the
  host settles the replica, ``SyncService._settle``), and that commit's ``on_commit``
  entries reach the engine once its call has returned; ``Trim`` -> ``replica.trim_log``;
  ``Close`` -> disconnect; a Hello records the peer in ``sync.peers`` meta;
- a received frame is decoded and handled with the cyclic GC paused
  (:func:`crdtsync.gcpause.gc_paused`, as ``SyncService._deliver``);
- :meth:`Node.tick` is the service's periodic tick (the runners call it every
  ``TICK_SECONDS`` of wall time, like ``SyncService._tick_forever``).

:class:`Net` holds the in-memory links and a FIFO of frames in flight; :meth:`Net.pump`
delivers them until none is left (bounded by ``max_messages``).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Hashable, Iterable
from typing import Any

from crdtsync.gcpause import gc_paused
from crdtsync.replica import Committed, Replica
from crdtsync.sync import (
    Apply,
    Close,
    Hello,
    Send,
    SyncConfig,
    SyncEngine,
    Trim,
    decode_message,
    encode_message,
)
from crdtsync.sync.engine import LogRecord
from crdtsync.transport.service import (
    MARK_PREFIX,
    PEERS_META,
    TICK_SECONDS,
    ReplicaHost,
)
from crdtsync.transport.validate import DeltaRules

__all__ = ["Node", "Net", "TICK_SECONDS", "MAX_FRAME_BYTES"]

MAX_FRAME_BYTES = 4 << 20
"""SyncService's default ``max_frame_bytes``; its engine splits messages at half of it."""

_TAG = {"Hello": "hello", "Accept": "accept", "Refuse": "refuse", "Delta": "delta",
        "Ack": "ack", "Nack": "nack", "BucketDigests": "buckets", "KeyDigests": "keys",
        "States": "states"}


class Node:
    """One replica and its sync engine, driven the way SyncService drives them."""

    def __init__(self, replica: Replica, net: Net, *, cluster: str = "bench",
                 log: Iterable[LogRecord] | None = None,
                 marks: dict[str, int] | None = None, last_seq: int | None = None,
                 peers: Iterable[str] = (), max_frame_bytes: int = MAX_FRAME_BYTES,
                 retransmit_after: float = 2.0) -> None:
        self.replica = replica
        self.net = net
        self.rules = DeltaRules.of(members=None, own_name=replica.name)
        meta = replica.store.meta()
        known = set(peers) | set(meta.get(PEERS_META, []))
        known.discard(replica.replica_id)
        self._known = known
        if marks is None:
            marks = {k[len(MARK_PREFIX):]: int(v) for k, v in meta.items()
                     if k.startswith(MARK_PREFIX)}
        config = SyncConfig(replica=replica.replica_id, cluster=cluster, follower=False,
                            peers=frozenset(known),
                            max_message_bytes=max(4096, max_frame_bytes // 2),
                            retransmit_after=retransmit_after)
        if log is None:  # as SyncService._load_log: kept encoded
            log = [(e.seq, e.origin, e.blob, None, e.upto) for e in replica.store.log()]
        self._held: list[Committed] | None = None  # as SyncService._held
        self.engine = SyncEngine(ReplicaHost(replica, self._settle), config, log=log,
                                 marks=marks,
                                 last_seq=replica.log_seq if last_seq is None else last_seq)
        self.links: dict[Hashable, tuple[Node, Hashable]] = {}
        self.sent_bytes: Counter[str] = Counter()  # message tag -> payload bytes sent
        self.sent_msgs: Counter[str] = Counter()
        self.received_bytes = 0
        self.encode_seconds = 0.0
        self._pending_commit = False
        replica.on_commit.append(self._on_commit)

    @property
    def rid(self) -> str:
        return self.replica.replica_id

    def detach(self) -> None:
        """Stop listening to the replica's commits (this engine is discarded)."""
        if self._on_commit in self.replica.on_commit:
            self.replica.on_commit.remove(self._on_commit)

    # -- as SyncService ---------------------------------------------------------------------

    def deliver(self, link: Hashable, frame: bytes) -> None:
        """A frame arrived on ``link`` (SyncService._deliver)."""
        if link not in self.links:
            return  # the link was closed meanwhile
        self.received_bytes += len(frame)
        with gc_paused():  # as SyncService._deliver: a frame's objects die young
            message = decode_message(frame)
            if isinstance(message, Hello):
                peer = message.replica
                if peer not in self._known and peer != self.rid:
                    self._known.add(peer)
                    self.replica.set_meta(PEERS_META, sorted(self._known))
            self.run(self.engine.receive(link, message, time.monotonic()))

    def _settle(self) -> None:
        """SyncService._settle: commit pending local writes before a catch-up reads the
        state; the commit's entries are held until the engine call has returned."""
        if self.replica.has_local_writes():
            if self._held is None:
                self._held = []
            self.replica.commit()

    def run(self, outputs: list[Any]) -> None:
        """Carry out engine outputs in order (SyncService._run), then commit any Apply, then
        hand the engine the commits held during the call (SyncService._call)."""
        self._run(outputs)
        while self._held is not None:
            held, self._held = self._held, None
            if held:
                self._on_commit(held)

    def _run(self, outputs: list[Any]) -> None:
        applied = False
        for out in outputs:
            if isinstance(out, Send):
                self._send(out)
            elif isinstance(out, Apply):
                reason = self.rules.check(out.group)
                if reason is not None:
                    raise RuntimeError(f"bench: delta rule rejected a group: {reason}")
                self.replica.apply_remote(out.group, out.peer, token=out, bound=out.bound)
                if out.mark is not None:
                    self.replica.set_meta(MARK_PREFIX + out.peer, out.mark)
                applied = True
            elif isinstance(out, Trim):
                self.replica.trim_log(out.upto)
            elif isinstance(out, Close):
                self.net.drop(self, out.link)
        if applied:
            self.replica.commit()  # the group committer's job; on_commit -> engine.applied

    def _send(self, out: Send) -> None:
        dest = self.links.get(out.link)
        if dest is None:
            return
        t0 = time.perf_counter()
        data = encode_message(out.message)
        self.encode_seconds += time.perf_counter() - t0
        tag = _TAG[type(out.message).__name__]
        self.sent_bytes[tag] += len(data)
        self.sent_msgs[tag] += 1
        self.net.post(dest[0], dest[1], data)

    def _on_commit(self, entries: list[Committed]) -> None:
        if self._held is not None:
            self._held += entries
            return
        now = time.monotonic()
        outputs: list[Any] = []
        for entry in entries:
            if isinstance(entry.token, Apply):
                outputs += self.engine.applied(entry.token, entry.seq or None, entry.group, now,
                                               blob=entry.blob)
            elif entry.origin is None:
                outputs += self.engine.logged(entry.seq, entry.group, now, blob=entry.blob)
        self.run(outputs)

    def tick(self) -> None:
        """SyncService._tick_forever's body."""
        self.run(self.engine.tick(time.monotonic()))

    @property
    def bytes_sent(self) -> int:
        return sum(self.sent_bytes.values())


class Net:
    """In-memory links between nodes and the frames in flight (FIFO over all links)."""

    def __init__(self) -> None:
        self.queue: deque[tuple[Node, Hashable, bytes]] = deque()
        self._n = 0

    def post(self, node: Node, link: Hashable, data: bytes) -> None:
        self.queue.append((node, link, data))

    def connect(self, a: Node, b: Node) -> tuple[Hashable, Hashable]:
        """Open a link between ``a`` and ``b``; both engines start the handshake."""
        self._n += 1
        la, lb = ("link", self._n, a.rid), ("link", self._n, b.rid)
        a.links[la] = (b, lb)
        b.links[lb] = (a, la)
        now = time.monotonic()
        a.run(a.engine.connect(la, now))
        b.run(b.engine.connect(lb, now))
        return la, lb

    def drop(self, node: Node, link: Hashable) -> None:
        """Close ``link`` of ``node`` and its other end; frames still in flight are lost."""
        other = node.links.pop(link, None)
        node.engine.disconnect(link)
        if other is not None:
            peer, plink = other
            peer.links.pop(plink, None)
            peer.engine.disconnect(plink)

    def disconnect(self, a: Node, b: Node) -> None:
        """Close every link between ``a`` and ``b``."""
        for link, (peer, _) in list(a.links.items()):
            if peer is b:
                self.drop(a, link)

    def pump(self, max_messages: int = 10_000_000) -> int:
        """Deliver frames until none is in flight; return how many were delivered."""
        n = 0
        queue = self.queue
        while queue:
            if n >= max_messages:
                raise RuntimeError(f"bench: not quiescent after {max_messages} messages")
            node, link, data = queue.popleft()
            node.deliver(link, data)
            n += 1
        return n
