"""Causality: dots, causal contexts and dot stores (Almeida et al. §5).

A *dot* ``(replica, seq)`` names one event: the ``seq``-th event that ``replica`` issued for
one CRDT. A :class:`CausalContext` is a set of dots kept compact as a version vector plus the
*cloud* of dots beyond it. Dot stores hold the dots that are still "live":

- a *DotSet* is a plain ``set`` of dots (:class:`~crdtsync.types.EWFlag`);
- a *DotFun* is a ``dict`` from dot to an immutable payload (:class:`~crdtsync.types.MVRegister`);
- a :class:`DotMap` maps keys to nested dot stores (:class:`~crdtsync.types.AWORSet`,
  :class:`~crdtsync.types.ORMap`) and keeps an index from every dot beneath it to its key,
  so a remove delta is applied by looking up its dots instead of scanning the state.

The join of two causal states ``(s1, c1) ⊔ (s2, c2)`` keeps a dot when both stores hold it,
or when one store holds it and the other context has not seen it (Almeida et al. §5.2). The
functions here apply that join *in place* into the first state at a cost that follows the
second (the delta), not the first: the dots of ``s1`` that ``c2`` has seen are found through
the index (:func:`seen_dots`), or by scanning ``s1`` when that is cheaper.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeAlias

__all__ = [
    "Dot",
    "CausalContext",
    "DotMap",
    "DotStore",
    "store_dots",
    "store_join",
    "store_copy",
    "store_is_bottom",
    "seen_dots",
    "empty_like",
]

Dot: TypeAlias = tuple[str, int]
"""An event id: (replica id, sequence number >= 1)."""


class CausalContext:
    """Set of dots, compact: a version vector plus the dots beyond it (the cloud).

    ``vv[r] == n`` means every dot ``(r, 1) .. (r, n)`` is in the context. The cloud holds the
    other dots, by replica. After every mutation the context is normalised (no cloud dot at or
    below ``vv[r]``, never ``vv[r] + 1`` in the cloud, no zero entries), so two contexts holding
    the same dots are equal field by field and encode to equal bytes.
    """

    __slots__ = ("vv", "cloud")

    def __init__(self) -> None:
        self.vv: dict[str, int] = {}
        self.cloud: dict[str, set[int]] = {}

    def __contains__(self, dot: object) -> bool:
        replica: str
        seq: int
        replica, seq = dot  # type: ignore[misc]
        if seq <= self.vv.get(replica, 0):
            return True
        extra = self.cloud.get(replica)
        return extra is not None and seq in extra

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CausalContext):
            return NotImplemented
        return self.vv == other.vv and self.cloud == other.cloud

    def __repr__(self) -> str:
        return f"CausalContext(vv={self.vv!r}, cloud={self.cloud!r})"

    def __len__(self) -> int:
        """Return the number of dots in the context."""
        return sum(self.vv.values()) + sum(len(s) for s in self.cloud.values())

    @classmethod
    def of(cls, dots: Iterable[Dot]) -> CausalContext:
        """Return a new context holding ``dots``."""
        ctx = cls.__new__(cls)
        ctx.vv = {}
        cloud: dict[str, set[int]] = {}
        for replica, seq in dots:
            extra = cloud.get(replica)
            if extra is None:
                cloud[replica] = {seq}
            else:
                extra.add(seq)
        ctx.cloud = cloud
        for replica, extra in list(cloud.items()):
            if 1 in extra:  # normalise: the run 1..n moves into the version vector
                ctx._advance(replica, 1)
        return ctx

    def copy(self) -> CausalContext:
        """Return an independent copy."""
        new = CausalContext()
        new.vv = dict(self.vv)
        new.cloud = {r: set(s) for r, s in self.cloud.items()}
        return new

    def is_empty(self) -> bool:
        """Return True if the context holds no dot."""
        return not self.vv and not self.cloud

    def max_seq(self, replica: str) -> int:
        """Return the highest sequence number of ``replica`` in the context (0 if none)."""
        top = self.vv.get(replica, 0)
        extra = self.cloud.get(replica)
        if extra:
            top = max(top, max(extra))
        return top

    def next_dot(self, replica: str) -> Dot:
        """Mint the next dot of ``replica`` and add it to the context."""
        if replica in self.cloud:
            dot = (replica, self.max_seq(replica) + 1)
            self.add(dot)
            return dot
        seq = self.vv.get(replica, 0) + 1
        self.vv[replica] = seq
        return (replica, seq)

    def add(self, dot: Dot) -> None:
        """Add one dot."""
        replica, seq = dot
        top = self.vv.get(replica, 0)
        if seq <= top:
            return
        if seq == top + 1:
            self._advance(replica, seq)
        else:
            self.cloud.setdefault(replica, set()).add(seq)

    def add_all(self, dots: Iterable[Dot]) -> None:
        """Add several dots."""
        for dot in dots:
            self.add(dot)

    def merge(self, other: CausalContext) -> None:
        """Join ``other`` into this context; cost follows the size of ``other``."""
        for replica, seq in other.vv.items():
            if seq > self.vv.get(replica, 0):
                self._advance(replica, seq)
        for replica, extra in other.cloud.items():
            for seq in extra:
                self.add((replica, seq))

    def dots(self) -> Iterator[Dot]:
        """Iterate over every dot (version-vector ranges expanded)."""
        for replica, top in self.vv.items():
            for seq in range(1, top + 1):
                yield (replica, seq)
        for replica, extra in self.cloud.items():
            for seq in extra:
                yield (replica, seq)

    def _advance(self, replica: str, seq: int) -> None:
        """Raise ``vv[replica]`` to ``seq`` and pull contiguous cloud dots into it."""
        old = self.vv.get(replica, 0)
        extra = self.cloud.get(replica)
        if extra:
            if seq - old < len(extra):
                for covered in range(old + 1, seq + 1):
                    extra.discard(covered)
            else:
                extra.difference_update([s for s in extra if s <= seq])
            while seq + 1 in extra:
                seq += 1
                extra.discard(seq)
            if not extra:
                del self.cloud[replica]
        self.vv[replica] = seq

    # -- encoding ---------------------------------------------------------------------------

    def to_json(self) -> list[Any]:
        """Return the canonical JSON form: ``[{replica: n}, [[replica, seq], ...]]``."""
        cloud = sorted((r, s) for r, extra in self.cloud.items() for s in extra)
        return [dict(sorted(self.vv.items())), [list(d) for d in cloud]]

    @classmethod
    def from_json(cls, obj: Any) -> CausalContext:
        """Build a context from its JSON form; raise ValueError on a bad shape."""
        from crdtsync.codec import KNOWN_REPLICAS, check_dot, check_int, remember_replica

        if not isinstance(obj, list) or len(obj) != 2 or not isinstance(obj[0], dict):
            raise ValueError("causal context must be [version vector, cloud]")
        vv_obj, cloud_obj = obj
        if not isinstance(cloud_obj, list):
            raise ValueError("causal context cloud must be a list")
        ctx = cls()
        for replica, seq in vv_obj.items():
            if replica not in KNOWN_REPLICAS:
                remember_replica(replica)
            check_int(seq, low=1)
            ctx.vv[replica] = seq
        for item in cloud_obj:
            ctx.add(check_dot(item))
        return ctx


# -- dot stores ---------------------------------------------------------------------------------

DotStore: TypeAlias = "set[Dot] | dict[Dot, Any] | DotMap"


class DotMap:
    """Map of keys to nested dot stores, with an index of every dot beneath it to its key.

    Nested stores may be of different kinds under different keys. A key whose store becomes
    bottom is removed, so a removed key costs nothing.
    """

    __slots__ = ("entries", "owner")

    def __init__(self) -> None:
        self.entries: dict[Any, Any] = {}
        self.owner: dict[Dot, Any] = {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DotMap):
            return NotImplemented
        return self.entries == other.entries

    def __repr__(self) -> str:
        return f"DotMap({self.entries!r})"

    def set_entry(self, key: Any, store: Any) -> None:
        """Put ``store`` under ``key`` (dropping the key if bottom) and index its dots."""
        old = self.entries.get(key)
        if old is not None and old is not store:
            for dot in store_dots(old):
                if self.owner.get(dot) == key:
                    del self.owner[dot]
        if store_is_bottom(store):
            self.entries.pop(key, None)
            return
        self.entries[key] = store
        for dot in store_dots(store):
            self.owner[dot] = key


def store_dots(store: Any) -> Iterable[Dot]:
    """Return the dots held by a dot store."""
    if isinstance(store, DotMap):
        return store.owner.keys()
    dots: Iterable[Dot] = store  # a set iterates its dots, a dict its keys (the dots)
    return dots


def store_is_bottom(store: Any) -> bool:
    """Return True if the store holds no dot."""
    if isinstance(store, DotMap):
        return not store.entries
    return not store


def store_copy(store: Any) -> Any:
    """Return a deep copy of a dot store (payloads of a DotFun are immutable)."""
    if isinstance(store, DotMap):
        new = DotMap()
        new.entries = {k: store_copy(v) for k, v in store.entries.items()}
        new.owner = dict(store.owner)
        return new
    return store.copy()


def seen_dots(store: Any, ctx: CausalContext) -> set[Dot]:
    """Return the dots of ``store`` that ``ctx`` contains, at a cost of min(|store|, |ctx|)."""
    dots = store_dots(store)
    size = len(dots)  # type: ignore[arg-type]
    if not size:
        return set()
    if len(ctx) < size:
        return {d for d in ctx.dots() if d in dots}
    return {d for d in dots if d in ctx}


def store_join(s1: Any, c1: CausalContext, s2: Any, c2: CausalContext,
               drop: set[Dot] | None = None) -> Any:
    """Join ``(s2, c2)`` into ``(s1, c1)`` in place and return the joined store.

    Contexts are not touched: the caller merges ``c2`` into ``c1`` afterwards. ``drop`` are
    the dots of ``s1`` that ``c2`` has seen (computed with :func:`seen_dots` when None); of
    those, the ones ``s2`` does not hold are removed. Dots of ``s2`` that ``c1`` has not seen
    are added. The returned store is ``s1`` itself, mutated.
    """
    if drop is None:
        drop = seen_dots(s1, c2)
    if isinstance(s1, DotMap):
        return _map_join(s1, c1, s2, c2, drop)
    if isinstance(s1, dict):
        for dot in drop:
            if dot not in s2:
                del s1[dot]
        for dot, payload in s2.items():
            if dot not in c1:
                s1[dot] = payload
        return s1
    for dot in drop:
        if dot not in s2:
            s1.discard(dot)
    for dot in s2:
        if dot not in c1:
            s1.add(dot)
    return s1


def _map_join(m1: DotMap, c1: CausalContext, m2: DotMap, c2: CausalContext,
              drop: set[Dot]) -> DotMap:
    by_key: dict[Any, set[Dot]] = {}
    for dot in drop:
        by_key.setdefault(m1.owner[dot], set()).add(dot)
    for key in m2.entries.keys() | by_key.keys():
        mine = m1.entries.get(key)
        theirs = m2.entries.get(key)
        if mine is None:
            # Only the other side has the key: keep the dots we have not seen.
            if isinstance(theirs, set):
                fresh: Any = {d for d in theirs if d not in c1}
            elif isinstance(theirs, dict):
                fresh = {d: v for d, v in theirs.items() if d not in c1}
            else:
                fresh = store_join(DotMap(), c1, theirs, c2, set())
            if not store_is_bottom(fresh):
                m1.entries[key] = fresh
                for dot in store_dots(fresh):
                    m1.owner[dot] = key
            continue
        if theirs is None:
            theirs = empty_like(mine)
        gone = by_key.get(key, set())
        joined = store_join(mine, c1, theirs, c2, gone)
        # Only dots in ``gone`` can have left, only dots of ``theirs`` can have come.
        held = joined.owner if isinstance(joined, DotMap) else joined
        for dot in gone:
            if dot not in held:
                m1.owner.pop(dot, None)
        for dot in store_dots(theirs):
            if dot in held:
                m1.owner[dot] = key
        if store_is_bottom(joined):
            del m1.entries[key]
    return m1


def empty_like(store: Any) -> Any:
    """Return an empty dot store of the same kind as ``store``."""
    if isinstance(store, DotMap):
        return DotMap()
    return {} if isinstance(store, dict) else set()
