"""LWWRegister: last-writer-wins register on hybrid-logical-clock timestamps.

The write with the greatest ``(timestamp, replica id)`` wins. Timestamps come from a
:class:`~crdtsync.clock.HybridLogicalClock`, never from a bare wall clock, so a write made
after another one it has seen always carries a greater timestamp. Two writes with equal
timestamps are ordered by replica id, and (only possible if one replica reused a timestamp)
by the canonical encoding of the value, so the join is commutative in every case.
"""

from __future__ import annotations

from typing import Any

from crdtsync.clock import HLCTimestamp, pack
from crdtsync.codec import (
    KNOWN_REPLICAS,
    MAX_INT,
    check_int,
    check_json_value,
    check_replica,
    dumps,
    remember_replica,
)
from crdtsync.types.base import Crdt, register

__all__ = ["LWWRegister", "check_timestamp"]


def check_timestamp(timestamp: Any) -> int:
    """Return an int timestamp for an int or an :class:`HLCTimestamp`."""
    if isinstance(timestamp, HLCTimestamp):
        return pack(timestamp.physical_ms, timestamp.logical)
    return check_int(timestamp, low=0, high=MAX_INT)


def _private(value: Any) -> Any:
    """Validate a register value, copying containers so later caller edits cannot leak in."""
    t = type(value)
    if t is str and not value.isascii():
        value.encode("utf-8")  # lone surrogates cannot be encoded: ValueError
    if value is None or t is int or t is str or t is bool:
        if t is int and not -(2**63) <= value <= 2**64 - 1:
            raise ValueError(f"int value {value} out of the 64-bit range")
        return value
    return check_json_value(value)


@register
class LWWRegister(Crdt):
    """Register holding the value of the write with the greatest (timestamp, replica)."""

    __slots__ = ("_ts", "_rid", "_val")
    TYPE = "lww"

    def __init__(self) -> None:
        self._ts = -1
        self._rid = ""
        self._val: Any = None

    def assign(self, replica: str, value: Any, timestamp: int | HLCTimestamp) -> LWWRegister:
        """Write ``value`` (any JSON value) at ``timestamp``; return the delta.

        If the register already holds a later write, the register keeps it (this write lost).
        """
        if replica not in KNOWN_REPLICAS:
            remember_replica(replica)
        ts = (timestamp if type(timestamp) is int and 0 <= timestamp <= MAX_INT
              else check_timestamp(timestamp))
        delta = LWWRegister.__new__(LWWRegister)
        delta._ts = ts
        delta._rid = replica
        delta._val = _private(value)
        self.merge(delta)
        return delta

    def assign_in_place(self, replica: str, value: Any, timestamp: int) -> None:
        """Like :meth:`assign`, without building the delta (a replica batching writes takes
        the register itself as the delta at commit)."""
        if (type(timestamp) is int and timestamp > self._ts and timestamp <= MAX_INT
                and replica in KNOWN_REPLICAS):
            t = type(value)
            if not ((t is int and -(2**63) <= value < 2**64) or (t is str and value.isascii())):
                value = _private(value)  # validates (and copies) before anything changes
            self._ts, self._rid, self._val = timestamp, replica, value
        else:
            self.assign(replica, value, timestamp)

    @property
    def value(self) -> Any:
        return self._val

    @property
    def timestamp(self) -> int | None:
        """The winning write's timestamp, None if never written."""
        return None if self._ts < 0 else self._ts

    @property
    def writer(self) -> str | None:
        """The replica whose write holds, None if never written."""
        return None if self._ts < 0 else self._rid

    def merge(self, other: Any) -> None:
        if type(other) is not LWWRegister:
            self._check_same(other)
        if other._ts > self._ts or (
            other._ts == self._ts
            and (other._rid > self._rid
                 or (other._rid == self._rid and dumps(other._val) > dumps(self._val)))
        ):
            self._ts, self._rid, self._val = other._ts, other._rid, other._val

    def join_novel(self, delta: Any) -> LWWRegister | None:
        """Merge ``delta``; return it if it won (what :meth:`novel` returns), else None."""
        if type(delta) is not LWWRegister:
            self._check_same(delta)
        ts, rid = delta._ts, delta._rid
        if ts > self._ts or (ts == self._ts and (
                rid > self._rid or (rid == self._rid and dumps(delta._val) > dumps(self._val)))):
            self._ts, self._rid, self._val = ts, rid, delta._val
            return delta  # type: ignore[no-any-return]
        return None

    def novel(self, delta: Any) -> LWWRegister | None:
        probe = self.copy()
        probe.merge(delta)
        return None if probe == self else delta

    def copy(self) -> LWWRegister:
        new = LWWRegister.__new__(LWWRegister)
        new._ts, new._rid, new._val = self._ts, self._rid, self._val
        return new

    def is_bottom(self) -> bool:
        return self._ts < 0

    def __eq__(self, other: object) -> bool:
        if type(other) is not LWWRegister:
            return NotImplemented
        return (self._ts == other._ts and self._rid == other._rid
                and dumps(self._val) == dumps(other._val))

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> Any:
        return None if self._ts < 0 else [self._ts, self._rid, self._val]

    log_json = to_json  # the canonical form is also the cheapest

    @classmethod
    def from_json(cls, obj: Any) -> LWWRegister:
        new = cls()
        if obj is None:
            return new
        if not isinstance(obj, list) or len(obj) != 3:
            raise ValueError("lww state must be null or [timestamp, replica, value]")
        new._ts = check_int(obj[0])
        new._rid = check_replica(obj[1])
        new._val = check_json_value(obj[2])
        return new
