"""The replica's own write handles: one per key and kind, bound to the key's live value.

``replica.counter(k)`` returns the same handle for ``k`` every time (the caches are bounded:
one is cleared when it holds :data:`MAX_CACHED_HANDLES` handles), so a loop of
``replica.counter(k).increment()`` allocates nothing. After its first write, a counter or
register handle holds the key's live value and writes straight into it while the
replica's epoch is the one it bound at; the replica moves the epoch when it closes and when
a remote delta of a greater type tag replaces a key's value, and the handle then takes the
checked path (which raises or binds again). Set handles go through the replica's set fast
path. These classes use the replica's internals: they are part of it, kept apart for size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crdtsync.handles import CounterHandle, Handles, RegisterHandle, SetHandle
from crdtsync.types import AWORSet, Crdt, GCounter, LWWRegister, PNCounter, RWORSet

if TYPE_CHECKING:
    from crdtsync.replica import Replica

__all__ = ["CachedHandles", "LiveCounter", "LiveRegister", "MAX_CACHED_HANDLES"]

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
        if self._epoch == r._epoch:
            self._x.add_in_place(r.replica_id, by)
            r._counted[self.key] = None
            r._pending_ops += 1
            return r._write_ticket or r._ticket()
        write = r._count(self.key, self._kind, by, False)
        _bind(self, r, self._kind)
        return write

    # decrement: the inherited checked path (Replica._count has its own fast path)


def _bind(handle: Any, r: Replica, kind: type[Crdt]) -> None:
    """Bind ``handle`` to the live value of its key if it is a ``kind`` and r is writable."""
    x = r._data.get(handle.key)
    if type(x) is kind and r._writable:
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
            self._x.assign_in_place(r.replica_id, value, r.hlc.now(r._clock()))
            r._assigned[self.key] = None
            r._pending_ops += 1
            return r._write_ticket or r._ticket()
        write = super().assign(value)
        _bind(self, r, LWWRegister)
        return write


class CachedHandles(Handles):
    """The replica's handle constructors, reusing one handle per key and kind."""

    _counters: dict[str, CounterHandle]
    _gcounters: dict[str, CounterHandle]
    _sets: dict[str, SetHandle]
    _rwsets: dict[str, SetHandle]
    _registers: dict[str, RegisterHandle]

    def _init_handles(self) -> None:
        self._counters, self._gcounters, self._registers = {}, {}, {}
        self._sets, self._rwsets = {}, {}

    def counter(self, key: str) -> CounterHandle:
        """Handle on a PNCounter key."""
        return self._counters.get(key) or self._cache(
            self._counters, key, LiveCounter(self, key, PNCounter))

    def gcounter(self, key: str) -> CounterHandle:
        """Handle on a GCounter key (increments only)."""
        return self._gcounters.get(key) or self._cache(
            self._gcounters, key, LiveCounter(self, key, GCounter))

    def set(self, key: str) -> SetHandle:
        """Handle on an AWORSet key (add wins)."""
        return self._sets.get(key) or self._cache(self._sets, key, SetHandle(self, key, AWORSet))

    def rwset(self, key: str) -> SetHandle:
        """Handle on an RWORSet key (remove wins)."""
        return self._rwsets.get(key) or self._cache(
            self._rwsets, key, SetHandle(self, key, RWORSet))

    def register(self, key: str) -> RegisterHandle:
        """Handle on an LWWRegister key."""
        return self._registers.get(key) or self._cache(
            self._registers, key, LiveRegister(self, key))

    @staticmethod
    def _cache(cache: dict[str, Any], key: str, handle: Any) -> Any:
        if len(cache) >= MAX_CACHED_HANDLES:
            cache.clear()
        cache[key] = handle
        return handle
