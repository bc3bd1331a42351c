"""Counters and LWW registers as they live inside an :class:`~crdtsync.types.ORMap`.

Standalone counters and LWW registers are plain lattices (no dots, the smallest encoding).
Inside a map, every value must be a causal store so that removing a key can reset exactly
what the remover observed (Almeida et al. §7.5). These classes give them that form and the
same mutator API as the standalone types; :meth:`ORMap.update` hands one to your function
when you ask for a ``PNCounter``, ``GCounter`` or ``LWWRegister`` field.

- Counter field: DotFun dot -> (increments, decrements). Each replica keeps one live dot that
  carries its running totals; an increment replaces it. (A join of deltas that skipped the
  delta removing an older dot can hold two dots of one replica; the value counts only each
  replica's latest dot, its running total, so such a join reads correctly too.) After a
  map remove, a replica's next increment counts from zero. An increment concurrent with a
  remove survives, carrying that replica's totals (so the field shows that replica's
  contribution, not only the increment).
- LWW field: DotFun dot -> (timestamp, replica, value). An assign replaces the dots it has
  seen by one dot holding the greater of its write and the best write it saw, so the field
  always shows the write with the greatest (timestamp, replica), as the standalone register.
"""

from __future__ import annotations

from typing import Any

from crdtsync.causal import CausalContext, Dot
from crdtsync.codec import (
    MAX_INT,
    check_dot,
    check_int,
    check_json_value,
    check_replica,
    dumps,
)
from crdtsync.types.base import CausalCrdt
from crdtsync.types.counters import check_amount
from crdtsync.types.lww import check_timestamp, checked_value

__all__ = ["MapCounter", "MapGCounter", "MapLWW"]


class MapCounter(CausalCrdt):
    """A PNCounter field of an ORMap. Store: DotFun dot -> (increments, decrements)."""

    __slots__ = ()
    TYPE = "pncounter"

    def increment(self, replica: str, by: int = 1) -> MapCounter:
        """Add ``by`` (a positive int) on behalf of ``replica``; return the delta."""
        return self._bump(replica, check_amount(by), 0)

    def decrement(self, replica: str, by: int = 1) -> MapCounter:
        """Subtract ``by`` (a positive int) on behalf of ``replica``; return the delta."""
        return self._bump(replica, 0, check_amount(by))

    def _bump(self, replica: str, plus: int, minus: int) -> MapCounter:
        check_replica(replica)
        store = self._store
        dctx = CausalContext()
        p = n = 0
        mine = [d for d in store if d[0] == replica]
        for dot in mine:
            p, n = store[dot]
        if p + plus > MAX_INT or n + minus > MAX_INT:
            raise ValueError(f"counter field total of {replica!r} would exceed 2**63-1")
        for dot in mine:
            del store[dot]
            dctx.add(dot)
        dot = self._ctx.next_dot(replica)
        dctx.add(dot)
        payload = (p + plus, n + minus)
        store[dot] = payload
        return self._delta({dot: payload}, dctx)

    @classmethod
    def _new_store(cls) -> dict[Dot, tuple[int, int]]:
        return {}

    @classmethod
    def _store_value(cls, store: dict[Dot, tuple[int, int]]) -> int:
        latest: dict[str, Dot] = {}
        for dot in store:
            if dot[1] > latest.get(dot[0], ("", 0))[1]:
                latest[dot[0]] = dot
        return sum(store[d][0] - store[d][1] for d in latest.values())

    @classmethod
    def _store_to_json(cls, store: dict[Dot, tuple[int, int]]) -> Any:
        return [[r, s, *store[(r, s)]] for r, s in sorted(store)]

    @classmethod
    def _store_from_json(cls, obj: Any, depth: int) -> dict[Dot, tuple[int, int]]:
        if not isinstance(obj, list):
            raise ValueError("counter field store must be a list")
        store: dict[Dot, tuple[int, int]] = {}
        for item in obj:
            if not isinstance(item, list) or len(item) != 4:
                raise ValueError("counter field entry must be [replica, seq, inc, dec]")
            dot = check_dot(item[:2])
            if dot in store:
                raise ValueError(f"duplicate dot {dot}")
            store[dot] = (check_int(item[2]), check_int(item[3]))
            if cls is MapGCounter and item[3]:
                raise ValueError("gcounter field cannot hold decrements")
        return store


class MapGCounter(MapCounter):
    """A GCounter field of an ORMap (increments only)."""

    __slots__ = ()
    TYPE = "gcounter"

    def decrement(self, replica: str, by: int = 1) -> MapCounter:
        """GCounters cannot decrement: always raises TypeError."""
        raise TypeError("a gcounter cannot be decremented; use a PNCounter")


def _rank(payload: tuple[int, str, Any]) -> tuple[int, str, bytes]:
    return (payload[0], payload[1], dumps(payload[2]))


class MapLWW(CausalCrdt):
    """An LWWRegister field of an ORMap. Store: DotFun dot -> (timestamp, replica, value)."""

    __slots__ = ()
    TYPE = "lww"

    def assign(self, replica: str, value: Any, timestamp: Any) -> MapLWW:
        """Write ``value`` at ``timestamp``; return the delta (the later write keeps winning)."""
        check_replica(replica)
        best = (check_timestamp(timestamp), replica, checked_value(value))
        store = self._store
        dctx = CausalContext()
        for dot, payload in store.items():
            dctx.add(dot)
            if _rank(payload) > _rank(best):
                best = payload
        dot = self._ctx.next_dot(replica)
        dctx.add(dot)
        self._store = {dot: best}
        return self._delta({dot: best}, dctx)

    @classmethod
    def _new_store(cls) -> dict[Dot, tuple[int, str, Any]]:
        return {}

    @classmethod
    def _store_value(cls, store: dict[Dot, tuple[int, str, Any]]) -> Any:
        if not store:
            return None
        return max(store.values(), key=_rank)[2]

    @classmethod
    def _store_to_json(cls, store: dict[Dot, tuple[int, str, Any]]) -> Any:
        return [[r, s, *store[(r, s)]] for r, s in sorted(store)]

    @classmethod
    def _store_from_json(cls, obj: Any, depth: int) -> dict[Dot, tuple[int, str, Any]]:
        if not isinstance(obj, list):
            raise ValueError("lww field store must be a list")
        store: dict[Dot, tuple[int, str, Any]] = {}
        for item in obj:
            if not isinstance(item, list) or len(item) != 5:
                raise ValueError("lww field entry must be [replica, seq, ts, writer, value]")
            dot = check_dot(item[:2])
            if dot in store:
                raise ValueError(f"duplicate dot {dot}")
            store[dot] = (check_int(item[2]), check_replica(item[3]), check_json_value(item[4]))
        return store
