"""Counters: GCounter (grow-only) and PNCounter (increment and decrement).

A GCounter is a map replica -> that replica's total; the join takes the per-replica maximum,
so a delta delivered twice, late or out of order changes nothing (Shapiro et al. 2011).
A PNCounter is a pair of GCounters, one for increments and one for decrements.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from operator import attrgetter
from typing import Any

from crdtsync.codec import KNOWN_REPLICAS, MAX_INT, check_int, remember_replica
from crdtsync.group import Column
from crdtsync.types.base import Crdt, register

__all__ = ["GCounter", "PNCounter", "check_amount", "own_columns"]


def check_amount(by: Any) -> int:
    """Return ``by`` if it is a positive int (not a bool); raise otherwise."""
    if type(by) is not int:
        raise TypeError(f"amount must be an int, got {type(by).__name__}")
    if not 0 < by <= MAX_INT:
        raise ValueError(f"amount must be a positive int, got {by}")
    return by


_new = object.__new__


def _vv_merge(mine: dict[str, int], theirs: dict[str, int]) -> None:
    if theirs:
        get = mine.get
        mine.update({r: n for r, n in theirs.items() if n > get(r, 0)})


def _vv_novel(mine: dict[str, int], theirs: dict[str, int]) -> dict[str, int]:
    if not theirs:
        return {}
    get = mine.get
    return {r: n for r, n in theirs.items() if n > get(r, 0)}


def _vv_join_novel(mine: dict[str, int], theirs: dict[str, int]) -> dict[str, int]:
    """Join ``theirs`` into ``mine``; return the entries that were new (one pass).

    A plain loop: deltas hold one or a few entries, for which a comprehension's own call
    costs more than the loop.
    """
    fresh: dict[str, int] = {}
    if theirs:
        get = mine.get
        for r, n in theirs.items():
            if n > get(r, 0):
                mine[r] = fresh[r] = n
    return fresh


def _vv_join_all(parts: list[dict[str, int]]) -> dict[str, int]:
    """Return the entry-wise maximum of ``parts`` as a new dict."""
    out: dict[str, int] = {}
    get = out.get
    for part in parts:
        for r, n in part.items():
            if n > get(r, 0):
                out[r] = n
    return out


def _vv_from_json(obj: Any) -> dict[str, int]:
    if type(obj) is dict and not obj:
        return {}
    if not isinstance(obj, dict):
        raise ValueError("counter entries must be an object {replica: count}")
    for replica, n in obj.items():
        if replica not in KNOWN_REPLICAS:
            remember_replica(replica)
        if type(n) is not int or not 0 < n <= MAX_INT:
            check_int(n, low=1)
    return dict(obj)


def _vvs_ok(objs: tuple[Any, ...]) -> bool:
    """Return True if :func:`_vv_from_json` accepts every one of ``objs`` (checked in bulk).

    False: some object is not a plain dict, or holds a bad replica id or count; check
    them one by one to raise the precise error.
    """
    if set(map(type, objs)) != {dict}:
        return False
    for replica in set(chain.from_iterable(objs)).difference(KNOWN_REPLICAS):
        try:
            remember_replica(replica)
        except (TypeError, ValueError):
            return False
    counts = list(chain.from_iterable(map(dict.values, objs)))
    return not counts or (set(map(type, counts)) == {int}
                          and min(counts) >= 1 and max(counts) <= MAX_INT)


def _join_column(cls: type[Crdt], data: dict[str, Any], replica: str,
                 column: Column) -> tuple[Column, list[str]]:
    """Join a column of ``replica``'s entries into the counters of ``data`` (key -> value).

    Returns the entries that were new (a column; the given dicts themselves when all were)
    and the keys left to the caller (absent from ``data`` or not a ``cls``): none of their
    entries is joined. One pass, no object per key (see :mod:`crdtsync.group`).
    """
    up, down = column
    left: list[str] = []
    return (_join_side(cls, data, replica, up, _UPS, left, {}),
            _join_side(cls, data, replica, down, _DOWNS, left, up)), left


_UPS, _DOWNS = attrgetter("_p"), attrgetter("_n")


def _join_side(cls: type[Crdt], data: dict[str, Any], replica: str, entries: dict[str, int],
               side: Callable[[Any], dict[str, int]], left: list[str],
               listed: dict[str, int]) -> dict[str, int]:
    """One side of :func:`_join_column`: join ``entries`` into ``side(counter)`` of each
    ``cls`` counter; add the other keys to ``left`` unless ``listed`` already has them."""
    new: dict[str, int] = {}
    get = data.get
    for key, n in entries.items():
        x = get(key)
        if type(x) is cls:
            mine = side(x)
            if n > mine.get(replica, 0):
                mine[replica] = new[key] = n
        elif key not in listed:
            left.append(key)
    return entries if len(new) == len(entries) else new


def _column_from_json(cls: type[Crdt], up: dict[str, Any],
                      down: dict[str, Any]) -> Column:
    """Check a parsed counter column's entries (keys already checked): totals in
    ``1..2^63-1``, no decrements in a gcounter column; return them as they are."""
    for entries in (up, down):
        counts = entries.values()
        if counts and (set(map(type, counts)) != {int} or min(counts) < 1
                       or max(counts) > MAX_INT):
            for n in counts:
                check_int(n, low=1)
    if down and cls.TYPE == "gcounter":
        raise ValueError("a gcounter column cannot hold decrements")
    return up, down


def _join_columns(cls: type[Crdt], have: Column, other: Column) -> None:
    """Join column ``other`` into ``have`` (both of one replica), entry by entry: the
    maximum. ``have`` must be the caller's own dicts."""
    _max_into(have[0], other[0])
    _max_into(have[1], other[1])


def _max_into(mine: dict[str, int], theirs: dict[str, int]) -> None:
    if not mine:
        mine.update(theirs)
        return
    get = mine.get
    for key, n in theirs.items():
        if n > get(key, 0):
            mine[key] = n


def _bump(entries: dict[str, int], replica: str, by: int) -> int:
    """Validate the arguments of an increment and add ``by`` to ``replica``'s entry."""
    if replica not in KNOWN_REPLICAS:
        remember_replica(replica)
    if type(by) is not int or by <= 0:
        check_amount(by)
    n = entries.get(replica, 0) + by
    if n > MAX_INT:
        raise ValueError(f"counter entry of {replica!r} would exceed 2**63-1")
    entries[replica] = n
    return n


@register
class GCounter(Crdt):
    """Grow-only counter. Concurrent increments all count; value is their sum."""

    __slots__ = ("_p",)
    TYPE = "gcounter"

    def __init__(self) -> None:
        self._p: dict[str, int] = {}

    def increment(self, replica: str, by: int = 1) -> GCounter:
        """Add ``by`` (a positive int) on behalf of ``replica``; return the delta."""
        n = _bump(self._p, replica, by)
        delta = GCounter.__new__(GCounter)
        delta._p = {replica: n}
        return delta

    def add_in_place(self, replica: str, by: int, down: bool = False) -> None:
        """Apply an increment without building its delta (see :func:`own_columns`)."""
        if down:
            raise TypeError("a gcounter cannot be decremented; use a PNCounter")
        _bump(self._p, replica, by)

    def own_delta(self, replica: str) -> GCounter:
        """Return the delta holding ``replica``'s entry: what its increments changed."""
        delta = GCounter.__new__(GCounter)
        delta._p = {replica: self._p[replica]} if replica in self._p else {}
        return delta

    @classmethod
    def column_values(cls, replica: str, column: Column) -> dict[str, GCounter]:
        """Return a counter column's entries as one delta per key (see :mod:`crdtsync.group`)."""
        out = {}
        for key, n in column[0].items():
            x = _new(cls)
            x._p = {replica: n}
            out[key] = x
        return out

    join_column = classmethod(_join_column)
    column_from_json = classmethod(_column_from_json)
    join_columns = classmethod(_join_columns)

    @property
    def value(self) -> int:
        return sum(self._p.values())

    def merge(self, other: Any) -> None:
        if type(other) is not GCounter:
            self._check_same(other)
        _vv_merge(self._p, other._p)

    def novel(self, delta: Any) -> GCounter | None:
        if type(delta) is not GCounter:
            self._check_same(delta)
        return _gcounter_or_none(_vv_novel(self._p, delta._p))

    @classmethod
    def join_all(cls, values: list[GCounter]) -> GCounter:
        """Return the join of ``values`` (all GCounters) as a new value, in one pass."""
        out = _new(GCounter)
        out._p = _vv_join_all([v._p for v in values])
        return out

    def join_novel(self, delta: Any) -> GCounter | None:
        """Merge ``delta`` and return :meth:`novel` of it (computed in the same pass).

        If every entry of ``delta`` is new here, the novel part is ``delta`` itself (do not
        change it afterwards).
        """
        if type(delta) is not GCounter:
            self._check_same(delta)
        fresh = _vv_join_novel(self._p, delta._p)
        if len(fresh) == len(delta._p):
            return delta if fresh else None
        return _gcounter_or_none(fresh)

    def copy(self) -> GCounter:
        new = GCounter.__new__(GCounter)
        new._p = dict(self._p)
        return new

    def is_bottom(self) -> bool:
        return not self._p

    def __eq__(self, other: object) -> bool:
        if type(other) is not GCounter:
            return NotImplemented
        return self._p == other._p

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> Any:
        return self._p  # the codec sorts object keys (canonical form)

    log_json = to_json  # the canonical form is also the cheapest

    @classmethod
    def from_json(cls, obj: Any) -> GCounter:
        new = cls.__new__(cls)
        new._p = _vv_from_json(obj)
        return new

    @classmethod
    def from_json_many(cls, states: list[Any]) -> list[GCounter] | None:
        """Decode many freshly parsed states at once (a received group); None if any fails
        the bulk checks (then decode them one by one with :meth:`from_json`).

        The result takes ownership of the parsed dicts: pass objects nothing else holds.
        """
        if cls is not GCounter:
            return None  # a subclass decodes its own way
        if not states:
            return []
        if not _vvs_ok(tuple(states)):
            return None
        out = []
        for p in states:
            new = _new(GCounter)
            new._p = p
            out.append(new)
        return out


def _gcounter_or_none(entries: dict[str, int]) -> GCounter | None:
    if not entries:
        return None
    out = _new(GCounter)
    out._p = entries
    return out


@register
class PNCounter(Crdt):
    """Counter with increment and decrement; value is increments minus decrements."""

    __slots__ = ("_p", "_n")
    TYPE = "pncounter"

    def __init__(self) -> None:
        self._p: dict[str, int] = {}
        self._n: dict[str, int] = {}

    def increment(self, replica: str, by: int = 1) -> PNCounter:
        """Add ``by`` (a positive int) on behalf of ``replica``; return the delta."""
        delta = PNCounter.__new__(PNCounter)
        delta._p = {replica: _bump(self._p, replica, by)}
        delta._n = {}
        return delta

    def decrement(self, replica: str, by: int = 1) -> PNCounter:
        """Subtract ``by`` (a positive int) on behalf of ``replica``; return the delta."""
        delta = PNCounter.__new__(PNCounter)
        delta._p = {}
        delta._n = {replica: _bump(self._n, replica, by)}
        return delta

    def add_in_place(self, replica: str, by: int, down: bool = False) -> None:
        """Apply an increment (a decrement if ``down``) without building its delta.

        A replica batching many writes calls this and keeps the entry it leaves, the key's
        delta (:func:`own_columns`; :meth:`own_delta` builds the same for one key).
        """
        entries = self._n if down else self._p
        if type(by) is int and by > 0 and replica in KNOWN_REPLICAS:  # the common case
            n = entries.get(replica, 0) + by
            if n <= MAX_INT:
                entries[replica] = n
                return
        _bump(entries, replica, by)  # validates, raises

    def own_delta(self, replica: str) -> PNCounter:
        """Return the delta holding ``replica``'s entries: what its own writes changed."""
        delta = _new(PNCounter)
        p, n = self._p.get(replica), self._n.get(replica)
        delta._p = {} if p is None else {replica: p}
        delta._n = {} if n is None else {replica: n}
        return delta

    @classmethod
    def column_values(cls, replica: str, column: Column) -> dict[str, PNCounter]:
        """Return a counter column's entries as one delta per key (see :mod:`crdtsync.group`)."""
        up, down = column
        out = {}
        for key, n in up.items():
            x = _new(cls)
            x._p, x._n = {replica: n}, {}
            out[key] = x
        for key, n in down.items():
            have = out.get(key)
            if have is None:
                have = out[key] = _new(cls)
                have._p, have._n = {}, {}
            have._n[replica] = n
        return out

    join_column = classmethod(_join_column)
    column_from_json = classmethod(_column_from_json)
    join_columns = classmethod(_join_columns)

    @property
    def value(self) -> int:
        return sum(self._p.values()) - sum(self._n.values())

    def merge(self, other: Any) -> None:
        if type(other) is not PNCounter:
            self._check_same(other)
        theirs = other._p  # _vv_merge inlined: one call per key of a sync interval
        if theirs:
            mine = self._p
            get = mine.get
            for r, c in theirs.items():
                if c > get(r, 0):
                    mine[r] = c
        theirs = other._n
        if theirs:
            mine = self._n
            get = mine.get
            for r, c in theirs.items():
                if c > get(r, 0):
                    mine[r] = c

    def novel(self, delta: Any) -> PNCounter | None:
        if type(delta) is not PNCounter:
            self._check_same(delta)
        return _pncounter_or_none(_vv_novel(self._p, delta._p), _vv_novel(self._n, delta._n))

    @classmethod
    def join_all(cls, values: list[PNCounter]) -> PNCounter:
        """Return the join of ``values`` (all PNCounters) as a new value, in one pass.

        The loops of :func:`_vv_join_all` inlined: a sync interval joins one call per key.
        """
        p: dict[str, int] = {}
        n: dict[str, int] = {}
        pget, nget = p.get, n.get
        for v in values:
            for r, c in v._p.items():
                if c > pget(r, 0):
                    p[r] = c
            if v._n:
                for r, c in v._n.items():
                    if c > nget(r, 0):
                        n[r] = c
        out = _new(PNCounter)
        out._p, out._n = p, n
        return out

    def join_novel(self, delta: Any) -> PNCounter | None:
        """Merge ``delta`` and return :meth:`novel` of it (computed in the same pass).

        If every entry of ``delta`` is new here (the usual case), the novel part is
        ``delta`` itself, as for the other types: do not change it afterwards. Stale entries
        are listed only if there are some.
        """
        if type(delta) is not PNCounter:
            self._check_same(delta)
        stale_p = _join_stale(self._p, delta._p) if delta._p else None
        stale_n = _join_stale(self._n, delta._n) if delta._n else None
        if stale_p is None and stale_n is None:
            return delta if delta._p or delta._n else None
        return _pncounter_or_none(_without(delta._p, stale_p), _without(delta._n, stale_n))

    def copy(self) -> PNCounter:
        new = _new(PNCounter)
        new._p = dict(self._p)
        new._n = dict(self._n)
        return new

    def is_bottom(self) -> bool:
        return not self._p and not self._n

    def __eq__(self, other: object) -> bool:
        if type(other) is not PNCounter:
            return NotImplemented
        return self._p == other._p and self._n == other._n

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> Any:
        return [self._p, self._n]  # the codec sorts object keys (canonical form)

    log_json = to_json  # the canonical form is also the cheapest

    @classmethod
    def from_json(cls, obj: Any) -> PNCounter:
        if not isinstance(obj, list) or len(obj) != 2:
            raise ValueError("pncounter state must be [increments, decrements]")
        new = _new(cls)
        new._p = _vv_from_json(obj[0])
        new._n = _vv_from_json(obj[1])
        return new

    @classmethod
    def from_json_many(cls, states: list[Any]) -> list[PNCounter] | None:
        """Decode many freshly parsed states at once (a received group); None if any fails
        the bulk checks (then decode them one by one with :meth:`from_json`).

        The result takes ownership of the parsed dicts: pass objects nothing else holds.
        """
        if cls is not PNCounter:
            return None  # a subclass decodes its own way
        if not states:
            return []
        if set(map(type, states)) != {list} or set(map(len, states)) != {2}:
            return None
        ps, ns = zip(*states, strict=True)
        if not _vvs_ok(ps + ns):
            return None
        out = []
        for p, n in zip(ps, ns, strict=True):
            new = _new(PNCounter)
            new._p, new._n = p, n
            out.append(new)
        return out


def own_columns(up: dict[str, int], gup: dict[str, int], down: dict[str, int],
                replica: str) -> dict[tuple[type[Any], str], Column]:
    """Return ``replica``'s entries of a batch's counters as columns (see
    :mod:`crdtsync.group`), copies of the given dicts (a replica's own writes of a batch,
    whose entries *are* their delta). Each maps a key to the replica's entry in that key's
    counter, as its last write left it: ``up`` the PNCounters incremented (their ``_p``
    entries), ``gup`` the GCounters, ``down`` the PNCounters decremented (``_n``)."""
    out: dict[tuple[type[Any], str], Column] = {}
    if up or down:
        out[(PNCounter, replica)] = (dict(up), dict(down))
    if gup:
        out[(GCounter, replica)] = (dict(gup), {})
    return out


def _join_stale(mine: dict[str, int], theirs: dict[str, int]) -> list[str] | None:
    """Join ``theirs`` into ``mine``; return the replicas whose entries were not new (None:
    all were new, the usual case)."""
    stale: list[str] | None = None
    get = mine.get
    for r, c in theirs.items():
        if c > get(r, 0):
            mine[r] = c
        elif stale is None:
            stale = [r]
        else:
            stale.append(r)
    return stale


def _without(entries: dict[str, int], stale: list[str] | None) -> dict[str, int]:
    """Return a copy of ``entries`` without the replicas in ``stale``."""
    if not stale:
        return dict(entries)
    return {r: n for r, n in entries.items() if r not in stale}


def _pncounter_or_none(p: dict[str, int], n: dict[str, int]) -> PNCounter | None:
    if not p and not n:
        return None
    out = _new(PNCounter)
    out._p, out._n = p, n
    return out
