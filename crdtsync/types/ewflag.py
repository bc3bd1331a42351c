"""EWFlag: enable-wins flag (Almeida et al. §7.1).

``enable`` and ``disable`` both clear what they have seen; ``enable`` adds a fresh dot. The
flag is on while any dot is live, so an enable concurrent with a disable wins.
"""

from __future__ import annotations

from typing import Any

from crdtsync.causal import CausalContext, Dot
from crdtsync.codec import check_replica, dotset_from_json, sorted_dots
from crdtsync.types.base import CausalCrdt, register

__all__ = ["EWFlag"]


@register
class EWFlag(CausalCrdt):
    """Enable-wins flag. Store: DotSet."""

    __slots__ = ()
    TYPE = "ewflag"

    def enable(self, replica: str) -> EWFlag:
        """Turn the flag on; return the delta."""
        check_replica(replica)
        ctx = CausalContext()
        ctx.add_all(self._store)
        dot = self._ctx.next_dot(replica)
        ctx.add(dot)
        self._store = {dot}
        return self._delta({dot}, ctx)

    def disable(self, replica: str) -> EWFlag:
        """Turn the flag off (a concurrent enable wins); return the delta."""
        check_replica(replica)
        ctx = CausalContext()
        ctx.add_all(self._store)
        self._store = set()
        return self._delta(set(), ctx)

    @classmethod
    def _new_store(cls) -> set[Dot]:
        return set()

    @classmethod
    def _store_value(cls, store: set[Dot]) -> bool:
        return bool(store)

    @classmethod
    def _store_to_json(cls, store: set[Dot]) -> Any:
        return sorted_dots(store)

    @classmethod
    def _store_from_json(cls, obj: Any, depth: int) -> set[Dot]:
        return dotset_from_json(obj)
