"""MVRegister: multi-value register (Shapiro et al. 2011; Almeida et al. §7.2).

An assign replaces every value it has seen. Concurrent assigns are all kept, and ``value``
returns them as a tuple in a deterministic order (by canonical encoding, duplicates merged)
so the application can pick or combine; the next assign that has seen them collapses them.
"""

from __future__ import annotations

from typing import Any

from crdtsync.causal import CausalContext
from crdtsync.codec import check_dot, check_json_value, check_replica, value_order
from crdtsync.types.base import CausalCrdt, register
from crdtsync.types.lww import checked_value

__all__ = ["MVRegister"]


@register
class MVRegister(CausalCrdt):
    """Register that keeps every concurrently assigned value. Store: DotFun dot -> value."""

    __slots__ = ()
    TYPE = "mvregister"

    def assign(self, replica: str, value: Any) -> MVRegister:
        """Replace every value seen here by ``value`` (any JSON value); return the delta."""
        check_replica(replica)
        value = checked_value(value)
        ctx = CausalContext()
        ctx.add_all(self._store)
        dot = self._ctx.next_dot(replica)
        ctx.add(dot)
        self._store = {dot: value}
        return self._delta({dot: value}, ctx)

    def clear(self, replica: str) -> MVRegister:
        """Remove every value seen here (concurrent assigns survive); return the delta."""
        check_replica(replica)
        ctx = CausalContext()
        ctx.add_all(self._store)
        self._store = {}
        return self._delta({}, ctx)

    @classmethod
    def _new_store(cls) -> dict[Any, Any]:
        return {}

    @classmethod
    def _store_value(cls, store: dict[Any, Any]) -> tuple[Any, ...]:
        unique = {value_order(v): v for v in store.values()}
        return tuple(unique[k] for k in sorted(unique))

    @classmethod
    def _store_to_json(cls, store: dict[Any, Any]) -> Any:
        return [[r, s, store[(r, s)]] for r, s in sorted(store)]

    @classmethod
    def _store_from_json(cls, obj: Any, depth: int) -> dict[Any, Any]:
        if not isinstance(obj, list):
            raise ValueError("mvregister store must be a list")
        store = {}
        for item in obj:
            if not isinstance(item, list) or len(item) != 3:
                raise ValueError("mvregister entry must be [replica, seq, value]")
            dot = check_dot(item[:2])
            if dot in store:
                raise ValueError(f"duplicate dot {dot}")
            store[dot] = check_json_value(item[2])
        return store
