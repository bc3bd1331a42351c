"""The replica's own write handles: one per key and kind, bound to the key's live value.

``replica.counter(k)`` returns the same handle for ``k`` every time (the caches are bounded:
one is cleared when it holds :data:`MAX_CACHED_HANDLES` handles), so a loop of
``replica.counter(k).increment()`` allocates nothing. After its first write, a counter
handle holds the key's live counter and writes straight into it while the replica's epoch
is the one it bound at; a register handle, bound the same way, hands its checked value to
the replica, which stamps the batch's assignments with one timestamp. The replica moves the
epoch when it closes and when a remote delta of a greater type tag replaces a key's value,
and the handle then takes the checked path (which raises or binds again). Set handles go
through the replica's set fast path (which stamps the element through the set's own
``_stamp``). These classes use the replica's internals: they are part of it, kept apart for
size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crdtsync.codec import KNOWN_REPLICAS, MAX_ELEMENT_LEN, MAX_INT, remember_replica
from crdtsync.handles import CounterHandle, Handles, RegisterHandle, SetHandle
from crdtsync.types import AWORSet, Crdt, GCounter, LWWRegister, PNCounter, RWORSet
from crdtsync.types.lww import checked_value

if TYPE_CHECKING:
    from crdtsync.replica import Replica

__all__ = ["CachedHandles", "LiveCounter", "LiveRegister", "LiveSet", "MAX_CACHED_HANDLES"]


MAX_CACHED_HANDLES = 1 << 16
"""Most handles of one kind a replica keeps (the cache is cleared past it)."""


class LiveCounter(CounterHandle):
    """A replica's counter handle, bound to the key's live counter after its first write.

    While the replica's ``_epoch`` is the one the handle bound at, the key holds this very
    counter (of this kind) and the replica is writable, so an increment goes straight to
    the counter. The epoch moves when the replica closes or a remote delta of a greater
    type replaces a key; the handle then takes the checked path and binds again.
    """

    __slots__ = ("_p", "_rid", "_counted", "_epoch")

    def __init__(self, replica: Handles, key: str, kind: type[Crdt]) -> None:
        super().__init__(replica, key, kind)
        # bound by _bind: the live counter's increments, the replica's id and its dict of
        # counters of this kind written since the commit (key -> this replica's entry; the
        # replica clears it, never replaces it)
        self._p: dict[str, int] = {}
        self._rid = ""
        self._counted: dict[str, int] = {}
        self._epoch = -1

    def increment(self, by: int = 1) -> Any:
        """Add ``by`` (a positive int)."""
        r: Replica = self._w  # type: ignore[assignment]
        # PNCounter.add_in_place's common case inline (a positive int that keeps the entry
        # within MAX_INT; anything else takes the checked path, which validates and raises),
        # on what _bind cached in the handle's slots: 0.43 -> 0.34 µs per W1 write.
        if self._epoch == r._epoch and by.__class__ is int and by > 0:
            p = self._p  # this replica's entry exists (see _bind)
            rid = self._rid
            n = p[rid] + by
            if n <= MAX_INT:
                p[rid] = n
                self._counted[self.key] = n
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
    if type(x) is not kind or not r._writable:
        return
    if kind is LWWRegister:
        handle._epoch = r._epoch
    elif r.replica_id in x._p:  # type: ignore[attr-defined]
        handle._p, handle._rid = x._p, r.replica_id  # type: ignore[attr-defined]
        handle._counted = r._counted if kind is PNCounter else r._gcounted
        handle._epoch = r._epoch


class LiveRegister(RegisterHandle):
    """A replica's LWW register handle, bound like :class:`LiveCounter`.

    An assign checks the value and leaves it with the replica, which stamps every register
    assigned since the last stamp with one HLC timestamp when it commits, or earlier when
    something reads the keyspace or takes a timestamp (:meth:`Replica._stamp_assigned`).
    """

    __slots__ = ("_epoch",)

    def __init__(self, replica: Handles, key: str) -> None:
        super().__init__(replica, key)
        self._epoch = -1

    def assign(self, value: Any) -> Any:
        """Set the value (any JSON value); the latest (HLC, replica) write wins."""
        r: Replica = self._w  # type: ignore[assignment]
        if self._epoch == r._epoch:  # the key holds a register and r is writable
            # checked_value's common case inline (an int in range, an ASCII str), as
            # LiveCounter inlines add_in_place's: the call cost 10-15 % of a W3 write loop
            t = value.__class__
            if not ((t is int and -(2**63) <= value < 2**64) or (t is str and value.isascii())):
                value = checked_value(value)  # raises before anything changes
            r._assigned[self.key] = value
            return r._write_ticket or r._ticket()
        write = super().assign(value)
        _bind(self, r, LWWRegister)
        return write


class LiveSet(SetHandle):
    """A replica's AWORSet handle, bound like :class:`LiveCounter`.

    While the epoch holds, an add or remove of an ASCII str element runs
    :meth:`Replica._set_op` and the set's ``_stamp``/``_unstamp`` in this one frame, on the
    common case (the replica's dots in its version vector, the element holding at most one
    dot); anything else takes the replica's path, which handles every case.
    """

    __slots__ = ("_x", "_rid", "_epoch")

    def __init__(self, replica: Handles, key: str) -> None:
        super().__init__(replica, key, AWORSet)
        self._x: Any = None
        self._rid = ""
        self._epoch = -1

    def add(self, element: str | int) -> Any:
        """Add ``element`` (str or int)."""
        r: Replica = self._w  # type: ignore[assignment]
        if (self._epoch == r._epoch and element.__class__ is str
                and len(element) <= MAX_ELEMENT_LEN and element.isascii()):
            x = self._x
            rid = self._rid
            ctx = x._ctx
            store = x._store
            entries = store.entries
            old = entries.get(element)
            if rid not in ctx.cloud and (old is None or old.__class__ is tuple):
                vv = ctx.vv
                dot = (rid, vv.get(rid, 0) + 1)
                vv[rid] = dot[1]
                entries[element] = dot
                owner = store.owner
                owner[dot] = element
                acc = r._stamped.get(self.key) or r._stamped.setdefault(self.key, ({}, set()))
                acc[0][element] = dot  # see Replica._set_op
                if old is not None:
                    del owner[old]
                    acc[1].add(old)
                r._pending_ops += 1
                return r._write_ticket or r._ticket()
        return self._checked(element, False)

    def remove(self, element: str | int) -> Any:
        """Remove ``element`` as seen here."""
        r: Replica = self._w  # type: ignore[assignment]
        if (self._epoch == r._epoch and element.__class__ is str
                and len(element) <= MAX_ELEMENT_LEN and element.isascii()):
            store = self._x._store
            entries = store.entries
            old = entries.get(element)
            if old is None or old.__class__ is tuple:
                acc = r._stamped.get(self.key) or r._stamped.setdefault(self.key, ({}, set()))
                acc[0][element] = None
                if old is not None:
                    del entries[element]
                    del store.owner[old]
                    acc[1].add(old)
                r._pending_ops += 1
                return r._write_ticket or r._ticket()
        return self._checked(element, True)

    def _checked(self, element: str | int, remove: bool) -> Any:
        """The replica's set path (any element, any state), then bind if unbound."""
        r: Replica = self._w  # type: ignore[assignment]
        write = r._set_op(self.key, AWORSet, element, remove)
        _bind_set(self, r)
        return write


def _bind_set(handle: LiveSet, r: Replica) -> None:
    """Bind ``handle`` to its key's live AWORSet if it holds one and ``r`` is writable."""
    x = r._data.get(handle.key)
    if type(x) is AWORSet and r._writable:
        if r.replica_id not in KNOWN_REPLICAS:
            remember_replica(r.replica_id)
        handle._x, handle._rid, handle._epoch = x, r.replica_id, r._epoch


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
        self._sets = _HandleCache(lambda k: LiveSet(self, k))
        self._rwsets = _HandleCache(lambda k: SetHandle(self, k, RWORSet))
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
