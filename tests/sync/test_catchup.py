"""State catch-up: a peer behind what the log holds gets only the keys that differ."""

from __future__ import annotations

import random
from typing import Any

from crdtsync.codec import encode
from crdtsync.sync import BucketDigests, Delta, KeyDigests, Send, States
from crdtsync.sync.digest import bucket_count, bucket_of
from crdtsync.types import GCounter
from tests.sync.sim import Cluster


def cluster(**knobs: object) -> Cluster:
    knobs.setdefault("retransmit_after", 1.0)
    return Cluster(random.Random(0), n=2, topology="mesh", **knobs)  # type: ignore[arg-type]


def sent_messages(c: Cluster) -> list:
    """Record (sender, message) of everything sent from now on."""
    sent: list = []
    original = c.run

    def run(rid: str, outputs: list) -> None:
        sent.extend((rid, o.message) for o in outputs if isinstance(o, Send))
        original(rid, outputs)

    c.run = run  # type: ignore[method-assign]
    return sent


def cut(c: Cluster) -> None:
    edge = frozenset(("r0", "r1"))
    c.close(c.pair_link[edge])
    c.cut = {edge}


def test_log_bound_forces_digest_catch_up() -> None:
    c = cluster(max_log_entries=3)
    c.pump()
    cut(c)
    for i in range(10):
        c.hosts["r0"].write(f"g{i}", lambda v: v.increment("r0"))
        c.commit("r0")
    c.tick("r0")
    assert c.hosts["r0"].engine.log_size()[0] == 3  # bounded, although r1 never acked
    sent = sent_messages(c)
    c.heal()
    c.pump()
    kinds = [type(m).__name__ for _, m in sent]
    assert "BucketDigests" in kinds and "KeyDigests" in kinds and "States" in kinds
    assert all(c.hosts["r1"].durable[f"g{i}"].value == 1 for i in range(10))
    assert c.hosts["r0"].engine.status()["r1"].acked == 10
    c.settle()
    c.check()


def _twins(nkeys: int) -> Cluster:
    """Two replicas holding the same ``nkeys`` counters; r1 lacks r0's 5 (trimmed) entries."""
    c = cluster()
    cut(c)
    for rid in ("r0", "r1"):
        host = c.hosts[rid]
        for i in range(nkeys):
            g = GCounter()
            g.increment("seed", i + 1)
            host.durable[f"key-{i:05d}"] = g
        host.dlast = 5  # five entries, trimmed long ago
    c.hosts["r0"].dmarks["r1"] = 5  # r0 has all of r1's; r1 has nothing of r0's
    for host in c.hosts.values():
        host.restart()
    return c


def test_one_changed_key_among_10000_costs_about_one_key() -> None:
    c = _twins(10_000)
    c.hosts["r0"].durable["key-04242"].increment("r0", 5)
    c.hosts["r0"].restart()
    full = sum(len(k) + len(encode(v)) for k, v in c.hosts["r0"].durable.items())
    sent = sent_messages(c)
    c.heal()
    before = c.bytes
    c.pump()
    catchup = c.bytes - before
    assert c.hosts["r1"].durable["key-04242"] == c.hosts["r0"].durable["key-04242"]
    assert catchup < 0.05 * full, (catchup, full)
    states = [m for _, m in sent if isinstance(m, States)]
    assert [sorted(m.group) for m in states] == [["key-04242"]]
    digests = [m for _, m in sent if isinstance(m, KeyDigests)]
    assert sum(len(m.digests) for m in digests) < 10_000 // 50  # one bucket, not every key
    assert c.hosts["r0"].engine.status()["r1"].acked == 5


def test_identical_replicas_exchange_no_state() -> None:
    c = _twins(500)
    sent = sent_messages(c)
    c.heal()
    c.pump()
    states = [m for _, m in sent if isinstance(m, States)]
    assert states and all(not m.group for m in states)
    assert all(not m.buckets for _, m in sent if isinstance(m, KeyDigests))
    assert c.hosts["r1"].dmarks["r0"] == 5


def test_catch_up_is_split_into_parts_under_the_message_bound() -> None:
    c = cluster(max_message_bytes=300, max_log_entries=1)
    cut(c)
    for i in range(40):
        c.hosts["r0"].write(f"g{i}", lambda v: v.increment("r0"))
        c.commit("r0")
    c.tick("r0")
    sent = sent_messages(c)
    c.heal()
    c.pump()
    states = [m for _, m in sent if isinstance(m, States)]
    assert len(states) > 1 and {m.parts for m in states} == {len(states)}
    assert all(c.hosts["r1"].durable[f"g{i}"].value == 1 for i in range(40))


def test_lost_catch_up_part_is_never_skipped_and_restarts_after_timeout() -> None:
    c = cluster(max_message_bytes=300, max_log_entries=1)
    cut(c)
    for i in range(40):
        c.hosts["r0"].write(f"g{i}", lambda v: v.increment("r0"))
        c.commit("r0")
    c.tick("r0")
    c.heal()
    dropped = False
    for _ in range(10_000):
        if not c.inflight:
            break
        _, dst, payload = c.inflight[0]
        msg = c.peek()[0][1]
        if isinstance(msg, States) and msg.part == 0 and not dropped:
            c.inflight.pop(0)
            dropped = True
            continue
        c.deliver(0)
        c.commit("r0")
        c.commit("r1")
    assert dropped
    assert c.hosts["r1"].dmarks.get("r0", 0) == 0  # not every part arrived: no mark
    assert c.hosts["r0"].engine.status()["r1"].catching_up
    c.now += 1.0
    sent = sent_messages(c)
    c.tick("r0")
    assert any(isinstance(m, BucketDigests) for _, m in sent)
    c.pump()
    assert c.hosts["r1"].dmarks["r0"] == 40
    assert all(c.hosts["r1"].durable[f"g{i}"].value == 1 for i in range(40))


def test_no_delta_is_sent_while_catching_up() -> None:
    c = cluster(max_log_entries=1)
    cut(c)
    for i in range(3):
        c.hosts["r0"].write(f"g{i}", lambda v: v.increment("r0"))
        c.commit("r0")
    c.tick("r0")
    sent = sent_messages(c)
    c.heal()
    while c.inflight and not any(isinstance(m, BucketDigests) for _, m in sent):
        c.deliver(0)
    c.hosts["r0"].write("g9", lambda v: v.increment("r0"))
    c.commit("r0")
    i = next(i for i, (_, m) in enumerate(sent) if isinstance(m, BucketDigests))
    assert not any(isinstance(m, Delta) and rid == "r0" for rid, m in sent[i:])
    c.pump()
    assert c.hosts["r1"].durable["g9"].value == 1


def test_bucket_count_grows_like_the_square_root() -> None:
    assert bucket_count(0) == 1
    assert bucket_count(10_000) == 128
    assert bucket_count(10**9) == 4096
    assert len({bucket_of(f"k{i}", 64) for i in range(1000)}) == 64


def test_nack_below_what_the_log_holds_turns_into_catch_up() -> None:
    c = cluster(max_log_entries=1, window=4)
    c.pump()
    for i in range(3):
        c.hosts["r0"].write(f"g{i}", lambda v: v.increment("r0"))
        c.commit("r0")
    c.inflight.pop(0)  # interval 1..1 is lost
    c.tick("r0")  # the bound trims entries 1 and 2 although r1 has not acked them
    sent = sent_messages(c)
    c.pump()
    kinds = [type(m).__name__ for _, m in sent]
    assert kinds.index("Nack") < kinds.index("BucketDigests")
    assert all(c.hosts["r1"].durable[f"g{i}"].value == 1 for i in range(3))


def test_a_duplicated_bucket_request_gets_the_same_answer() -> None:
    """A BucketDigests delivered twice, with the receiver's state changed in between, is
    answered with the very same KeyDigests (recomputed digests could come in a different
    number of parts, which the sender refuses), and keeps the parts received so far."""
    from crdtsync.replica import Replica
    from crdtsync.sync.receiver import PeerReceiver
    from crdtsync.transport.service import ReplicaHost

    replica = Replica.open(None, name="r1")
    host = ReplicaHost(replica)
    for i in range(40):
        replica.counter(f"k{i}").increment(i + 1)
    replica.commit()
    rx = PeerReceiver("r0", 0)
    request = BucketDigests(1, 5, ("0" * 16,) * 16)
    first = rx.on_bucket_digests(request, host, max_bytes=300, link="L")
    assert len(first) >= 2  # several parts
    for i in range(40, 400):  # the state moves on: more keys, more parts if recomputed
        replica.counter(f"k{i}").increment()
    replica.commit()
    again = rx.on_bucket_digests(request, host, max_bytes=300, link="L")
    assert again == first
    other_link = rx.on_bucket_digests(request, host, max_bytes=300, link="M")
    assert len(other_link) > len(first)  # a request on another link is a new catch-up
    assert first[0].parts != other_link[0].parts


# -- one incoming catch-up at a time -------------------------------------------------------


def _new_third(nkeys: int, **knobs: Any) -> tuple[Cluster, list]:
    """r0 and r1 hold ``nkeys`` counters written by both (logs trimmed to 1 entry); r2 has
    been cut off all along. Returns the cluster, healed, and the log of what is sent."""
    c = Cluster(random.Random(0), n=3, topology="mesh", retransmit_after=1.0,
                max_log_entries=1, **knobs)
    c.pump()
    for edge in (frozenset(("r0", "r2")), frozenset(("r1", "r2"))):
        c.close(c.pair_link[edge])
        c.cut.add(edge)
    for i in range(nkeys):
        for rid in ("r0", "r1"):
            c.hosts[rid].write(f"g{i}", lambda v, rid=rid: v.increment(rid))
            c.commit(rid)
        c.pump()
    for rid in ("r0", "r1"):
        c.tick(rid)
    sent = c.record()
    c.heal()
    return c, sent


def test_two_peers_catch_a_third_up_one_after_the_other_and_it_forwards_nothing() -> None:
    c, sent = _new_third(30)
    c.pump()
    to_r2 = [(src, sorted(m.group)) for src, dst, m in sent
             if dst == "r2" and isinstance(m, States)]
    keys = [k for _, ks in to_r2 for k in ks]
    assert sorted(keys) == sorted(f"g{i}" for i in range(30))  # every key once, not twice
    assert {src for src, _ in to_r2} == {"r0", "r1"}  # both caught it up; the second sent none
    # the states came with a bound, which r0 and r1 hold of each other: r2 forwards nothing
    assert all(m.bound > 0 for src, dst, m in sent if dst == "r2" and isinstance(m, States))
    assert not [m for src, _, m in sent if src == "r2" and isinstance(m, Delta) and m.group]
    assert all(c.hosts["r2"].durable[f"g{i}"].value == 2 for i in range(30))
    c.settle()
    c.check()


def test_a_long_catch_up_that_keeps_moving_is_not_doubled() -> None:
    """r2's first catch-up comes in slowly, one part every 0.4 s (over four times the hold
    limit in all), while the other sender asks again: it is answered only once the first
    is in, and every key crosses once."""
    c, sent = _new_third(400, max_message_bytes=4096)
    slow_link = None  # the link to r2 of the first States: slow, in order; the rest is not
    for _ in range(5000):
        if not c.inflight:
            break
        if slow_link is None:
            slow_link = next((lid for (lid, dst, _), (_, m) in
                              zip(c.inflight, c.peek(), strict=True)
                              if dst == "r2" and isinstance(m, States)), None)
        slow = [lid == slow_link for lid, _, _ in c.inflight]
        if all(slow):
            c.now += 0.4
            for rid in sorted(c.up):
                c.tick(rid)
        c.deliver(0 if all(slow) else slow.index(False))
        for rid in sorted(c.up):
            c.commit(rid)
    states = [(src, m) for src, dst, m in sent if dst == "r2" and isinstance(m, States)]
    keys = [k for _, m in states for k in m.group]
    assert sorted(keys) == sorted(f"g{i}" for i in range(400))  # every key once
    first = states[0][0]
    other = ({"r0", "r1"} - {first}).pop()
    asked = [m.cid for src, dst, m in sent if (src, dst) == (other, "r2")
             and isinstance(m, BucketDigests)]
    assert c.now >= 2.0 and len(set(asked)) > 1  # it took long, and the other asked again
    c.settle()
    c.check()


def test_a_held_request_is_answered_once_the_other_catch_up_stalls() -> None:
    c, sent = _new_third(30)
    first = None
    for _ in range(1000):  # deliver in order, but drop every States to r2 of the first
        if not c.inflight:
            break
        _, dst, _ = c.inflight[0]
        msg = c.peek()[0][1]
        if dst == "r2" and isinstance(msg, States):
            first = first or next(s for s, d, m in reversed(sent) if d == "r2" and m == msg)
            c.inflight.pop(0)
            continue
        c.deliver(0)
        for rid in sorted(c.up):
            c.commit(rid)
    assert first is not None
    other = ({"r0", "r1"} - {first}).pop()
    answered = [d for s, d, m in sent if s == "r2" and isinstance(m, KeyDigests)]
    assert answered == [first]  # the other's request is held
    c.now += 0.5  # half of retransmit_after: the held request may go
    c.tick("r2")
    assert [d for s, d, m in sent if s == "r2" and isinstance(m, KeyDigests)] == [first, other]
    c.settle()
    c.check()


def test_held_requests_wait_as_long_as_the_catch_up_coming_in_moves() -> None:
    from crdtsync.sync.links import HeldCatchups
    from crdtsync.sync.receiver import PeerReceiver

    rx = {p: PeerReceiver(p, 0) for p in ("a", "b", "c")}
    held = HeldCatchups(limit=2.0)
    req = BucketDigests(1, 5, ("0" * 16,))
    assert not held.hold("b", "Lb", req, rx, 0.0)  # nothing else coming in: answer it
    rx["b"].on_bucket_digests(req, _Empty(), max_bytes=1 << 20, link="Lb")
    held.moved("b", 0.0)
    assert held.hold("a", "La", BucketDigests(7, 9, ("0" * 16,)), rx, 0.5)
    assert held.hold("c", "Lc", BucketDigests(3, 4, ("0" * 16,)), rx, 0.6)
    for t in (1.0, 1.5, 2.0, 3.0, 4.5, 6.0, 7.9):  # b's catch-up is long, and keeps moving
        held.moved("b", t)
        assert held.release(rx, t + 0.1) == []
        # a's sender asks again meanwhile: the newer request replaces the older one
        assert held.hold("a", "La", BucketDigests(8 + int(t), 9, ("0" * 16,)), rx, t + 0.1)
    rx["b"].catchup = None  # b's catch-up is in: the oldest held request goes, alone
    assert held.release(rx, 8.0) == [("a", "La", BucketDigests(15, 9, ("0" * 16,)))]
    rx["a"].on_bucket_digests(BucketDigests(15, 9, ("0" * 16,)), _Empty(), max_bytes=1 << 20,
                              link="La")
    held.moved("a", 8.0)
    assert held.release(rx, 8.5) == []  # c waits for a's
    rx["a"].catchup = None
    assert held.release(rx, 8.6) == [("c", "Lc", BucketDigests(3, 4, ("0" * 16,)))]
    assert not held


def test_held_requests_go_one_at_a_time_once_the_catch_up_stops_moving() -> None:
    from crdtsync.sync.links import HeldCatchups
    from crdtsync.sync.receiver import PeerReceiver

    rx = {p: PeerReceiver(p, 0) for p in ("a", "b", "c")}
    held = HeldCatchups(limit=2.0)
    req = BucketDigests(1, 5, ("0" * 16,))
    rx["b"].on_bucket_digests(req, _Empty(), max_bytes=1 << 20, link="Lb")
    held.moved("b", 0.0)
    assert held.hold("c", "Lc", req, rx, 0.2) and held.hold("a", "La", req, rx, 0.1)
    # b's catch-up has not moved for the limit (its sender gave up): the oldest goes alone
    assert held.release(rx, 2.05) == [("a", "La", req)]


class _Empty:
    """A host with no keys."""

    def keys(self) -> list[str]:
        return []

    def digest(self, key: str) -> bytes:
        raise KeyError(key)

    def state(self, key: str) -> GCounter:
        raise KeyError(key)
