"""Unit tests of SyncEngine: handshake, intervals, acks, trimming, gaps, BP, RR, followers."""

from __future__ import annotations

import random

import pytest

from crdtsync.errors import LocalError, PeerError
from crdtsync.sync import (
    PROTOCOL_VERSION,
    Accept,
    Ack,
    Apply,
    Close,
    Delta,
    Hello,
    Nack,
    Refuse,
    Send,
    SyncConfig,
    SyncEngine,
    Trim,
    decode_message,
    encode_message,
)
from crdtsync.types import GCounter
from tests.sync.fakehost import FakeHost
from tests.sync.sim import Cluster


def cluster(n: int = 2, topology: str = "mesh", **knobs: object) -> Cluster:
    knobs.setdefault("retransmit_after", 1.0)
    return Cluster(random.Random(0), n=n, topology=topology, **knobs)  # type: ignore[arg-type]


def inc(c: Cluster, rid: str, key: str = "g0", by: int = 1) -> None:
    c.hosts[rid].write(key, lambda v: v.increment(rid, by))


def of(c: Cluster, kind: type, dst: str | None = None) -> list:
    return [m for d, m in c.peek() if isinstance(m, kind) and dst in (None, d)]


def value(c: Cluster, rid: str, key: str = "g0") -> object:
    v = c.hosts[rid].durable.get(key)
    return None if v is None else v.value


def lone_engine(**cfg: object) -> tuple[SyncEngine, list]:
    """An engine whose peer is played by the test; returns the engine and its connect outputs."""
    host = FakeHost(SyncConfig(replica="me", cluster="c", **cfg))  # type: ignore[arg-type]
    return host.engine, host.engine.connect("L", 0.0)


def hello(replica: str = "p", *, version: int = PROTOCOL_VERSION, cluster: str = "c",
          last_seq: int = 0, follower: bool = False) -> Hello:
    return Hello(version, cluster, replica, follower, last_seq)


# -- handshake ------------------------------------------------------------------------------


def test_handshake_establishes_both_directions() -> None:
    c = cluster()
    c.pump()
    for rid, peer in (("r0", "r1"), ("r1", "r0")):
        status = c.hosts[rid].engine.status()[peer]
        assert status.connected and status.acked == 0 and status.lag == 0


@pytest.mark.parametrize(("msg", "reason"), [
    (hello(version=PROTOCOL_VERSION + 1), f"protocol version {PROTOCOL_VERSION + 1} is not"),
    (hello(version=1), "protocol version 1 is not supported"),
    (hello(cluster="other"), "in cluster 'other', not 'c'"),
    (hello("me"), "this replica's own id"),
])
def test_handshake_refused_with_reason(msg: Hello, reason: str) -> None:
    engine, _ = lone_engine()
    out = engine.receive("L", msg, 0.0)
    assert isinstance(out[0], Send) and isinstance(out[0].message, Refuse)
    assert reason in out[0].message.reason
    assert isinstance(out[1], Close) and out[1].link == "L"
    with pytest.raises(LocalError):  # the link is forgotten
        engine.receive("L", msg, 0.0)


def test_handshake_refuses_a_peer_whose_log_was_reset() -> None:
    host = FakeHost(SyncConfig(replica="me", cluster="c"))
    host.dmarks["p"] = 7
    host.restart()
    host.engine.connect("L", 0.0)
    out = host.engine.receive("L", hello(last_seq=3), 0.0)
    assert "must rejoin under a new id" in out[0].message.reason  # type: ignore[union-attr]


def test_refusal_received_closes_the_link() -> None:
    engine, _ = lone_engine()
    out = engine.receive("L", Refuse("go away"), 0.0)
    assert out == [Close("L", "refused by peer: go away")]


def test_accept_tells_what_was_received_so_sender_needs_no_ack_bookkeeping() -> None:
    c = cluster()
    c.pump()
    for _ in range(3):
        inc(c, "r0")
        c.commit("r0")
    c.pump()
    c.crash("r0")  # r0 forgets every ack it got
    sent = _sent_log(c)
    c.restart("r0")
    c.pump()
    assert c.hosts["r0"].engine.status()["r1"].acked == 3
    assert not [m for _, m in sent if isinstance(m, Delta)]


# -- intervals, acks, trimming ---------------------------------------------------------------


def _deltas_after_reconnect(c: Cluster, entries: int) -> list[Delta]:
    """Log ``entries`` increments at r0 while it is cut from r1, reconnect, return the
    Deltas r0 sent (r1 answers what it logged of them with an empty interval)."""
    c.close(c.pair_link[frozenset(("r0", "r1"))])
    for i in range(entries):
        inc(c, "r0", f"g{i}")
        c.commit("r0")
    sent = _sent_log(c)
    c.connect_all()
    c.pump()
    return [m for rid, m in sent if isinstance(m, Delta) and rid == "r0"]


def test_entries_logged_while_disconnected_go_as_one_interval() -> None:
    deltas = _deltas_after_reconnect(cluster(), 5)
    assert [(d.start, d.end) for d in deltas] == [(1, 5)]
    assert sorted(deltas[0].group) == [f"g{i}" for i in range(5)]


def _sent_log(c: Cluster) -> list:
    """Record every message sent from now on (wraps Cluster.run)."""
    if not hasattr(c, "_sent"):
        sent: list = []
        original = c.run

        def run(rid: str, outputs: list) -> None:
            sent.extend((rid, o.message) for o in outputs if isinstance(o, Send))
            original(rid, outputs)

        c.run = run  # type: ignore[method-assign]
        c._sent = sent  # type: ignore[attr-defined]
    return c._sent  # type: ignore[attr-defined, no-any-return]


def test_send_ack_trim() -> None:
    c = cluster()
    c.pump()
    inc(c, "r0", by=5)
    c.commit("r0")
    assert [(m.start, m.end) for m in of(c, Delta, "r1")] == [(1, 1)]
    c.pump()
    assert value(c, "r1") == 5
    assert c.hosts["r0"].engine.status()["r1"].acked == 1
    # the ack trimmed the log at once (not at the next tick): nothing is left to trim
    assert c.hosts["r0"].engine.log_size() == (0, 0)
    assert not [o for o in c.hosts["r0"].engine.tick(c.now) if isinstance(o, Trim)]


def test_an_ack_trims_at_once() -> None:
    """The ack that covers an entry trims it from the log then, not at the next tick."""
    c = cluster()
    c.pump()
    inc(c, "r0", by=5)
    c.commit("r0")
    engine = c.hosts["r0"].engine
    assert engine.log_size()[0] == 1
    c.deliver(next(i for i, (_, dst, _) in enumerate(c.inflight) if dst == "r1"))
    c.commit("r1")  # durable at r1: it acks (and says it has nothing for r0)
    to_r0 = [(i, decode_message(p) if c.codec else p)
             for i, (_, dst, p) in enumerate(c.inflight) if dst == "r0"]
    ((i, ack),) = [(i, m) for i, m in to_r0 if isinstance(m, Ack)]
    lid, _, _ = c.inflight.pop(i)
    assert ack.upto == 1
    out = engine.receive(lid, ack, c.now)
    assert Trim(1) in out and engine.log_size() == (0, 0)


def test_nothing_is_acked_before_the_receiver_commits() -> None:
    c = cluster()
    c.pump()
    inc(c, "r0")
    c.commit("r0")
    c.deliver(0)  # r1 joins it in memory; its commit is still queued
    assert not of(c, Ack)
    assert c.hosts["r1"].queue and c.hosts["r1"].queue[0][0] == "apply"
    c.commit("r1")
    assert [m.upto for m in of(c, Ack, "r0")] == [1]


def test_large_intervals_are_split_by_message_size() -> None:
    c = cluster(max_message_bytes=200)
    deltas = _deltas_after_reconnect(c, 12)
    assert len(deltas) >= 2
    assert all(len(encode_message(d)) <= 200 + 64 for d in deltas)  # + the envelope
    assert [d.start for d in deltas] == [1] + [d.end + 1 for d in deltas[:-1]]
    assert all(value(c, "r1", f"g{i}") == 1 for i in range(12))


def test_log_is_kept_for_a_known_peer_until_it_acks() -> None:
    c = cluster()
    c.close(c.pair_link[frozenset(("r0", "r1"))])
    inc(c, "r0")
    c.commit("r0")
    assert not any(isinstance(o, Trim) for o in c.hosts["r0"].engine.tick(c.now))
    assert c.hosts["r0"].engine.log_size()[0] == 1
    c.connect_all()
    c.pump()  # the peer's ack trims the entry
    assert c.hosts["r0"].engine.log_size() == (0, 0)


# -- gaps, duplicates, retransmission -------------------------------------------------------


def _established(**cfg: object) -> SyncEngine:
    engine, _ = lone_engine(**cfg)
    engine.receive("L", hello(last_seq=10), 0.0)
    return engine


def test_gap_is_nacked_and_never_applied() -> None:
    engine = _established()
    out = engine.receive("L", Delta(3, 4, {"g": GCounter()}), 0.0)
    assert out == [Send("L", Nack(0))]


def test_contiguous_and_overlapping_intervals_are_applied_duplicates_reacked() -> None:
    engine = _established()
    g = GCounter()
    g.increment("p")
    out = engine.receive("L", Delta(1, 2, {"g": g}), 0.0)
    assert out == [Apply("p", {"g": g}, 2, bound=2)]
    assert engine.receive("L", Delta(1, 2, {"g": g}), 0.0) == []  # on its way to disk
    assert engine.applied(out[0], None, {}, 0.0) == [Send("L", Ack(2))]
    assert engine.receive("L", Delta(2, 2, {}), 0.0) == [Send("L", Ack(2))]
    assert engine.receive("L", Delta(2, 5, {"g": g}), 0.0) == [
        Apply("p", {"g": g}, 5, bound=5)]


def test_nack_makes_the_sender_restart_from_what_the_receiver_has() -> None:
    c = cluster(window=4)
    c.pump()
    for _ in range(3):
        inc(c, "r0")
        c.commit("r0")
    assert [(m.start, m.end) for m in of(c, Delta, "r1")] == [(1, 1), (2, 2), (3, 3)]
    c.inflight.pop(0)  # entry 1 is lost
    c.deliver(0)  # 2..2 arrives: a gap
    assert [m.have for m in of(c, Nack, "r0")] == [0]
    sent = _sent_log(c)
    c.deliver(len(c.inflight) - 1)  # the nack
    assert [(m.start, m.end) for _, m in sent if isinstance(m, Delta)] == [(1, 3)]
    c.pump()
    assert value(c, "r1") == 3


def test_unacked_interval_is_retransmitted_after_the_timeout() -> None:
    c = cluster()
    c.pump()
    inc(c, "r0")
    c.commit("r0")
    c.inflight.clear()  # lost
    engine = c.hosts["r0"].engine
    assert [o for o in engine.tick(c.now + 0.5) if isinstance(o, Send)] == []
    out = engine.tick(c.now + 1.0)
    assert [(o.message.start, o.message.end) for o in out
            if isinstance(o, Send) and isinstance(o.message, Delta)] == [(1, 1)]


def test_lost_hello_is_sent_again() -> None:
    c = cluster()
    c.inflight.clear()
    c.now += 1.0
    c.tick("r0")
    c.tick("r1")
    c.pump()
    assert c.hosts["r0"].engine.status()["r1"].connected


# -- BP, RR, forwarding ------------------------------------------------------------------------


def test_bp_an_entry_never_goes_back_to_its_origin() -> None:
    c = cluster(n=4, topology="ring")  # r0-r1-r2-r3-r0: r2 hears of r0 only through others
    c.pump()
    sent = c.record()
    inc(c, "r0", by=7)
    c.commit("r0")
    c.pump()
    forwarded = [(src, dst) for src, dst, m in sent
                 if src != "r0" and isinstance(m, Delta) and "g0" in m.group]
    assert forwarded and all(dst != "r0" for _, dst in forwarded)  # never back to r0
    assert all(value(c, r) == 7 for r in c.hosts)


def test_rr_only_the_novel_part_is_logged_and_forwarded() -> None:
    c = cluster(n=3)
    c.pump()
    inc(c, "r0")
    c.commit("r0")
    c.pump()
    # r1 and r2 got it from r0 and from each other: each logged it once, then no more.
    for rid in ("r1", "r2"):
        assert c.hosts[rid].dlast == 1
        assert all(o == "r0" for o, _, _ in c.hosts[rid].dlog.values())


def test_entries_from_the_only_peer_are_trimmed_without_waiting_for_a_tick() -> None:
    """r1 logs what it applies from r0 but has nothing to send r0 for it: it says so at
    once with an empty interval outside the window, r0 acks, and r1's log trims; r1's own
    next write still leaves at once (the window was not taken)."""
    c = cluster()
    c.pump()
    for _ in range(3):
        inc(c, "r0")
        c.commit("r0")
        c.pump()  # no tick runs here
    r1 = c.hosts["r1"]
    assert r1.dlast == 3 and not r1.dlog and r1.engine.log_size() == (0, 0)
    assert c.hosts["r0"].engine.status()["r1"].received == 3
    inc(c, "r1", by=2)
    c.commit("r1")
    assert [(m.start, m.end, len(m.group)) for m in of(c, Delta, "r0")] == [(4, 4, 1)]
    c.pump()
    assert value(c, "r0") == value(c, "r1") == 5


def test_forwarding_reaches_a_replica_through_a_third() -> None:
    c = cluster(n=3, topology="ring")
    c.close(c.pair_link[frozenset(("r0", "r2"))])
    c.cut = {frozenset(("r0", "r2"))}
    inc(c, "r0", by=2)
    c.commit("r0")
    inc(c, "r2", by=3)
    c.commit("r2")
    c.pump()
    # r0 and r2 know each other, so r1 first leaves each one's write out for the other;
    # half of retransmit_after later they say they do not get it, and it comes whole
    c.now += 0.5
    for rid in sorted(c.hosts):
        c.tick(rid)
    c.pump()
    assert value(c, "r0") == value(c, "r2") == 5


# -- followers -------------------------------------------------------------------------------


def test_follower_refuses_local_writes_receives_and_acks_never_sends() -> None:
    c = cluster(n=2, followers=1)
    follower = c.hosts["f0"]
    with pytest.raises(LocalError, match="accepts no local writes"):
        follower.engine.logged(1, {}, 0.0)
    sent = _sent_log(c)
    c.pump()
    for rid in ("r0", "r1"):
        inc(c, rid)
        c.commit(rid)
    c.pump()
    assert value(c, "f0") == 2
    assert not follower.dlog
    kinds = {type(m).__name__ for rid, m in sent if rid == "f0"}
    assert kinds <= {"Hello", "Accept", "Ack", "KeyDigests"}
    assert "Ack" in kinds


def test_follower_drops_log_entries_its_host_keeps_anyway() -> None:
    engine, _ = lone_engine(follower=True)
    engine.receive("L", hello(last_seq=3), 0.0)
    g = GCounter()
    g.increment("p")
    apply = engine.receive("L", Delta(1, 3, {"g": g}), 0.0)[0]
    assert engine.applied(apply, 1, {"g": g}, 0.0) == [Send("L", Ack(3))]  # type: ignore[arg-type]
    assert engine.log_size() == (0, 0)
    assert Trim(1) in engine.tick(1.0)


def test_delta_from_a_follower_is_a_protocol_violation() -> None:
    engine, _ = lone_engine()
    engine.receive("L", hello(follower=True), 0.0)
    with pytest.raises(PeerError, match="followers never send"):
        engine.receive("L", Delta(1, 1, {}), 0.0)


# -- misuse and violations ---------------------------------------------------------------------


def test_garbage_bytes_raise_peer_error_and_forget_the_link() -> None:
    engine, _ = lone_engine()
    with pytest.raises(PeerError, match="undecodable"):
        engine.receive("L", b"\xff not json", 0.0)
    with pytest.raises(LocalError, match="unknown link"):
        engine.receive("L", hello(), 0.0)


def test_messages_before_hello_are_violations() -> None:
    engine, _ = lone_engine()
    with pytest.raises(PeerError, match="before hello"):
        engine.receive("L", Delta(1, 1, {}), 0.0)


def test_ack_beyond_my_log_is_a_violation() -> None:
    c = cluster()
    c.pump()
    lid = c.pair_link[frozenset(("r0", "r1"))]
    with pytest.raises(PeerError, match="beyond my last seq"):
        c.hosts["r0"].engine.receive(lid, Ack(5), c.now)


def test_local_misuse_raises_local_error() -> None:
    engine = _established()
    with pytest.raises(LocalError):
        engine.logged(0, {}, 0.0)
    engine.logged(3, {}, 0.0)
    with pytest.raises(LocalError, match="above the last seq"):
        engine.logged(3, {}, 0.0)
    with pytest.raises(LocalError, match="needs an Apply"):
        engine.applied(Apply("stranger", {}, 1), None, {}, 0.0)
    apply = engine.receive("L", Delta(1, 1, {}), 0.0)[0]
    with pytest.raises(LocalError, match="seq must be given"):
        engine.applied(apply, None, {"g": GCounter()}, 0.0)  # type: ignore[arg-type]
    with pytest.raises(LocalError):
        SyncConfig(replica="a", cluster="c", window=0)
    with pytest.raises(LocalError):
        SyncConfig(replica="a", cluster="c", peers=frozenset({"a"}))


def test_restart_continues_numbering_from_durable_last_seq() -> None:
    c = cluster()
    c.pump()
    for _ in range(2):
        inc(c, "r0")
        c.commit("r0")
    c.pump()
    c.tick("r0")
    assert not c.hosts["r0"].dlog  # trimmed
    c.crash("r0")
    c.restart("r0")
    assert c.hosts["r0"].engine.last_seq == 2
    inc(c, "r0")
    c.commit("r0")
    c.pump()
    assert value(c, "r1") == 3


def test_a_log_entry_that_does_not_decode_makes_the_peer_catch_up_from_state() -> None:
    """A restored entry whose blob is corrupt is found when a peer collects it: the log is
    trimmed through it, the reason is in log_stats, and the peer gets a state catch-up
    (BucketDigests) instead of an interval, or an exception in the host's hooks."""
    from crdtsync.codec import encode_group
    from crdtsync.sync import BucketDigests

    host = FakeHost(SyncConfig(replica="me", cluster="c", peers=frozenset({"p"})))
    g = GCounter()
    g.increment("me", 2)
    host.durable["g"] = g
    good = encode_group({"g": g})
    engine = SyncEngine(host, host.config, log=[(1, None, good), (2, None, b"\xff junk"),
                                                (3, None, good)], last_seq=3)
    engine.connect("L", 0.0)
    out = engine.receive("L", hello(last_seq=0), 0.0)
    out += engine.receive("L", Accept(0), 0.0)  # p holds none of my log: send from seq 1
    sent = [o.message for o in out if isinstance(o, Send)]
    assert any(isinstance(m, BucketDigests) for m in sent)
    assert not any(isinstance(m, Delta) for m in sent)
    stats = engine.log_stats()
    assert stats["entries"] == 1 and len(stats["corrupt"]) == 1
    assert "entry 2 does not decode" in stats["corrupt"][0]
