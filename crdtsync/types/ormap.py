"""ORMap: a map from keys to nested CRDTs (Almeida et al. §7.5, with one shared context).

Each key holds a nested value of one type. ``update`` runs a mutator on the nested value and
returns the map delta; ``remove`` clears every dot of the key that the remover has seen.
Semantics a user relies on:

- remove resets what the remover observed; an update concurrent with a remove survives
  (update-wins): the key reappears holding only what the remover had not seen;
- nested types: AWORSet, RWORSet, MVRegister, EWFlag, ORMap (exactly as standalone), and
  PNCounter, GCounter, LWWRegister in their map form (see :mod:`crdtsync.types.embedded`);
- the first update of a key here fixes its type; updating it as another type raises
  TypeMismatchError. If two replicas concurrently create one key with different types, both
  are kept inside and ``value`` shows the one whose type tag sorts last, on every replica.

Example::

    m = ORMap()
    d1 = m.update("r1", "title", LWWRegister, lambda reg: reg.assign("r1", "hi", ts))
    d2 = m.update("r1", "likes", AWORSet, lambda s: s.add("r1", "alice"))
    m.value  # {"title": "hi", "likes": frozenset({"alice"})}
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from crdtsync.causal import CausalContext, DotMap, store_dots, store_is_bottom
from crdtsync.codec import check_element, check_replica, dotmap_from_json, element_order
from crdtsync.errors import TypeMismatchError
from crdtsync.types.base import MAX_DEPTH, CausalCrdt, Crdt, register
from crdtsync.types.counters import GCounter, PNCounter
from crdtsync.types.embedded import MapCounter, MapGCounter, MapLWW
from crdtsync.types.ewflag import EWFlag
from crdtsync.types.lww import LWWRegister
from crdtsync.types.mvregister import MVRegister
from crdtsync.types.orset import AWORSet, RWORSet

__all__ = ["ORMap"]


@register
class ORMap(CausalCrdt):
    """Observed-remove map of keys (str or int) to nested CRDTs. Store: DotMap."""

    __slots__ = ("_depth",)  # set on nested views only: how many maps hold this one
    TYPE = "ormap"
    _store: DotMap

    def update(self, replica: str, key: str | int, kind: type[Crdt],
               fn: Callable[[Any], Any]) -> ORMap:
        """Apply ``fn`` to the ``kind`` value under ``key``; return the map delta.

        ``fn`` receives the nested value (created empty if the key is absent), must call
        exactly one of its mutators and return that mutator's delta.
        """
        check_replica(replica)
        check_element(key)
        embed = _embed(kind)
        tag = embed.TYPE
        entries = self._store.entries
        for other in _NESTED:
            # After a concurrent type clash the type with the greatest tag is the one shown,
            # and stays writable; writing any other type of the key is refused.
            if other > tag and (key, other) in entries or (
                    other < tag and (key, other) in entries and (key, tag) not in entries):
                raise TypeMismatchError(f"map key {key!r} holds a {other}, not a {tag}")
        ik = (key, tag)
        view = embed._view(entries.get(ik) or embed._new_store(), self._ctx)
        if embed is ORMap:
            # Refuse here what every decoder would refuse (codec: at most MAX_DEPTH maps).
            depth = getattr(self, "_depth", 1) + 1
            if depth > MAX_DEPTH:
                raise ValueError(f"maps nested deeper than {MAX_DEPTH}")
            view._depth = depth  # type: ignore[attr-defined]
        try:
            delta = fn(view)
        except BaseException:
            self._resync(ik, view._store)  # fn may have changed the value before failing
            raise
        if type(delta) is not embed:
            self._resync(ik, view._store)
            raise TypeError(f"fn must return the delta of a {tag} mutator, got {delta!r:.80}")
        self._reindex(ik, view._store, delta)
        out = DotMap()
        if not store_is_bottom(delta._store):
            out.set_entry(ik, delta._store)
        return self._delta(out, delta._ctx)

    def remove(self, replica: str, key: str | int) -> ORMap:
        """Remove ``key`` as seen here; return the delta. A concurrent update survives."""
        check_replica(replica)
        check_element(key)
        store = self._store
        dctx = CausalContext()
        for tag in _NESTED:
            nested = store.entries.pop((key, tag), None)
            if nested is not None:
                for dot in list(store_dots(nested)):
                    store.owner.pop(dot, None)
                    dctx.add(dot)
        return self._delta(DotMap(), dctx)

    def _resync(self, ik: tuple[Any, str], nested: Any) -> None:
        """Make the dot index match ``nested`` again (slow path, after a failing ``fn``)."""
        store = self._store
        held = set(store_dots(nested))
        for dot in [d for d, owner in store.owner.items() if owner == ik and d not in held]:
            del store.owner[dot]
        for dot in held:
            store.owner[dot] = ik
        if store_is_bottom(nested):
            store.entries.pop(ik, None)
        else:
            store.entries[ik] = nested

    def _reindex(self, ik: tuple[Any, str], nested: Any, delta: CausalCrdt) -> None:
        store = self._store
        owner = store.owner
        held = nested.owner if isinstance(nested, DotMap) else nested
        for dot in delta._ctx.dots():
            if owner.get(dot) == ik and dot not in held:
                del owner[dot]
        for dot in store_dots(delta._store):
            owner[dot] = ik
        if store_is_bottom(nested):
            store.entries.pop(ik, None)
        else:
            store.entries[ik] = nested

    def get(self, key: str | int, default: Any = None) -> Any:
        """Return the value under ``key``, or ``default``."""
        return self.value.get(key, default)

    def __contains__(self, key: object) -> bool:
        return any((key, tag) in self._store.entries for tag in _NESTED)

    def __len__(self) -> int:
        return len({k for k, _ in self._store.entries})

    def __iter__(self) -> Iterator[str | int]:
        return iter(self.value)

    @classmethod
    def _new_store(cls) -> DotMap:
        return DotMap()

    @classmethod
    def _store_value(cls, store: DotMap) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, tag in sorted(store.entries, key=lambda ik: ik[1]):
            out[key] = _NESTED[tag]._store_value(store.entries[(key, tag)])
        return out

    @classmethod
    def _store_to_json(cls, store: DotMap) -> Any:
        entries = store.entries
        order = sorted(entries, key=lambda ik: (element_order(ik[0]), ik[1]))
        return [[k, t, _NESTED[t]._store_to_json(entries[(k, t)])] for k, t in order]

    @classmethod
    def _store_from_json(cls, obj: Any, depth: int) -> DotMap:
        if depth >= MAX_DEPTH:
            raise ValueError(f"maps nested deeper than {MAX_DEPTH}")

        def key_of(item: list[Any]) -> tuple[Any, str]:
            if len(item) != 3 or item[1] not in _NESTED:
                raise ValueError("ormap entry must be [key, known type tag, store]")
            return (check_element(item[0]), item[1])

        def nested_of(item: list[Any]) -> Any:
            return _NESTED[item[1]]._store_from_json(item[2], depth + 1)

        return dotmap_from_json(obj, key_of, nested_of)


_EMBED: dict[type, type[CausalCrdt]] = {
    AWORSet: AWORSet, RWORSet: RWORSet, MVRegister: MVRegister, EWFlag: EWFlag, ORMap: ORMap,
    PNCounter: MapCounter, GCounter: MapGCounter, LWWRegister: MapLWW,
}
_NESTED: dict[str, type[CausalCrdt]] = {cls.TYPE: cls for cls in _EMBED.values()}


def _embed(kind: Any) -> type[CausalCrdt]:
    try:
        return _EMBED[kind]
    except (KeyError, TypeError):
        raise TypeError(f"an ORMap cannot hold {kind!r}; use one of "
                        f"{', '.join(k.__name__ for k in _EMBED)}") from None
