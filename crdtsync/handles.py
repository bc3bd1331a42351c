"""The typed write API of a replica: handles per key, atomic batches, awaitable writes.

``replica.counter("post:1:views").increment()`` applies the write in memory at once and
returns a :class:`Write`; ``await`` it to wait until the write is durable. The same handles
exist on a :class:`Batch`, whose writes apply together (or not at all) when it closes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from crdtsync.errors import TypeMismatchError
from crdtsync.types import (
    AWORSet,
    Crdt,
    EWFlag,
    GCounter,
    LWWRegister,
    MVRegister,
    ORMap,
    PNCounter,
    RWORSet,
)

if TYPE_CHECKING:
    from crdtsync.replica import Replica

__all__ = ["Write", "Batch", "Handles", "CounterHandle", "SetHandle", "RegisterHandle",
           "MVRegisterHandle", "FlagHandle", "MapHandle"]

Mutator = Callable[[Any], Crdt]


class Write:
    """A write applied in memory; ``await`` it to wait until it is durable."""

    __slots__ = ("_replica", "_batch_no")

    def __init__(self, replica: Replica, batch_no: int) -> None:
        self._replica = replica
        self._batch_no = batch_no

    @property
    def durable(self) -> bool:
        """True once the write has been committed."""
        return self._batch_no < self._replica._durable_no

    def __await__(self) -> Generator[Any, None, None]:
        return self._replica._wait_durable(self._batch_no).__await__()


class _Writer:
    """Something handles write through: a replica (at once) or a batch (at its end)."""

    replica_id: str

    def _write(self, key: str, kind: type[Crdt], fn: Mutator) -> Any:
        raise NotImplementedError

    def _count(self, key: str, kind: type[Crdt], by: int, down: bool) -> Any:
        """A counter write; writers without a fast path go through :meth:`_write`."""
        rid = self.replica_id
        if down:
            return self._write(key, kind, lambda c: c.decrement(rid, by))
        return self._write(key, kind, lambda c: c.increment(rid, by))

    def _set_op(self, key: str, kind: type[Crdt], element: Any, remove: bool) -> Any:
        """A set write; writers without a fast path go through :meth:`_write`."""
        rid = self.replica_id
        if remove:
            return self._write(key, kind, lambda s: s.remove(rid, element))
        return self._write(key, kind, lambda s: s.add(rid, element))

    def now(self) -> int:
        raise NotImplementedError


class _Handle:
    __slots__ = ("_w", "key")

    def __init__(self, writer: _Writer, key: str) -> None:
        self._w = writer
        self.key = key

    def _do(self, kind: type[Crdt], fn: Mutator) -> Any:
        return self._w._write(self.key, kind, fn)


class CounterHandle(_Handle):
    """A PNCounter (or, with ``grow_only``, a GCounter) key."""

    __slots__ = ("_kind",)

    def __init__(self, writer: _Writer, key: str, kind: type[Crdt] = PNCounter) -> None:
        self._w = writer
        self.key = key
        self._kind = kind

    def increment(self, by: int = 1) -> Any:
        """Add ``by`` (a positive int)."""
        return self._w._count(self.key, self._kind, by, False)

    def decrement(self, by: int = 1) -> Any:
        """Subtract ``by`` (a positive int); PNCounter only (TypeError on a GCounter)."""
        if self._kind is GCounter:
            raise TypeError(f"{self.key!r} is a grow-only counter: it cannot be decremented")
        return self._w._count(self.key, self._kind, by, True)


class SetHandle(_Handle):
    """An AWORSet (add wins) or RWORSet (remove wins) key."""

    __slots__ = ("_kind",)

    def __init__(self, writer: _Writer, key: str, kind: type[Crdt] = AWORSet) -> None:
        self._w = writer
        self.key = key
        self._kind = kind

    def add(self, element: str | int) -> Any:
        """Add ``element`` (str or int)."""
        return self._w._set_op(self.key, self._kind, element, False)

    def remove(self, element: str | int) -> Any:
        """Remove ``element`` as seen here."""
        return self._w._set_op(self.key, self._kind, element, True)


class RegisterHandle(_Handle):
    """An LWWRegister key, stamped with the replica's hybrid logical clock."""

    __slots__ = ()

    def assign(self, value: Any) -> Any:
        """Set the value (any JSON value); the latest (HLC, replica) write wins."""
        rid, ts = self._w.replica_id, self._w.now()
        return self._do(LWWRegister, lambda r: r.assign(rid, value, ts))


class MVRegisterHandle(_Handle):
    """An MVRegister key: concurrent assigns are all kept."""

    __slots__ = ()

    def assign(self, value: Any) -> Any:
        """Replace every value seen here by ``value``."""
        rid = self._w.replica_id
        return self._do(MVRegister, lambda r: r.assign(rid, value))


class FlagHandle(_Handle):
    """An EWFlag key (enable wins)."""

    __slots__ = ()

    def enable(self) -> Any:
        """Turn the flag on."""
        rid = self._w.replica_id
        return self._do(EWFlag, lambda f: f.enable(rid))

    def disable(self) -> Any:
        """Turn the flag off (a concurrent enable wins)."""
        rid = self._w.replica_id
        return self._do(EWFlag, lambda f: f.disable(rid))


class MapHandle(_Handle):
    """An ORMap key; ``field`` handles write nested values, ``map`` nests deeper."""

    __slots__ = ("_path",)

    def __init__(self, writer: _Writer, key: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(writer, key)
        self._path = path

    def update(self, field: str | int, kind: type[Crdt], fn: Mutator) -> Any:
        """Run ``fn`` (a mutator returning its delta) on the ``kind`` value at ``field``."""
        rid = self._w.replica_id
        inner: Mutator = lambda m: m.update(rid, field, kind, fn)  # noqa: E731
        for step in reversed(self._path):
            inner = _nest(rid, step, inner)
        return self._do(ORMap, inner)

    def remove(self, field: str | int) -> Any:
        """Remove ``field`` as seen here (a concurrent update survives)."""
        rid = self._w.replica_id
        inner: Mutator = lambda m: m.remove(rid, field)  # noqa: E731
        for step in reversed(self._path):
            inner = _nest(rid, step, inner)
        return self._do(ORMap, inner)

    def counter(self, field: str | int) -> CounterHandle:
        """Handle on a PNCounter field."""
        return CounterHandle(_FieldWriter(self, field), "", PNCounter)

    def set(self, field: str | int) -> SetHandle:
        """Handle on an AWORSet field."""
        return SetHandle(_FieldWriter(self, field), "", AWORSet)

    def register(self, field: str | int) -> RegisterHandle:
        """Handle on an LWWRegister field."""
        return RegisterHandle(_FieldWriter(self, field), "")

    def flag(self, field: str | int) -> FlagHandle:
        """Handle on an EWFlag field."""
        return FlagHandle(_FieldWriter(self, field), "")

    def map(self, field: str | int) -> MapHandle:
        """Handle on a nested ORMap field."""
        return MapHandle(self._w, self.key, (*self._path, field))


def _nest(rid: str, step: str | int, inner: Mutator) -> Mutator:
    return lambda m: m.update(rid, step, ORMap, inner)


class _FieldWriter(_Writer):
    """Routes a field handle's writes through its map handle."""

    def __init__(self, parent: MapHandle, field: str | int) -> None:
        self._parent = parent
        self._field = field
        self.replica_id = parent._w.replica_id

    def _write(self, key: str, kind: type[Crdt], fn: Mutator) -> Any:
        return self._parent.update(self._field, kind, fn)

    def now(self) -> int:
        return self._parent._w.now()


class Handles(_Writer):
    """The handle constructors shared by replicas and batches."""

    def counter(self, key: str) -> CounterHandle:
        """Handle on a PNCounter key."""
        return CounterHandle(self, key, PNCounter)

    def gcounter(self, key: str) -> CounterHandle:
        """Handle on a GCounter key (increments only)."""
        return CounterHandle(self, key, GCounter)

    def set(self, key: str) -> SetHandle:
        """Handle on an AWORSet key (add wins)."""
        return SetHandle(self, key, AWORSet)

    def rwset(self, key: str) -> SetHandle:
        """Handle on an RWORSet key (remove wins)."""
        return SetHandle(self, key, RWORSet)

    def register(self, key: str) -> RegisterHandle:
        """Handle on an LWWRegister key."""
        return RegisterHandle(self, key)

    def mvregister(self, key: str) -> MVRegisterHandle:
        """Handle on an MVRegister key."""
        return MVRegisterHandle(self, key)

    def flag(self, key: str) -> FlagHandle:
        """Handle on an EWFlag key."""
        return FlagHandle(self, key)

    def map(self, key: str) -> MapHandle:
        """Handle on an ORMap key."""
        return MapHandle(self, key)


class Batch(Handles):
    """An atomic group of writes (see :meth:`Replica.batch`).

    Each write is checked when it is made (type of the key, arguments, by running it on a
    scratch value: a running copy of the key for counters, whose checks depend on the
    state (overflow), an empty value for other types, whose checks do not) and applied when
    the block exits cleanly, all in the same commit; if the block raises, none is applied.
    """

    def __init__(self, replica: Replica) -> None:
        self._replica = replica
        self.replica_id = replica.replica_id
        self._ops: list[tuple[str, type[Crdt], Mutator]] = []
        self._kinds: dict[str, type[Crdt]] = {}
        self._scratch: dict[str, Crdt] = {}
        self._done = False
        self.write: Write | None = None

    def now(self) -> int:
        return self._replica.now()

    def _write(self, key: str, kind: type[Crdt], fn: Mutator) -> None:
        if self._done:
            raise RuntimeError("batch already closed")
        seen = self._kinds.get(key)
        if seen is None:
            self._replica._prepare(key, kind)
            self._kinds[key] = kind
        elif seen is not kind:
            raise TypeMismatchError(
                f"key {key!r} written as {seen.TYPE} and {kind.TYPE} in one batch")
        fn(self._scratch_for(key, kind))  # raises before anything applies
        self._ops.append((key, kind, fn))

    def _scratch_for(self, key: str, kind: type[Crdt]) -> Crdt:
        if kind is not PNCounter and kind is not GCounter:
            return kind()
        scratch = self._scratch.get(key)
        if scratch is None:
            current = self._replica.state(key)
            scratch = self._scratch[key] = current if current is not None else kind()
        return scratch

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self._done = True
        if exc_type is not None or not self._ops:
            return
        replica = self._replica
        replica._check_writable()
        for key, kind, fn in self._ops:
            replica._apply_local(key, kind, fn)
        self.write = replica._ticket()

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(self, exc_type: Any, *rest: Any) -> None:
        self.__exit__(exc_type, *rest)
        if self.write is not None:
            await self.write
