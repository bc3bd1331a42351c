"""Sans-I/O anti-entropy: which deltas go to which peer, what was acked, what to forget.

Delta-interval anti-entropy (Almeida et al., "Delta State Replicated Data Types", Alg. 2)
with BP and RR (Enes et al., "Efficient Synchronization of State-based CRDTs", §V), relayed
marks (a peer says what it holds of the other peers' logs, and what it holds is not
forwarded to it), state catch-up by bucketed digests, and a handshake. No clock, socket,
disk or randomness: the caller passes ``now`` (seconds, any monotonic origin) and carries
out the returned outputs. Full description of the messages and rules: ``docs/protocol.md``.

The engine
----------
::

    engine = SyncEngine(host, SyncConfig(replica="eu-1", cluster="feed", peers=frozenset({...})),
                        log=[(seq, origin, group), ...], marks={peer: n}, last_seq=n)

    engine.connect(link, now) -> list[Output]               a transport link is up (either side)
    engine.receive(link, message_or_bytes, now) -> list[Output]   PeerError: drop the link
    engine.disconnect(link) -> None                         the link is gone (idempotent)
    engine.logged(seq, group, now) -> list[Output]          local batch durable as entry seq
    engine.applied(apply, seq, novel, now) -> list[Output]  an Apply output is durable
    engine.tick(now) -> list[Output]                        periodically (e.g. every second)
    engine.status() -> dict[str, PeerStatus]                per-peer acked / lag / received
    engine.last_seq, engine.log_size(), engine.config

``link`` is any hashable handle the transport picks for one connection (never reused).
``group`` and ``novel`` are ``dict[str, Crdt]`` (key -> delta). Outputs, to carry out in
the order returned:

- ``Send(link, message)``: ``encode_message(message)`` and send it on ``link``;
- ``Close(link, reason)``: close ``link`` (after the sends before it), log ``reason``;
- ``Apply(peer, group, mark, bound)``: join remote data, commit it, call
  ``engine.applied`` (pass the Apply back as is; store ``bound`` with the log entry, see
  Restart). The group may be empty: a mark held back by a delta's ``needs``, committed
  once they are met;
- ``Trim(upto)``: the host may durably delete its log entries with seq <= ``upto``.

The host (the replica) implements :class:`SyncHost` (``keys()``, ``digest(key)``,
``state(key)``, read during state catch-up) and does this. A host may also keep a
:class:`DigestIndex` as ``digest_index`` and tell it the keys each commit changed: catch-ups
then rehash only those instead of every key.

1. **Local writes.** Commit a batch durably as log entry ``seq`` (seqs strictly increase;
   keep ``last_seq`` durable too), then call ``engine.logged(seq, group, now)``, with
   ``blob=`` the bytes you logged if you have them (else the engine encodes the group). The
   engine keeps ``group``: do not change its values afterwards.
2. **Apply.** Join ``apply.group`` into the state, keeping the novel part (RR, e.g. per key
   ``state.novel(delta)``; keys of a mismatched type are dropped and counted); commit in
   output order: the state, a log entry (origin ``apply.peer``) holding the novel group if
   it is not empty (not on a follower), with ``apply.bound`` beside it, and "received
   from ``apply.peer`` up to ``apply.mark``" if not None. Then ``engine.applied(apply,
   seq_or_None, novel, now)`` acks the peer and forwards the entry. Never ack or forward
   before the commit. With :class:`crdtsync.replica.Replica`: ``apply_remote(group,
   peer, token=apply, bound=apply.bound)``, stage the mark with ``set_meta``, and call
   ``applied`` from the ``on_commit`` hook.
3. **Restart.** Build a new engine from the durable log entries (as ``(seq, origin, blob,
   None, bound)``: they are decoded only if a peer collects them; an entry restored
   without its bound is forwarded whole), marks and ``last_seq``.
   What was not committed is lost and comes again (nothing was acked for it).
4. **Trim.** On ``Trim(upto)`` delete those entries durably, whenever convenient.
5. **Catch-up reads.** ``keys``/``digest``/``state`` must not expose uncommitted local writes:
   the engine reads them only for a catch-up, so commit then (as ``ReplicaHost`` does),
   and hand the engine that commit's entries only after the call that read has returned.

A follower (``SyncConfig(follower=True)``) keeps no log: ``logged`` raises LocalError;
``applied`` takes ``seq=None`` (or the seq of an entry the host logged anyway: the engine
drops it and a later ``Trim`` covers it); it never sends deltas, it still acks.

Errors: :class:`~crdtsync.errors.PeerError` (the peer broke the protocol; the engine has
already forgotten the link), :class:`~crdtsync.errors.LocalError` (API misuse),
:class:`~crdtsync.errors.DecodeError` from :func:`decode_message` on bad bytes.
"""

from __future__ import annotations

from crdtsync.sync.digest import DigestIndex, default_digest
from crdtsync.sync.engine import SyncEngine
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
from crdtsync.sync.wire import decode_message, encode_message

__all__ = [
    "SyncEngine",
    "SyncConfig",
    "SyncHost",
    "Send",
    "Close",
    "Apply",
    "Trim",
    "Output",
    "PeerStatus",
    "DigestIndex",
    "default_digest",
    "encode_message",
    "decode_message",
    "PROTOCOL_VERSION",
    "Group",
    "Message",
    "Hello",
    "Accept",
    "Refuse",
    "Delta",
    "Ack",
    "Nack",
    "BucketDigests",
    "KeyDigests",
    "States",
]
