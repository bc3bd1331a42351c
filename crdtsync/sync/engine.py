"""SyncEngine: the sans-I/O anti-entropy state machine of one replica.

It routes messages to the per-peer :class:`~crdtsync.sync.sender.PeerSender` and
:class:`~crdtsync.sync.receiver.PeerReceiver`, runs the handshake, and decides what of the
log may be trimmed. See :mod:`crdtsync.sync` for the API and the host's duties.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from crdtsync.errors import DecodeError, LocalError, PeerError
from crdtsync.sync.host import (
    Apply,
    Close,
    Output,
    PeerStatus,
    Send,
    SyncConfig,
    SyncHost,
    Trim,
)
from crdtsync.sync.links import HeldCatchups, Link, refusal
from crdtsync.sync.log import DeltaLog
from crdtsync.sync.messages import (
    PROTOCOL_VERSION,
    Accept,
    Ack,
    BucketDigests,
    Delta,
    Group,
    Hello,
    KeyDigests,
    Message,
    Nack,
    Refuse,
    States,
)
from crdtsync.sync.receiver import PeerReceiver, advance
from crdtsync.sync.sender import PeerSender
from crdtsync.sync.wire import decode_message

__all__ = ["SyncEngine"]

LogRecord = (tuple[int, "str | None", "Group | bytes"]
             | tuple[int, "str | None", "Group | bytes", int]
             | tuple[int, "str | None", "Group | bytes", "int | None", "int | None"])


class SyncEngine:
    """Delta-interval anti-entropy with BP and RR for one replica; see :mod:`crdtsync.sync`."""

    def __init__(self, host: SyncHost, config: SyncConfig, *, log: Iterable[LogRecord] = (),
                 marks: Mapping[str, int] | None = None, last_seq: int = 0) -> None:
        """Create the engine, or rebuild it after a restart from what the host made durable.

        ``log``: the durable entries ``(seq, origin, blob)`` in seq order, with the encoded
        group as the host stored it (decoded only if a peer collects it), or ``(seq, origin,
        group)``; either with the encoded size as a fourth item if the host knows it, and
        the entry's bound (the ``upto`` it was logged with, :meth:`applied`) as a fifth;
        ``marks``: peer -> "received from it up to"; ``last_seq``: the highest seq ever
        issued (kept by the host even when the log is empty).
        """
        if not isinstance(config, SyncConfig):
            raise LocalError(f"config must be a SyncConfig, got {type(config).__name__}")
        records = list(log)
        if config.follower and records:
            raise LocalError(f"follower {config.replica!r} keeps no delta log")
        if type(last_seq) is not int or last_seq < 0:
            raise LocalError(f"last_seq must be a non-negative int, got {last_seq!r}")
        self._host = host
        self._config = config
        self._log = DeltaLog.restored(records, last_seq, hot_bytes=config.hot_log_bytes)
        self._links: dict[Hashable, Link] = {}
        self._peer_link: dict[str, Hashable] = {}
        self._rx: dict[str, PeerReceiver] = {}
        self._held = HeldCatchups(config.retransmit_after / 2)
        for peer, mark in (marks or {}).items():
            if type(mark) is not int or mark < 0:
                raise LocalError(f"mark of peer {peer!r} must be a non-negative int")
            self._rx[peer] = PeerReceiver(peer, mark)
        for peer in config.peers:  # known peers: a delta may need what they will send
            self._rx.setdefault(peer, PeerReceiver(peer, 0))
        self._tx: dict[str, PeerSender] = {}
        if not config.follower:
            for peer in sorted(config.peers):
                self._tx[peer] = self._sender(peer, self._log.trimmed_upto)

    @property
    def config(self) -> SyncConfig:
        """The engine's configuration."""
        return self._config

    @property
    def last_seq(self) -> int:
        """The highest log seq issued."""
        return self._log.last_seq

    def log_size(self) -> tuple[int, int]:
        """Return the entries the log holds now: (count, encoded bytes)."""
        return len(self._log), self._log.bytes

    def log_stats(self) -> dict[str, Any]:
        """Return the log's figures: ``entries`` and ``bytes`` (encoded) held, ``hot_bytes``
        of them kept decoded too; since the engine started, ``decoded`` (entries decoded
        when collected), ``left_out`` (entries not sent to a peer that held them from their
        origin: relayed marks) and ``corrupt`` (why each entry that did not decode was
        dropped; the peers that needed it caught up from state)."""
        log = self._log
        return {"entries": len(log), "bytes": log.bytes, "hot_bytes": log.hot_size,
                "decoded": log.decoded, "corrupt": list(log.corrupt), "left_out": log.left_out}

    # -- links ------------------------------------------------------------------------------

    def connect(self, link: Hashable, now: float) -> list[Output]:
        """A transport link is up (dialled or accepted): start the handshake on it."""
        if link in self._links:
            raise LocalError(f"link {link!r} is already connected")
        self._links[link] = Link(hello_at=now)
        return [Send(link, self._hello())]

    def disconnect(self, link: Hashable) -> None:
        """A link is gone (closed, failed, or dropped after an error). Idempotent."""
        state = self._links.pop(link, None)
        if state is None or state.peer is None or self._peer_link.get(state.peer) != link:
            return
        del self._peer_link[state.peer]
        if (tx := self._tx.get(state.peer)) is not None:
            tx.detach()
        rx = self._rx[state.peer]
        rx.catchup = None
        if rx.gates:  # what is held back comes again on the next link, whole or not
            rx.gates, rx.pending = [], rx.claimed
        self._held.forget(state.peer)

    def receive(self, link: Hashable, message: Message | bytes, now: float) -> list[Output]:
        """Handle one message (or its bytes) received on ``link``; return what to do.

        Raises PeerError if the peer broke the protocol (undecodable bytes included): the
        link is already forgotten, close it. Nothing of a bad message is applied.
        """
        state = self._links.get(link)
        if state is None:
            raise LocalError(f"unknown link {link!r}: call connect() first")
        try:
            if isinstance(message, (bytes, bytearray, memoryview)):
                try:
                    message = decode_message(message)
                except DecodeError as exc:
                    raise PeerError(f"undecodable message from {state.peer or link!r}: {exc}") \
                        from exc
            handler = _HANDLERS.get(type(message))
            if handler is None:
                raise LocalError(f"not a protocol message: {message!r:.80}")
            return handler(self, link, state, message, now)
        except PeerError:
            self.disconnect(link)
            raise

    # -- the host's calls -----------------------------------------------------------------

    def logged(self, seq: int, group: Group, now: float, *,
               size: int | None = None, blob: bytes | None = None) -> list[Output]:
        """A local batch is durable as log entry ``seq``: offer it to the peers.

        The engine keeps ``group``: do not change its values afterwards. ``blob``: the group
        encoded as the host logged it (the engine keeps it, and drops the group once the
        entry is no longer among the newest); ``size``: its encoded size. Without them the
        engine encodes the group.
        """
        if self._config.follower:
            raise LocalError(f"follower {self._config.replica!r} accepts no local writes")
        if not isinstance(group, Mapping):
            raise LocalError(f"group must be a mapping key -> Crdt, got {type(group).__name__}")
        self._log.append(seq, None, group, size=size, blob=blob)
        return self._flush_all(now)

    def applied(self, apply: Apply, seq: int | None, novel: Group, now: float, *,
                size: int | None = None, blob: bytes | None = None) -> list[Output]:
        """``apply`` is durable: ``novel`` is what it added, logged as entry ``seq`` (None if
        ``novel`` is empty). Acks the peer and forwards ``novel`` to the other peers.
        ``size`` and ``blob`` are as for :meth:`logged`.

        A follower keeps no log: pass None, or the seq if the host logged it anyway (the
        engine does not keep it, and the next tick's Trim covers it).
        """
        rx = self._rx.get(apply.peer) if isinstance(apply, Apply) else None
        if rx is None:
            raise LocalError(f"applied() needs an Apply this engine output, got {apply!r:.80}")
        if bool(novel) != (seq is not None) and not (self._config.follower and seq is None):
            raise LocalError(f"apply from {apply.peer!r}: seq must be given exactly when the "
                             f"novel group is not empty (novel keys={len(novel)}, seq={seq!r})")
        out: list[Output] = []
        if seq is not None and self._config.follower:
            self._log.skip(seq)
        elif seq is not None:
            self._log.append(seq, apply.peer, novel, size=size, blob=blob,
                             upto=apply.bound)
            out = self._flush_all(now)
        if self._held:  # maybe the end of a catch-up
            out += self._release(now)
        if apply.mark is not None:
            rx.mark = max(rx.mark, apply.mark)
            if (state := self._links.get(rx.link)) is not None:  # back where it came from
                out.insert(0, Send(rx.link, Ack(rx.mark, state.tell(self._rx, everything=False))))
        return out

    def tick(self, now: float) -> list[Output]:
        """Call periodically: retransmit what stalled, repeat lost Hellos, trim the log."""
        out: list[Output] = []
        for link, state in self._links.items():
            if state.accept_have is None and now - state.hello_at >= self._config.retransmit_after:
                state.hello_at = now
                out.append(Send(link, self._hello()))
        for peer, tx in self._tx.items():
            if (link := self._peer_link.get(peer)) is not None:
                out += _sends(link, tx.tick(now))
        limit = self._config.retransmit_after / 2
        out += [o for rx in self._rx.values() if rx.gates and rx.link in self._links for o in
                _sends(rx.link, self._links[rx.link].nacked(rx.expire(now, limit), self._rx))]
        return out + self._release(now) + self._trim()

    def status(self) -> dict[str, PeerStatus]:
        """Return what is known of every peer, by replica id."""
        out = {}
        for peer in sorted(self._tx.keys() | self._rx.keys()):
            tx, rx = self._tx.get(peer), self._rx.get(peer)
            acked = tx.acked if tx else 0
            out[peer] = PeerStatus(
                connected=peer in self._peer_link, follower=bool(tx and tx.follower),
                acked=acked, lag=self._log.last_seq - acked, received=rx.mark if rx else 0,
                catching_up=bool(tx and tx.catchup), relayed=tx.relayed() if tx else ())
        return out

    # -- internals --------------------------------------------------------------------------

    def _hello(self) -> Hello:
        c = self._config
        return Hello(PROTOCOL_VERSION, c.cluster, c.replica, c.follower, self._log.last_seq)

    def _release(self, now: float) -> list[Output]:
        """Answer the catch-up requests held back that may go now (see HeldCatchups)."""
        return [o for peer, link, msg in self._held.release(self._rx, now)
                if self._peer_link.get(peer) == link
                for o in self._answer_buckets(self._rx[peer], link, msg, now)]

    def _answer_buckets(self, rx: PeerReceiver, link: Hashable, msg: BucketDigests,
                        now: float) -> list[Output]:
        self._held.moved(rx.peer, now)
        return _sends(link, rx.on_bucket_digests(
            msg, self._host, max_bytes=self._config.max_message_bytes, link=link))

    def _sender(self, peer: str, acked: int) -> PeerSender:
        return PeerSender(peer, self._log, self._host, self._config, acked=acked)

    def _flush_all(self, now: float) -> list[Output]:
        out: list[Output] = []
        for peer, tx in self._tx.items():
            if (link := self._peer_link.get(peer)) is not None:
                out += _sends(link, tx.flush(now, force=False))
        return out

    def _trim(self) -> list[Output]:
        """Trim the log up to the trim point if it moved (an ack or a tick can move it)."""
        upto = self._trim_point()
        if upto > self._log.trimmed_upto:
            self._log.trim(upto)
            return [Trim(upto)]
        return []

    def _trim_point(self) -> int:
        """Trim what every known peer acked (Almeida et al. §6), and past the size bounds."""
        log, c = self._log, self._config
        floors = [f for tx in self._tx.values() if (f := tx.trim_floor()) is not None]
        upto = min(floors) if floors else log.last_seq
        upto = max(upto, log.bound(max_entries=c.max_log_entries, max_bytes=c.max_log_bytes))
        return min(upto, log.last_seq)

    def _on_hello(self, link: Hashable, state: Link, msg: Hello, now: float) -> list[Output]:
        if state.peer is not None:  # a repeated Hello: answer again, check nothing new
            if msg.replica != state.peer:
                raise PeerError(f"link {link!r} of {state.peer!r} said hello as {msg.replica!r}")
            return [Send(link, Accept(self._rx[state.peer].mark,
                                      state.tell(self._rx, everything=True)))]
        reason = refusal(self._config, self._rx, msg)
        if reason is not None:
            self.disconnect(link)
            return [Send(link, Refuse(reason)), Close(link, reason)]
        state.peer, state.follower = msg.replica, msg.follower
        rx = self._rx.setdefault(msg.replica, PeerReceiver(msg.replica, 0))
        rx.catchup = None
        accept = Accept(rx.mark, state.tell(self._rx, everything=True))
        return [Send(link, accept), *self._establish(link, state, now)]

    def _on_accept(self, link: Hashable, state: Link, msg: Accept, now: float) -> list[Output]:
        if state.accept_have is not None:
            return []  # a duplicate; the first one counts
        if msg.have > self._log.last_seq:
            raise PeerError(f"peer on link {link!r} holds my log up to {msg.have}, beyond my "
                            f"last seq {self._log.last_seq}")
        state.accept_have = msg.have
        state.accept_marks = msg.marks
        return self._establish(link, state, now)

    def _on_refuse(self, link: Hashable, state: Link, msg: Refuse, now: float) -> list[Output]:
        self.disconnect(link)
        return [Close(link, f"refused by {state.peer or 'peer'}: {msg.reason}")]

    def _establish(self, link: Hashable, state: Link, now: float) -> list[Output]:
        """Both Hellos accepted: this link carries the peer's traffic from now on."""
        if state.established or state.peer is None or state.accept_have is None:
            return []
        state.established = True
        peer = state.peer
        if (old := self._peer_link.get(peer)) is not None and old != link:
            self._rx[peer].catchup = None
        self._peer_link[peer] = link
        if self._config.follower:
            return []  # a follower never sends
        tx = self._tx.get(peer) or self._tx.setdefault(peer, self._sender(peer, state.accept_have))
        tx.follower = state.follower
        tx.learn(state.accept_marks)
        return _sends(link, tx.attach(state.accept_have, now))

    def _receiver(self, link: Hashable, state: Link, what: str) -> PeerReceiver:
        if state.peer is None:
            raise PeerError(f"{what} on link {link!r} before hello")
        if state.follower:
            raise PeerError(f"follower {state.peer!r} sent {what}; followers never send")
        return self._rx[state.peer]

    def _tx_of(self, link: Hashable, state: Link, what: str) -> PeerSender:
        tx = self._tx.get(state.peer) if state.established and state.peer else None
        if tx is None:
            raise PeerError(f"{what} on link {link!r}, to which nothing was sent")
        return tx

    def _on_delta(self, link: Hashable, state: Link, msg: Delta, now: float) -> list[Output]:
        rx = self._receiver(link, state, "a delta")
        rx.link = link
        if any(o in (rx.peer, self._config.replica) for _, o, _ in msg.needs):
            raise PeerError(f"{rx.peer!r} sent a delta that needs its own log or mine")
        return _sends(link, [Ack(item.upto, state.tell(self._rx, everything=False))
                             if isinstance(item, Ack) else item
                             for item in rx.on_delta(msg, now, self._rx)]) + advance(self._rx, now)

    def _on_buckets(self, link: Hashable, state: Link, msg: BucketDigests,
                    now: float) -> list[Output]:
        rx = self._receiver(link, state, "bucket digests")
        if self._held.hold(rx.peer, link, msg, self._rx, now):
            return []  # another peer's catch-up is coming in: this one waits for it
        return self._answer_buckets(rx, link, msg, now)

    def _on_states(self, link: Hashable, state: Link, msg: States, now: float) -> list[Output]:
        rx = self._receiver(link, state, "states")
        rx.link = link
        self._held.moved(rx.peer, now)
        return _sends(link, rx.on_states(msg)) + advance(self._rx, now)

    def _on_ack(self, link: Hashable, state: Link, msg: Ack, now: float) -> list[Output]:
        tx = self._tx_of(link, state, "an ack")
        tx.learn(msg.marks)
        # Trim at once rather than at the next tick: acked entries hold every delta object
        # of their groups, and the log is the largest thing a busy replica keeps alive.
        return self._to_peer(tx.peer, tx.on_ack(msg.upto, now)) + self._trim()

    def _on_nack(self, link: Hashable, state: Link, msg: Nack, now: float) -> list[Output]:
        tx = self._tx_of(link, state, "a nack")
        return self._to_peer(tx.peer, tx.on_nack(msg.have, now, msg.needs))

    def _on_keys(self, link: Hashable, state: Link, msg: KeyDigests, now: float) -> list[Output]:
        tx = self._tx_of(link, state, "key digests")
        return self._to_peer(tx.peer, tx.on_key_digests(msg, now))

    def _to_peer(self, peer: str, items: list[Message]) -> list[Output]:
        """Send on the peer's current link (an old link may still deliver its acks)."""
        link = self._peer_link.get(peer)
        return _sends(link, items) if link is not None else []


def _sends(link: Hashable, items: list[Any]) -> list[Output]:
    """Wrap messages as Send outputs on ``link``; pass Apply outputs through."""
    return [item if isinstance(item, Apply) else Send(link, item) for item in items]


_HANDLERS: dict[type[Any], Callable[..., list[Output]]] = {
    Hello: SyncEngine._on_hello,
    Accept: SyncEngine._on_accept,
    Refuse: SyncEngine._on_refuse,
    Delta: SyncEngine._on_delta,
    Ack: SyncEngine._on_ack,
    Nack: SyncEngine._on_nack,
    BucketDigests: SyncEngine._on_buckets,
    KeyDigests: SyncEngine._on_keys,
    States: SyncEngine._on_states,
}
