"""Reusable hypothesis strategies for the lattice core.

Every CRDT type is described by a :class:`TypeSpec`: its class, a strategy of *ops* (plain
tuples, without the replica id) and ``apply(value, replica, op)``, which runs the op's
mutator and returns the delta (or None when the op was refused on purpose, see
``ORMAP_MIXED``). On top of that:

- :func:`universes`: random histories on several replicas (random ops, random full-state
  merges) run to completion; gives the replicas' states and every delta issued. States of
  one universe are *consistent* (no dot was minted twice with different payloads), which is
  what the lattice laws presuppose;
- :func:`reachable_states`: ``n`` states of one universe;
- :func:`op_sequences`: random sequences of ``(replica, op)``;
- :func:`states_and_ops`: a reachable state, the replica that owns it, and one op to apply.

Replica ids come from a small alphabet ("a" .. "e") so that ids, dots and LWW ties collide;
elements come from a small set that holds both ``1`` and ``"1"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from crdtsync.clock import HLCTimestamp
from crdtsync.errors import TypeMismatchError
from crdtsync.types import (
    AWORSet,
    EWFlag,
    GCounter,
    LWWRegister,
    MVRegister,
    ORMap,
    PNCounter,
    RWORSet,
)

__all__ = [
    "REPLICA_IDS",
    "replica_ids",
    "elements",
    "small_elements",
    "keys",
    "json_values",
    "timestamps",
    "amounts",
    "TypeSpec",
    "SPECS",
    "SPECS_BY_NAME",
    "MIXED_KINDS",
    "Universe",
    "run_history",
    "histories",
    "universes",
    "reachable_states",
    "op_sequences",
    "states_and_ops",
    "any_state",
]

REPLICA_IDS = ("a", "b", "c", "d", "e")

replica_ids = st.sampled_from(REPLICA_IDS[:3])
"""A replica id from a tiny alphabet, so that concurrent writers collide."""

small_elements = st.sampled_from([1, "1", 0, "x", -7, ""])
"""Set elements from a small universe that holds both ``1`` and ``"1"``."""

elements = st.one_of(
    small_elements,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=8),
)
"""Any valid set element / map key: a str or a 64-bit int."""

keys = elements

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.sampled_from([0, 1, 1.0, True, "1"]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)

json_values = st.recursive(
    _json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=4), children, max_size=3),
    ),
    max_leaves=6,
)
"""JSON values as a register holds them (note ``1``, ``1.0``, ``True`` and ``"1"``)."""

timestamps = st.one_of(
    st.integers(min_value=0, max_value=6),
    st.builds(HLCTimestamp, st.integers(min_value=0, max_value=2), st.integers(0, 3)),
    st.integers(min_value=0, max_value=2**63 - 1),
)
"""LWW timestamps: ints (small ones collide) and HLCTimestamp tuples."""

amounts = st.one_of(st.integers(min_value=1, max_value=5), st.just(2**40))
"""Counter increments: small, and one large enough to matter, never enough to overflow."""


@dataclass(frozen=True)
class TypeSpec:
    """How to build and mutate one CRDT type in tests."""

    name: str
    cls: type
    ops: st.SearchStrategy[tuple[Any, ...]]
    apply: Callable[[Any, str, tuple[Any, ...]], Any]
    causal: bool = True
    children: dict[Any, TypeSpec] = field(default_factory=dict)

    def new(self) -> Any:
        """Return a bottom value."""
        return self.cls()

    def __repr__(self) -> str:  # shows up in hypothesis / pytest ids
        return self.name


# -- plain types --------------------------------------------------------------------------------


def _apply_gcounter(x: Any, replica: str, op: tuple[Any, ...]) -> Any:
    return x.increment(replica, op[1])


def _apply_pncounter(x: Any, replica: str, op: tuple[Any, ...]) -> Any:
    if op[0] == "inc":
        return x.increment(replica, op[1])
    return x.decrement(replica, op[1])


def _apply_set(x: Any, replica: str, op: tuple[Any, ...]) -> Any:
    if op[0] == "add":
        return x.add(replica, op[1])
    return x.remove(replica, op[1])


def _apply_lww(x: Any, replica: str, op: tuple[Any, ...]) -> Any:
    return x.assign(replica, op[1], op[2])


def _apply_mv(x: Any, replica: str, op: tuple[Any, ...]) -> Any:
    if op[0] == "assign":
        return x.assign(replica, op[1])
    return x.clear(replica)


def _apply_flag(x: Any, replica: str, op: tuple[Any, ...]) -> Any:
    if op[0] == "enable":
        return x.enable(replica)
    return x.disable(replica)


_set_ops = st.tuples(st.sampled_from(["add", "add", "remove"]), small_elements)

GCOUNTER = TypeSpec("gcounter", GCounter, st.tuples(st.just("inc"), amounts), _apply_gcounter,
                    causal=False)
PNCOUNTER = TypeSpec("pncounter", PNCounter,
                     st.tuples(st.sampled_from(["inc", "dec"]), amounts), _apply_pncounter,
                     causal=False)
AWORSET = TypeSpec("aworset", AWORSet, _set_ops, _apply_set)
RWORSET = TypeSpec("rworset", RWORSet, _set_ops, _apply_set)
LWW = TypeSpec("lww", LWWRegister, st.tuples(st.just("assign"), json_values, timestamps),
               _apply_lww, causal=False)
MVREGISTER = TypeSpec(
    "mvregister", MVRegister,
    st.one_of(st.tuples(st.just("assign"), json_values), st.just(("clear",))),
    _apply_mv,
)
EWFLAG = TypeSpec("ewflag", EWFlag, st.sampled_from([("enable",), ("disable",)]), _apply_flag)


# -- maps ---------------------------------------------------------------------------------------


def _map_spec(name: str, children: dict[Any, TypeSpec]) -> TypeSpec:
    """An ORMap whose keys each hold one fixed type (``children[key]``)."""
    updates = [st.tuples(st.just("update"), st.just(k), spec.ops) for k, spec in children.items()]
    ops = st.one_of(*updates, st.tuples(st.just("remove"), st.sampled_from(list(children))))

    def apply(m: Any, replica: str, op: tuple[Any, ...]) -> Any:
        if op[0] == "remove":
            return m.remove(replica, op[1])
        _, key, inner = op
        child = children[key]
        return m.update(replica, key, child.cls, lambda v: child.apply(v, replica, inner))

    return TypeSpec(name, ORMap, ops, apply, children=children)


ORMAP_SETS = _map_spec("ormap_sets", {"a": AWORSET, 1: AWORSET, "1": AWORSET})
"""A map of add-wins sets under colliding keys (1 and "1")."""

ORMAP = _map_spec("ormap", {
    "set": AWORSET, 1: RWORSET, "1": PNCOUNTER, "g": GCOUNTER, "lww": LWW,
    "mv": MVREGISTER, "flag": EWFLAG, "map": ORMAP_SETS,
})
"""A map holding every nested type, one of them a map."""

ORMAP_NESTED = _map_spec("ormap_nested", {
    "x": _map_spec("ormap_inner", {
        "y": _map_spec("ormap_leaf", {"s": AWORSET, "c": PNCOUNTER}),
        "f": EWFLAG,
    }),
    "s": AWORSET,
})
"""Three levels of maps."""


MIXED_KINDS: dict[str, TypeSpec] = {
    "aworset": AWORSET, "pncounter": PNCOUNTER, "lww": LWW, "ewflag": EWFLAG,
}


def _apply_mixed(m: Any, replica: str, op: tuple[Any, ...]) -> Any:
    if op[0] == "remove":
        return m.remove(replica, op[1])
    _, key, kind, inner = op
    child = MIXED_KINDS[kind]
    before = m.copy()
    try:
        return m.update(replica, key, child.cls, lambda v: child.apply(v, replica, inner))
    except TypeMismatchError:
        # A key holding another type refuses the update and stays as it was.
        assert m == before, "a refused update changed the map"
        return None


ORMAP_MIXED = TypeSpec(
    "ormap_mixed", ORMap,
    st.one_of(
        *[st.tuples(st.just("update"), st.sampled_from(["k", 1]), st.just(kind), spec.ops)
          for kind, spec in MIXED_KINDS.items()],
        st.tuples(st.just("remove"), st.sampled_from(["k", 1])),
    ),
    _apply_mixed,
)
"""A map whose keys may be created concurrently as different types (type conflicts)."""

SPECS: list[TypeSpec] = [
    GCOUNTER, PNCOUNTER, AWORSET, RWORSET, LWW, MVREGISTER, EWFLAG,
    ORMAP_SETS, ORMAP, ORMAP_NESTED, ORMAP_MIXED,
]
SPECS_BY_NAME = {s.name: s for s in SPECS}


# -- histories ----------------------------------------------------------------------------------


@dataclass
class Universe:
    """The outcome of one history: every replica's state and every delta issued."""

    spec: TypeSpec
    ids: list[str]
    states: list[Any]
    deltas: list[tuple[str, Any]]

    def join_all(self) -> Any:
        out = self.spec.new()
        for s in self.states:
            out.merge(s)
        return out


def run_history(spec: TypeSpec, ids: list[str], steps: list[tuple[Any, ...]]) -> Universe:
    """Run ``steps`` (``("op", i, op)`` or ``("merge", into, frm)``) on fresh replicas."""
    states = [spec.new() for _ in ids]
    deltas: list[tuple[str, Any]] = []
    for step in steps:
        if step[0] == "op":
            i = step[1] % len(ids)
            delta = spec.apply(states[i], ids[i], step[2])
            if delta is not None:
                deltas.append((ids[i], delta))
        else:
            into, frm = step[1] % len(ids), step[2] % len(ids)
            states[into].merge(states[frm])
    return Universe(spec, ids, states, deltas)


def histories(spec: TypeSpec, *, max_steps: int = 16) -> st.SearchStrategy[list[Any]]:
    """Random steps: ops on a replica (by index) and full-state merges between replicas."""
    index = st.integers(min_value=0, max_value=len(REPLICA_IDS) - 1)
    op = st.tuples(st.just("op"), index, spec.ops)
    return st.lists(
        st.one_of(op, st.tuples(st.just("merge"), index, index), op),
        min_size=min(3, max_steps),
        max_size=max_steps,
    )


@st.composite
def universes(draw: st.DrawFn, spec: TypeSpec, *, min_replicas: int = 2,
              max_replicas: int = 4, max_steps: int = 16) -> Universe:
    """Run a random history on ``min_replicas .. max_replicas`` replicas with distinct ids."""
    n = draw(st.integers(min_value=min_replicas, max_value=max_replicas))
    ids = draw(st.permutations(REPLICA_IDS))[:n]
    return run_history(spec, list(ids), draw(histories(spec, max_steps=max_steps)))


def reachable_states(spec: TypeSpec, n: int = 3, *,
                     max_steps: int = 16) -> st.SearchStrategy[list[Any]]:
    """``n`` states of one universe (the states of ``n`` replicas after a random history)."""
    return universes(spec, min_replicas=n, max_replicas=n + 1,
                     max_steps=max_steps).map(lambda u: u.states[:n])


def op_sequences(spec: TypeSpec, *, max_size: int = 12,
                 replicas: st.SearchStrategy[str] = replica_ids,
                 ) -> st.SearchStrategy[list[tuple[str, tuple[Any, ...]]]]:
    """Random sequences of ``(replica, op)``."""
    return st.lists(st.tuples(replicas, spec.ops), max_size=max_size)


@st.composite
def states_and_ops(draw: st.DrawFn, spec: TypeSpec, *,
                   max_steps: int = 16) -> tuple[Any, str, tuple[Any, ...]]:
    """A reachable state, the id of the replica that holds it, and an op for it to run."""
    u = draw(universes(spec, max_steps=max_steps))
    i = draw(st.integers(min_value=0, max_value=len(u.ids) - 1))
    return u.states[i], u.ids[i], draw(spec.ops)


any_state = st.sampled_from(SPECS).flatmap(
    lambda spec: reachable_states(spec, 1).map(lambda states: states[0])
)
"""A reachable state of any type."""
