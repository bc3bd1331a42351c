"""The delta log as the engine holds it: numbered entries (origin, group) in memory.

The host owns the durable copy; this mirror serves intervals to peers and decides what can
be trimmed. Seqs strictly increase; the host may skip numbers (a seq that holds nothing is
simply absent from every interval).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crdtsync.codec import encode_group
from crdtsync.errors import LocalError
from crdtsync.group import Group
from crdtsync.types.base import Crdt

__all__ = ["Entry", "DeltaLog"]


@dataclass(slots=True)
class Entry:
    """One log entry: ``origin`` is None for a local batch, else the peer it came from."""

    origin: str | None
    group: Group
    size: int


class DeltaLog:
    """Entries ``seq -> Entry`` above ``trimmed_upto``; ``last_seq`` is the highest seq issued."""

    __slots__ = ("entries", "seqs", "last_seq", "trimmed_upto", "bytes")

    def __init__(self, *, last_seq: int = 0) -> None:
        self.entries: dict[int, Entry] = {}
        self.seqs: list[int] = []
        self.last_seq = last_seq
        self.trimmed_upto = last_seq
        self.bytes = 0

    @classmethod
    def restored(cls, records: Sequence[tuple[Any, ...]], last_seq: int) -> DeltaLog:
        """Rebuild the log after a restart from the host's durable entries (in seq order):
        ``(seq, origin, group)``, or ``(seq, origin, group, size)`` with the group's encoded
        size when the host knows it (saves encoding every entry again).

        Seqs below the first entry count as trimmed: a peer that lacks them catches up
        from state.
        """
        if records and records[0][0] < 1:
            raise LocalError(f"log seqs start at 1, got {records[0][0]}")
        log = cls(last_seq=records[0][0] - 1 if records else last_seq)
        for record in records:
            if len(record) not in (3, 4):
                raise LocalError(f"a log record is (seq, origin, group[, size]), "
                                 f"got {len(record)} items")
            log.append(*record[:3], size=record[3] if len(record) == 4 else None)
        if last_seq < log.last_seq:
            raise LocalError(f"last_seq {last_seq} is below the last log entry {log.last_seq}")
        log.last_seq = last_seq
        return log

    def __len__(self) -> int:
        return len(self.seqs)

    def append(self, seq: int, origin: str | None, group: Mapping[str, Crdt], *,
               size: int | None = None) -> None:
        """Add entry ``seq``; it must be above every seq issued before.

        ``size``: the group's encoded size if the host knows it (saves encoding it again).
        """
        if type(seq) is not int or seq <= self.last_seq:
            raise LocalError(f"log seq {seq!r} must be an int above the last seq {self.last_seq}")
        group = Group.of(group)
        if size is None:
            size = len(encode_group(group))
        self.entries[seq] = Entry(origin, group, size)
        self.seqs.append(seq)
        self.last_seq = seq
        self.bytes += size

    def skip(self, seq: int) -> None:
        """Account for seq ``seq`` without keeping an entry (a follower's log)."""
        if type(seq) is not int or seq <= self.last_seq:
            raise LocalError(f"log seq {seq!r} must be an int above the last seq {self.last_seq}")
        self.last_seq = seq

    def collect(self, start: int, peer: str, max_bytes: int,
                stop: int | None = None) -> tuple[int, Group]:
        """Return ``(end, group)``: the join of entries ``start..end`` not from ``peer``.

        Entries from ``peer`` are skipped, never sent back to it (BP, Enes et al. §V); the
        interval still covers them so the peer's cursor passes them. ``end`` grows until the
        joined entries would exceed ``max_bytes`` (at least one entry is taken), or to
        ``stop``.
        """
        groups: list[Group] = []  # the groups of the entries taken, oldest first
        size = 0
        end = self.last_seq if stop is None else stop
        seqs, entries = self.seqs, self.entries
        for i in range(bisect_left(seqs, start), len(seqs)):
            seq = seqs[i]
            entry = entries[seq]
            if seq > end or (size and size + entry.size > max_bytes):
                end = seq - 1
                break
            if entry.origin == peer:
                continue
            size += entry.size
            groups.append(entry.group)
        if len(groups) <= 1:  # one entry (the usual case): its group as it is
            return end, groups[0] if groups else Group()
        return end, Group.join_all(groups)

    def trim(self, upto: int) -> None:
        """Forget the entries with seq <= ``upto``."""
        if upto <= self.trimmed_upto:
            return
        cut = bisect_right(self.seqs, upto)
        for seq in self.seqs[:cut]:
            self.bytes -= self.entries.pop(seq).size
        del self.seqs[:cut]
        self.trimmed_upto = min(upto, self.last_seq)

    def bound(self, *, max_entries: int, max_bytes: int) -> int:
        """Return the highest seq to trim so that the log fits the bounds (0: it fits)."""
        upto = 0
        if len(self.seqs) > max_entries:
            upto = self.seqs[len(self.seqs) - max_entries - 1]
        if self.bytes > max_bytes:
            total = self.bytes
            for seq in self.seqs:
                if total <= max_bytes:
                    break
                total -= self.entries[seq].size
                upto = max(upto, seq)
        return upto

