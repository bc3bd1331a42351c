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
from crdtsync.group import Column
from crdtsync.types.base import Crdt, register

__all__ = ["LWWRegister", "check_timestamp", "checked_value"]


def check_timestamp(timestamp: Any) -> int:
    """Return an int timestamp for an int or an :class:`HLCTimestamp`."""
    if isinstance(timestamp, HLCTimestamp):
        return pack(timestamp.physical_ms, timestamp.logical)
    return check_int(timestamp, low=0, high=MAX_INT)


def checked_value(value: Any) -> Any:
    """Validate a register value, copying containers so later caller edits cannot leak in."""
    t = type(value)
    if t is str and not value.isascii():
        value.encode("utf-8")  # lone surrogates cannot be encoded: ValueError
    if value is None or t is int or t is str or t is bool:
        if t is int and not -(2**63) <= value <= 2**64 - 1:
            raise ValueError(f"int value {value} out of the 64-bit range")
        return value
    return check_json_value(value)


def _tie_wins(rid: str, value: Any, other_rid: str, other_value: Any) -> bool:
    """True if a write of ``value`` by ``rid`` beats one of ``other_value`` by ``other_rid``
    at the same timestamp: the greater replica id, then (one replica reusing a timestamp)
    the greater canonical encoding, so every join of registers is commutative."""
    return rid > other_rid or (rid == other_rid and dumps(value) > dumps(other_value))


def _plain(value: Any) -> bool:
    """True for a value that needs no check: an int in the 64-bit range or an ASCII str."""
    t = type(value)
    return (t is int and -(2**63) <= value < 2**64) or (t is str and value.isascii())


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
        delta._val = checked_value(value)
        self.merge(delta)
        return delta

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
        if other._ts > self._ts or (other._ts == self._ts and _tie_wins(
                other._rid, other._val, self._rid, self._val)):
            self._ts, self._rid, self._val = other._ts, other._rid, other._val

    def join_novel(self, delta: Any) -> LWWRegister | None:
        """Merge ``delta``; return it if it won (what :meth:`novel` returns), else None."""
        if type(delta) is not LWWRegister:
            self._check_same(delta)
        ts, rid = delta._ts, delta._rid
        if ts > self._ts or (ts == self._ts and _tie_wins(rid, delta._val, self._rid, self._val)):
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

    # -- columns: one replica's winning writes as ({key: timestamp}, {key: value}) ----------
    # (see crdtsync.group: a batch of assignments to many registers travels as two dicts)

    @classmethod
    def column_values(cls, replica: str, column: Column) -> dict[str, LWWRegister]:
        """Return a column's entries as one register per key."""
        values = column[1]
        out = {}
        for key, ts in column[0].items():
            x = LWWRegister.__new__(LWWRegister)
            x._ts, x._rid, x._val = ts, replica, values[key]
            out[key] = x
        return out

    @classmethod
    def join_column(cls, data: dict[str, Any], replica: str,
                    column: Column) -> tuple[Column, list[str]]:
        """Join ``replica``'s column into the registers of ``data`` (key -> value), the same
        rule as :meth:`merge` per key; return the entries that won (the given column itself
        when all did) and the keys left to the caller (absent, or not a register)."""
        stamps, values = column
        new_ts: dict[str, int] = {}
        new_val: dict[str, Any] = {}
        left: list[str] = []
        get = data.get
        for key, ts in stamps.items():
            x = get(key)
            if type(x) is not cls:
                left.append(key)
            elif ts > x._ts or (ts == x._ts and _tie_wins(replica, values[key], x._rid, x._val)):
                x._ts, x._rid, x._val = ts, replica, values[key]
                new_ts[key], new_val[key] = ts, x._val
        if len(new_ts) == len(stamps):
            return column, left
        return (new_ts, new_val), left

    @classmethod
    def join_columns(cls, have: Column, other: Column) -> None:
        """Join column ``other`` into ``have`` (both of one replica; ``have`` the caller's
        own dicts): per key, the greater timestamp (then the greater encoded value)."""
        stamps, values = have
        theirs = other[1]
        if not stamps:
            stamps.update(other[0])
            values.update(theirs)
            return
        get = stamps.get
        for key, ts in other[0].items():
            mine = get(key)
            if mine is None or ts > mine or (
                    ts == mine and _tie_wins("", theirs[key], "", values[key])):
                stamps[key], values[key] = ts, theirs[key]

    @classmethod
    def column_log_json(cls, stamps: dict[str, Any], values: dict[str, Any]) -> tuple[Any, Any]:
        """Return the delta log's form of a column: its one timestamp in place of the stamps
        when all are one, as a replica's own batch is (``Replica._stamp_assigned``), else the
        column as it is; :meth:`column_from_log` reads both."""
        ts = set(stamps.values())
        return (ts.pop(), values) if len(ts) == 1 else (stamps, values)

    @classmethod
    def column_from_log(cls, stamps: Any, values: Any) -> tuple[Any, Any]:
        """Undo :meth:`column_log_json` on parsed JSON (anything else is returned as it is,
        for :meth:`column_from_json` to check): one timestamp stands for every key."""
        if type(stamps) is int and type(values) is dict:
            return dict.fromkeys(values, stamps), values
        return stamps, values

    @classmethod
    def column_from_json(cls, stamps: dict[str, Any],
                         values: dict[str, Any]) -> Column:
        """Check a parsed column (keys already checked): the same keys on both sides,
        timestamps in ``0..2^63-1``, values JSON values as :meth:`from_json` takes them."""
        if stamps.keys() != values.keys():
            raise ValueError("an lww column must have the same keys for timestamps and values")
        ts = stamps.values()
        if ts and (set(map(type, ts)) != {int} or min(ts) < 0 or max(ts) > MAX_INT):
            for t in ts:
                check_int(t)
        if not all(map(_plain, values.values())):
            values = {k: check_json_value(v) for k, v in values.items()}
        return stamps, values

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
