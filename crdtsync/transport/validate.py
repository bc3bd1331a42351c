"""The delta rule: which remote groups a replica joins (docs/security.md, "The delta rule").

The decoder (:mod:`crdtsync.codec`) already refuses anything malformed. This is the second
gate, for well-formed data that claims too much. Before the transport hands a remote group
(a delta interval or a part of a state catch-up) to the replica, :meth:`DeltaRules.check`
looks at every replica id and dot it names:

- every replica id must belong to a cluster member: its *name* (the part before the first
  ``.``) must be in ``members``, when a member list is configured;
- every dot's sequence number must be at most ``max_seq`` (default 2^48: a replica issuing a
  million dots a second takes nine years to reach it).

Replica ids and dots appear in causal contexts (the version vector and the cloud; the
decoder has checked that every live dot lies in its context, so the context covers the
store), in counter entries (GCounter, PNCounter), and as LWW writers (standalone and map
fields). Counter *totals* and HLC timestamps are not sequence numbers: totals may reach
2^63-1 legitimately, and timestamps are bounded by the clock's drift check.

Why: a context that claims ``("us.3f9a2c1b", 2^62)`` makes every future write of that
replica to the key look already seen, so it would be silently dropped everywhere the delta
spreads; a writer id from outside the cluster is a forged or misrouted write.

A group that breaks the rule is rejected as a whole (a group is an atomic batch): nothing of
it is joined; it is counted and logged, and the interval is still acknowledged, as for a
type mismatch, so the link goes on. Every replica with the same rules rejects the same
groups. The check is one pass over the group: O(size of the delta), never of the state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from crdtsync.causal import CausalContext, DotMap
from crdtsync.group import Group
from crdtsync.types import CausalCrdt, GCounter, LWWRegister, ORMap, PNCounter

__all__ = ["DeltaRules", "DEFAULT_MAX_SEQ"]

DEFAULT_MAX_SEQ = 2**48
"""Default bound on dot sequence numbers in remote deltas."""
_COUNTERS = frozenset({PNCounter, GCounter})


@dataclass(frozen=True, slots=True)
class DeltaRules:
    """The delta rule's parameters: member names (None: any) and the dot sequence bound."""

    members: frozenset[str] | None = None
    max_seq: int = DEFAULT_MAX_SEQ

    @classmethod
    def of(cls, *, members: Iterable[str] | None = None, own_name: str | None = None,
           max_seq: int = DEFAULT_MAX_SEQ) -> DeltaRules:
        """Build rules; ``own_name`` is always a member when a member list is given."""
        if type(max_seq) is not int or max_seq < 1:
            raise ValueError(f"max_seq must be a positive int, got {max_seq!r}")
        names = None
        if members is not None:
            names = frozenset(members) | ({own_name} if own_name else set())
        return cls(names, max_seq)

    def check(self, group: Mapping[str, Any]) -> str | None:
        """Return why ``group`` breaks the rule, or None if it may be joined."""
        if type(group) is Group:  # columns name their replica once
            if self.members is not None:
                reason = self._check_ids(group.replicas())
                if reason is not None:
                    return f"column: {reason}"
            group = group.deltas
        if self.members is None and set(map(type, group.values())) <= _COUNTERS:
            return None  # counters name no sequence numbers: only members would matter
        for key, value in group.items():
            reason = self._check_value(value)
            if reason is not None:
                return f"key {key!r:.80}: {reason}"
        return None

    def _check_value(self, value: Any) -> str | None:
        t = type(value)
        if t is PNCounter or t is GCounter:  # the common case first
            # Entries are replica -> total, not sequence numbers: only their owners matter,
            # and only with a member list (read-only access to the entries).
            if self.members is None:
                return None
            reason = self._check_ids(value._p)
            return reason if reason is not None or t is GCounter else self._check_ids(value._n)
        if isinstance(value, CausalCrdt):
            reason = self._check_context(value.context)
            if reason is None and isinstance(value, ORMap):
                # Read-only walk of the map's store for LWW field writers.
                reason = self._check_map_writers(value._store)
            return reason
        if isinstance(value, LWWRegister):
            writer = value.writer
            return None if writer is None else self._check_ids((writer,))
        return None

    def _check_context(self, ctx: CausalContext) -> str | None:
        for replica, top in ctx.vv.items():
            reason = self._check_dot(replica, top)
            if reason is not None:
                return reason
        for replica, extra in ctx.cloud.items():
            reason = self._check_dot(replica, max(extra))
            if reason is not None:
                return reason
        return None

    def _check_dot(self, replica: str, seq: int) -> str | None:
        if seq > self.max_seq:
            return f"dot ({replica!r:.140}, {seq}) is beyond the sequence bound {self.max_seq}"
        return self._check_ids((replica,))

    def _check_ids(self, replicas: Iterable[str]) -> str | None:
        members = self.members
        if members is None:
            return None
        for replica in replicas:
            if replica.partition(".")[0] not in members:
                return f"replica {replica!r:.140} is not a member of the cluster"
        return None

    def _check_map_writers(self, store: DotMap) -> str | None:
        if self.members is None:
            return None
        for (_key, tag), nested in store.entries.items():
            if tag == "lww":
                reason = self._check_ids(payload[1] for payload in nested.values())
            elif tag == "ormap":
                reason = self._check_map_writers(nested)
            else:
                continue
            if reason is not None:
                return reason
        return None
