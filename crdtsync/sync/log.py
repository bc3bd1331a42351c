"""The delta log as the engine holds it: numbered entries (origin, group) in memory.

The host owns the durable copy; this mirror serves intervals to peers and decides what can
be trimmed. Seqs strictly increase; the host may skip numbers (a seq that holds nothing is
simply absent from every interval).

Entries are kept encoded. Only the newest ones, up to ``hot_bytes`` of encoded size, also
keep their decoded group, which is what a connected peer collects right after the commit;
an older entry (one a peer that fell behind, or reconnects, collects) is decoded when it is
collected. So the log costs its encoded size in memory, which ``max_log_bytes`` bounds,
instead of the 4-17x that the decoded groups of the benchmark workloads cost, and a
restart reads the durable log without decoding it. An entry that fails to decode when it is
collected is reported as :class:`CorruptEntry`: the sender trims the log through it, and
every peer that still needed it catches up from state instead.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Container, Mapping, Sequence
from typing import Any

from crdtsync.codec import decode_group, encode_group
from crdtsync.errors import DecodeError, LocalError
from crdtsync.group import Group
from crdtsync.types.base import Crdt

__all__ = ["CorruptEntry", "DEFAULT_HOT_BYTES", "Entry", "DeltaLog"]

DEFAULT_HOT_BYTES = 4 << 20
"""Encoded bytes of the newest entries that also keep their decoded groups."""


class CorruptEntry(LocalError):
    """A log entry's encoded group does not decode (``seq`` says which)."""

    def __init__(self, seq: int, error: DecodeError) -> None:
        super().__init__(f"delta-log entry {seq} does not decode: {error}")
        self.seq = seq


class Entry:
    """One log entry: ``origin`` is None for a local batch, else the peer it came from.

    ``blob`` is the encoded group (None until the entry leaves the hot part of the log, for
    an entry appended as a group alone); ``size`` its encoded size. :attr:`group` decodes
    the blob if the decoded group is not kept. ``upto``, for an entry from a peer: the
    entry holds nothing beyond the origin's log up to that seq (the end of the interval it
    came in), None if not known (catch-up states, or an entry a host restored without it).
    """

    __slots__ = ("origin", "size", "blob", "_group", "upto")

    def __init__(self, origin: str | None, group: Group | None, size: int,
                 blob: bytes | None, upto: int | None = None) -> None:
        self.origin = origin
        self.size = size
        self.blob = blob
        self._group = group
        self.upto = upto

    @property
    def hot(self) -> bool:
        """True while the decoded group is kept."""
        return self._group is not None

    @property
    def group(self) -> Group:
        """The entry's group: the kept one, or the blob decoded (DecodeError if it fails)."""
        if self._group is not None:
            return self._group
        assert self.blob is not None
        return decode_group(self.blob)

    def cool(self) -> None:
        """Keep only the encoded group (encode it first if it was appended decoded alone)."""
        if self._group is not None:
            if self.blob is None:
                self.blob = _kept(encode_group(self._group))
            self._group = None


class DeltaLog:
    """Entries ``seq -> Entry`` above ``trimmed_upto``; ``last_seq`` is the highest seq issued.

    ``hot_bytes``: the newest entries whose encoded sizes add up to at most this keep their
    decoded groups (the newest one always does); older ones are decoded when collected.
    An entry keeps its group exactly while its seq is in ``_hot``.
    """

    __slots__ = ("entries", "seqs", "last_seq", "trimmed_upto", "bytes", "hot_bytes",
                 "_hot", "_hot_size", "decoded", "corrupt", "left_out")

    def __init__(self, *, last_seq: int = 0, hot_bytes: int = DEFAULT_HOT_BYTES) -> None:
        if type(hot_bytes) is not int or hot_bytes < 0:
            raise LocalError(f"hot_bytes must be a non-negative int, got {hot_bytes!r}")
        self.entries: dict[int, Entry] = {}
        self.seqs: list[int] = []
        self.last_seq = last_seq
        self.trimmed_upto = last_seq
        self.bytes = 0
        self.hot_bytes = hot_bytes
        self._hot: deque[int] = deque()  # seqs of the entries that keep their groups, in order
        self._hot_size = 0
        self.decoded = 0  # entries decoded when collected (they had left the hot part)
        self.corrupt: list[str] = []  # why each entry that did not decode was dropped
        self.left_out = 0  # entries collected for a peer that held them from their origin

    @classmethod
    def restored(cls, records: Sequence[tuple[Any, ...]], last_seq: int, *,
                 hot_bytes: int = DEFAULT_HOT_BYTES) -> DeltaLog:
        """Rebuild the log after a restart from the host's durable entries (in seq order):
        ``(seq, origin, blob)`` with the encoded group as the host stored it (the entry is
        decoded only if it is collected), or ``(seq, origin, group)``, or either with the
        encoded size as a fourth item when the host knows it (else it is the blob's length,
        or the group is encoded; None: not known), and the entry's ``upto`` as a fifth
        (see :class:`Entry`; None: not known), as the host stored it with the entry.

        Seqs below the first entry count as trimmed: a peer that lacks them catches up
        from state.
        """
        if records and records[0][0] < 1:
            raise LocalError(f"log seqs start at 1, got {records[0][0]}")
        log = cls(last_seq=records[0][0] - 1 if records else last_seq, hot_bytes=hot_bytes)
        for record in records:
            if len(record) not in (3, 4, 5):
                raise LocalError(f"a log record is (seq, origin, group or blob[, size[, upto]]),"
                                 f" got {len(record)} items")
            size = record[3] if len(record) >= 4 else None
            upto = record[4] if len(record) == 5 else None
            if upto is not None and (type(upto) is not int or upto < 1 or record[1] is None):
                raise LocalError(f"log record {record[0]!r}: upto must be None or, for an "
                                 f"entry from a peer, an int >= 1, got {upto!r}")
            if isinstance(record[2], bytes):
                log.append_blob(*record[:3], size=size, upto=upto)
            else:
                log.append(*record[:3], size=size, upto=upto)
        if last_seq < log.last_seq:
            raise LocalError(f"last_seq {last_seq} is below the last log entry {log.last_seq}")
        log.last_seq = last_seq
        return log

    def __len__(self) -> int:
        return len(self.seqs)

    @property
    def hot_size(self) -> int:
        """Encoded bytes of the entries that keep their decoded groups."""
        return self._hot_size

    def append(self, seq: int, origin: str | None, group: Mapping[str, Crdt], *,
               size: int | None = None, blob: bytes | None = None,
               upto: int | None = None) -> None:
        """Add entry ``seq``; it must be above every seq issued before.

        ``blob``: the group encoded as the host logged it, if it has it (any encoding
        :func:`~crdtsync.codec.decode_group` reads back to the group); ``size``: its encoded
        size if the host knows it. Without either, the group is encoded now. ``upto``: see
        :class:`Entry`.
        """
        self._check_seq(seq)
        group = Group.of(group)
        if blob is not None:
            blob = _kept(blob)
        elif size is None:
            blob = _kept(encode_group(group))
        if size is None:
            assert blob is not None
            size = len(blob)
        self._add(seq, Entry(origin, group, size, blob, upto))
        self._hot.append(seq)
        self._hot_size += size
        self._cool_down()

    def append_blob(self, seq: int, origin: str | None, blob: bytes, *,
                    size: int | None = None, upto: int | None = None) -> None:
        """Add entry ``seq`` as its encoded group alone (decoded when collected)."""
        self._check_seq(seq)
        blob = _kept(blob)
        self._add(seq, Entry(origin, None, len(blob) if size is None else size, blob, upto))

    def _check_seq(self, seq: int) -> None:
        if type(seq) is not int or seq <= self.last_seq:
            raise LocalError(f"log seq {seq!r} must be an int above the last seq {self.last_seq}")

    def _add(self, seq: int, entry: Entry) -> None:
        self.entries[seq] = entry
        self.seqs.append(seq)
        self.last_seq = seq
        self.bytes += entry.size

    def _cool_down(self) -> None:
        """Drop the decoded groups of the oldest hot entries past ``hot_bytes`` (the newest
        entry stays hot)."""
        hot, entries = self._hot, self.entries
        while self._hot_size > self.hot_bytes and len(hot) > 1:
            entry = entries[hot.popleft()]  # trim removes trimmed seqs from _hot
            self._hot_size -= entry.size
            entry.cool()

    def skip(self, seq: int) -> None:
        """Account for seq ``seq`` without keeping an entry (a follower's log)."""
        self._check_seq(seq)
        self.last_seq = seq

    def collect(self, start: int, peer: str, max_bytes: int, stop: int | None = None,
                holds: Mapping[str, int] | None = None, *, expect: Container[str] = (),
                after: int = 0,
                needs: list[tuple[int, str, int]] | None = None) -> tuple[int, Group]:
        """Return ``(end, group)``: the join of entries ``start..end`` the peer lacks.

        Entries from ``peer`` are skipped, never sent back to it (BP, Enes et al. §V), and
        so are entries from another origin that ``peer`` already holds: ``holds`` maps an
        origin to the seq up to which the peer holds that origin's log, and an entry whose
        ``upto`` is at most that is covered. An entry with a known ``upto`` from an origin
        in ``expect`` (the peer is expected to get it from there), above seq ``after``, is
        skipped too, and ``needs`` (given) gets ``(seq, origin, upto)`` for it: the peer's
        mark passes ``seq - 1`` once it holds that much (a run of such entries from one
        origin with nothing sent between them is one item: its first seq, their highest
        ``upto``). The interval still covers the entries skipped so the peer's cursor passes
        them. ``end`` grows until the joined entries would exceed ``max_bytes`` (at least one
        entry is taken), or to ``stop``.
        """
        groups: list[Group] = []  # the groups of the entries taken, oldest first
        size = 0
        run = False  # the last entry seen was left out for ``needs``
        end = self.last_seq if stop is None else stop
        seqs, entries = self.seqs, self.entries
        for i in range(bisect_left(seqs, start), len(seqs)):
            seq = seqs[i]
            entry = entries[seq]
            if seq > end or (size and size + entry.size > max_bytes):
                end = seq - 1
                break
            origin = entry.origin
            if origin is not None:
                if origin == peer:
                    continue
                upto = entry.upto
                if upto is not None and holds and holds.get(origin, 0) >= upto:
                    self.left_out += 1
                    continue
                if upto is not None and needs is not None and seq > after and origin in expect:
                    if run and needs[-1][1] == origin:
                        if upto > needs[-1][2]:
                            needs[-1] = (needs[-1][0], origin, upto)
                    else:
                        needs.append((seq, origin, upto))
                    run = True
                    self.left_out += 1
                    continue
            run = False
            size += entry.size
            groups.append(self._group_of(seq, entry))
        if len(groups) <= 1:  # one entry (the usual case): its group as it is
            return end, groups[0] if groups else Group()
        return end, Group.join_all(groups)

    def _group_of(self, seq: int, entry: Entry) -> Group:
        if entry.hot:
            return entry.group
        self.decoded += 1
        try:
            return entry.group
        except DecodeError as exc:
            raise CorruptEntry(seq, exc) from exc

    def trim(self, upto: int) -> None:
        """Forget the entries with seq <= ``upto``."""
        if upto <= self.trimmed_upto:
            return
        cut = bisect_right(self.seqs, upto)
        entries, hot = self.entries, self._hot
        for seq in self.seqs[:cut]:
            entry = entries.pop(seq)
            self.bytes -= entry.size
            if entry.hot:
                self._hot_size -= entry.size
        del self.seqs[:cut]
        while hot and hot[0] <= upto:  # _hot is in seq order
            hot.popleft()
        self.trimmed_upto = min(upto, self.last_seq)

    def drop_corrupt(self, exc: CorruptEntry) -> None:
        """Trim the log through the entry that did not decode, and record why: a peer that
        still needs what is trimmed catches up from state."""
        self.trim(exc.seq)
        self.corrupt.append(str(exc))

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


def _kept(blob: Any) -> bytes:
    """Return an exact-size copy of ``blob`` to keep (bytes made by orjson hold on to their
    whole output buffer: a 10 KB group kept 0.26 MB)."""
    if type(blob) is not bytes:
        raise LocalError(f"an entry's blob must be bytes, got {type(blob).__name__}")
    return memoryview(blob).tobytes()
