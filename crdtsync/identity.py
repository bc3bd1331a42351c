"""Replica identity: a stable name plus a per-incarnation replica id used for dots.

``name`` is what operators see ("us"). ``replica_id`` ("us.3f9a2c1b") is what a replica's
dots, counter entries and delta-log numbers belong to. It is minted when a store is created,
and again whenever the store file is not the one it was minted for (a copy or a restored
backup: its path, device or inode differ), because such a store may be behind dots and log
numbers the original already handed out. Reusing them would silently lose writes.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from crdtsync.codec import check_replica
from crdtsync.errors import LocalError

__all__ = ["Identity", "load_identity", "fingerprint"]


@dataclass
class Identity:
    """Who a replica is, and which meta values must be written to record it."""

    name: str
    replica_id: str
    fresh_incarnation: bool
    meta_updates: dict[str, Any] = field(default_factory=dict)


def fingerprint(store_path: str | None) -> str | None:
    """Return a string that changes when the store file is copied or replaced."""
    if store_path is None:
        return None
    st = os.stat(store_path)
    return f"{os.path.realpath(store_path)}:{st.st_dev}:{st.st_ino}"


def load_identity(meta: dict[str, Any], *, name: str | None, store_path: str | None) -> Identity:
    """Read or mint the identity recorded in ``meta``."""
    stored_name = meta.get("name")
    if name is not None:
        check_replica(name)
        if "." in name:
            raise ValueError(f"replica name {name!r} must not contain '.'")
    if stored_name is not None and name is not None and name != stored_name:
        raise LocalError(f"store {store_path or '(memory)'} belongs to replica "
                         f"{stored_name!r}, not {name!r}")
    final = stored_name or name or f"r{secrets.token_hex(3)}"
    current = fingerprint(store_path)
    rid = meta.get("replica_id")
    if rid is not None and meta.get("fingerprint") == current:
        return Identity(final, rid, False)
    new_rid = f"{final}.{secrets.token_hex(4)}"
    updates = {"name": final, "replica_id": new_rid, "fingerprint": current}
    if rid is not None:
        updates["previous_ids"] = [*meta.get("previous_ids", []), rid]
    return Identity(final, new_rid, rid is not None, updates)
