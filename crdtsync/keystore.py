"""Loading the keyspace from a store, and deciding when a key's delta chain is folded.

Each key is stored as a base state plus the chain of key deltas committed since. A commit
appends the key's delta (cost: the delta). When a chain's bytes outgrow the base (and a
floor), the replica writes the full state as the new base instead, so loading stays
proportional to the state and appends stay amortised O(delta).
"""

from __future__ import annotations

from typing import Any

from crdtsync.codec import decode
from crdtsync.errors import DecodeError, StoreError
from crdtsync.types import Crdt
from crdtsync.types.base import REGISTRY

__all__ = ["KeyChains", "load_keyspace", "CHAIN_FLOOR"]

CHAIN_FLOOR = 4096
"""A chain shorter than this many bytes is never folded."""


class KeyChains:
    """Per-key (base bytes, chain bytes) bookkeeping."""

    def __init__(self) -> None:
        self._sizes: dict[str, list[int]] = {}

    def grow(self, key: str, nbytes: int) -> bool:
        """Account a delta of ``nbytes`` for ``key``; return True if it should be folded."""
        sizes = self._sizes.get(key)
        if sizes is None:
            sizes = self._sizes[key] = [0, 0]
        sizes[1] += nbytes
        return sizes[1] > max(sizes[0], CHAIN_FLOOR)

    def rebase(self, key: str, base_bytes: int) -> None:
        """Record that ``key`` was folded into a base of ``base_bytes``."""
        self._sizes[key] = [base_bytes, 0]

    def forget(self, key: str) -> None:
        """Forget ``key`` (its next write starts a new chain)."""
        self._sizes.pop(key, None)


def load_keyspace(store: Any, *, label: str) -> tuple[dict[str, Crdt], KeyChains]:
    """Rebuild every key from its base and delta chain; raise StoreError naming ``label``."""
    data: dict[str, Crdt] = {}
    chains = KeyChains()
    for rec in store.keys():
        cls = REGISTRY.get(rec.tag)
        if cls is None:
            raise StoreError(f"{label}: key {rec.key!r} has unknown type tag {rec.tag!r}")
        try:
            x = decode(rec.base) if rec.base is not None else cls()
            for blob in rec.deltas:
                x.merge(decode(blob))
        except (DecodeError, TypeError) as exc:
            raise StoreError(f"{label}: key {rec.key!r} is damaged: {exc}") from exc
        if type(x) is not cls:
            raise StoreError(f"{label}: key {rec.key!r} is tagged {rec.tag} but holds {x.TYPE}")
        data[rec.key] = x
        chains._sizes[rec.key] = [len(rec.base or b""), sum(len(b) for b in rec.deltas)]
    return data, chains
