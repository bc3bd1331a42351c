"""What the engine needs from its host (the replica), what it tells the host to do, its knobs.

The engine never touches a disk or a socket. It reads the host's state through
:class:`SyncHost` and returns *outputs*: :class:`Send` and :class:`Close` for the
transport, :class:`Apply` and :class:`Trim` for the replica and its store.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from crdtsync.codec import MAX_REPLICA_LEN
from crdtsync.errors import LocalError
from crdtsync.sync.log import DEFAULT_HOT_BYTES
from crdtsync.sync.messages import Group, Message
from crdtsync.types.base import Crdt

__all__ = ["SyncHost", "SyncConfig", "Send", "Close", "Apply", "Trim", "Output", "PeerStatus"]


class SyncHost(Protocol):
    """What the engine reads from the replica during state catch-up (synchronous, in memory).

    They must never expose an uncommitted *local* write (its dots could be issued again
    after a crash): serve the durable state, or state that holds remote data joined but not
    yet committed, never local writes not yet durable.

    The host's other duties are outputs the engine returns: :class:`Apply` (join, then
    commit, then ``engine.applied``), :class:`Trim`, and ``engine.logged`` after each
    local commit. See :mod:`crdtsync.sync`.
    """

    def keys(self) -> Iterable[str]:
        """Return every key that holds a value."""
        ...

    def digest(self, key: str) -> bytes:
        """Return a digest of the state of ``key``; equal states give equal digests everywhere.

        :func:`crdtsync.sync.default_digest` (blake2b of the canonical encoding) is one.
        """
        ...

    def state(self, key: str) -> Crdt:
        """Return the state of ``key`` (the engine copies it before it keeps it)."""
        ...

    # Optional: ``served_upto() -> int | None``, read after the states of a catch-up: every
    # state served so far holds nothing beyond this replica's log up to that seq (None if
    # it cannot say, e.g. remote data is joined but not committed). The peer then need not
    # forward those states to a replica that holds this log up to there.


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """The engine's identity and knobs.

    - ``replica``, ``cluster``: sent in the handshake; a peer of another cluster is refused;
    - ``follower``: read-only replica: no local writes, never sends deltas, still acks;
    - ``peers``: peers this replica expects (its configured links); the log is kept for them
      until they ack, even before they connect after a restart;
    - ``max_message_bytes``: intervals, key digests and states are split to stay under it
      (an entry larger than it is sent alone);
    - ``max_log_entries``, ``max_log_bytes``: the log is trimmed past them even if a peer
      has not acked; that peer then catches up from state;
    - ``hot_log_bytes`` (default 4 MiB): the newest log entries, up to this many encoded
      bytes, keep their decoded groups; older ones are kept encoded and decoded when a peer
      that fell behind collects them (see :mod:`crdtsync.sync.log`);
    - ``retransmit_after``: seconds without progress before unacked data, a handshake or a
      catch-up is sent again;
    - ``window``: most unacked Delta messages in flight per peer (default 1). Entries logged
      while the window is full wait and leave as one joined interval on the next ack, so a
      busy replica sends fewer, larger deltas (a counter's later totals replace earlier ones).
      Under sustained writes a larger window sends sooner (an entry waits for a free slot,
      at most a round trip plus the receiver's commit) at the cost of more, smaller
      messages: on W4 and W5 a window of 2 took 14-20% more time and 40% more bytes.
    """

    replica: str
    cluster: str
    follower: bool = False
    peers: frozenset[str] = frozenset()
    max_message_bytes: int = 1 << 20
    max_log_entries: int = 100_000
    max_log_bytes: int = 256 << 20
    hot_log_bytes: int = DEFAULT_HOT_BYTES
    retransmit_after: float = 5.0
    window: int = 1

    def __post_init__(self) -> None:
        for name in ("replica", "cluster"):
            value = getattr(self, name)
            if type(value) is not str or not 0 < len(value) <= MAX_REPLICA_LEN:
                raise LocalError(f"{name} must be a str of 1 to {MAX_REPLICA_LEN} characters")
        if not isinstance(self.peers, frozenset) or self.replica in self.peers:
            raise LocalError("peers must be a frozenset of replica ids, without this replica")
        for name in ("max_message_bytes", "max_log_entries", "max_log_bytes", "window"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise LocalError(f"{name} must be a positive int, got {value!r}")
        if type(self.hot_log_bytes) is not int or self.hot_log_bytes < 0:
            raise LocalError(f"hot_log_bytes must be a non-negative int, "
                             f"got {self.hot_log_bytes!r}")
        if not self.retransmit_after > 0:
            raise LocalError(f"retransmit_after must be > 0, got {self.retransmit_after!r}")


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` on ``link`` (encode it with :func:`crdtsync.sync.encode_message`)."""

    link: Hashable
    message: Message


@dataclass(frozen=True, slots=True)
class Close:
    """Close ``link`` after sending what precedes this output; ``reason`` is for the log."""

    link: Hashable
    reason: str


@dataclass(frozen=True, slots=True)
class Apply:
    """Join ``group`` from ``peer``, commit durably, then call ``engine.applied``.

    Carry Applies out in the order output. The host joins ``group`` into its state and
    computes the *novel* part (RR, Enes et al. §V: per key, what the join added, e.g.
    ``state.novel(delta)``; keys rejected for a type mismatch are left out and counted by
    the host). One durable commit (several Applies and local writes may share it, in
    order) then holds: the state; a log entry holding the novel group with origin
    ``peer``, if the novel group is not empty and the replica is not a follower; and
    "received from ``peer`` up to ``mark``" if ``mark`` is not None. After that commit,
    call ``engine.applied(apply, seq, novel, now)`` (``seq``: the entry's, or None).
    Do not keep references to the values of ``group``: copy what you store.

    ``bound``: ``group`` holds nothing beyond the peer's log up to this seq (a delta
    interval's end, or what the peer said of its catch-up states), None if not known. The
    engine uses it (relayed marks), the host need not.
    """

    peer: str
    group: Group
    mark: int | None
    bound: int | None = None


@dataclass(frozen=True, slots=True)
class Trim:
    """Log entries with seq <= ``upto`` are no longer needed: delete them (durably, lazily)."""

    upto: int


Output: TypeAlias = Send | Close | Apply | Trim
"""Anything the engine asks of its host or transport."""


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """What the engine knows of one peer (for health and metrics).

    ``acked``: my log is durable at the peer up to here; ``lag``: my last seq minus
    ``acked``; ``received``: the peer's log is durable here up to here; ``relayed``: the
    origins whose writes I send the peer whole, as it said it does not get them from them
    (it cannot reach them: docs/protocol.md, "Relayed marks"), until its marks, which come
    with its acks, say it gets them again.
    """

    connected: bool
    follower: bool
    acked: int
    lag: int
    received: int
    catching_up: bool
    relayed: tuple[str, ...] = ()
