"""Causality: dots, causal contexts and dot stores (Almeida et al. §5).

A *dot* ``(replica, seq)`` names one event: the ``seq``-th event that ``replica`` issued for
one CRDT. A :class:`CausalContext` is a set of dots kept compact as a version vector plus the
*cloud* of dots beyond it. Dot stores hold the dots that are still "live":

- a *DotSet* is a plain ``set`` of dots (:class:`~crdtsync.types.EWFlag`);
- a *DotFun* is a ``dict`` from dot to an immutable payload (:class:`~crdtsync.types.MVRegister`);
- a :class:`DotMap` maps keys to nested dot stores (:class:`~crdtsync.types.AWORSet`,
  :class:`~crdtsync.types.ORMap`) and keeps an index from every dot beneath it to its key,
  so a remove delta is applied by looking up its dots instead of scanning the state.

Inside a DotMap, a nested store of exactly one dot may be held *compact*, as a tuple instead
of a set or dict: the bare dot ``(replica, seq)`` for a DotSet ``{(replica, seq)}``, and
``(replica, seq, payload)`` for a DotFun ``{(replica, seq): payload}``. Tuples of str and int
cost no cyclic-GC work and no set object, and most elements of an observed-remove set hold
one dot. The sets (:class:`~crdtsync.types.AWORSet`, :class:`~crdtsync.types.RWORSet`) write
their entries compact; the functions here accept either form wherever a nested store may be
(:func:`store_dots`, :func:`store_join`, ...), keep an entry compact when a join leaves it
with one dot, and :class:`DotMap` equality treats the two forms of one store as equal. A
compact entry is never a top-level store nor an entry of an :class:`~crdtsync.types.ORMap`.

The join of two causal states ``(s1, c1) ⊔ (s2, c2)`` keeps a dot when both stores hold it,
or when one store holds it and the other context has not seen it (Almeida et al. §5.2). The
functions here apply that join *in place* into the first state at a cost that follows the
second (the delta), not the first: the dots of ``s1`` that ``c2`` has seen are found through
the index (:func:`seen_dots`), or by scanning ``s1`` when that is cheaper.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import itemgetter
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
    "expand",
    "compact",
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
        ctx.cloud = {}
        if type(dots) in _COLLECTIONS and len(dots) <= 4:  # type: ignore[arg-type]  # a few
            if len(dots) == 1:  # type: ignore[arg-type]
                ((replica, seq),) = dots
                if seq == 1:
                    ctx.vv[replica] = 1
                else:
                    ctx.cloud[replica] = {seq}
                return ctx
            for dot in dots:  # one by one: cheaper than grouping a handful
                ctx.add(dot)
            return ctx
        for replica, seqs in _by_replica(dots).items():
            ctx._add_seqs(replica, seqs)
        return ctx

    @classmethod
    def of_parts(cls, *parts: Iterable[Dot]) -> CausalContext:
        """Return a new context holding the dots of every part (collections of dots)."""
        ctx = cls.__new__(cls)
        ctx.vv = {}
        ctx.cloud = {}
        grouped: dict[str, set[int]] = {}
        for part in parts:
            for replica, seqs in _by_replica(part).items():
                have = grouped.get(replica)
                if have is None:
                    grouped[replica] = seqs
                else:
                    have.update(seqs)
        for replica, seqs in grouped.items():
            ctx._add_seqs(replica, seqs)
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
        for replica, seqs in _by_replica(dots).items():
            self._add_seqs(replica, seqs)

    def merge(self, other: CausalContext) -> None:
        """Join ``other`` into this context; cost follows the size of ``other``."""
        for replica, seq in other.vv.items():
            if seq > self.vv.get(replica, 0):
                self._advance(replica, seq)
        for replica, extra in other.cloud.items():
            self._add_seqs(replica, set(extra))

    def seen(self, dots: Iterable[Dot]) -> set[Dot]:
        """Return the dots of ``dots`` that the context holds (one pass, no call per dot)."""
        if type(dots) not in _COLLECTIONS and type(dots) is not dict:
            dots = list(dots)
        get = self.vv.get
        cloud = self.cloud
        replicas = set(map(_replica_of, dots))  # a pass in C: often none of them is here
        if replicas.isdisjoint(self.vv) and replicas.isdisjoint(cloud):
            return set()
        if not cloud:
            return {d for d in dots if d[1] <= get(d[0], 0)}
        return {d for d in dots if d[1] <= get(d[0], 0) or d[1] in cloud.get(d[0], ())}

    def missing(self, dots: Iterable[Dot]) -> list[Dot]:
        """Return the dots of ``dots`` that the context does not hold, in their order."""
        get = self.vv.get
        late = [d for d in dots if d[1] > get(d[0], 0)]
        cloud = self.cloud
        if late and cloud:
            late = [d for d in late if d[1] not in cloud.get(d[0], ())]
        return late

    def dots(self) -> Iterator[Dot]:
        """Iterate over every dot (version-vector ranges expanded)."""
        for replica, top in self.vv.items():
            for seq in range(1, top + 1):
                yield (replica, seq)
        for replica, extra in self.cloud.items():
            for seq in extra:
                yield (replica, seq)

    def _add_seqs(self, replica: str, seqs: set[int]) -> None:
        """Add the dots ``(replica, s)`` for ``s`` in ``seqs`` (a set the context may keep)."""
        top = self.vv.get(replica, 0)
        if not seqs:
            return
        if top and min(seqs) <= top:
            seqs = {s for s in seqs if s > top}
            if not seqs:
                return
        extra = self.cloud.get(replica)
        if extra is None:
            self.cloud[replica] = seqs
        else:
            extra.update(seqs)
        if top + 1 in seqs:  # the cloud never holds top + 1, so only ``seqs`` can bring it
            self._advance(replica, top + 1)

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
            # Every cloud dot is above ``seq`` now: if they form one run, take it whole (the
            # check stops at the first gap, so it costs at most the length of the run).
            if extra.issuperset(range(seq + 1, seq + len(extra) + 1)):
                seq += len(extra)
                extra.clear()
            while seq + 1 in extra:
                seq += 1
                extra.discard(seq)
            if not extra:
                del self.cloud[replica]
        self.vv[replica] = seq

    # -- encoding ---------------------------------------------------------------------------

    def to_json(self) -> list[Any]:
        """Return the canonical JSON form: ``[{replica: n}, [[replica, seq], ...]]``."""
        cloud = self.cloud
        return [dict(sorted(self.vv.items())),
                [[r, s] for r in sorted(cloud) for s in sorted(cloud[r])]]

    def log_json(self) -> list[Any]:
        """Return the delta log's form: ``[{replica: n}, {replica: [seq, ...]}]``, the cloud
        by replica and unsorted.

        :meth:`from_json` reads it back to an equal context; its bytes depend on the order
        of the cloud's sets, so digests and the wire use :meth:`to_json`. By replica, a dot
        of the cloud costs its seq and a comma where ``[replica, seq]`` repeated the id: a
        W2 log blob went from 40.0 to 21.4 KB (adds) and from 21.8 to 6.0 KB (removes).
        """
        cloud = self.cloud
        if not cloud:
            return [dict(self.vv), []]
        return [dict(self.vv), {r: list(seqs) for r, seqs in cloud.items()}]

    @classmethod
    def from_json(cls, obj: Any) -> CausalContext:
        """Build a context from its JSON form; raise ValueError on a bad shape."""
        from crdtsync.codec import (
            KNOWN_REPLICAS,
            MAX_INT,
            check_dots,
            check_int,
            remember_replica,
        )

        if not isinstance(obj, list) or len(obj) != 2 or not isinstance(obj[0], dict):
            raise ValueError("causal context must be [version vector, cloud]")
        vv_obj, cloud_obj = obj
        if not isinstance(cloud_obj, list | dict):
            raise ValueError("causal context cloud must be a list (or the log's object)")
        ctx = cls()
        for replica, seq in vv_obj.items():
            if replica not in KNOWN_REPLICAS:
                remember_replica(replica)
            check_int(seq, low=1)
            ctx.vv[replica] = seq
        if isinstance(cloud_obj, dict):  # the delta log's form (log_json): by replica
            for replica, seqs in cloud_obj.items():
                if replica not in KNOWN_REPLICAS:
                    remember_replica(replica)
                if type(seqs) is not list or not seqs:
                    raise ValueError("a context cloud's seqs must be a non-empty list")
                if set(map(type, seqs)) != {int} or min(seqs) < 1 or max(seqs) > MAX_INT:
                    for seq in seqs:
                        check_int(seq, low=1)
                ctx._add_seqs(replica, set(seqs))
            return ctx
        ctx.add_all(check_dots(cloud_obj))
        return ctx


_COLLECTIONS: tuple[type, ...] = (list, tuple, set, frozenset, type({}.keys()), type({}.values()))
_replica_of = itemgetter(0)
_seq_of = itemgetter(1)


def _by_replica(dots: Iterable[Dot]) -> dict[str, set[int]]:
    """Group dots by replica: ``{replica: {seq, ...}}`` (few replicas: a pass for each)."""
    if type(dots) not in _COLLECTIONS:
        dots = list(dots)
    replicas = set(map(_replica_of, dots))
    if len(replicas) == 1:  # the usual case: one pass in C
        return {replicas.pop(): set(map(_seq_of, dots))}
    if len(replicas) <= 3:
        return {r: {s for q, s in dots if q == r} for r in replicas}
    out: dict[str, set[int]] = {}
    for replica, seq in dots:
        out.setdefault(replica, set()).add(seq)
    return out


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

    @classmethod
    def of_dots(cls, owner: dict[Dot, Any]) -> DotMap:
        """Return the DotMap of a set-like store given its dot index ``owner`` (dot ->
        element), which it takes: each element holds its dots, one dot compact."""
        dm = cls.__new__(cls)
        entries: dict[Any, Any] = dict(zip(owner.values(), owner, strict=True))  # elem: dot
        if len(entries) != len(owner):  # some element holds several dots
            entries = {}
            for dot, element in owner.items():
                held = entries.get(element)
                if held is None:
                    entries[element] = dot
                elif type(held) is tuple:
                    entries[element] = {held, dot}
                else:
                    held.add(dot)
        dm.entries = entries
        dm.owner = owner
        return dm

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DotMap):
            return NotImplemented
        mine, theirs = self.entries, other.entries
        if mine == theirs:
            return True
        if mine.keys() != theirs.keys():
            return False
        # One store may be compact on one side and a set or dict on the other.
        return all(a == b or expand(a) == expand(b)
                   for a, b in ((v, theirs[k]) for k, v in mine.items()))

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


def expand(store: Any) -> Any:
    """Return a compact store as a new set or dict; any other store as it is."""
    if type(store) is not tuple:
        return store
    if len(store) == 2:
        return {store}
    return {store[:2]: store[2]}


def compact(store: Any) -> Any:
    """Return the compact form of a DotSet or DotFun of exactly one dot."""
    if type(store) is set:
        for dot in store:
            return dot
    for dot, payload in store.items():
        return (*dot, payload)
    raise ValueError("only a store of one dot has a compact form")


def store_dots(store: Any) -> Iterable[Dot]:
    """Return the dots held by a dot store."""
    if isinstance(store, DotMap):
        return store.owner.keys()
    if type(store) is tuple:  # compact: one dot
        return (store,) if len(store) == 2 else (store[:2],)
    dots: Iterable[Dot] = store  # a set iterates its dots, a dict its keys (the dots)
    return dots


def store_is_bottom(store: Any) -> bool:
    """Return True if the store holds no dot (a compact store holds one)."""
    if isinstance(store, DotMap):
        return not store.entries
    return not store


def store_copy(store: Any) -> Any:
    """Return a deep copy of a dot store (payloads of a DotFun are immutable)."""
    if isinstance(store, DotMap):
        new = DotMap()
        new.entries = {k: v if type(v) is tuple else store_copy(v)
                       for k, v in store.entries.items()}
        new.owner = dict(store.owner)
        return new
    if type(store) is tuple:  # compact: immutable
        return store
    return store.copy()


def seen_dots(store: Any, ctx: CausalContext) -> set[Dot]:
    """Return the dots of ``store`` that ``ctx`` contains, at a cost of min(|store|, |ctx|)."""
    dots = store_dots(store)
    size = len(dots)  # type: ignore[arg-type]
    if not size:
        return set()
    if len(ctx) < size:
        mine = [(r, s) for r, top in ctx.vv.items() for s in range(1, top + 1)]
        mine += [(r, s) for r, extra in ctx.cloud.items() for s in extra]
        return {d for d in mine if d in dots}
    return ctx.seen(dots)


def store_join(s1: Any, c1: CausalContext, s2: Any, c2: CausalContext,
               drop: set[Dot] | None = None) -> Any:
    """Join ``(s2, c2)`` into ``(s1, c1)`` in place and return the joined store.

    Contexts are not touched: the caller merges ``c2`` into ``c1`` afterwards. ``drop`` are
    the dots of ``s1`` that ``c2`` has seen (computed with :func:`seen_dots` when None); of
    those, the ones ``s2`` does not hold are removed. Dots of ``s2`` that ``c1`` has not seen
    are added. The returned store is ``s1`` itself, mutated (a new set or dict if ``s1`` is
    compact; ``s2`` may be compact too).
    """
    if drop is None:
        drop = seen_dots(s1, c2)
    if isinstance(s1, DotMap):
        return _map_join(s1, c1, s2, c2, drop)
    if type(s1) is tuple:
        s1 = expand(s1)
    if type(s2) is tuple:
        s2 = expand(s2)
    gone = drop.difference(s2) if drop else drop
    fresh = c1.missing(s2)
    if isinstance(s1, dict):
        for dot in gone:
            del s1[dot]
        if fresh:
            s1.update({dot: s2[dot] for dot in fresh})
        return s1
    s1.difference_update(gone)
    s1.update(fresh)
    return s1


def _map_join(m1: DotMap, c1: CausalContext, m2: DotMap, c2: CausalContext,
              drop: set[Dot]) -> DotMap:
    entries, owner = m1.entries, m1.owner
    by_key: dict[Any, set[Dot]] = {}
    for dot in drop:
        by_key.setdefault(owner[dot], set()).add(dot)
    shared = m2.entries.keys() & entries.keys()  # set operations: cost min(|m1|, |m2|)
    if len(shared) < len(m2.entries):
        _adopt(m1, c1, m2, c2, m2.entries.keys() - shared)
    shared.update(by_key)
    no_drop: set[Dot] = set()
    for key in shared:
        mine = entries[key]
        theirs = m2.entries.get(key)
        gone = by_key.get(key, no_drop)
        if type(mine) is tuple:
            if theirs == mine:  # the same one dot on both sides: nothing changes
                continue
            if theirs is None:  # only ``gone`` matters: it is empty or it is the one dot
                if gone:
                    del entries[key]
                    owner.pop(store_dots(mine)[0], None)  # type: ignore[index]
                continue
            if type(theirs) is tuple and not gone:  # one dot each, mine stays: a concurrent
                dot = theirs if len(theirs) == 2 else theirs[:2]  # write (store_join's result)
                if dot not in c1:
                    entries[key] = ({mine, theirs} if len(mine) == 2
                                    else {mine[:2]: mine[2], dot: theirs[2]})
                    owner[dot] = key
                continue
        elif theirs is None:
            theirs = empty_like(mine)
        joined = store_join(mine, c1, theirs, c2, gone)
        # Only dots in ``gone`` can have left, only dots of ``theirs`` can have come.
        held = joined.owner if isinstance(joined, DotMap) else joined
        for dot in gone:
            if dot not in held:
                owner.pop(dot, None)
        for dot in store_dots(theirs):
            if dot in held:
                owner[dot] = key
        if store_is_bottom(joined):
            del entries[key]
        elif joined is not mine:  # ``mine`` was compact: keep it so if one dot is left
            entries[key] = compact(joined) if len(joined) == 1 else joined
    return m1


def _adopt(m1: DotMap, c1: CausalContext, m2: DotMap, c2: CausalContext,
           keys: set[Any]) -> None:
    """Add to ``m1`` the entries of ``m2`` under ``keys``, which ``m1`` does not hold.

    Only the dots ``c1`` has not seen are kept; in the usual case (``c1`` has seen none of
    them and no entry is a nested map) the entries are copied and indexed in bulk.
    """
    theirs = m2.entries
    seen = c1.seen(m2.owner)
    kinds = set(map(type, theirs.values()))
    if not seen and DotMap not in kinds:
        if kinds == {tuple}:  # every entry compact (immutable): share them
            fresh = {k: theirs[k] for k in keys}
        else:
            fresh = {k: v if type(v) is tuple else v.copy()
                     for k in keys for v in (theirs[k],)}
        m1.entries.update(fresh)
        if len(keys) == len(theirs):  # every key is new: index every dot beneath m2
            m1.owner.update(m2.owner)
        else:
            m1.owner.update({dot: k for dot, k in m2.owner.items() if k in fresh})
        return
    for key in keys:
        store = theirs[key]
        if isinstance(store, DotMap):
            kept: Any = store_join(DotMap(), c1, store, c2, set())
        elif type(store) is tuple:
            kept = () if store_dots(store)[0] in seen else store  # type: ignore[index]
        elif isinstance(store, set):
            kept = store - seen
        else:
            kept = {d: v for d, v in store.items() if d not in seen}
        if not store_is_bottom(kept):
            m1.entries[key] = kept
            m1.owner.update(dict.fromkeys(store_dots(kept), key))


def empty_like(store: Any) -> Any:
    """Return an empty dot store of the same kind as ``store``."""
    if isinstance(store, DotMap):
        return DotMap()
    if type(store) is tuple:
        return set() if len(store) == 2 else {}
    return {} if isinstance(store, dict) else set()
