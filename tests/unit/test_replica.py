"""Replica behaviour: write API, types, batches, durability, identity, remote deltas."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from crdtsync import AWORSet, EWFlag, GCounter, PNCounter
from crdtsync.codec import decode_group
from crdtsync.errors import LocalError, TypeMismatchError
from crdtsync.replica import Replica


@pytest.fixture(params=["memory", "sqlite"])
def replica(request: pytest.FixtureRequest, tmp_path: Path) -> Replica:
    path = None if request.param == "memory" else str(tmp_path / "r")
    r = Replica.open(path, name="us")
    yield r
    r.close()


def test_write_api_values(replica: Replica) -> None:
    replica.counter("c").increment(3)
    replica.counter("c").decrement()
    replica.gcounter("g").increment(2)
    replica.set("s").add("x")
    replica.set("s").add(1)
    replica.set("s").remove("x")
    replica.rwset("rw").add("a")
    replica.register("t").assign({"k": [1, 2]})
    replica.mvregister("mv").assign("v")
    replica.flag("f").enable()
    m = replica.map("post:1")
    m.register("title").assign("hello")
    m.set("likes").add("bob")
    m.counter("views").increment()
    m.map("meta").register("lang").assign("en")
    replica.commit()
    assert replica.get("c") == 2
    assert replica.get("g") == 2
    assert replica.get("s") == frozenset({1})
    assert replica.get("rw") == frozenset({"a"})
    assert replica.get("t") == {"k": [1, 2]}
    assert replica.get("mv") == ("v",)
    assert replica.get("f") is True
    assert replica.get("post:1") == {"title": "hello", "likes": frozenset({"bob"}), "views": 1,
                                     "meta": {"lang": "en"}}
    assert replica.get("missing", 42) == 42
    assert replica.keys("post") == ["post:1"]
    assert replica.keys() == sorted(["c", "g", "s", "rw", "t", "mv", "f", "post:1"])
    assert replica.type_of("c") is PNCounter and replica.type_of("g") is GCounter
    m.remove("likes")
    assert "likes" not in replica.get("post:1")


def test_first_write_fixes_type(replica: Replica) -> None:
    replica.counter("k").increment()
    with pytest.raises(TypeMismatchError, match="'k'"):
        replica.set("k").add("x")
    assert replica.get("k") == 1


def test_bad_arguments_change_nothing(replica: Replica) -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises((ValueError, TypeError)):
            replica.counter("c").increment(bad)  # type: ignore[arg-type]
    assert "c" not in replica
    with pytest.raises(TypeError):
        replica.set("s").add(1.5)  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError)):
        replica.counter("").increment()
    assert len(replica) == 0


def test_batch_is_atomic_and_one_log_entry(replica: Replica) -> None:
    with replica.batch() as b:
        b.counter("a").increment()
        b.set("s").add("x")
        assert "a" not in replica  # applied only when the block exits
    replica.commit()
    entries = list(replica.store.log())
    assert len(entries) == 1
    assert set(decode_group(entries[0].blob)) == {"a", "s"}
    with pytest.raises(RuntimeError):
        with replica.batch() as b:
            b.counter("a").increment()
            raise RuntimeError("boom")
    with pytest.raises(TypeMismatchError):
        with replica.batch() as b:
            b.counter("b").increment()
            b.set("a").add("no")  # a is a counter: the whole batch is refused
    with pytest.raises(ValueError):
        with replica.batch() as b:
            b.counter("b").increment()
            b.counter("b").increment(-5)
    assert replica.get("a") == 1 and "b" not in replica
    replica.counter("big").increment(2**63 - 3)
    with pytest.raises(ValueError):
        with replica.batch() as b:
            b.counter("fresh").increment()
            b.counter("big").increment()
            b.counter("big").increment(2)  # overflows only with the increment before it
    assert "fresh" not in replica and replica.get("big") == 2**63 - 3


def test_reopen_keeps_state_and_identity(tmp_path: Path) -> None:
    path = str(tmp_path / "r")
    r = Replica.open(path, name="us")
    rid = r.replica_id
    for i in range(300):
        r.set("s").add(f"e{i}")
        r.counter("c").increment()
        if i % 7 == 0:
            r.commit()
    r.set("s").remove("e5")
    r.close()
    r2 = Replica.open(path)
    assert r2.replica_id == rid and r2.name == "us"
    assert r2.get("c") == 300
    assert r2.get("s") == frozenset(f"e{i}" for i in range(300)) - {"e5"}
    with pytest.raises(LocalError, match="'us'"):
        Replica.open(path, name="eu")
    r2.close()


def test_uncommitted_writes_vanish_and_dots_are_not_reused(tmp_path: Path) -> None:
    path = str(tmp_path / "a")
    a = Replica.open(path, name="a")
    b = Replica.open(None, name="b")
    a.set("s").add("x")
    a.commit()
    for entry in a.store.log():
        b.apply_remote(decode_group(entry.blob), origin=a.replica_id)
    seen = a.log_seq
    a.set("s").add("lost")  # never committed: a "crash" now loses it
    a2 = Replica.open(path)  # the crashed process's successor
    assert a2.get("s") == frozenset({"x"})
    a2.set("s").add("y")
    a2.commit()
    for entry in a2.store.log(seen + 1):
        b.apply_remote(decode_group(entry.blob), origin=a2.replica_id)
    assert b.get("s") == frozenset({"x", "y"})
    assert b.state("s") == a2.state("s")


def test_copied_store_gets_a_new_replica_id(tmp_path: Path) -> None:
    src = tmp_path / "src"
    r = Replica.open(str(src), name="us")
    r.counter("c").increment()
    r.close()
    shutil.copytree(src, tmp_path / "copy")
    copy = Replica.open(str(tmp_path / "copy"))
    assert copy.name == "us" and copy.replica_id != r.replica_id
    copy.counter("c").increment()
    assert copy.get("c") == 2
    assert set(copy.state("c")._p) == {r.replica_id, copy.replica_id}  # type: ignore[union-attr]
    copy.close()


def test_remote_deltas_novel_part_and_type_rule() -> None:
    a = Replica.open(None, name="a")
    b = Replica.open(None, name="b")
    d = AWORSet()
    delta = d.add("x.1", "e")
    assert set(a.apply_remote({"s": delta}, origin="x.1")) == {"s"}
    assert a.apply_remote({"s": delta}, origin="x.1") == {}
    a.commit()
    assert [e.origin for e in a.store.log()] == ["x.1"]
    # concurrent creation with different types: the greater tag wins everywhere
    a.counter("k").increment()  # pncounter
    b.flag("k").enable()  # ewflag < pncounter
    fa, fb = a.state("k"), b.state("k")
    a.apply_remote({"k": fb}, origin=b.replica_id)
    b.apply_remote({"k": fa}, origin=a.replica_id)
    assert a.get("k") == b.get("k") == 1
    assert a.stats["rejected_type_mismatch"] == 1 and b.stats["rejected_type_mismatch"] == 1
    assert b.type_of("k") is PNCounter and isinstance(fb, EWFlag)


def test_a_remote_groups_bound_is_logged_with_its_entry(replica: Replica) -> None:
    seen: list[tuple[str | None, int | None]] = []
    replica.on_commit.append(lambda entries: seen.extend((e.origin, e.upto) for e in entries))
    for bad in (0, 2**63, True, "7"):  # 2**63: the store would refuse it at every commit
        with pytest.raises(ValueError, match="bound must be"):
            replica.apply_remote({"g": GCounter().increment("x.1")}, origin="x.1", bound=bad)
    assert "g" not in replica  # refused before anything joined
    replica.apply_remote({"g": GCounter().increment("x.1")}, origin="x.1", bound=41)
    replica.apply_remote({"h": GCounter().increment("y.1")}, origin="y.1")
    replica.counter("c").increment()
    replica.commit()
    assert seen == [(None, None), ("x.1", 41), ("y.1", None)]
    assert [(e.origin, e.upto) for e in replica.store.log()] == seen


def test_remote_type_win_drops_pending_local_writes_of_the_loser() -> None:
    from crdtsync import RWORSet

    a = Replica.open(None, name="a")
    a.counter("k").increment()  # pending (fast path), pncounter
    a.set("s").add("x")  # pending (fast path), aworset
    remote_k, remote_s = RWORSet(), PNCounter()
    a.apply_remote({"k": remote_k.add("z.1", "e"), "s": remote_s.increment("z.1")}, origin="z.1")
    a.commit()  # must not crash on the replaced keys
    assert a.type_of("k") is RWORSet and a.get("k") == frozenset({"e"})
    assert a.type_of("s") is PNCounter and a.get("s") == 1


def test_rejected_set_write_leaves_nothing_pending() -> None:
    a = Replica.open(None, name="a")
    a.set("s").add("x")
    a.commit()
    before = a.log_seq
    with pytest.raises(TypeError):
        a.set("s").add(1.5)  # type: ignore[arg-type]
    assert not a.has_local_writes() and a.commit() == before
    with pytest.raises(TypeError, match="grow-only"):
        a.gcounter("g").decrement()


def test_follower_refuses_writes() -> None:
    r = Replica.open(None, name="f", follower=True)
    with pytest.raises(LocalError, match="follower"):
        r.counter("c").increment()
    r.apply_remote({"c": GCounter().increment("x.1")}, origin="x.1")
    assert r.get("c") == 1


def test_checkpoints_bound_replay_and_trim_the_log(tmp_path: Path) -> None:
    path = str(tmp_path / "r")
    r = Replica.open(path, name="us", checkpoint_entries=50)
    for i in range(1010):  # 10 entries past the last checkpoint
        r.counter("c").increment()
        r.set("s").add(f"e{i % 100}")
        if i % 3 == 0:
            r.set("s").remove(f"e{(i * 7) % 100}")
        r.commit()
    bases = {rec.key: rec for rec in r.store.keys()}
    assert bases["c"].base is not None and bases["s"].base is not None
    ckpt = r.store.meta()["checkpoint_seq"]
    assert r.log_seq - ckpt < 50
    entries = list(r.store.log())
    assert entries and entries[0].seq == ckpt + 1  # standalone: checkpointed entries dropped
    expect_s, expect_c = r.get("s"), r.get("c")
    r.close()
    again = Replica.open(path)  # bases + replay of the entries after the checkpoint
    assert again.get("c") == expect_c == 1010 and again.get("s") == expect_s
    again.close()


def test_checkpoint_bytes_sets_when_a_checkpoint_is_due(tmp_path: Path) -> None:
    """With a small byte bound checkpoints follow the log's size; the default (8 MiB) makes
    none over the same (small) run; both reopen to the same state."""
    expect = {}
    for label, options in (("small", {"checkpoint_bytes": 2_000}), ("default", {})):
        path = str(tmp_path / label)
        r = Replica.open(path, name="us", **options)
        for i in range(200):
            r.register(f"k{i % 20}").assign("x" * 50 + str(i))
            r.commit()
        meta = r.store.meta()
        if label == "small":
            assert meta.get("checkpoint_seq", 0) > 150  # one roughly every 2 kB of log
        else:
            assert meta.get("checkpoint_seq", 0) < 5  # at most the opening commit's
        expect[label] = {k: r.get(k) for k in r.keys()}
        r.close()
        again = Replica.open(path)
        assert {k: again.get(k) for k in again.keys()} == expect[label]
        again.close()
    assert expect["small"] == expect["default"]


def test_subscriptions_fire_after_commit() -> None:
    r = Replica.open(None, name="us")
    seen: list[tuple[str, object]] = []
    cancel = r.subscribe(lambda k, v: seen.append((k, v)), prefix="post:")
    r.counter("post:1").increment()
    r.counter("other").increment()
    assert seen == []
    r.commit()
    assert seen == [("post:1", 1)]
    cancel()
    r.counter("post:1").increment()
    r.commit()
    assert seen == [("post:1", 1)]


def test_async_group_commit_and_watch(tmp_path: Path) -> None:
    async def main() -> None:
        r = Replica.open(str(tmp_path / "r"), name="us", commit_delay=0.005)
        r.start()
        changes: list[tuple[str, object]] = []

        async def watcher() -> None:
            async for key, value in r.watch("c"):
                changes.append((key, value))
                if value == 100:
                    return

        task = asyncio.create_task(watcher())
        await asyncio.sleep(0)
        writes = [r.counter("c").increment() for _ in range(100)]
        assert not any(w.durable for w in writes)
        await asyncio.gather(*(asyncio.ensure_future(_wait(w)) for w in writes))
        assert all(w.durable for w in writes)
        assert r.stats["commits"] <= 5  # 100 writes, grouped
        async with r.batch() as b:
            b.set("s").add("x")
        assert b.write is not None and b.write.durable
        await asyncio.wait_for(task, 2)
        assert changes[-1] == ("c", 100)
        await r.aclose()

    asyncio.run(main())


async def _wait(write: object) -> None:
    await write  # type: ignore[misc]


def test_a_replica_held_for_sync_keeps_its_log_until_trimmed(tmp_path: Path) -> None:
    r = Replica.open(str(tmp_path / "r"), name="us", checkpoint_entries=10)
    r.hold_log_for_sync()
    for _ in range(35):
        r.counter("c").increment()
        r.commit()
    assert [e.seq for e in r.store.log()][0] == 1  # checkpointed, but peers may need them
    r.trim_log(20)
    r.counter("c").increment()
    r.commit()
    assert [e.seq for e in r.store.log()][0] == 21
    r.close()


def test_background_committer_commits_early_when_many_keys_wait() -> None:
    """commit_max_ops counts waiting writes, a counter or register key once: 200 keys
    written at once commit without waiting the (long) delay; 200 increments of one key
    wait for it."""

    async def main() -> None:
        r = Replica.open(None, name="us", commit_delay=30.0, commit_max_ops=100)
        r.start()
        for k in range(100):
            r.counter(f"c{k}").increment()
        last = r.register("r0").assign(0)
        for k in range(1, 100):
            last = r.register(f"r{k}").assign(k)
        await asyncio.wait_for(_wait(last), 5)  # far less than the 30 s delay
        assert last.durable
        hot = [r.counter("hot").increment() for _ in range(200)]
        await asyncio.sleep(0.2)  # the committer is up and waiting out its delay
        assert r._waiting_writes() <= 2 and not hot[-1].durable  # creating write + the key
        await r.aclose()  # commits what waits
        assert hot[-1].durable and r.get("hot") == 200 and r.get("r99") == 99

    asyncio.run(main())
