"""JSON forms of CRDT values for the client API.

Sets become sorted lists (ints before strings), MV registers lists of their concurrent
values, maps JSON objects (int field keys become strings: JSON objects have string keys).
"""

from __future__ import annotations

from typing import Any

from crdtsync.codec import element_order

__all__ = ["to_json_value"]


def to_json_value(value: Any) -> Any:
    """Return the JSON form of a CRDT ``value``."""
    if isinstance(value, frozenset):
        return sorted(value, key=element_order)
    if isinstance(value, tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    return value
