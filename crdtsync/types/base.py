"""What every CRDT value shares: the lattice interface, the type registry and the causal base.

Values are mutable and change in place: a mutator applies itself and returns the delta (a
value of the same type), ``x.merge(y)`` joins ``y`` into ``x``, and :func:`join` copies then
merges. This keeps a write and a merge O(size of the delta) (see STYLE.md, "Where we differ").
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from crdtsync.causal import (
    CausalContext,
    DotMap,
    seen_dots,
    store_copy,
    store_is_bottom,
    store_join,
)
from crdtsync.errors import TypeMismatchError

__all__ = ["Crdt", "CausalCrdt", "join", "REGISTRY", "register", "MAX_DEPTH"]

T = TypeVar("T", bound="Crdt")

REGISTRY: dict[str, type[Crdt]] = {}
"""Type tag -> class, for the codec."""

MAX_DEPTH = 16
"""How deeply ORMaps may nest (decoding deeper input is an error)."""


def register(cls: type[T]) -> type[T]:
    """Class decorator: make ``cls`` known to the codec under ``cls.TYPE``."""
    REGISTRY[cls.TYPE] = cls
    return cls


class Crdt:
    """A join-semilattice value with delta-mutators."""

    __slots__ = ()
    TYPE: ClassVar[str]

    def merge(self, other: Any) -> None:
        """Join ``other`` into this value in place; ``other`` is left unchanged."""
        raise NotImplementedError

    def copy(self: T) -> T:
        """Return a deep, independent copy."""
        raise NotImplementedError

    @property
    def value(self) -> Any:
        """The value an application reads."""
        raise NotImplementedError

    def is_bottom(self) -> bool:
        """Return True if this is the bottom (empty, never written) state."""
        raise NotImplementedError

    def novel(self, delta: Any) -> Any:
        """Return the part of ``delta`` that joining it would add here, or None if nothing.

        ``join(self, delta) == join(self, self.novel(delta))`` always holds; a replica logs
        only this part for forwarding (Enes et al. §V, "remove redundant state").
        """
        raise NotImplementedError

    def join_novel(self, delta: Any) -> Any:
        """Merge ``delta``; return :meth:`novel` of it as it was before (None: nothing new).

        A remote join does both; types that can find the new part while merging override
        this with one pass (counters, LWW registers).
        """
        fresh = self.novel(delta)
        if fresh is not None:
            self.merge(delta)
        return fresh

    @classmethod
    def join_all(cls: type[T], values: list[T]) -> T:
        """Return the join of ``values`` (two or more, all of this type) as a new value.

        Building a sync interval joins a key's values from several log entries; types that
        can join many in one pass override this (counters).
        """
        out = values[0].copy()
        for value in values[1:]:
            out.merge(value)
        return out

    def to_json(self) -> Any:
        """Return the canonical JSON form of the state (see :mod:`crdtsync.codec`)."""
        raise NotImplementedError

    def log_json(self) -> Any:
        """Return a JSON form for the replica's delta log: one that decodes to this value.

        :meth:`to_json` unless a type has a cheaper form (the OR-sets skip sorting); only
        the canonical :meth:`to_json` may be hashed or compared as bytes. Types whose
        canonical form costs nothing extra alias it (``log_json = to_json``).
        """
        return self.to_json()

    @classmethod
    def from_json(cls: type[T], obj: Any) -> T:
        """Build a value from its JSON form; raise ValueError/TypeError on bad input."""
        raise NotImplementedError

    def _check_same(self, other: object) -> None:
        if type(other) is not type(self):
            raise TypeMismatchError(
                f"cannot merge {type(other).__name__} into {type(self).__name__}"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


def join(x: T, y: T) -> T:
    """Return the join of ``x`` and ``y`` as a new value; both are left unchanged."""
    out = x.copy()
    out.merge(y)
    return out


class CausalCrdt(Crdt):
    """A causal CRDT: a dot store plus a causal context (Almeida et al. §5).

    Subclasses choose the store kind and define the ``_store_*`` class methods; the join is
    shared. The same class serves standalone and nested in an :class:`ORMap`, where a *view*
    shares the map's store entry and context (see :meth:`_view`).
    """

    __slots__ = ("_store", "_ctx")
    _store: Any
    _ctx: CausalContext

    def __init__(self) -> None:
        self._store = self._new_store()
        self._ctx = CausalContext()

    @classmethod
    def _view(cls: type[T], store: Any, ctx: CausalContext) -> T:
        """Return an instance over ``store`` and ``ctx`` without copying them."""
        obj = cls.__new__(cls)
        obj._store = store  # type: ignore[attr-defined]
        obj._ctx = ctx  # type: ignore[attr-defined]
        return obj

    @classmethod
    def _new_store(cls) -> Any:
        raise NotImplementedError

    @classmethod
    def _store_value(cls, store: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def _store_to_json(cls, store: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def _store_from_json(cls, obj: Any, depth: int) -> Any:
        raise NotImplementedError

    @property
    def context(self) -> CausalContext:
        """The causal context (read it; do not change it)."""
        return self._ctx

    @property
    def value(self) -> Any:
        return self._store_value(self._store)

    def merge(self, other: Any) -> None:
        self._check_same(other)
        self._store = store_join(self._store, self._ctx, other._store, other._ctx)
        self._ctx.merge(other._ctx)

    def copy(self: T) -> T:
        new: T = type(self)._view(store_copy(self._store), self._ctx.copy())  # type: ignore[attr-defined]
        return new

    def is_bottom(self) -> bool:
        return store_is_bottom(self._store) and self._ctx.is_empty()

    def novel(self, delta: Any) -> Any:
        self._check_same(delta)
        mine = self._ctx
        if delta._ctx.vv and any(n > mine.vv.get(r, 0) for r, n in delta._ctx.vv.items()):
            return delta
        for replica, extra in delta._ctx.cloud.items():
            for seq in extra:
                if (replica, seq) not in mine:
                    return delta
        # Every dot of the delta was seen here, so it adds nothing; it still removes the
        # dots it has seen that its store no longer holds.
        theirs = delta._store
        held = theirs.owner if isinstance(theirs, DotMap) else theirs
        if any(dot not in held for dot in seen_dots(self._store, delta._ctx)):
            return delta
        return None

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return bool(self._store == other._store and self._ctx == other._ctx)

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> Any:
        return [self._store_to_json(self._store), self._ctx.to_json()]

    @classmethod
    def from_json(cls: type[T], obj: Any, depth: int = 0) -> T:
        from crdtsync.codec import check_store_in_context

        if not isinstance(obj, list) or len(obj) != 2:
            raise ValueError(f"{cls.TYPE} state must be [store, context]")
        store = cls._store_from_json(obj[0], depth)  # type: ignore[attr-defined]
        ctx = CausalContext.from_json(obj[1])
        check_store_in_context(store, ctx)
        return cls._view(store, ctx)  # type: ignore[attr-defined, no-any-return]

    def _delta(self: T, store: Any, ctx: CausalContext) -> T:
        new: T = type(self)._view(store, ctx)  # type: ignore[attr-defined]
        return new
