"""Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).

A timestamp is one non-negative ``int``: ``physical_ms << 16 | logical``. Ordering the ints
orders the timestamps; the logical part counts events within one millisecond (and absorbs a
physical clock that stands still or steps back). Physical time is always passed in by the
caller: nothing in this module reads a clock.

Guarantees of :class:`HybridLogicalClock`: every timestamp it issues is strictly greater than
every timestamp it issued or received before (so it never goes backwards, even when the wall
clock does), and stays close to physical time. A received timestamp whose physical part is
more than ``max_drift_ms`` ahead of local physical time is refused with
:class:`~crdtsync.errors.ClockSkewError` and leaves the clock unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

from crdtsync.errors import ClockSkewError

__all__ = [
    "HybridLogicalClock", "HLCTimestamp", "pack", "unpack", "LOGICAL_BITS", "DEFAULT_MAX_DRIFT_MS",
]

LOGICAL_BITS = 16
_LOGICAL_MASK = (1 << LOGICAL_BITS) - 1
DEFAULT_MAX_DRIFT_MS = 60_000
_MAX_PHYSICAL = (1 << (63 - LOGICAL_BITS)) - 1


class HLCTimestamp(NamedTuple):
    """A timestamp split into its parts, for reading and printing."""

    physical_ms: int
    logical: int


def pack(physical_ms: int, logical: int = 0) -> int:
    """Return the int timestamp of ``(physical_ms, logical)``."""
    if not 0 <= physical_ms <= _MAX_PHYSICAL:
        raise ValueError(f"physical time {physical_ms} ms out of range")
    if not 0 <= logical <= _LOGICAL_MASK:
        raise ValueError(f"logical counter {logical} out of range")
    return (physical_ms << LOGICAL_BITS) | logical


def unpack(timestamp: int) -> HLCTimestamp:
    """Split an int timestamp into its physical and logical parts."""
    return HLCTimestamp(timestamp >> LOGICAL_BITS, timestamp & _LOGICAL_MASK)


class HybridLogicalClock:
    """Issue monotonic timestamps close to physical time; merge timestamps from peers.

    ``now(physical_ms)`` stamps a local event; ``update(remote, physical_ms)`` accounts for a
    received timestamp and returns a stamp greater than both. ``last`` is the high-water mark
    (persist it, and restore it with ``HybridLogicalClock(last=...)``).
    """

    __slots__ = ("last", "max_drift_ms", "_ms")

    def __init__(self, *, last: int = 0, max_drift_ms: int = DEFAULT_MAX_DRIFT_MS) -> None:
        if not isinstance(last, int) or last < 0:
            raise ValueError(f"last must be a non-negative int timestamp, got {last!r}")
        if not isinstance(max_drift_ms, int) or max_drift_ms < 0:
            raise ValueError(f"max_drift_ms must be a non-negative int, got {max_drift_ms!r}")
        self.last = last
        self.max_drift_ms = max_drift_ms
        self._ms = -1  # the physical_ms of the last now(): its next stamps are last + 1

    def now(self, physical_ms: int) -> int:
        """Return a fresh timestamp for a local event at wall time ``physical_ms``."""
        if physical_ms == self._ms:  # the same millisecond again: physical << 16 <= last
            self.last = last = self.last + 1
            return last
        if type(physical_ms) is int and 0 <= physical_ms <= _MAX_PHYSICAL:
            candidate = physical_ms << LOGICAL_BITS
        else:
            candidate = pack(max(physical_ms, 0))
        last = self.last
        self.last = last = candidate if candidate > last else last + 1
        self._ms = physical_ms  # last only grows, so candidate <= last stays true for it
        return last

    def update(self, remote: int, physical_ms: int) -> int:
        """Account for a received timestamp; return a timestamp above it and above ``last``.

        Raises ClockSkewError (and changes nothing) if ``remote`` is more than
        ``max_drift_ms`` ahead of ``physical_ms``.
        """
        self.check(remote, physical_ms)
        if remote > self.last:
            self.last = remote
        return self.now(physical_ms)

    def check(self, remote: int, physical_ms: int) -> None:
        """Raise ClockSkewError if ``remote`` is too far ahead of ``physical_ms``."""
        if not isinstance(remote, int) or isinstance(remote, bool) or remote < 0:
            raise ClockSkewError(f"remote timestamp {remote!r} is not a non-negative int")
        ahead = (remote >> LOGICAL_BITS) - physical_ms
        if ahead > self.max_drift_ms:
            raise ClockSkewError(
                f"remote timestamp {remote} is {ahead} ms ahead of local time "
                f"(max drift {self.max_drift_ms} ms)"
            )
