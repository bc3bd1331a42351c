"""Replica: one region's copy of the data.

A replica holds a keyspace (str key -> one CRDT), accepts local writes, joins remote deltas,
and makes both durable through its :class:`~crdtsync.store.Store` in *group commits*.

Write path (DESIGN.md): mutate in memory -> the delta joins the pending batch -> one store
transaction holds the touched keys' deltas, the batch's delta-log entry and the replica's
counters -> only then are waiting writers told "done" and the batch offered to peers
(``on_commit`` hooks). Nothing leaves a replica before it is durable, so a crash never makes
it re-issue a dot or a log number anyone has seen.

Type rules: the first write to a key fixes its type, and a local write as another type
raises :class:`~crdtsync.errors.TypeMismatchError`. If two replicas concurrently create one
key with different types, the type whose tag sorts last wins on every replica: a remote
delta of a greater tag replaces the key's value, one of a lesser tag is rejected (both are
counted in ``stats`` and logged), so all replicas converge on the same type and value.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from crdtsync.background import Background
from crdtsync.clock import DEFAULT_MAX_DRIFT_MS, HybridLogicalClock
from crdtsync.codec import check_key, dumps_unsorted, encode, group_json
from crdtsync.errors import ClockSkewError, LocalError, TypeMismatchError
from crdtsync.gcpause import gc_paused
from crdtsync.group import Column, Group
from crdtsync.handles import Batch, Write
from crdtsync.identity import load_identity
from crdtsync.keystore import DEFAULT_CHECKPOINT_BYTES, Checkpointer, load_bases, load_log
from crdtsync.livehandles import CachedHandles
from crdtsync.store.base import MAX_UPTO, Commit, LogEntry, Store
from crdtsync.sync.digest import DigestIndex
from crdtsync.types import AWORSet, Crdt, LWWRegister, PNCounter
from crdtsync.types.counters import own_columns

__all__ = ["Replica", "Committed", "wall_clock_ms"]

log = logging.getLogger("crdtsync.replica")



def wall_clock_ms() -> int:
    """Return the wall-clock time in milliseconds (the default physical clock)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Committed:
    """One durable delta-log entry, as handed to ``on_commit`` hooks after a commit."""

    seq: int
    origin: str | None
    group: Group
    token: Any = None
    blob: bytes | None = None
    """The group as logged (its delta-log blob; None if not logged)."""
    upto: int | None = None
    """For a remote entry: the ``bound`` given to :meth:`Replica.apply_remote`, logged
    with the entry."""

    @property
    def size(self) -> int:
        """Encoded size of the group as logged (0 if not logged)."""
        return 0 if self.blob is None else len(self.blob)


@dataclass(slots=True)
class _Pending:
    """A commit taken from the replica and not yet finished: what the store is to hold,
    the entries it logs, the last log seq it uses and the batch number it makes durable."""

    commit: Commit
    entries: list[Committed]
    seq: int
    batch_no: int


def _log_blob(group: Group) -> bytes:
    """Encode a group for the delta log: :func:`~crdtsync.codec.group_json`'s log form (the
    group's own first-write order, sets unsorted) with dict keys unsorted too, which saves
    sorting; :func:`~crdtsync.codec.decode_group` reads any order."""
    return dumps_unsorted(group_json(group, log=True))


class Replica(CachedHandles, Background):
    """A keyspace of CRDTs with a durable, group-committed write path.

    Use :meth:`open` to get one. Writes (through :meth:`counter`, :meth:`set`,
    :meth:`register`, ... or :meth:`batch`) apply at once in memory and return a
    :class:`Write` you may ``await`` for durability; without an event loop, call
    :meth:`commit`. Options (keyword-only):

    - ``commit_delay`` (s, default 0.002): how long the background committer gathers writes
      before one transaction; ``commit_max_ops`` (default 10,000) commits early when this
      many writes wait (writes to one counter or register key count once: the commit
      carries one delta for them). Larger values mean fewer, bigger transactions.
    - ``clock``: physical time source in ms (default wall clock), fed to the replica's HLC.
    - ``follower``: a read-only replica; local writes raise LocalError.
    - ``checkpoint_entries`` (default 10,000): most delta-log entries between checkpoints,
      and ``checkpoint_bytes`` (default 8 MiB): log bytes after which a checkpoint is due
      (or after twice the keyspace's encoded size, if larger); both bound the replay after a
      crash (see :mod:`crdtsync.keystore`);
      ``max_log_entries`` (default 100,000): most entries kept for peers.
    """

    def __init__(self, store: Store, *, name: str | None = None, store_path: str | None = None,
                 clock: Callable[[], int] = wall_clock_ms, follower: bool = False,
                 commit_delay: float = 0.002, commit_max_ops: int = 10_000,
                 max_drift_ms: int = DEFAULT_MAX_DRIFT_MS, max_log_entries: int = 100_000,
                 checkpoint_entries: int = 10_000,
                 checkpoint_bytes: int = DEFAULT_CHECKPOINT_BYTES) -> None:
        self._store = store
        meta = store.meta()
        identity = load_identity(meta, name=name, store_path=store_path)
        self.name: str = identity.name
        self.replica_id: str = identity.replica_id
        self.follower = follower
        self.commit_delay = commit_delay
        self.commit_max_ops = commit_max_ops
        self._clock = clock
        self.hlc = HybridLogicalClock(last=int(meta.get("hlc", 0)), max_drift_ms=max_drift_ms)
        label = store_path or "memory store"
        self._data, sizes = load_bases(store, label=label)
        self._ckpt = Checkpointer(min_bytes=checkpoint_bytes, max_entries=checkpoint_entries)
        self._ckpt.done(sizes)
        self._ckpt_seq = int(meta.get("checkpoint_seq", 0))
        self._trimmed_below = int(meta.get("log_trimmed_below", 0))
        self._sync_floor: int | None = None
        self.max_log_entries = max_log_entries
        self._keys: SortedList = SortedList(self._data)
        self._log_seq = int(meta.get("log_seq", 0))
        self._meta_dirty: dict[str, Any] = dict(identity.meta_updates)
        self._local: dict[str, Crdt] = {}
        # counters changed by the fast path since the commit, first-write order: key -> this
        # replica's entry as the last write left it (only this replica's writes change it,
        # so it is the entry at the commit; see own_columns): PNCounters incremented,
        # GCounters incremented, PNCounters decremented
        self._counted: dict[str, int] = {}
        self._gcounted: dict[str, int] = {}
        self._decremented: dict[str, int] = {}
        # sets changed by the fast path since the commit: key -> ({element: last entry}, cleared)
        self._stamped: dict[str, tuple[dict[Any, Any], set[Any]]] = {}
        self._write_ticket: Write | None = None
        self._init_handles()
        # registers assigned by the fast path, not yet stamped: key -> checked value (see
        # _stamp_assigned), the column of those stamped since the commit, and those
        # stamped but not yet written into their registers (see _fold)
        self._assigned: dict[str, Any] = {}
        self._own_lww: Column | None = None
        self._unfolded: Column = ({}, {})
        self._remote: list[tuple[str, Group, Any, int | None]] = []
        self._pending_ops = 0
        self._batch_no = 1  # the batch local writes go to; those below _durable_no are durable
        self._durable_no = 1
        self._inflight: tuple[_Pending, Future[float]] | None = None  # see Background
        self._failed: _Pending | None = None  # a commit whose store commit raised
        self._init_background()
        self._closed = False
        self._writable = not follower  # False once closed too: the fast paths check only this
        self._epoch = 0  # moves when a key's value object is replaced or the replica closes
        self._checkpoint_next = False
        self.on_commit: list[Callable[[list[Committed]], None]] = []
        self._digest_index: DigestIndex | None = None
        self.on_commit_latency: Callable[[float], None] | None = None
        self.stats: dict[str, int] = {"commits": 0, "remote_deltas": 0,
                                      "rejected_type_mismatch": 0, "clock_skew": 0}
        # Replay what was committed after the last checkpoint (write-ahead log).
        for _seq, origin, group, nbytes in load_log(store, self._ckpt_seq + 1, label=label):
            self._join_group(group, origin or "self", replaying=True)
            self._ckpt.logged(group.touched(), nbytes)
        if identity.fresh_incarnation and self._log_seq:
            # A copy: its log numbers belong to the old id. Fold them into bases, drop them.
            self._ckpt.dirty.update(self._data)
            self._checkpoint_next = True
        if self._meta_dirty:
            self.commit()

    # -- opening and closing ----------------------------------------------------------------

    @classmethod
    def open(cls, path: str | None = None, **options: Any) -> Replica:
        """Open (or create) the replica stored in data directory ``path``; None: in memory.

        The data directory holds ``replica.db`` (SQLite, WAL). Options are those of the
        class; ``name`` names a new replica (default: a random one) and must match an
        existing one. A store copied or restored from elsewhere gets a fresh replica id, so
        the dots and log numbers of the original are never reused (see docs/operations.md).
        """
        from crdtsync.store import MemoryStore, SQLiteStore
        if path is None:
            return cls(MemoryStore(), **options)
        import os
        os.makedirs(path, exist_ok=True)
        db = os.path.join(path, "replica.db")
        return cls(SQLiteStore(db), store_path=db, **options)

    def close(self) -> None:
        """Commit what is pending and close the store. Idempotent."""
        if self._closed:
            return
        self._stop_committer()
        try:
            self.commit()  # finishes a commit the background committer has in flight
        finally:
            self._stop_worker()
        self._closed = True
        self._writable = False
        self._epoch += 1
        self._store.close()

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def store(self) -> Store:
        """The durable store (for backup and sync bookkeeping)."""
        return self._store

    @property
    def log_seq(self) -> int:
        """Number of the last durable delta-log entry (0 if none)."""
        return self._log_seq

    # -- reads ------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key`` (as ``x.value`` of its CRDT), or ``default``."""
        if self._assigned:
            self._stamp_assigned()
        if key in self._unfolded[1]:
            self._fold_key(key)
        x = self._data.get(key)
        return default if x is None else x.value

    def type_of(self, key: str) -> type[Crdt] | None:
        """Return the CRDT type of ``key``, or None if the key does not exist."""
        x = self._data.get(key)
        return None if x is None else type(x)

    def state(self, key: str) -> Crdt | None:
        """Return a copy of the CRDT under ``key`` (None if absent)."""
        return None if (x := self._live(key)) is None else x.copy()

    def _live(self, key: str) -> Crdt | None:
        """The live CRDT under ``key`` (None if absent), every write to it made so far in
        it: for readers inside crdtsync (the sync host); do not mutate it."""
        if self._assigned:
            self._stamp_assigned()
        if key in self._unfolded[1]:
            self._fold_key(key)
        return self._data.get(key)

    def keys(self, prefix: str = "") -> list[str]:
        """Return the keys starting with ``prefix``, sorted."""
        if not prefix:
            return list(self._keys)
        return list(self._keys.irange(prefix, prefix + "\U0010ffff", inclusive=(True, False)))

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> Iterator[tuple[str, Crdt]]:
        """Iterate over (key, CRDT) pairs; the CRDTs are live: do not mutate them."""
        if self._assigned:
            self._stamp_assigned()
        self._fold()
        return iter(self._data.items())

    # -- local writes -----------------------------------------------------------------------

    def batch(self) -> Batch:
        """Group writes into one atomic batch: ``with replica.batch() as b: b.counter(k)...``.

        The batch's writes are checked as they are made and applied together when the block
        exits without an exception (none of them if it raises); they are committed in one
        transaction and shipped to peers as one unit. ``async with`` also waits until the
        batch is durable.
        """
        self._check_writable()
        return Batch(self)

    def _check_writable(self) -> None:
        if self._closed:
            raise LocalError(f"replica {self.name!r} is closed")
        if self.follower:
            raise LocalError(f"replica {self.name!r} is a follower and accepts no local writes")

    def _prepare(self, key: str, kind: type[Crdt]) -> Crdt | None:
        """Check that ``key`` may be written as ``kind``; return its current value if any."""
        x = self._data.get(key)
        if x is None:
            check_key(key)
        elif type(x) is not kind:
            raise TypeMismatchError(f"key {key!r} holds a {x.TYPE}, not a {kind.TYPE}")
        return x

    def _apply_local(self, key: str, kind: type[Crdt], fn: Callable[[Any], Crdt]) -> Crdt:
        """Run mutator ``fn`` on ``key`` (created as ``kind`` if absent); return the delta."""
        found = self._prepare(key, kind)
        fresh = found is None
        x = kind() if found is None else found
        delta = fn(x)
        if fresh:
            self._data[key] = x
            self._keys.add(key)
        pending = self._local.get(key)
        if pending is None:
            self._local[key] = delta
        else:
            pending.merge(delta)
        self._pending_ops += 1
        return delta

    def _write(self, key: str, kind: type[Crdt], fn: Callable[[Any], Crdt]) -> Write:
        self._check_writable()
        self._apply_local(key, kind, fn)
        return self._ticket()

    def _count(self, key: str, kind: type[Crdt], by: int, down: bool) -> Write:
        """A local counter write: bump this replica's entry in place.

        A counter's local delta is exactly this replica's entry, whatever the number of
        writes: the write records the entry it left in the batch's dict, which the commit
        copies as the column (:meth:`_take_local`).
        """
        x = self._data.get(key)
        if type(x) is kind and self._writable:
            x.add_in_place(self.replica_id, by, down)  # type: ignore[attr-defined]
        else:  # checks the key and its type, creates it, or raises
            self._check_writable()
            x = self._prepare(key, kind)
            fresh = x is None
            x = kind() if fresh else x
            x.add_in_place(self.replica_id, by, down)  # type: ignore[union-attr]
            if fresh:  # only once the write is known to be valid
                self._data[key] = x  # type: ignore[assignment]
                self._keys.add(key)
        # counted once per key (see _waiting_writes); the entry is the delta
        rid = self.replica_id
        if down:
            self._decremented[key] = x._n[rid]  # type: ignore[union-attr]
        else:
            (self._counted if kind is PNCounter else self._gcounted)[key] = x._p[rid]  # type: ignore[union-attr]
        return self._write_ticket or self._ticket()

    def _set_op(self, key: str, kind: type[Crdt], element: Any, remove: bool) -> Write:
        """Fast path of a local set write: stamp the element in place, remember its dots.

        The key's delta is built once per commit (:meth:`AWORSet.delta_for`) from what the
        last write left under each element and the dots cleared, equal to the join of the
        writes' deltas.
        """
        x = self._data.get(key)
        if type(x) is kind and self._writable:
            if remove and kind is AWORSet:
                entry, old = None, x._unstamp(element)  # type: ignore[attr-defined]
            elif kind is AWORSet:
                entry, old = x._stamp(self.replica_id, element, None)  # type: ignore[attr-defined]
            else:
                dot, old = x._stamp(self.replica_id, element, not remove)  # type: ignore[attr-defined]
                entry = (*dot, not remove)
            acc = self._stamped.get(key)  # after the checks above: nothing is kept on error
            if acc is None:
                acc = self._stamped[key] = ({}, set())
            acc[0][element] = entry  # {element: its last entry}: see AWORSet.delta_for
            if old:
                acc[1].update(old)
            self._pending_ops += 1
            return self._write_ticket or self._ticket()
        rid = self.replica_id  # the general path: creates the key, validates, raises
        if remove:
            return self._write(key, kind, lambda s: s.remove(rid, element))
        return self._write(key, kind, lambda s: s.add(rid, element))

    def _ticket(self) -> Write:
        if self._wakeup is not None:
            self._wakeup.set()
        ticket = self._write_ticket
        if ticket is None:
            ticket = self._write_ticket = Write(self, self._batch_no)
        return ticket

    def _take_local(self) -> Group:
        """Return the local batch group, adding the fast paths' deltas.

        A counter's local delta is this replica's entries, a register's is its write: they
        go in one column per type (:func:`~crdtsync.types.counters.own_columns`,
        :meth:`_stamp_assigned`), no object per key.
        """
        local = self._local
        counts = None
        if self._counted or self._gcounted or self._decremented:
            up, gup, down = self._counted, self._gcounted, self._decremented
            counts = own_columns(up, gup, down, self.replica_id)
            up.clear()  # cleared, not replaced: bound counter handles hold these dicts
            gup.clear()
            down.clear()
        if self._assigned:
            self._stamp_assigned()
        if self._own_lww is not None:  # a register's local delta is its write: by column
            column, self._own_lww = self._own_lww, None
            if column[0]:
                counts = counts or {}
                counts[(LWWRegister, self.replica_id)] = column
        if self._stamped:
            for key, (final, cleared) in self._stamped.items():
                delta = self._data[key].delta_for(final, cleared)  # type: ignore[attr-defined]
                if key in local:
                    local[key].merge(delta)
                else:
                    local[key] = delta
            self._stamped = {}
        return Group(local, counts)

    def _waiting_writes(self) -> int:
        """Writes waiting for the next commit; a counter or register key written by the fast
        paths counts once, whatever the number of writes (its delta is one entry)."""
        return (self._pending_ops + len(self._counted) + len(self._gcounted)
                + len(self._decremented)
                + len(self._assigned) + (len(self._own_lww[0]) if self._own_lww else 0))

    @property
    def commit_in_flight(self) -> bool:
        """True while the background committer's store commit runs (its writes are not
        durable yet; :meth:`commit` waits for it)."""
        return self._inflight is not None

    def has_local_writes(self) -> bool:
        """True if local writes are waiting for the next commit."""
        return bool(self._local or self._counted or self._gcounted or self._decremented
                    or self._stamped
                    or self._assigned or self._own_lww)

    def now(self) -> int:
        """Return a fresh HLC timestamp for a local write.

        Assignments waiting for a timestamp are stamped first, so a write stamped by this
        timestamp is later than every write made before it.
        """
        if self._assigned:
            self._stamp_assigned()
        return self.hlc.now(self._clock())

    def _stamp_assigned(self) -> None:
        """Stamp the registers the fast path assigned since the last stamp, all with one
        fresh HLC timestamp, and add them to the batch's column and to the writes not yet
        written into their registers (:meth:`_fold`).

        An assignment is stamped at the first of: the commit, a read of the keyspace
        (:meth:`get`, :meth:`state`, :meth:`items`), a timestamp taken for another write
        (:meth:`now`). Until then it is in no register: a remote write joined meanwhile
        meets the register as it was, and the assignment, stamped later, is later than it
        (the clock has seen its timestamp), as it would be had it been stamped first. Only
        a write the clock refused to follow (too far ahead: see :meth:`_observe`) beats it;
        the column still carries the write that lost (a join with it changes nothing).
        """
        values, self._assigned = self._assigned, {}
        ts = self.hlc.now(self._clock())
        stamps = dict.fromkeys(values, ts)
        if self._own_lww is None:
            self._own_lww = (stamps, values)
        else:  # a later stamp: greater timestamps
            self._own_lww[0].update(stamps)
            self._own_lww[1].update(values)
        unfolded = self._unfolded
        unfolded[0].update(stamps)
        unfolded[1].update(values)

    def _fold(self) -> None:
        """Write the stamped assignments into their registers, by the merge rule.

        A commit leaves its stamped register writes here rather than in the registers
        (a W3 commit of 1,000 writes spent most of its time writing them in): they are
        folded in at the first read of their key (:meth:`get`, :meth:`state`), and all
        of them at :meth:`items`, a checkpoint, or a remote delta's join. Each key's
        entry is its latest own write; folding it later is the same join as folding it
        at once, as registers join by a max.
        """
        unfolded = self._unfolded
        if unfolded[1]:
            self._unfolded = ({}, {})
            LWWRegister.join_column(self._data, self.replica_id, unfolded)

    def _fold_key(self, key: str) -> None:
        """Fold the stamped assignment of ``key`` alone (see :meth:`_fold`)."""
        stamps, values = self._unfolded
        LWWRegister.join_column(self._data, self.replica_id,
                                ({key: stamps.pop(key)}, {key: values.pop(key)}))

    # -- remote deltas ----------------------------------------------------------------------

    def apply_remote(self, group: Mapping[str, Crdt], origin: str,
                     token: Any = None, *, bound: int | None = None) -> Group:
        """Join a delta group received from ``origin``; return the part that was new here.

        The new part is committed with the next commit as a log entry with this origin
        (so it is forwarded to other peers but never back to ``origin``); ``token`` comes
        back in the :class:`Committed` handed to ``on_commit`` hooks. ``bound`` (sync
        bookkeeping, an int >= 1): the group holds nothing beyond ``origin``'s log up to
        that seq; it is stored with the log entry (:attr:`LogEntry.upto`) and comes back
        as :attr:`Committed.upto`.
        """
        if self._closed:
            raise LocalError(f"replica {self.name!r} is closed")
        if bound is not None and (type(bound) is not int or not 1 <= bound <= MAX_UPTO):
            # the store's rule for LogEntry.upto, checked here: a bound it refused would
            # fail this commit and every later one
            raise ValueError(f"bound must be None or an int in 1..{MAX_UPTO}, got {bound!r}")
        self._fold()  # the novel part is what is new to every write made here
        with gc_paused():
            novel = self._join_group(Group.of(group), origin)
        self.stats["remote_deltas"] += 1
        if novel or token is not None:
            self._remote.append((origin, novel, token, bound))
            if self._wakeup is not None:
                self._wakeup.set()
        return novel

    def _join_group(self, group: Group, origin: str, *, replaying: bool = False) -> Group:
        """Join a remote group; return its novel part (per key, what the join added)."""
        novel: dict[str, Crdt] = {}
        for key, delta in group.deltas.items():
            fresh = self._join_remote(key, delta, origin, replaying=replaying)
            if fresh is not None:
                novel[key] = fresh
        counts = {}
        for (kind, replica), column in group.counts.items():
            fresh_col, left = kind.join_column(self._data, replica, column)
            if left:  # new keys, or keys of another type: one delta per key, checked
                up, down = column
                rest = kind.column_values(replica, ({k: up[k] for k in left if k in up},
                                                    {k: down[k] for k in left if k in down}))
                for key, delta in rest.items():
                    fresh = self._join_remote(key, delta, origin, replaying=replaying)
                    if fresh is not None:
                        novel[key] = fresh
            if fresh_col[0] or fresh_col[1]:
                counts[(kind, replica)] = fresh_col
                if kind is LWWRegister and not replaying:  # as _join_remote does per key
                    self._observe(max(fresh_col[0].values()), origin)
        return Group(novel, counts)

    def _join_remote(self, key: str, delta: Crdt, origin: str, *,
                     replaying: bool = False) -> Crdt | None:
        x = self._data.get(key)
        if x is not None and type(x) is not type(delta):
            if not replaying:
                self.stats["rejected_type_mismatch"] += 1
            if delta.TYPE < x.TYPE:
                if not replaying:
                    log.warning("rejected %s delta for %s key %r from %s",
                                delta.TYPE, x.TYPE, key, origin)
                return None
            if not replaying:
                log.warning("key %r: remote %s replaces local %s (greater type tag wins)",
                            key, delta.TYPE, x.TYPE)
            self._epoch += 1  # handles bound to the old value must not write to it
            # local writes of the losing type not yet committed lose with it
            self._local.pop(key, None)
            self._counted.pop(key, None)
            self._gcounted.pop(key, None)
            self._decremented.pop(key, None)
            self._assigned.pop(key, None)
            if self._own_lww is not None:
                self._own_lww[0].pop(key, None)
                self._own_lww[1].pop(key, None)
            self._stamped.pop(key, None)
            x = None
        if x is None:
            x = type(delta)()
            if key not in self._data:
                self._keys.add(key)
            self._data[key] = x
        fresh = x.join_novel(delta)
        if fresh is not None and type(x) is LWWRegister and not replaying:
            stamp = delta.timestamp  # type: ignore[attr-defined]
            if stamp is not None:
                self._observe(stamp, origin)
        return fresh  # type: ignore[no-any-return]

    def _observe(self, timestamp: int, origin: str) -> None:
        try:
            self.hlc.update(timestamp, self._clock())
        except ClockSkewError as exc:
            self.stats["clock_skew"] += 1
            log.warning("clock not advanced for a write from %s: %s", origin, exc)

    def hold_log_for_sync(self) -> None:
        """Keep delta-log entries until :meth:`trim_log` says peers have them.

        Without this (no sync attached) entries are dropped once checkpointed; a peer that
        connects later catches up from state.
        """
        if self._sync_floor is None:
            self._sync_floor = max(self._trimmed_below - 1, 0)

    def trim_log(self, upto: int) -> None:
        """Peers have every entry with seq <= ``upto``: drop them once checkpointed."""
        self.hold_log_for_sync()
        assert self._sync_floor is not None
        self._sync_floor = max(self._sync_floor, upto)

    def set_meta(self, name: str, value: Any) -> None:
        """Stage a meta value (JSON) to be written with the next commit (sync bookkeeping)."""
        self._meta_dirty[name] = value

    # -- commit -----------------------------------------------------------------------------

    def commit(self) -> int:
        """Make every write and remote delta so far durable in one transaction.

        Returns the number of the last durable log entry. Waiting writers are released and
        ``on_commit`` hooks and subscribers are called after the transaction. A commit the
        background committer has in flight is finished first, and one that failed is tried
        again first (every writer waiting then was told of the failure; a store that failed
        for good, as SQLite's does on an I/O error, raises again).
        """
        if self._closed:
            raise LocalError(f"replica {self.name!r} is closed")
        if self._inflight is not None:
            self._finish_inflight()
        if self._failed is not None:
            pending, self._failed = self._failed, None
            self._commit_now(pending)
        if not (self.has_local_writes() or self._remote or self._meta_dirty):
            self._release(None, self._batch_no)
            return self._log_seq
        with gc_paused():
            pending = self._begin_commit()
        return self._commit_now(pending)

    def _commit_now(self, pending: _Pending) -> int:
        """Run ``pending``'s store commit here and finish it."""
        started = time.perf_counter()
        try:
            self._store.commit(pending.commit)
        except Exception as exc:
            self._failed = pending
            self._release(exc, self._batch_no)  # later batches wait on this one: all hear
            raise
        return self._finish_commit(pending, time.perf_counter() - started)

    def _begin_commit(self) -> _Pending:
        """Take the batch and the remote deltas so far into one store commit to make.

        From here on, writes and remote deltas go to the next batch (``_batch_no`` moves);
        :meth:`_finish_commit` does the rest once the store commit returned.
        """
        local, remote = self._take_local(), self._remote
        seq = self._log_seq
        entries: list[Committed] = []
        if local:
            seq += 1
            entries.append(Committed(seq, None, local))
        for origin, novel, token, bound in remote:
            if novel:
                seq += 1
                entries.append(Committed(seq, origin, novel, token, upto=bound))
            else:
                entries.append(Committed(0, origin, novel, token))
        commit, entries = self._build_commit(entries, seq)
        pending = _Pending(commit, entries, seq, self._batch_no)
        self._local, self._remote = {}, []
        self._meta_dirty = {}
        self._pending_ops = 0
        self._batch_no += 1
        self._write_ticket = None
        return pending

    def _finish_commit(self, pending: _Pending, latency: float) -> int:
        """The store holds ``pending``: move the counters, tell the writers, the hooks."""
        commit = pending.commit
        if self.on_commit_latency is not None:
            self.on_commit_latency(latency)
        if commit.trim_log_below is not None:
            self._trimmed_below = commit.trim_log_below
        if commit.bases or "checkpoint_seq" in commit.meta:
            self._ckpt_seq, sizes = self._pending_checkpoint
            self._ckpt.done(sizes)
            self._checkpoint_next = False
        self._log_seq = pending.seq
        self._durable_no = pending.batch_no + 1
        self.stats["commits"] += 1
        self._release(None, pending.batch_no)
        self._after_commit(pending.entries)
        return pending.seq

    def _finish_inflight(self) -> None:
        """Wait for the background committer's store commit, then finish it here."""
        assert self._inflight is not None
        pending, future = self._inflight
        self._inflight = None
        try:
            latency = future.result()
        except Exception as exc:
            self._failed = pending  # tried again by the next commit
            self._release(exc, self._batch_no)  # later batches wait on this one: all hear
            raise
        self._finish_commit(pending, latency)

    def _build_commit(self, entries: list[Committed],
                      seq: int) -> tuple[Commit, list[Committed]]:
        commit = Commit(meta=dict(self._meta_dirty))
        sized = []
        for entry in entries:
            if entry.seq:
                blob = _log_blob(entry.group)
                commit.log.append(LogEntry(entry.seq, entry.origin, blob, entry.upto))
                self._ckpt.logged(entry.group.touched(), len(blob))
                entry = replace(entry, blob=blob)
            sized.append(entry)
        ckpt_seq = self._ckpt_seq
        if self._checkpoint_next or self._ckpt.due():
            self._checkpoint(commit, seq)
            ckpt_seq = seq
        floor = ckpt_seq if self._sync_floor is None else min(self._sync_floor, ckpt_seq)
        floor = max(floor, seq - self.max_log_entries)
        if floor + 1 > self._trimmed_below:
            commit.trim_log_below = floor + 1
            commit.meta["log_trimmed_below"] = floor + 1
        commit.meta["log_seq"] = seq
        commit.meta["hlc"] = self.hlc.last
        return commit, sized

    def _checkpoint(self, commit: Commit, seq: int) -> None:
        """Write the full state of every key changed since the last checkpoint."""
        self._fold()
        sizes = {}
        for key in self._ckpt.dirty:
            x = self._data.get(key)
            if x is not None:
                blob = encode(x)
                commit.bases[key] = (x.TYPE, blob)
                sizes[key] = len(blob)
        commit.meta["checkpoint_seq"] = seq
        self._pending_checkpoint = (seq, sizes)

    @property
    def digest_index(self) -> DigestIndex:
        """Per-key catch-up hashes, kept up to date by commits (made on first use)."""
        if self._digest_index is None:
            self._digest_index = DigestIndex()
        return self._digest_index

    def _after_commit(self, entries: list[Committed]) -> None:
        if self._digest_index is not None:
            self._digest_index.changed(k for e in entries for k in e.group.touched())
        for hook in list(self.on_commit):
            hook(entries)
        if self._subscribers:
            self._notify(entries, self._written_since_taken())

    def _written_since_taken(self) -> set[str]:
        """Keys the open batch and the remote deltas joined since the last commit was taken
        changed (only a commit finished after the loop ran meanwhile has any): their live
        values hold changes that are not durable yet, so subscribers hear of them with the
        commit that makes them durable."""
        keys: set[str] = set()
        for pending in (self._local, self._counted, self._gcounted, self._decremented,
                        self._stamped, self._assigned, self._own_lww[0] if self._own_lww
                        else ()):
            keys.update(pending)
        for _origin, novel, _token, _bound in self._remote:
            keys.update(novel.touched())
        return keys
