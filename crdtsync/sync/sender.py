"""The sending side of one peer: cursors over my log, retransmission and state catch-up.

Almeida et al. Alg. 2, per neighbour ``j``: ``acked`` is the highest seq ``j`` has acked
(durable there); I send the join of the entries above it as intervals ``[start, end]``.
Several intervals may be in flight (``window``); ``sent`` is the end of the last one. With
no progress for ``retransmit_after`` seconds, ``sent`` falls back to ``acked`` and the
unacked intervals go again. If the log no longer holds ``acked + 1``, ``j`` catches up from
state: bucket digests, then the key digests of differing buckets, then the differing states.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crdtsync.codec import encode
from crdtsync.errors import PeerError
from crdtsync.group import Group
from crdtsync.sync.digest import bucket_count, bucket_hashes, keys_to_send, split
from crdtsync.sync.host import SyncConfig, SyncHost
from crdtsync.sync.log import CorruptEntry, DeltaLog
from crdtsync.sync.messages import BucketDigests, Delta, KeyDigests, Marks, Message, States
from crdtsync.types.base import Crdt

__all__ = ["PeerSender"]


@dataclass(slots=True)
class _Catchup:
    """An outgoing state catch-up: its id, the log seq it brings the peer to, replies so far."""

    cid: int
    upto: int
    nbuckets: int
    nparts: int | None = None
    parts: dict[int, KeyDigests] = field(default_factory=dict)
    answered: bool = False


class PeerSender:
    """Decide what of my log goes to one peer, and when."""

    __slots__ = ("peer", "follower", "connected", "acked", "sent", "inflight", "progress_at",
                 "catchup", "cid", "nack", "holds", "doubted", "full_upto", "_log", "_host",
                 "_config")

    def __init__(self, peer: str, log: DeltaLog, host: SyncHost, config: SyncConfig, *,
                 acked: int) -> None:
        self.peer = peer
        self.follower = False
        self.connected = False
        self.acked = acked
        self.sent = acked
        self.inflight: list[int] = []  # ends of the intervals sent and not yet acked
        self.progress_at = 0.0
        self.catchup: _Catchup | None = None
        self.cid = 0
        self.nack: tuple[int, float] | None = None
        # what the peer told me it holds of other origins' logs (its durable marks): their
        # entries up to there are left out of what I send it. Marks only grow, so this
        # stays true across links and restarts of the peer.
        self.holds: dict[str, int] = {}
        # Entries of other origins are left out on the expectation that the peer gets them
        # from their origin (the Delta's ``needs``), unless it said it does not: origin ->
        # what it held of that origin then; expected again once it says it holds more.
        self.doubted: dict[str, int] = {}
        self.full_upto = 0  # what is sent again after a stall goes whole, up to here
        self._log = log
        self._host = host
        self._config = config

    def learn(self, marks: Marks) -> None:
        """The peer holds the logs of other origins durably up to ``marks``."""
        holds = self.holds
        for origin, seq in marks:
            if seq > holds.get(origin, 0):
                holds[origin] = seq

    def __contains__(self, origin: object) -> bool:
        """Is the peer expected to get ``origin``'s log from it (see :attr:`doubted`)?"""
        doubt = self.doubted.get(origin)  # type: ignore[call-overload]
        return doubt is None or self.holds.get(origin, 0) > doubt  # type: ignore[call-overload]

    def relayed(self) -> tuple[str, ...]:
        """The origins the peer is not expected to get from them (their entries go whole)."""
        return tuple(sorted(origin for origin in self.doubted if origin not in self))

    def attach(self, have: int, now: float) -> list[Message]:
        """Start sending on a new link; the peer holds my log up to ``have`` (exactly)."""
        self.connected = True
        self.acked = self.sent = have
        self.inflight = []
        self.catchup = None
        self.progress_at = now
        return self.flush(now, force=False)

    def detach(self) -> None:
        """The link is gone: forget what was in flight."""
        self.connected = False
        self.sent = self.acked
        self.inflight = []
        self.catchup = None

    def trim_floor(self) -> int | None:
        """Return the seq up to which this peer allows trimming, None if it does not care.

        A peer already behind the log catches up from state whatever is kept, so it holds
        nothing back; one in catch-up needs the entries after the catch-up's ``upto``.
        """
        if self.catchup is not None:
            return self.catchup.upto
        return self.acked if self.acked >= self._log.trimmed_upto else None

    def flush(self, now: float, *, force: bool) -> list[Message]:
        """Send the entries above ``sent``, window permitting.

        A range made only of entries the peer has (nothing to send) leaves at once as
        an empty interval outside the window, so the peer's cursor, and so trimming, moves
        on without holding back the next interval; ``force`` (from :meth:`tick`) sends it
        inside the window, retransmitted like any interval. Entries of other origins that
        the peer is expected to get from them (see :meth:`__contains__`) are left out too,
        with ``needs``; such an interval goes inside the window even if it is empty.
        """
        log = self._log
        if not self.connected or self.catchup is not None or self.sent >= log.last_seq:
            return []
        if self.sent < log.trimmed_upto:
            return self._start_catchup(now)
        out: list[Message] = []
        while self.sent < log.last_seq and len(self.inflight) < self._config.window:
            needs: list[tuple[int, str, int]] = []
            try:
                end, group = log.collect(self.sent + 1, self.peer,
                                         self._config.max_message_bytes, holds=self.holds,
                                         expect=self, after=self.full_upto, needs=needs)
            except CorruptEntry as exc:  # cannot be served: the peers catch up from state
                log.drop_corrupt(exc)
                return self._start_catchup(now)  # (what is in ``out`` is not sent)
            if not group and not force and not needs:
                # Only entries the peer has (its own, BP, or covered by its marks): say so
                # at once, outside the window, so its ack lets the log trim them. A lost
                # one shows as a gap at the next Delta, or is sent again by tick() once
                # acks stall.
                if not self.inflight and self.acked == self.sent:
                    self.progress_at = now
                out.append(Delta(self.sent + 1, end, group))
                self.sent = end
                continue
            if not self.inflight:
                self.progress_at = now
            out.append(Delta(self.sent + 1, end, group, tuple(needs)))
            self.sent = end
            self.inflight.append(end)
        return out

    def on_ack(self, upto: int, now: float) -> list[Message]:
        """The peer holds my log durably up to ``upto``."""
        if upto > self._log.last_seq:
            raise PeerError(f"peer {self.peer!r} acked seq {upto} beyond my last seq "
                            f"{self._log.last_seq}")
        if upto <= self.acked:
            return []
        self.acked = upto
        self.progress_at = now
        self.inflight = [end for end in self.inflight if end > upto]
        self.sent = max(self.sent, upto)
        if self.catchup is not None and upto >= self.catchup.upto:
            self.catchup = None
            self.inflight = []
            self.sent = upto
        return self.flush(now, force=False)

    def on_nack(self, have: int, now: float, needs: tuple[str, ...]) -> list[Message]:
        """The peer found a gap: it holds up to ``have``; go back there (Almeida et al. Alg. 2).

        ``needs``: it dropped an interval that left out entries of these origins, as it
        does not get their logs: they go whole to it from now on, until it says it holds
        more of them.
        """
        if have > self._log.last_seq:
            raise PeerError(f"peer {self.peer!r} nacked at seq {have} beyond my last seq "
                            f"{self._log.last_seq}")
        for origin in needs:
            self.doubted[origin] = self.holds.get(origin, 0)
        if self.catchup is not None or not self.acked <= have < self.sent:
            return []  # stale: from before a catch-up, a retransmission or an ack
        if not needs and self.nack is not None and self.nack[0] == have and (
                now - self.nack[1] < self._config.retransmit_after):
            return []  # reordering makes one gap nacked by several intervals: resend once
        self.nack = (have, now)
        self.sent = have
        self.inflight = [end for end in self.inflight if end <= have]
        self.progress_at = now
        return self.flush(now, force=True)

    def tick(self, now: float) -> list[Message]:
        """Retransmit after ``retransmit_after`` seconds without progress; send skipped tails."""
        if not self.connected:
            return []
        stalled = now - self.progress_at >= self._config.retransmit_after
        if self.catchup is not None:
            return self._start_catchup(now) if stalled else []
        if (self.inflight or self.acked < self.sent) and stalled:
            self.full_upto = max(self.full_upto, self.sent)  # whole, in case needs held it
            self.sent = self.acked  # unacked intervals (in the window or not) go again
            self.inflight = []
        return self.flush(now, force=True)

    # -- state catch-up -------------------------------------------------------------------

    def _start_catchup(self, now: float) -> list[Message]:
        """Open catch-up: hash my keys in buckets, as of my last seq."""
        host = self._host
        self.cid += 1
        nbuckets = bucket_count(sum(1 for _ in host.keys()))
        self.catchup = _Catchup(self.cid, self._log.last_seq, nbuckets)
        self.sent = self.acked
        self.inflight = []
        self.progress_at = now
        return [BucketDigests(self.cid, self.catchup.upto, bucket_hashes(host, nbuckets))]

    def on_key_digests(self, msg: KeyDigests, now: float) -> list[Message]:
        """Collect the peer's key digests; once all parts are in, send the differing states."""
        cu = self.catchup
        if cu is None or msg.cid != cu.cid or cu.answered:
            return []
        if cu.nparts is not None and msg.parts != cu.nparts:
            raise PeerError(f"peer {self.peer!r} sent key digests of {cu.nparts} parts, "
                            f"then of {msg.parts}")
        if any(b >= cu.nbuckets for b in msg.buckets):
            raise PeerError(f"peer {self.peer!r} sent a bucket id >= {cu.nbuckets}")
        cu.nparts = msg.parts
        cu.parts[msg.part] = msg
        self.progress_at = now
        if len(cu.parts) < cu.nparts:
            return []
        cu.answered = True
        buckets = [b for part in cu.parts.values() for b in part.buckets]
        theirs = {k: h for part in cu.parts.values() for k, h in part.digests}
        keys = keys_to_send(self._host, buckets, cu.nbuckets, theirs)
        states = [(k, self._host.state(k).copy()) for k in keys]
        served = getattr(self._host, "served_upto", None)  # optional (see SyncHost)
        bound = (served() if served is not None else None) or 0
        runs = split(states, _state_size, self._config.max_message_bytes)
        return [States(cu.cid, cu.upto, i, len(runs), Group(dict(run)), bound)
                for i, run in enumerate(runs)]


def _state_size(item: tuple[str, Crdt]) -> int:
    return len(item[0]) + len(encode(item[1])) + 8
