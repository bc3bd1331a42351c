"""The receiving side of one peer: what of its log is durable here, and catch-up parts.

``mark`` is durable ("received from the peer up to mark", committed by the host);
``pending`` is the highest mark handed to the host in an :class:`Apply` not yet confirmed
by ``engine.applied``. An interval is joined only if it starts at most one past what is
here or on its way (Almeida et al. Alg. 2); otherwise it is nacked, never applied out of
order. Acks carry ``mark`` only: nothing is acked before it is durable.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

from crdtsync.errors import PeerError
from crdtsync.group import Group
from crdtsync.sync.digest import differing_buckets, key_digests, split
from crdtsync.sync.host import Apply, SyncHost
from crdtsync.sync.messages import Ack, BucketDigests, Delta, KeyDigests, Message, Nack, States

__all__ = ["PeerReceiver", "advance"]


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

    __slots__ = ("peer", "mark", "pending", "claimed", "gates", "gated_at", "catchup", "link")

    def __init__(self, peer: str, mark: int) -> None:
        self.peer = peer
        self.mark = mark
        self.pending = mark  # the end of the last interval handed to the host
        self.claimed = mark  # the highest mark handed to the host (<= pending)
        # what the intervals handed over need before the mark may pass them (Delta.needs):
        # (seq, origin, upto) above ``claimed``, in seq order, and since when it waits
        self.gates: list[tuple[int, str, int]] = []
        self.gated_at = 0.0
        self.catchup: _Incoming | None = None
        self.link: Hashable | None = None  # where the data came from: acks go back there

    def on_delta(self, msg: Delta, now: float,
                 others: Mapping[str, PeerReceiver]) -> list[Message | Apply]:
        """Join an interval that continues what is here; re-ack a duplicate; nack a gap.

        An interval's ``needs`` hold its mark back (:meth:`advance`) until ``others`` (the
        receivers of the other peers) have handed the host marks that far; one that names
        an origin not in ``others`` is nacked at once, and joins nothing.
        """
        expect = max(self.mark, self.pending)
        if msg.end <= expect:
            return [Ack(self.mark)] if msg.end <= self.mark else []
        if msg.start > expect + 1:
            return [Nack(expect)]
        if msg.needs:
            unknown = tuple(sorted({o for _, o, _ in msg.needs if o not in others}))
            if unknown:
                return [Nack(expect, unknown)]
            if not self.gates:
                self.gated_at = now
            self.gates += [g for g in msg.needs if g[0] > expect]
        # Overlapping intervals are fine: entries up to ``expect`` are already joined.
        self.pending = msg.end
        mark = self._mark(others)
        return [Apply(self.peer, msg.group, mark, bound=msg.end)]

    def _mark(self, others: Mapping[str, PeerReceiver]) -> int | None:
        """Drop the gates now open; return the new mark to hand over (None: no new one)."""
        gates = self.gates
        while gates and others[gates[0][1]].claimed >= gates[0][2]:
            gates.pop(0)
        mark = gates[0][0] - 1 if gates else self.pending
        if mark <= self.claimed:
            return None
        self.claimed = mark
        return mark

    def advance(self, others: Mapping[str, PeerReceiver], now: float) -> list[Apply]:
        """Hand over the mark that the gates now allow, if it moved (a mark-only Apply)."""
        before = self.gates[0] if self.gates else None
        mark = self._mark(others)
        if self.gates and self.gates[0] is not before:
            self.gated_at = now
        return [] if mark is None else [Apply(self.peer, Group(), mark)]

    def expire(self, now: float, limit: float) -> list[Message]:
        """Nack what is held back if a gate stayed shut ``limit`` seconds: the peer sends
        it again whole (the origins named are not left out for me any more)."""
        if not self.gates or now - self.gated_at < limit:
            return []
        lacking = tuple(sorted({o for _, o, _ in self.gates}))
        self.gates = []
        self.pending = self.claimed  # what comes again must be joined again
        return [Nack(self.claimed, lacking)]

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
        if done:  # the peer's state as of upto is here: what was held back below it too
            self.catchup = None
            self.pending = max(self.pending, cu.upto)
            self.claimed = max(self.claimed, cu.upto)
            self.gates = [g for g in self.gates if g[0] > cu.upto]
        elif not msg.group:
            return []
        return [Apply(self.peer, msg.group, cu.upto if done else None, bound=msg.bound or None)]


def advance(receivers: Mapping[str, PeerReceiver], now: float) -> list[Apply]:
    """Hand over the marks that intervals' needs held back and now allow. Each one may open
    another receiver's gate, so this goes on until none moves (marks only grow: it ends);
    an Apply that opens a gate comes before the ones it opened, so whenever a mark is
    durable, so is every mark it relied on."""
    out: list[Apply] = []
    moved = True
    while moved:
        moved = False
        for rx in receivers.values():
            if rx.gates and (step := rx.advance(receivers, now)):
                out += step
                moved = True
    return out
