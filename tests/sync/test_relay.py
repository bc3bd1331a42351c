"""Relayed marks (protocol v3): a replica leaves out of what it forwards to a peer the
entries that peer already holds from their origin, as the peer's accept and acks told it."""

from __future__ import annotations

import random

from crdtsync.group import Group
from crdtsync.sync import Accept, Ack, Apply, Delta, Nack
from crdtsync.sync.log import DeltaLog
from crdtsync.types import GCounter
from tests.sync.sim import Cluster


def counter(replica: str, n: int) -> GCounter:
    g = GCounter()
    g.increment(replica, n)
    return g


def mesh(**knobs: object) -> Cluster:
    knobs.setdefault("retransmit_after", 1.0)
    c = Cluster(random.Random(0), n=3, topology="mesh", **knobs)  # type: ignore[arg-type]
    c.pump()
    return c


def sent_log(c: Cluster) -> list[tuple[str, str, object]]:
    """Record every message sent from now on (Cluster.record)."""
    return c.record()


def pairs(sent: list[tuple[str, str, object]]) -> list[tuple[str, object]]:
    """The messages recorded, as ("sender>receiver", message)."""
    return [(f"{a}>{b}", m) for a, b, m in sent]


def cut(c: Cluster, a: str, b: str) -> None:
    edge = frozenset((a, b))
    c.cut.add(edge)
    if edge in c.pair_link:
        c.close(c.pair_link[edge])


def inc(c: Cluster, rid: str, key: str, by: int = 1) -> None:
    c.hosts[rid].write(key, lambda v: v.increment(rid, by))
    c.commit(rid)


def write_past_the_wait(c: Cluster, rid: str, key: str) -> None:
    """``rid`` writes; everything is pumped, then again after half of retransmit_after
    (a gate that stayed shut nacks)."""
    inc(c, rid, key)
    c.pump()
    c.now += 0.5
    for r in sorted(c.up):
        c.tick(r)
    c.pump()


# -- the log ------------------------------------------------------------------------------


def test_collect_leaves_out_what_the_peer_holds_from_the_origin_and_covers_it() -> None:
    log = DeltaLog()
    log.append(1, None, {"mine": counter("me", 1)})
    log.append(2, "a", {"a1": counter("a", 1)}, upto=10)
    log.append(3, "a", {"a2": counter("a", 2)}, upto=12)
    log.append(4, "a", {"a3": counter("a", 3)})  # upto unknown (restored, or catch-up)
    log.append(5, "p", {"back": counter("p", 1)}, upto=3)
    assert sorted(log.collect(1, "p", 1 << 20)[1]) == ["a1", "a2", "a3", "mine"]
    end, group = log.collect(1, "p", 1 << 20, holds={"a": 11})
    assert end == 5 and sorted(group) == ["a2", "a3", "mine"]
    end, group = log.collect(2, "p", 1 << 20, holds={"a": 12})
    assert end == 5 and sorted(group) == ["a3"]
    end, group = log.collect(2, "p", 1 << 20, stop=3, holds={"a": 1 << 40})
    assert (end, group) == (3, Group())  # nothing to send, and the interval covers it


def test_a_logged_entry_keeps_the_bound_of_what_it_came_in() -> None:
    c = mesh()
    engine = c.hosts["r1"].engine
    for bound, seq, want in ((7, 1, 7), (None, 2, None)):
        novel = {"g": counter("r0", seq)}
        engine.applied(Apply("r0", Group(novel), 7, bound=bound), seq, novel, c.now)
        assert engine._log.entries[seq].upto == want


# -- marks on the wire --------------------------------------------------------------------


def test_accept_tells_every_mark_and_acks_only_those_that_moved() -> None:
    c = mesh()
    sent = sent_log(c)
    inc(c, "r0", "g0")
    c.pump()
    # r1 acks r0's write to r0, and r2's forward of it to r2, telling r2 its mark of r0
    assert [m for w, m in pairs(sent) if w == "r1>r0" and isinstance(m, Ack)] == [Ack(1)]
    assert (("r0", 1),) in [m.marks for w, m in pairs(sent) if w == "r1>r2" and isinstance(m, Ack)]
    for _ in range(3):
        inc(c, "r2", "g2")
        c.pump()
        seq = c.hosts["r2"].dlast
        # r1's mark of r2 moved: r0 is told, r2 is not told of itself
        assert Ack(seq, (("r2", seq),)) in [m for w, m in pairs(sent) if w == "r1>r0"]
    told: dict[str, list[int]] = {}
    for w, m in pairs(sent):
        if w == "r1>r2" and isinstance(m, Ack):
            for origin, mark in m.marks:
                told.setdefault(origin, []).append(mark)
    assert list(told) == ["r0"] and told["r0"] == sorted(set(told["r0"]))  # each once
    cut(c, "r1", "r2")
    del sent[:]
    c.heal()
    c.pump()
    # a new link is told every mark, moved or not: r1 holds r2's log and r0's
    marks = c.hosts["r1"].dmarks
    assert [m for w, m in pairs(sent) if w == "r1>r2" and isinstance(m, Accept)] == [
        Accept(marks["r2"], (("r0", marks["r0"]),))]


def test_a_write_the_peer_holds_from_its_origin_is_not_forwarded_to_it() -> None:
    c = mesh()
    cut(c, "r1", "r2")
    inc(c, "r0", "g0", by=5)  # r1 and r2 each get it from r0, and log it to forward it
    c.pump()
    assert c.hosts["r1"].dlog and c.hosts["r2"].dlog
    sent = sent_log(c)
    c.heal()
    c.pump()
    forwarded = [m for w, m in pairs(sent) if w in ("r1>r2", "r2>r1") and isinstance(m, Delta)]
    assert forwarded and all(not m.group for m in forwarded)
    c.settle()
    c.check()


def test_the_bounds_of_logged_entries_survive_a_restart() -> None:
    """As above, but r1 and r2 restart (their engines rebuilt from the durable log) before
    the link between them heals: each entry comes back with the bound it was logged with,
    so r0's write is still left out both ways."""
    c = mesh()
    cut(c, "r1", "r2")
    inc(c, "r0", "g0", by=5)
    c.pump()
    for rid in ("r1", "r2"):
        c.crash(rid)
        c.restart(rid)
        assert [e.upto for e in c.hosts[rid].engine._log.entries.values()] == [1]
    c.pump()
    sent = sent_log(c)
    c.heal()
    c.pump()
    forwarded = [m for w, m in pairs(sent) if w in ("r1>r2", "r2>r1") and isinstance(m, Delta)]
    assert forwarded and all(not m.group for m in forwarded)
    assert c.hosts["r1"].engine.log_stats()["left_out"] > 0
    c.settle()
    c.check()


def test_a_write_the_peer_does_not_get_from_its_origin_comes_whole_after_a_wait() -> None:
    """r2 knows r0 but is cut from it: r1 first leaves r0's write out (its entry 1 needs
    r0's log up to 1); r2 holds its mark of r1 back, and after half of retransmit_after
    nacks naming r0; r1 sends it again whole, and leaves r0's entries out for r2 no more."""
    c = mesh()
    cut(c, "r1", "r2")
    cut(c, "r0", "r2")  # r2 does not hear from r0: it must get r0's write through r1
    inc(c, "r0", "g0", by=5)
    c.pump()
    sent = sent_log(c)
    c.cut = {frozenset(("r0", "r2"))}
    c.connect_all()
    c.pump()
    first = [m for w, m in pairs(sent) if w == "r1>r2" and isinstance(m, Delta)]
    assert [(m.needs, sorted(m.group)) for m in first] == [(((1, "r0", 1),), [])]
    assert "g0" not in c.hosts["r2"].durable and "r1" not in c.hosts["r2"].dmarks
    c.now += 0.5
    c.tick("r2")
    assert [m for w, m in pairs(sent) if w == "r2>r1" and isinstance(m, Nack)] == [Nack(0, ("r0",))]
    c.pump()
    again = [m for w, m in pairs(sent) if w == "r1>r2" and isinstance(m, Delta)][1:]
    assert [(m.needs, sorted(m.group)) for m in again] == [((), ["g0"])]
    assert c.hosts["r2"].durable["g0"].value == 5
    inc(c, "r0", "g0")  # r2 still does not hear from r0: it gets r0's next one whole
    c.pump()
    assert c.hosts["r2"].durable["g0"].value == 6
    assert c.hosts["r1"].engine.status()["r2"].relayed == ("r0",)
    assert c.hosts["r1"].engine.status()["r0"].relayed == ()
    c.heal()  # r2 hears from r0 again, and says so in its next ack to r1 (of r1's write)
    c.settle()
    inc(c, "r1", "g1")
    c.settle()
    assert c.hosts["r1"].engine.status()["r2"].relayed == ()
    c.check()


def test_a_mark_the_peer_held_before_its_nack_does_not_clear_the_doubt() -> None:
    """r2's mark of r0 moved (r0 logged r1's write) after r2 last acked r1, so r1 has not
    heard it. Once r2 nacks r0's write (it cannot reach r0), its next ack to r1 must not
    carry that old mark as news: r1 would take it as "r2 gets r0's log again", leave r0's
    writes out once more and wait for another nack. r1 keeps relaying r0 to r2."""
    c = mesh()
    inc(c, "r1", "g1")  # r2 acks r1 at once; its mark of r0 moves when r0 forwards it
    c.pump()
    told = c.hosts["r1"].engine._tx["r2"].holds.get("r0", 0)
    assert told < c.hosts["r2"].dmarks["r0"]  # what r1 heard is behind
    cut(c, "r0", "r2")
    for i in range(3):  # r0 keeps writing; r2 gets it all through r1
        write_past_the_wait(c, "r0", "g0")
        assert c.hosts["r2"].durable["g0"].value == i + 1
        assert c.hosts["r1"].engine.status()["r2"].relayed == ("r0",)
    c.settle()
    c.check()


def test_a_write_from_an_origin_the_peer_does_not_know_is_nacked_at_once() -> None:
    c = Cluster(random.Random(0), n=3, topology="star", retransmit_after=1.0)
    c.pump()
    hub = next(r for r in c.hosts if len(c.hosts[r].config.peers) == 2)
    a, b = sorted(set(c.hosts) - {hub})
    sent = sent_log(c)
    inc(c, a, "g0", by=3)
    c.pump()  # b never heard of a: the hub's interval that needs a is nacked, then whole
    nacks = [m for w, m in pairs(sent) if w == f"{b}>{hub}" and isinstance(m, Nack)]
    assert nacks == [Nack(0, (a,))]
    assert c.hosts[b].durable["g0"].value == 3


def test_marks_learned_on_acks_leave_out_later_forwards() -> None:
    """Under steady writes at r0, r1 learns from r2's acks what r2 holds of r0's log and
    forwards r2 only what r2 lacked when it last said; everything converges."""
    c = mesh()
    sent = sent_log(c)
    for i in range(20):
        inc(c, "r0", f"g{i % 3}")
        inc(c, "r1", "g9")
        c.pump()
    from_r1 = [m for w, m in pairs(sent) if w == "r1>r2" and isinstance(m, Delta)]
    with_r0_keys = [m for m in from_r1 if any(k != "g9" for k in m.group)]
    assert len(with_r0_keys) < len(from_r1) // 2
    assert c.hosts["r1"].engine.log_stats()["left_out"] > 0
    c.settle()
    c.check()


def test_a_region_back_from_a_cut_gets_each_write_once_and_its_marks_ratchet_up() -> None:
    """r2 was cut off while r0 and r1 wrote in turn (each logging the other's writes to
    forward them). On heal each sends r2 only its own writes, the other's left out with a
    need; r2's marks of r0 and r1 move up in turn (each need opened by the other's mark),
    with no nack and no timeout."""
    c = mesh()
    cut(c, "r0", "r2")
    cut(c, "r1", "r2")
    for i in range(6):
        inc(c, "r0", f"g{i}")  # r0's keys
        c.pump()
        inc(c, "r1", f"c{i}")  # r1's keys
        c.pump()
    sent = sent_log(c)
    c.heal()
    c.pump()  # no tick: nothing times out
    keys = {w: {k for m in ms for k in m.group} for w in ("r0>r2", "r1>r2")
            for ms in [[m for ww, m in pairs(sent) if ww == w and isinstance(m, Delta)]]}
    assert keys == {"r0>r2": {f"g{i}" for i in range(6)}, "r1>r2": {f"c{i}" for i in range(6)}}
    assert not [m for w, m in pairs(sent) if w.startswith("r2>") and isinstance(m, Nack)]
    r2 = c.hosts["r2"]
    assert r2.dmarks == {"r0": c.hosts["r0"].dlast, "r1": c.hosts["r1"].dlast}
    c.check_invariants()  # each mark holds what it promises
    c.settle()
    c.check()


def test_a_relay_link_that_comes_back_keeps_relaying() -> None:
    """As above, then r1's link to r2 drops and comes back: r2's accept tells r1 every mark
    it holds, that one of r0 too. It must not read as "r2 gets r0's log again" (r1 would
    leave r0's next write out and r2 would wait half of retransmit_after, then nack): r2
    told it with its nack, so r1 doubts r0 above it. r0's next write reaches r2 at once."""
    c = mesh()
    inc(c, "r1", "g1")
    c.pump()
    cut(c, "r0", "r2")
    write_past_the_wait(c, "r0", "g0")
    assert c.hosts["r2"].durable["g0"].value == 1
    assert c.hosts["r1"].engine.status()["r2"].relayed == ("r0",)
    cut(c, "r1", "r2")
    c.cut.discard(frozenset(("r1", "r2")))
    c.connect_all()
    c.pump()
    assert c.hosts["r1"].engine.status()["r2"].relayed == ("r0",)
    sent = sent_log(c)
    inc(c, "r0", "g0")
    c.pump()  # no tick: nothing waits
    assert c.hosts["r2"].durable["g0"].value == 2
    assert not [m for w, m in pairs(sent) if w == "r2>r1" and isinstance(m, Nack)]
    c.settle()
    c.check()
