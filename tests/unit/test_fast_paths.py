"""The replica's write fast paths: reused handles bound to live values, GC pauses.

``replica.counter(k)`` / ``register(k)`` return one reused handle per key, which writes
straight into the key's live value while the replica's epoch holds. These tests pin what
must stay true: a held handle never writes into a value that a remote delta of a greater
type replaced, never writes after close, and the deltas a commit ships are the same as the
checked path's (a second replica fed only the committed groups converges).
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crdtsync.gcpause as gcpause
import crdtsync.livehandles as livehandles
from crdtsync.codec import decode, encode
from crdtsync.errors import LocalError, TypeMismatchError
from crdtsync.gcpause import gc_paused
from crdtsync.replica import Committed, Replica
from crdtsync.store import MemoryStore
from crdtsync.sync.digest import default_digest
from crdtsync.transport.service import ReplicaHost
from crdtsync.types import LWWRegister, PNCounter, RWORSet


def _pair() -> tuple[Replica, Replica]:
    """A and B in memory; every group A commits is applied at B and committed there."""
    a, b = Replica.open(None, name="a"), Replica.open(None, name="b")

    def ship(entries: list[Committed]) -> None:
        for e in entries:
            if e.group:
                b.apply_remote(e.group, a.replica_id)
        b.commit()

    a.on_commit.append(ship)
    return a, b


def test_handles_are_reused_per_key_and_kind() -> None:
    r = Replica.open(None)
    assert r.counter("a") is r.counter("a")
    assert r.counter("a") is not r.counter("b")
    assert r.gcounter("a") is not r.counter("a")
    assert r.register("x") is r.register("x")
    assert r.set("s") is r.set("s") and r.rwset("s") is not r.set("s")


def test_handle_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(livehandles, "MAX_CACHED_HANDLES", 8)
    r = Replica.open(None)
    for i in range(50):
        r.counter(f"c{i}").increment(i + 1)
    assert len(r._counters) <= 8
    r.commit()
    assert [r.get(f"c{i}") for i in range(50)] == [i + 1 for i in range(50)]


def test_held_counter_handle_after_remote_type_replacement() -> None:
    """A remote rworset (greater tag) replaces a pncounter: the held handle must not write
    into the dropped counter; it raises like any write of the wrong type."""
    r = Replica.open(None, name="r")
    h = r.counter("k")
    h.increment(2)
    r.commit()
    assert h.increment(3) is not None  # bound by now (the fast path)
    s = RWORSet()
    delta = s.add("peer", "e")
    r.apply_remote({"k": delta}, "peer")
    r.commit()
    assert r.get("k") == frozenset({"e"})
    with pytest.raises(TypeMismatchError):
        h.increment()
    with pytest.raises(TypeMismatchError):
        h.decrement()
    assert r.get("k") == frozenset({"e"})
    assert not r.has_local_writes()


def test_held_register_handle_after_remote_type_replacement() -> None:
    r = Replica.open(None, name="r")
    h = r.register("k")
    h.assign(1)
    r.commit()
    h.assign(2)
    c = PNCounter()
    r.apply_remote({"k": c.increment("peer", 5)}, "peer")  # pncounter > lww
    r.commit()
    with pytest.raises(TypeMismatchError):
        h.assign(3)
    assert r.get("k") == 5


def test_held_handles_after_close(tmp_path: Any) -> None:
    r = Replica.open(str(tmp_path / "d"), name="r")
    c, g = r.counter("c"), r.register("g")
    c.increment(4)
    g.assign("v")
    r.commit()
    c.increment()
    g.assign("w")
    r.close()
    with pytest.raises(LocalError):
        c.increment()
    with pytest.raises(LocalError):
        g.assign("x")
    again = Replica.open(str(tmp_path / "d"), name="r")
    assert again.get("c") == 5 and again.get("g") == "w"
    again.close()


def test_follower_handles_refuse_writes() -> None:
    r = Replica.open(None, follower=True)
    with pytest.raises(LocalError):
        r.counter("c").increment()
    with pytest.raises(LocalError):
        r.register("g").assign(1)


def test_bad_amounts_change_nothing_on_a_bound_handle() -> None:
    r = Replica.open(None)
    h = r.counter("c")
    h.increment()
    h.increment()  # bound
    for bad in (0, -1, 1.5, True, 2**63):
        with pytest.raises((TypeError, ValueError)):
            h.increment(bad)  # type: ignore[arg-type]
    h.increment(2**63 - 3)  # entry is 2**63 - 1 now
    with pytest.raises(ValueError):
        h.increment()
    assert r.get("c") == 2**63 - 1


def test_bad_register_value_changes_nothing_on_a_bound_handle() -> None:
    r = Replica.open(None)
    h = r.register("g")
    h.assign(1)
    h.assign(2)  # bound
    with pytest.raises((TypeError, ValueError)):
        h.assign(object())
    with pytest.raises((TypeError, ValueError)):
        h.assign("\ud800")
    assert r.get("g") == 2


def test_a_losing_local_assign_still_ships_the_register() -> None:
    """A remote write far ahead (refused by the HLC as clock skew, so the clock does not
    jump) beats the next local assign; the commit still ships a valid delta."""
    a, b = _pair()
    now = [1_000_000]
    a._clock = lambda: now[0]
    h = a.register("g")
    h.assign("mine")
    a.commit()
    from crdtsync.types import LWWRegister
    ahead = LWWRegister().assign("peer", "theirs", (now[0] + 10**7) << 16)
    a.apply_remote({"g": ahead}, "peer")
    h.assign("later")  # loses: its timestamp is below the remote one
    a.commit()
    assert a.get("g") == "theirs" == b.get("g")


OPS = st.lists(st.one_of(
    st.tuples(st.just("inc"), st.sampled_from("abc"), st.integers(1, 9)),
    st.tuples(st.just("dec"), st.sampled_from("abc"), st.integers(1, 9)),
    st.tuples(st.just("assign"), st.sampled_from("xyz"), st.integers(0, 99)),
    st.tuples(st.just("commit"), st.just(""), st.just(0)),
    st.tuples(st.just("replace"), st.sampled_from("ax"), st.just(0)),
    st.tuples(st.just("batch"), st.sampled_from("ab"), st.integers(1, 9)),
), max_size=60)


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_fast_path_deltas_equal_the_state(ops: list[tuple[str, str, int]]) -> None:
    """Held handles (fast path) mixed with batches (checked path), commits and remote type
    replacements: the peer fed only the committed groups ends equal to the writer, and the
    values match a model."""
    a, b = _pair()
    counters = {k: a.counter(k) for k in "abc"}
    registers = {k: a.register(k) for k in "xyz"}
    model: dict[str, Any] = {}
    replaced: set[str] = set()
    for op, key, n in ops:
        if key in replaced:
            continue  # the key is an rworset now; writes to it raise (tested above)
        if op == "inc":
            counters[key].increment(n)
            model[key] = model.get(key, 0) + n
        elif op == "dec":
            counters[key].decrement(n)
            model[key] = model.get(key, 0) - n
        elif op == "batch":
            with a.batch() as bt:
                bt.counter(key).increment(n)
            model[key] = model.get(key, 0) + n
        elif op == "assign":
            registers[key].assign(n)
            model[key] = n
        elif op == "commit":
            a.commit()
        else:
            delta = RWORSet().add("peer", "e")
            a.apply_remote({key: delta}, "peer")
            b.apply_remote({key: delta}, "peer")
            replaced.add(key)
            model[key] = frozenset({"e"})
    a.commit()
    for key, value in model.items():
        assert a.get(key) == value, key
    assert a.keys() == b.keys()
    for key in a.keys():
        assert encode(a.state(key)) == encode(b.state(key)), key


def test_gc_paused_restores_the_collector() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_gc_paused_leaves_an_application_choice_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
    monkeypatch.setattr(gcpause, "ENABLED", False)
    with gc_paused():
        assert gc.isenabled()


def test_commit_and_apply_leave_the_collector_enabled() -> None:
    a, b = _pair()
    a.counter("c").increment()
    a.commit()
    assert gc.isenabled() and b.get("c") == 1


REGISTER_OPS = st.lists(st.tuples(st.sampled_from(["fast", "batch", "read", "commit"]),
                                  st.sampled_from("xy"), st.integers(0, 9)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(REGISTER_OPS)
def test_register_writes_keep_program_order_across_paths(
        ops: list[tuple[str, str, int]]) -> None:
    """Fast-path assignments wait for their stamp (commit, read, or a timestamp taken by
    another write); mixed with batch assignments, reads and commits on a clock that stands
    still, the last write in program order wins, here and at a peer fed the commits."""
    a, b = _pair()
    a._clock = lambda: 5_000
    model = {"x": -1, "y": -1}
    for key in model:  # the first write takes the checked path and binds the handle
        a.register(key).assign(-1)
    a.commit()
    for op, key, n in ops:
        if op == "fast":
            a.register(key).assign(n)
            model[key] = n
        elif op == "batch":
            with a.batch() as bt:
                bt.register(key).assign(n)
            model[key] = n
        elif op == "read":
            assert a.get(key) == model.get(key)
        else:
            a.commit()
    a.commit()
    assert {k: a.get(k) for k in "xy"} == model
    assert {k: a.state(k) for k in a.keys()} == {k: b.state(k) for k in b.keys()}


# -- committed register writes are written into their registers lazily (Replica._fold) ----


def _assigned_twice(**options: Any) -> Replica:
    """A replica whose register "t" was assigned 1 then 2 by the fast path, one commit each."""
    r = Replica(MemoryStore(), name="a", clock=lambda: 1_000, **options)
    for value in (1, 2):
        r.register("t").assign(value)
        r.commit()
    return r


def test_a_checkpoint_holds_the_committed_register_writes() -> None:
    r = _assigned_twice(checkpoint_entries=1)  # every commit checkpoints
    (rec,) = [rec for rec in r.store.keys() if rec.key == "t"]
    assert rec.base is not None and decode(rec.base).value == 2


def test_the_sync_host_serves_the_committed_register_writes() -> None:
    r = _assigned_twice()
    host = ReplicaHost(r)
    assert host.state("t").value == 2  # type: ignore[attr-defined]
    assert host.digest("t") == default_digest(r.state("t"))  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        host.state("nothing")


def test_an_older_remote_write_after_the_commit_is_not_novel() -> None:
    """The commit left the write out of the register; the join still meets it (RR: an
    older remote write is not new here, so it is not forwarded) and it keeps winning. The
    remote write ties with the register's first write, and "z.1" wins that tie."""
    r = Replica(MemoryStore(), name="a", clock=lambda: 1_000)
    r.register("t").assign(1)
    r.commit()
    first = r.state("t").timestamp  # type: ignore[union-attr]
    r.register("t").assign(2)
    r.commit()
    older = LWWRegister()
    older.assign("z.1", "older", first)
    assert not r.apply_remote({"t": older}, origin="z.1")
    assert r.get("t") == 2


def test_items_hold_the_committed_register_writes() -> None:
    r = _assigned_twice()
    assert {k: x.value for k, x in r.items()} == {"t": 2}
