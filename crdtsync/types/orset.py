"""Observed-remove sets: AWORSet (add-wins) and RWORSet (remove-wins).

AWORSet (Almeida et al. §7.3): each add tags the element with a fresh dot and clears the
element's dots it has seen; a remove clears the dots it has seen and leaves nothing behind. An
add concurrent with a remove carries a dot the remover never saw, so the add wins. A removed
element costs nothing: no tombstone, only the causal context (a version vector) remembers.

RWORSet: add and remove both tag the element with a fresh dot marked True (add) or False
(remove) and clear the dots they have seen; an element is present when it has live dots and
all of them are adds, so a remove concurrent with an add wins. The last remove of an element
stays as one False dot (a remove-wins set needs it to win against adds it has not seen).

Elements are ``str`` or ``int``; ``1`` and ``"1"`` are different elements.

An element's dots are held compact while it has one (see :mod:`crdtsync.causal`): the bare
dot ``(replica, seq)`` in an AWORSet, ``(replica, seq, flag)`` in an RWORSet. An element holds
several dots only after joining concurrent writes; a later local write makes it one again.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain, repeat
from typing import Any

from crdtsync.causal import CausalContext, Dot, DotMap, compact
from crdtsync.codec import (
    KNOWN_REPLICAS,
    MAX_ELEMENT_LEN,
    check_dot,
    check_element,
    dotmap_columns,
    dotmap_from_columns,
    dotmap_from_json,
    dotset_from_json,
    dotsets_from_json,
    remember_replica,
    sorted_items,
)
from crdtsync.types.base import CausalCrdt, register

__all__ = ["AWORSet", "RWORSet"]


class _ORSet(CausalCrdt):
    __slots__ = ()
    _store: DotMap
    _FLAGGED = False  # True: every dot carries a flag (RWORSet)

    @classmethod
    def _new_store(cls) -> DotMap:
        return DotMap()

    def _stamp(self, replica: str, element: Any, payload: Any) -> tuple[Dot, Any]:
        """Give ``element`` one fresh dot in place (with ``payload`` for a DotFun).

        Returns the new dot and the element's dots it replaced, a collection (None if it had
        none). The delta of the write is ``{element: new dot}`` with context {new dot} +
        replaced. The element's entry is left compact.
        """
        if (type(element) is not str or len(element) > MAX_ELEMENT_LEN
                or not element.isascii()):
            check_element(element)
        if replica not in KNOWN_REPLICAS:
            remember_replica(replica)
        ctx = self._ctx
        if replica in ctx.cloud:
            dot = ctx.next_dot(replica)
        else:  # CausalContext.next_dot inlined: this is the replica's hottest write path
            seq = ctx.vv[replica] = ctx.vv.get(replica, 0) + 1
            dot = (replica, seq)
        store = self._store
        owner = store.owner
        entries = store.entries
        old = entries.get(element)
        entries[element] = dot if payload is None else (*dot, payload)
        owner[dot] = element
        if old is None:
            return dot, None
        if type(old) is tuple:  # compact: one dot
            if len(old) != 2:
                old = old[:2]
            del owner[old]
            return dot, (old,)
        for seen in old:
            del owner[seen]
        return dot, old

    def _unstamp(self, element: Any) -> Any:
        """Drop every dot of ``element`` seen here; return them (None if it had none)."""
        if (type(element) is not str or len(element) > MAX_ELEMENT_LEN
                or not element.isascii()):
            check_element(element)
        store = self._store
        old = store.entries.pop(element, None)
        if old is None:
            return None
        if type(old) is tuple:  # compact: one dot
            if len(old) != 2:
                old = old[:2]
            del store.owner[old]
            return (old,)
        for seen in old:
            del store.owner[seen]
        return old

    def _tag(self, replica: str, element: Any, payload: Any) -> Any:
        """Give ``element`` one fresh dot (with ``payload`` for a DotFun); return the delta."""
        dot, old = self._stamp(replica, element, payload)
        dstore = DotMap.__new__(DotMap)
        dstore.entries = {element: dot if payload is None else (*dot, payload)}
        dstore.owner = {dot: element}
        return self._delta(dstore, CausalContext.of([*old, dot] if old else (dot,)))

    def _clear(self, element: Any) -> Any:
        """Drop every dot of ``element`` seen here; return the delta."""
        old = self._unstamp(element)
        return self._delta(DotMap(), CausalContext.of(old) if old else CausalContext())

    def delta_for(self, final: dict[Any, Any], cleared: set[Dot]) -> Any:
        """Return the join of the deltas of several writes, built once (per commit).

        ``final`` maps each element written to the compact entry its last write left under
        it (the new dot of an AWORSet add, ``(replica, seq, flag)`` for an RWORSet write) or
        None (an AWORSet remove). ``cleared`` holds the dots that the writes replaced or
        removed. The context is these dots and ``cleared``: every dot a write made is either
        its element's final entry or was replaced by a later write, so it is in ``cleared``
        (or, if a write outside the fast path replaced it, in the context of that write's
        delta, which the caller joins with this one). ``final`` becomes the delta's store.
        """
        if self._FLAGGED:
            entries = final
            dots: Any = [entry[:2] for entry in final.values()]
        else:
            entries = final
            if None in final.values():
                entries = {e: dot for e, dot in final.items() if dot is not None}
            dots = entries.values()
        dstore = DotMap.__new__(DotMap)
        dstore.entries = entries
        dstore.owner = dict(zip(dots, entries, strict=True))
        return self._delta(dstore, CausalContext.of_parts(dots, cleared))

    def log_json(self) -> Any:
        """Return the JSON form of :meth:`to_json` with its elements and dots unsorted.

        For the delta log only: :func:`~crdtsync.codec.decode` reads it back to the same
        value (decoding accepts any order), but its bytes depend on the order of the dicts;
        :meth:`to_json` (digests, hashes, the wire) sorts. Entries of several dots (rare)
        are sorted as :meth:`to_json` does.
        """
        store = self._store
        entries = store.entries
        if len(store.owner) == len(entries) and set(map(type, entries.values())) == {tuple}:
            # every entry compact: [(element, (entry,)), ...], built in C
            return [list(zip(entries, zip(entries.values()), strict=True)), self._ctx.log_json()]
        return [self._store_to_json(store), self._ctx.log_json()]

    @classmethod
    def join_all(cls, values: list[Any]) -> Any:
        """Return the join of ``values`` (two or more sets of this type) as a new set.

        An AWORSet's values whose contexts hold few dots beyond their stores (deltas, as a
        sync interval joins them) are joined in one pass (:func:`_join_dots`); others are
        merged one by one.
        """
        if cls._FLAGGED or sum(len(v._ctx) for v in values) > 2 * sum(
                len(v._store.owner) for v in values) + 64:
            return super().join_all(values)
        owner, ctx = _join_dots(values)
        return cls._view(DotMap.of_dots(owner), ctx)

    def __iter__(self) -> Iterator[str | int]:
        return iter(self.value)

    def __len__(self) -> int:
        return len(self.value)

    def __contains__(self, element: object) -> bool:
        return element in self.value

    @classmethod
    def _store_from_json(cls, obj: Any, depth: int) -> DotMap:
        return dotmap_from_json(obj, lambda item: check_element(item[0]), cls._nested_from_json)

    @classmethod
    def _nested_from_json(cls, item: Any) -> Any:
        raise NotImplementedError


def _compact_json(entries: dict[Any, Any]) -> list[Any]:
    """``[(element, (entry,)), ...]`` sorted by element (:func:`sorted_items`' order), for
    entries that are all compact; tuples encode as JSON arrays, so an entry is written as
    it is held."""
    try:
        keys = sorted(entries)  # one type of element: sorted directly
    except TypeError:  # ints and strs: ints first
        keys = [e for e, _ in sorted_items(entries)]
    return list(zip(keys, zip(map(entries.__getitem__, keys)), strict=True))


def _join_dots(values: list[Any]) -> tuple[dict[Dot, Any], CausalContext]:
    """The index (dot -> element) and the context of the join of several OR-set states.

    A dot is in the join if a store holds it and every context that has seen it is of a
    store that holds it (Almeida et al. §5.2): the union of the stores less the dots some
    context has seen that its own store does not hold. Costs the sum of the contexts' sizes.
    """
    owner: dict[Dot, Any] = {}
    every: set[Dot] = set()  # the dots of every context
    gone: set[Dot] = set()
    for v in values:
        held = v._store.owner
        owner.update(held)
        ctx = v._ctx
        seen = set(chain.from_iterable(zip(repeat(r), range(1, top + 1))
                                       for r, top in ctx.vv.items()))
        seen.update(chain.from_iterable(zip(repeat(r), extra) for r, extra in ctx.cloud.items()))
        every |= seen
        seen.difference_update(held)
        gone |= seen
    if gone:
        for dot in gone.intersection(owner):
            del owner[dot]
    return owner, CausalContext.of_parts(every)


@register
class AWORSet(_ORSet):
    """Add-wins observed-remove set. Store: DotMap element -> DotSet."""

    __slots__ = ()
    TYPE = "aworset"

    def add(self, replica: str, element: str | int) -> AWORSet:
        """Add ``element``; return the delta. Wins over a concurrent remove."""
        return self._tag(replica, element, None)  # type: ignore[no-any-return]

    def remove(self, replica: str, element: str | int) -> AWORSet:
        """Remove ``element`` as seen here; return the delta (bottom-like if absent)."""
        if replica not in KNOWN_REPLICAS:
            remember_replica(replica)  # validates it
        return self._clear(element)  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return len(self._store.entries)

    def __contains__(self, element: object) -> bool:
        return element in self._store.entries

    @classmethod
    def _store_value(cls, store: DotMap) -> frozenset[str | int]:
        return frozenset(store.entries)

    # The store's JSON form is by replica: {replica: [[element, ...], [seq, ...]]}, each
    # replica's dots in ascending seq (docs/protocol.md, "Set stores"): one string per
    # element and one int per dot, where the list form [[element, [[replica, seq]]], ...]
    # of crdtsync before protocol version 2 repeated the replica id and three brackets per
    # element (3.5x the bytes, 3.4x the decoding time of a 2,000-element delta).

    @classmethod
    def _store_to_json(cls, store: DotMap) -> Any:
        return dotmap_columns(store.owner)

    def log_json(self) -> Any:
        """Return the JSON form of :meth:`to_json` with each replica's dots unsorted (the
        delta log: it decodes to the same value, but its bytes depend on dict order)."""
        return [dotmap_columns(self._store.owner, canonical=False), self._ctx.log_json()]

    @classmethod
    def _store_from_json(cls, obj: Any, depth: int) -> DotMap:
        if type(obj) is dict:
            return dotmap_from_columns(obj)
        # the list form, as stores written before protocol version 2 hold it
        return dotsets_from_json(obj) or super()._store_from_json(obj, depth)

    @classmethod
    def _nested_from_json(cls, item: Any) -> Any:
        if len(item) != 2:
            raise ValueError("aworset entry must be [element, dots]")
        dots = dotset_from_json(item[1])
        if len(dots) == 1:
            return compact(dots)
        return dots


@register
class RWORSet(_ORSet):
    """Remove-wins observed-remove set. Store: DotMap element -> DotFun dot -> bool."""

    __slots__ = ()
    TYPE = "rworset"
    _FLAGGED = True

    def add(self, replica: str, element: str | int) -> RWORSet:
        """Add ``element``; return the delta. Loses to a concurrent remove."""
        return self._tag(replica, element, True)  # type: ignore[no-any-return]

    def remove(self, replica: str, element: str | int) -> RWORSet:
        """Remove ``element``; return the delta. Wins over a concurrent add."""
        return self._tag(replica, element, False)  # type: ignore[no-any-return]

    @classmethod
    def _store_value(cls, store: DotMap) -> frozenset[str | int]:
        return frozenset(e for e, fun in store.entries.items()
                         if (fun[2] if type(fun) is tuple else all(fun.values())))

    @classmethod
    def _store_to_json(cls, store: DotMap) -> Any:
        # Tuples encode as JSON arrays: a compact entry, (replica, seq, flag), is written
        # as it is held.
        entries = store.entries
        if len(store.owner) == len(entries) and set(map(type, entries.values())) == {tuple}:
            return _compact_json(entries)  # every entry compact, the usual case
        return [(e, (fun,) if type(fun) is tuple else
                 [[r, s, fun[(r, s)]] for r, s in sorted(fun)]) for e, fun in sorted_items(entries)]

    @classmethod
    def _nested_from_json(cls, item: Any) -> Any:
        if len(item) != 2 or not isinstance(item[1], list):
            raise ValueError("rworset entry must be [element, [[replica, seq, bool], ...]]")
        fun: dict[Dot, bool] = {}
        for d in item[1]:
            if not isinstance(d, list) or len(d) != 3 or type(d[2]) is not bool:
                raise ValueError("rworset dot must be [replica, seq, bool]")
            dot = check_dot(d[:2])
            if dot in fun:
                raise ValueError(f"duplicate dot {dot}")
            fun[dot] = d[2]
        if len(fun) == 1:
            return compact(fun)
        return fun
