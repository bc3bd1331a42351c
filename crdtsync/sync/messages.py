"""Protocol messages: one small frozen dataclass per message type.

Every message travels as one canonical JSON object (see :mod:`crdtsync.sync.wire` and
``docs/protocol.md``). Sequence numbers are the *sender's* delta-log numbers unless a field
says otherwise. A *group* is a :class:`~crdtsync.group.Group`: key -> delta (or full state).

Handshake (both sides, on every new link)::

    Hello  ->            who I am; answered by Accept (carrying what I hold of yours) or Refuse
    Accept / Refuse ->

Deltas (Almeida et al. Alg. 2), one direction shown::

    Delta(start, end, group) ->     the join of my entries start..end you have not acked
                          <- Ack(upto)   durable up to ``upto``
                          <- Nack(have)  gap: ``start`` was beyond ``have + 1``; restart there

State catch-up (the log no longer holds what the peer lacks)::

    BucketDigests(cid, upto, hashes) ->       one hash per bucket of my per-key digests
                      <- KeyDigests(cid, ...)  your per-key digests of the buckets that differ
    States(cid, upto, part, parts, group) ->   my states of the keys that differ
                      <- Ack(upto)             after the last part is durable
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from crdtsync.group import Group

__all__ = [
    "PROTOCOL_VERSION",
    "Group",
    "Hello",
    "Accept",
    "Refuse",
    "Delta",
    "Ack",
    "Nack",
    "BucketDigests",
    "KeyDigests",
    "States",
    "Message",
    "Marks",
    "Gates",
]

PROTOCOL_VERSION = 3
"""Version of the sync protocol spoken here; a peer speaking another one is refused.

2 (session 4): a group may hold columns of counter entries and LWW writes (see
:mod:`crdtsync.group`), and an aworset's store is written by replica (docs/protocol.md, "Set
stores"); version 1 peers can read neither.
3 (session 8): ``accept`` and ``ack`` may carry ``marks``, the sender's durable marks of
other peers' logs, so a replica leaves out of what it forwards to a peer what that peer
already holds from the origin; a ``delta`` may leave out what the peer will get from the
origin, with ``needs`` (a ``nack`` names the origins it does not get); catch-up ``states``
may carry a ``bound`` (docs/protocol.md, "Relayed marks"); version 2 peers refuse all of
these."""

Gates: TypeAlias = tuple[tuple[int, str, int], ...]
"""``((seq, origin, upto), ...)``, strictly increasing seqs: a Delta's ``needs``."""

Marks: TypeAlias = tuple[tuple[str, int], ...]
"""``((replica, seq), ...)`` sorted by replica: "I hold ``replica``'s log durably up to
``seq``", for peers other than the one told."""



@dataclass(frozen=True, slots=True)
class Hello:
    """Open a session: protocol version, cluster, my replica id, mode and my last log seq."""

    version: int
    cluster: str
    replica: str
    follower: bool
    last_seq: int


@dataclass(frozen=True, slots=True)
class Accept:
    """Accept the peer's Hello; ``have``: the peer's log is durable here up to this seq.

    ``marks``: my durable marks of other peers' logs (see :data:`Marks`), all of them.
    """

    have: int
    marks: Marks = ()


@dataclass(frozen=True, slots=True)
class Refuse:
    """Refuse the peer's Hello, with a reason a person can read; the link is closed."""

    reason: str


@dataclass(frozen=True, slots=True)
class Delta:
    """The join of the sender's log entries ``start..end`` (minus those the receiver sent).

    ``needs``: entries from other origins were left out because the receiver is expected to
    get them from their origin: ``(seq, origin, upto)``, in seq order, says the entries
    from ``seq`` on include some the receiver holds only once it holds ``origin``'s log up
    to ``upto``. The receiver joins the group at once, but its mark of my log passes
    ``seq - 1`` only then (see :data:`Gates`); it nacks (``Nack.needs``) what it cannot get.
    """

    start: int
    end: int
    group: Group
    needs: Gates = ()


@dataclass(frozen=True, slots=True)
class Ack:
    """The sender's log is durable at the receiver up to ``upto``.

    ``marks``: my durable marks of other peers' logs that moved since I last told you on
    this link (see :data:`Marks`).
    """

    upto: int
    marks: Marks = ()


@dataclass(frozen=True, slots=True)
class Nack:
    """A Delta skipped entries: the receiver holds up to ``have``; resend from ``have + 1``.

    ``needs``: the interval's ``needs`` named these origins, and the receiver does not get
    their logs (far enough): resend without leaving their entries out.
    """

    have: int
    needs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BucketDigests:
    """Open state catch-up ``cid``: one 16-hex-digit hash per bucket of my keys.

    ``upto``: my last log seq when the hashes were taken; once the catch-up is complete
    the receiver holds my log up to it. ``len(hashes)`` (a power of two) is the bucket count.
    """

    cid: int
    upto: int
    hashes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KeyDigests:
    """Part ``part`` of ``parts``: my per-key digests (16 hex digits) of differing buckets.

    ``buckets`` are the differing bucket ids this part covers; ``digests`` holds *every*
    key I have in those buckets, as ``(key, digest)`` sorted by key.
    """

    cid: int
    part: int
    parts: int
    buckets: tuple[int, ...]
    digests: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class States:
    """Part ``part`` of ``parts`` of catch-up ``cid``: full states of keys that differ.

    ``bound``: the states hold nothing beyond my log up to this seq (0: not known).
    """

    cid: int
    upto: int
    part: int
    parts: int
    group: Group
    bound: int = 0


Message: TypeAlias = (
    Hello | Accept | Refuse | Delta | Ack | Nack | BucketDigests | KeyDigests | States
)
"""Any protocol message."""
