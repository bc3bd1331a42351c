"""The replica's own write handles: one per key and kind, bound to the key's live value.

``replica.counter(k)`` returns the same handle for ``k`` every time (the caches are bounded:
one is cleared when it holds :data:`MAX_CACHED_HANDLES` handles), so a loop of
``replica.counter(k).increment()`` allocates nothing. After its first write, a counter or
register handle holds the key's live value and writes straight into it while the
replica's epoch is the one it bound at; the replica moves the epoch when it closes and when
a remote delta of a greater type tag replaces a key's value, and the handle then takes the
checked path (which raises or binds again). Set handles bind likewise and stamp elements
straight into the live set (:class:`LiveSet`). These classes use the replica's internals:
they are part of it, kept apart for size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crdtsync.codec import MAX_ELEMENT_LEN, MAX_INT
from crdtsync.handles import CounterHandle, Handles, RegisterHandle, SetHandle
from crdtsync.types import AWORSet, Crdt, GCounter, LWWRegister, PNCounter, RWORSet

if TYPE_CHECKING:
    from crdtsync.replica import Replica

__all__ = ["CachedHandles", "LiveCounter", "LiveRegister", "LiveSet", "MAX_CACHED_HANDLES",
           "own_deltas", "register_copies"]

_new = object.__new__

MAX_CACHED_HANDLES = 1 << 16
"""Most handles of one kind a replica keeps (the cache is cleared past it)."""


class LiveCounter(CounterHandle):
    """A replica's counter handle, bound to the key's live counter after its first write.

    While the replica's ``_epoch`` is the one the handle bound at, the key holds this very
    counter (of this kind) and the replica is writable, so an increment goes straight to
    the counter. The epoch moves when the replica closes or a remote delta of a greater
    type replaces a key; the handle then takes the checked path and binds again.
    """

    __slots__ = ("_x", "_epoch")

    def __init__(self, replica: Handles, key: str, kind: type[Crdt]) -> None:
        super().__init__(replica, key, kind)
        self._x: Any = None
        self._epoch = -1

    def increment(self, by: int = 1) -> Any:
        """Add ``by`` (a positive int)."""
        r: Replica = self._w  # type: ignore[assignment]
        if self._epoch == r._epoch and by.__class__ is int and by > 0:
            p = self._x._p  # the live counter's increments; this replica's entry exists
            rid = r.replica_id
            n = p[rid] + by
            if n <= MAX_INT:
                p[rid] = n
                r._counted[self.key] = None
                return r._write_ticket or r._ticket()
        write = r._count(self.key, self._kind, by, False)
        _bind(self, r, self._kind)
        return write

    # decrement: the inherited checked path (Replica._count has its own fast path)


def _bind(handle: Any, r: Replica, kind: type[Crdt]) -> None:
    """Bind ``handle`` to the live value of its key if it is a ``kind`` and r is writable.

    A counter binds once it holds an increment of this replica (entries never go away), so
    the fast path can read it without a default.
    """
    x = r._data.get(handle.key)
    if type(x) is kind and r._writable and (
            kind is LWWRegister or r.replica_id in getattr(x, "_p", ())):
        handle._x, handle._epoch = x, r._epoch


class LiveRegister(RegisterHandle):
    """A replica's LWW register handle, bound like :class:`LiveCounter`.

    An assign stamps the value with the replica's HLC and writes it into the live register;
    the key's delta (the register itself) is taken once per commit.
    """

    __slots__ = ("_x", "_epoch")

    def __init__(self, replica: Handles, key: str) -> None:
        super().__init__(replica, key)
        self._x: Any = None
        self._epoch = -1

    def assign(self, value: Any) -> Any:
        """Set the value (any JSON value); the latest (HLC, replica) write wins."""
        r: Replica = self._w  # type: ignore[assignment]
        if self._epoch == r._epoch:
            t = value.__class__
            if (t is int and -(2**63) <= value < 2**64) or (t is str and value.isascii()):
                # a plain value (others are validated and copied by assign_in_place)
                ts = r.hlc.now(r._clock())
                x = self._x
                if ts > x._ts and ts <= MAX_INT:  # always, unless the clock is broken
                    x._ts, x._rid, x._val = ts, r.replica_id, value
                    r._assigned[self.key] = None
                    return r._write_ticket or r._ticket()
            else:
                self._x.assign_in_place(r.replica_id, value, r.hlc.now(r._clock()))
                r._assigned[self.key] = None
                return r._write_ticket or r._ticket()
        write = super().assign(value)
        _bind(self, r, LWWRegister)
        return write


class LiveSet(SetHandle):
    """A replica's AWORSet or RWORSet handle, bound to the key's live set after a write.

    While the replica's ``_epoch`` is the one the handle bound at (the key holds this very
    set and the replica is writable), a write of a str element does what
    :meth:`Replica._set_op <crdtsync.replica.Replica._set_op>` and the set's ``_stamp`` /
    ``_unstamp`` do, inline: stamp or clear the element in the live set and remember its
    entry and the dots it replaced for the commit's delta. Anything else (an int element, a
    context with a cloud for this replica, an unbound handle) takes the checked path.
    """

    __slots__ = ("_x", "_epoch")

    def __init__(self, replica: Handles, key: str, kind: type[Crdt]) -> None:
        super().__init__(replica, key, kind)
        self._x: Any = None
        self._epoch = -1

    def add(self, element: str | int) -> Any:
        """Add ``element`` (str or int)."""
        return self._write(element, True)

    def remove(self, element: str | int) -> Any:
        """Remove ``element`` as seen here."""
        return self._write(element, False)

    def _write(self, element: Any, flag: bool) -> Any:
        r: Replica = self._w  # type: ignore[assignment]
        if (self._epoch == r._epoch and element.__class__ is str
                and len(element) <= MAX_ELEMENT_LEN and element.isascii()):
            x = self._x
            store = x._store
            entries = store.entries
            owner = store.owner
            if flag or self._kind is RWORSet:
                ctx = x._ctx
                rid = r.replica_id
                if rid in ctx.cloud:  # next_dot's general case: take the checked path
                    return self._checked(r, element, flag)
                vv = ctx.vv
                seq = vv[rid] = vv.get(rid, 0) + 1
                dot = (rid, seq)
                entry = dot if self._kind is AWORSet else (rid, seq, flag)
                old = entries.get(element)
                entries[element] = entry
                owner[dot] = element
            else:  # an AWORSet remove
                old = entries.pop(element, None)
                entry = None
            acc = r._stamped.get(self.key)
            if acc is None:
                acc = r._stamped[self.key] = ({}, set())
            acc[0][element] = entry
            if old is not None:
                if old.__class__ is tuple:  # compact: one dot
                    if len(old) != 2:
                        old = old[:2]
                    del owner[old]
                    acc[1].add(old)
                else:
                    for seen in old:
                        del owner[seen]
                    acc[1].update(old)
            r._pending_ops += 1
            return r._write_ticket or r._ticket()
        return self._checked(r, element, flag)

    def _checked(self, r: Replica, element: Any, flag: bool) -> Any:
        """The replica's set fast path (checks, creates the key, raises); binds after."""
        write = r._set_op(self.key, self._kind, element, not flag)
        x = r._data.get(self.key)
        if type(x) is self._kind and r._writable:
            self._x, self._epoch = x, r._epoch
        return write


def own_deltas(data: dict[str, Any], keys: Any, replica: str) -> dict[str, Crdt]:
    """The deltas of the fast path's counter writes since the last commit, in one pass.

    A counter's local delta is exactly this replica's entries (what
    :meth:`~crdtsync.types.PNCounter.own_delta` returns), whatever the number of writes;
    built inline here because a commit makes one per counter key written.
    """
    out: dict[str, Crdt] = {}
    new = _new
    d: Any
    for key in keys:
        x = data[key]
        p = x._p.get(replica)
        if type(x) is PNCounter:
            d = new(PNCounter)
            n = x._n.get(replica)
            d._n = {} if n is None else {replica: n}
        else:
            d = new(GCounter)
        d._p = {} if p is None else {replica: p}
        out[key] = d
    return out


def register_copies(data: dict[str, Any], keys: Any) -> dict[str, Crdt]:
    """The deltas of the fast path's register writes: a register's delta is the register."""
    out: dict[str, Crdt] = {}
    new = _new
    for key in keys:
        x = data[key]
        d = out[key] = new(LWWRegister)
        d._ts, d._rid, d._val = x._ts, x._rid, x._val
    return out


class _HandleCache(dict[str, Any]):
    """Handles of one kind by key; a missing key gets a new handle (bounded cache).

    The replica exposes ``cache.__getitem__`` as its ``counter``/``set``/... on the
    instance: a cache hit is then one C-level call, with no Python frame.
    """

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[str], Any]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: str) -> Any:
        if len(self) >= MAX_CACHED_HANDLES:
            self.clear()
        handle = self[key] = self._make(key)
        return handle


class CachedHandles(Handles):
    """The replica's handle constructors, reusing one handle per key and kind.

    The methods below document the API; :meth:`_init_handles` shadows them on each
    instance with the caches' lookups, which return the same handles faster.
    """

    _counters: _HandleCache
    _gcounters: _HandleCache
    _sets: _HandleCache
    _rwsets: _HandleCache
    _registers: _HandleCache

    def _init_handles(self) -> None:
        self._counters = _HandleCache(lambda k: LiveCounter(self, k, PNCounter))
        self._gcounters = _HandleCache(lambda k: LiveCounter(self, k, GCounter))
        self._sets = _HandleCache(lambda k: LiveSet(self, k, AWORSet))
        self._rwsets = _HandleCache(lambda k: LiveSet(self, k, RWORSet))
        self._registers = _HandleCache(lambda k: LiveRegister(self, k))
        for name in ("counter", "gcounter", "set", "rwset", "register"):
            setattr(self, name, getattr(self, f"_{name}s").__getitem__)

    def counter(self, key: str) -> CounterHandle:
        """Handle on a PNCounter key."""
        return self._counters[key]  # type: ignore[no-any-return]

    def gcounter(self, key: str) -> CounterHandle:
        """Handle on a GCounter key (increments only)."""
        return self._gcounters[key]  # type: ignore[no-any-return]

    def set(self, key: str) -> SetHandle:
        """Handle on an AWORSet key (add wins)."""
        return self._sets[key]  # type: ignore[no-any-return]

    def rwset(self, key: str) -> SetHandle:
        """Handle on an RWORSet key (remove wins)."""
        return self._rwsets[key]  # type: ignore[no-any-return]

    def register(self, key: str) -> RegisterHandle:
        """Handle on an LWWRegister key."""
        return self._registers[key]  # type: ignore[no-any-return]
