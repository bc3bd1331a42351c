"""What the engine keeps per transport link, and the incoming state catch-ups it holds back.

- :class:`Link`: whose link it is once its Hello arrived, the handshake's progress, and my
  marks of other peers as last told on it (relayed marks, docs/protocol.md);
- :class:`HeldCatchups`: a replica answers one peer's state catch-up at a time. Two peers
  that open one at once (a new region joining a mesh, or one back after its peers trimmed
  their logs) would each send it every key it lacks; the second request waits until the
  first catch-up is in, and then only the keys that still differ travel.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

from crdtsync.sync.host import SyncConfig
from crdtsync.sync.messages import (
    PROTOCOL_VERSION,
    Ack,
    BucketDigests,
    Hello,
    Marks,
    Message,
    Nack,
)
from crdtsync.sync.receiver import PeerReceiver

__all__ = ["Link", "HeldCatchups", "refusal"]


def refusal(config: SyncConfig, receivers: Mapping[str, PeerReceiver],
            msg: Hello) -> str | None:
    """Return why ``msg`` is refused (version, cluster, own id, a reset log), or None."""
    c = config
    if msg.version != PROTOCOL_VERSION:
        return (f"protocol version {msg.version} is not supported: {c.replica!r} speaks "
                f"version {PROTOCOL_VERSION}")
    if msg.cluster != c.cluster:
        return f"replica {msg.replica!r} is in cluster {msg.cluster!r}, not {c.cluster!r}"
    if msg.replica == c.replica:
        return f"replica id {msg.replica!r} is this replica's own id"
    rx = receivers.get(msg.replica)
    if rx is not None and rx.mark > msg.last_seq:
        return (f"replica {msg.replica!r} says its log ends at {msg.last_seq} but "
                f"{c.replica!r} holds it up to {rx.mark}: a replica that lost its data "
                f"must rejoin under a new id")
    return None


@dataclass(slots=True)
class Link:
    """One transport link: whose it is once its Hello arrived, and the handshake's progress."""

    hello_at: float
    peer: str | None = None
    follower: bool = False
    accept_have: int | None = None  # the peer's Accept, kept until its Hello is accepted
    accept_marks: Marks = ()
    established: bool = False
    told: dict[str, int] = field(default_factory=dict)  # my marks of others, as told here

    def tell(self, receivers: Mapping[str, PeerReceiver], *, everything: bool) -> Marks:
        """Return my durable marks of peers other than this link's, to tell it:
        ``everything``, or those above what it was told on this link."""
        told, peer = self.told, self.peer
        out = []
        for q, rx in receivers.items():
            mark = rx.mark
            if q != peer and mark > 0 and (everything or mark > told.get(q, 0)):
                told[q] = mark
                out.append((q, mark))
        out.sort()
        return tuple(out)

    def nacked(self, messages: list[Message], receivers: Mapping[str, PeerReceiver]
               ) -> list[Message]:
        """Return ``messages`` (about to go on this link) with my marks of the origins a
        Nack names as not got told first, in an Ack just before it, if I have not told them
        here yet. The peer doubts those origins above what it holds of them when the Nack
        comes (:meth:`PeerSender.on_nack`): told after the Nack, a mark I held before it
        would read as "I get that origin's log again" (:meth:`PeerSender.__contains__`),
        and so would the same mark in the Accept of a later link. Only a mark that moves
        past it says so."""
        out: list[Message] = []
        peer = self.peer
        for msg in messages:
            if isinstance(msg, Nack) and peer is not None and peer in receivers:
                told, marks = self.told, []
                for origin in msg.needs:
                    rx = receivers.get(origin)
                    if rx is not None and rx.mark > told.get(origin, 0):
                        told[origin] = rx.mark
                        marks.append((origin, rx.mark))
                if marks:
                    out.append(Ack(receivers[peer].mark, tuple(marks)))
            out.append(msg)
        return out


@dataclass(slots=True)
class _Held:
    link: Hashable
    request: BucketDigests
    since: float


class HeldCatchups:
    """Catch-up requests (``buckets``) held back while another peer's catch-up comes in.

    A request is held while some other peer's incoming catch-up is open
    (``PeerReceiver.catchup``) and moved (was answered, or a part came) less than ``limit``
    seconds ago, however long that catch-up takes: a big one is not sent twice. A newer
    request of the same peer (its sender asks again every ``retransmit_after`` while it
    waits) replaces the older one. The engine uses half its ``retransmit_after`` as the
    limit, so a catch-up that stalls (its sender gave up, or its link died) holds the
    others back only briefly. :meth:`release` hands back the oldest request that may go,
    one at a time while others wait, so catch-ups come in one after another.
    """

    __slots__ = ("_held", "_moved", "limit")

    def __init__(self, limit: float) -> None:
        self._held: dict[str, _Held] = {}
        self._moved: dict[str, float] = {}  # peer -> when its incoming catch-up last moved
        self.limit = limit

    def __bool__(self) -> bool:
        return bool(self._held)

    def moved(self, peer: str, now: float) -> None:
        """The peer's incoming catch-up was answered, or one of its parts came."""
        self._moved[peer] = now

    def _busy(self, receivers: Mapping[str, PeerReceiver], now: float,
              but: str | None = None) -> bool:
        """Is an incoming catch-up other than ``but``'s open and moving?"""
        return any(rx.catchup is not None and now - self._moved.get(q, -1e18) < self.limit
                   for q, rx in receivers.items() if q != but)

    def hold(self, peer: str, link: Hashable, request: BucketDigests,
             receivers: Mapping[str, PeerReceiver], now: float) -> bool:
        """Hold ``request`` from ``peer`` if another catch-up is coming in; return whether.

        A request other than the one the peer's open catch-up answers means the peer gave
        that catch-up up (a sender runs one at a time): it no longer holds others back.
        """
        mine = receivers[peer].catchup
        if mine is not None:
            if (mine.cid, mine.upto, mine.link) == (request.cid, request.upto, link):
                return False  # a duplicate: answered again as before
            receivers[peer].catchup = None
        old = self._held.get(peer)
        if not self._busy(receivers, now, but=peer):
            self._held.pop(peer, None)
            return False
        self._held[peer] = _Held(link, request, now if old is None else old.since)
        return True

    def forget(self, peer: str) -> None:
        """The peer's link is gone: its held request will not be answered."""
        self._held.pop(peer, None)

    def release(self, receivers: Mapping[str, PeerReceiver],
                now: float) -> list[tuple[str, Hashable, BucketDigests]]:
        """Return the held requests to answer now, as ``(peer, link, request)``."""
        out = []
        busy = self._busy(receivers, now)
        for peer, held in sorted(self._held.items(), key=lambda item: item[1].since):
            if busy:
                break
            del self._held[peer]
            out.append((peer, held.link, held.request))
            busy = True  # the one released opens its catch-up: the next one waits for it
        return out
