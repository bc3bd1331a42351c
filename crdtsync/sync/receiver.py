"""The receiving side of one peer: what of its log is durable here, and catch-up parts.

``mark`` is durable ("received from the peer up to mark", committed by the host);
``pending`` is the highest mark handed to the host in an :class:`Apply` not yet confirmed
by ``engine.applied``. An interval is joined only if it starts at most one past what is
here or on its way (Almeida et al. Alg. 2); otherwise it is nacked, never applied out of
order. Acks carry ``mark`` only: nothing is acked before it is durable.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from crdtsync.errors import PeerError
from crdtsync.sync.digest import differing_buckets, key_digests, split
from crdtsync.sync.host import Apply, SyncHost
from crdtsync.sync.messages import Ack, BucketDigests, Delta, KeyDigests, Message, Nack, States

__all__ = ["PeerReceiver"]


@dataclass(slots=True)
class _Incoming:
    """A state catch-up being received: its id, target seq, the parts applied so far, and
    the key digests sent for it (on ``link``), answered again to a duplicate request."""

    cid: int
    upto: int
    nparts: int | None = None
    got: set[int] = field(default_factory=set)
    link: Hashable | None = None
    reply: list[Message] = field(default_factory=list)


class PeerReceiver:
    """Apply what one peer sends, in order, and say what to persist and to ack."""

    __slots__ = ("peer", "mark", "pending", "catchup", "link")

    def __init__(self, peer: str, mark: int) -> None:
        self.peer = peer
        self.mark = mark
        self.pending = mark
        self.catchup: _Incoming | None = None
        self.link: Hashable | None = None  # where the data came from: acks go back there

    def on_delta(self, msg: Delta) -> list[Message | Apply]:
        """Join an interval that continues what is here; re-ack a duplicate; nack a gap."""
        expect = max(self.mark, self.pending)
        if msg.end <= expect:
            return [Ack(self.mark)] if msg.end <= self.mark else []
        if msg.start > expect + 1:
            return [Nack(expect)]
        # Overlapping intervals are fine: entries up to ``expect`` are already joined.
        self.pending = msg.end
        return [Apply(self.peer, msg.group, msg.end, bound=msg.end)]

    def on_bucket_digests(self, msg: BucketDigests, host: SyncHost, *, max_bytes: int,
                          link: Hashable | None = None) -> list[Message | Apply]:
        """Open catch-up ``msg.cid``: answer with my key digests of the differing buckets.

        A duplicate of the request (same link, cid and upto) gets the same answer again and
        keeps the parts received so far: digests recomputed from a state that moved since
        could be cut into a different number of parts, which the sender must refuse.
        """
        cu = self.catchup
        if cu is not None and (cu.cid, cu.upto, cu.link) == (msg.cid, msg.upto, link):
            return list(cu.reply)
        self.catchup = _Incoming(msg.cid, msg.upto, link=link)
        nbuckets = len(msg.hashes)
        diff = differing_buckets(host, msg.hashes)
        per_bucket = key_digests(host, diff, nbuckets)

        def _size(b: int) -> int:
            return 8 + sum(len(k) + 24 for k, _ in per_bucket[b])

        runs = split(diff, _size, max_bytes)
        reply: list[Message] = [
            KeyDigests(msg.cid, i, len(runs), tuple(run),
                       tuple(sorted(p for b in run for p in per_bucket[b])))
            for i, run in enumerate(runs)
        ]
        self.catchup.reply = reply
        return list(reply)

    def on_states(self, msg: States) -> list[Message | Apply]:
        """Join one part of catch-up states; the last part brings the mark to ``upto``.

        Full states are valid deltas, so parts join in any order; the mark moves only when
        every part is in, so a lost part is never skipped over.
        """
        cu = self.catchup
        if cu is None or msg.cid != cu.cid:
            return []  # stale: an abandoned catch-up
        if msg.upto != cu.upto or (cu.nparts is not None and msg.parts != cu.nparts):
            raise PeerError(f"peer {self.peer!r} changed catch-up {msg.cid} midway "
                            f"(upto {cu.upto} -> {msg.upto}, parts {cu.nparts} -> {msg.parts})")
        cu.nparts = msg.parts
        if msg.part in cu.got:
            return []
        cu.got.add(msg.part)
        done = len(cu.got) == cu.nparts
        if done:
            self.catchup = None
            self.pending = max(self.pending, cu.upto)
        elif not msg.group:
            return []
        return [Apply(self.peer, msg.group, cu.upto if done else None, bound=msg.bound or None)]

