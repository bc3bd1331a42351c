"""A delta group: the deltas of one atomic batch, key -> delta, some of them held by column.

A group is what a commit logs, what a Delta message carries and what a replica joins. Most
keys hold their delta as a value (``group.deltas``). The deltas that are one replica's
single entry may instead be held *by column* (``group.counts``), two dicts per (type,
replica):

- counters (``GCounter``, ``PNCounter``): ``{key: total}`` of the replica's increments and
  ``{key: total}`` of its decrements;
- LWW registers: ``{key: timestamp}`` and ``{key: value}`` of the replica's winning writes.

A batch of increments to 600 counters is then two dicts, not 600 delta objects; the
replica's commit, the delta log, the wire codec and the remote join all read the columns
directly, so such a write costs no object per key anywhere on its way to another replica.
A type that can be held by column has the class methods ``column_values`` (the column as
one delta per key), ``join_column`` (join it into a keyspace), ``join_columns`` (join two
columns) and ``column_from_json`` (check a parsed one).

As a :class:`~collections.abc.Mapping` a group is ``key -> delta`` with the columns'
entries folded into per-key deltas (built on first use and kept): generic code sees one
delta per key and never needs to know about columns.

Groups are values: do not change one (or the dicts it holds) once it is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from crdtsync.types.base import Crdt

__all__ = ["Group", "Column", "join_values"]

Column: TypeAlias = "tuple[dict[str, Any], dict[str, Any]]"
"""A column's two dicts, of one replica: ``({key: increments}, {key: decrements})`` for a
counter type, ``({key: timestamp}, {key: value})`` for LWW registers."""


class Group(Mapping[str, "Crdt"]):
    """A delta group: ``deltas`` (key -> delta) and ``counts`` ((type, replica) ->
    :data:`Column`); read as a mapping, key -> the join of everything it holds for the key."""

    __slots__ = ("deltas", "counts", "_view")

    def __init__(self, deltas: dict[str, Crdt] | None = None,
                 counts: dict[tuple[type[Any], str], Column] | None = None) -> None:
        self.deltas: dict[str, Crdt] = {} if deltas is None else deltas
        self.counts: dict[tuple[type[Any], str], Column] = {} if counts is None else counts
        self._view: dict[str, Crdt] | None = None if self.counts else self.deltas

    @classmethod
    def of(cls, group: Mapping[str, Crdt]) -> Group:
        """Return ``group`` if it is a Group, else a Group of its items (a dict key -> delta)."""
        if type(group) is Group:
            return group
        if not isinstance(group, Mapping):
            raise TypeError(f"a delta group must be a mapping key -> delta, "
                            f"got {type(group).__name__}")
        return cls(dict(group))

    # -- as a mapping -----------------------------------------------------------------------

    def view(self) -> dict[str, Crdt]:
        """Return the group as a plain dict key -> delta (the columns folded in; cached)."""
        view = self._view
        if view is None:
            view = self._view = self._fold()
        return view

    def _fold(self) -> dict[str, Crdt]:
        parts: dict[str, list[Crdt]] = {k: [v] for k, v in self.deltas.items()}
        for (kind, replica), column in self.counts.items():
            for key, value in kind.column_values(replica, column).items():
                values = parts.get(key)
                if values is None:
                    parts[key] = [value]
                else:
                    values.append(value)
        return {k: v[0] if len(v) == 1 else join_values(v) for k, v in parts.items()}

    def __getitem__(self, key: str) -> Crdt:
        return self.view()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.view())

    def __len__(self) -> int:
        return len(self.view())

    def __contains__(self, key: object) -> bool:
        return key in self.view()

    def __bool__(self) -> bool:
        return bool(self.deltas) or any(up or down for up, down in self.counts.values())

    def keys(self) -> Any:
        return self.view().keys()

    def items(self) -> Any:
        return self.view().items()

    def values(self) -> Any:
        return self.view().values()

    def get(self, key: str, default: Any = None) -> Any:
        return self.view().get(key, default)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Group):
            other = other.view()
        if not isinstance(other, Mapping):
            return NotImplemented
        return self.view() == dict(other.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Group({self.view()!r})"

    # -- without folding --------------------------------------------------------------------

    def touched(self) -> Iterable[str]:
        """Every key the group holds something for (a key may repeat; no folding)."""
        if not self.counts:
            return self.deltas.keys()
        return chain(self.deltas, *chain.from_iterable(self.counts.values()))

    def replicas(self) -> Iterable[str]:
        """The replicas that own the columns' entries."""
        return (replica for _, replica in self.counts)

    @classmethod
    def join_all(cls, groups: list[Group]) -> Group:
        """Return the join of ``groups`` (two or more) as a new group; they are unchanged.

        Per-key deltas of one key are joined with their type's ``join_all`` (the greatest
        type tag wins if a key holds several types, as on every replica); columns of the
        same type and replica by the type's ``join_columns`` (entry by entry).
        """
        parts: dict[str, list[Crdt]] = {}  # key -> its deltas in the groups, oldest first
        counts: dict[tuple[type[Any], str], Column] = {}
        for group in groups:
            for key, value in group.deltas.items():
                values = parts.get(key)
                if values is None:
                    parts[key] = [value]
                else:
                    values.append(value)
            for col, column in group.counts.items():
                have = counts.get(col)
                if have is None:
                    counts[col] = (dict(column[0]), dict(column[1]))
                else:
                    col[0].join_columns(have, column)
        deltas = {key: values[0] if len(values) == 1 else join_values(values)
                  for key, values in parts.items()}
        return cls(deltas, counts)


def join_values(values: list[Crdt]) -> Crdt:
    """Return the join of one key's deltas (two or more), leaving them unchanged.

    A key may hold different types (a remote delta of a greater type tag replaced it between
    two entries): as on every replica, the greatest tag wins and the values of lesser tags
    are dropped.
    """
    kind = type(values[0])
    for v in values:  # a loop, not any(generator): this runs once per key of an interval
        if type(v) is not kind:
            top = max(v.TYPE for v in values)
            values = [v for v in values if v.TYPE == top]
            if len(values) == 1:
                return values[0]
            kind = type(values[0])
            break
    return kind.join_all(values)
