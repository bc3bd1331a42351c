"""The background committer runs the store's transaction off the event loop.

A store whose commits block (``COMMIT_BLOCKS``, as SQLite's fsync does) is played by a
MemoryStore that sleeps in ``commit``: while it sleeps in the worker thread, the loop keeps
running, writes go to the next batch, and nobody is told "durable" before the store
returned.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from crdtsync.errors import StoreError
from crdtsync.replica import Replica
from crdtsync.store import MemoryStore
from crdtsync.store.base import Commit


class SlowStore(MemoryStore):
    """A MemoryStore whose commits take ``delay`` seconds and may be made to fail."""

    COMMIT_BLOCKS = True

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.fail_next = False
        self.threads: list[str] = []
        self.returned: list[float] = []  # when each commit returned (monotonic)
        self.spans: list[tuple[float, float]] = []  # when each commit slept

    def commit(self, commit: Commit) -> None:
        self.threads.append(threading.current_thread().name)
        started = time.monotonic()
        time.sleep(self.delay)
        self.spans.append((started, time.monotonic()))
        if self.fail_next:
            self.fail_next = False
            raise StoreError("disk on fire")
        super().commit(commit)
        self.returned.append(time.monotonic())


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def _started(store: SlowStore) -> tuple[Replica, list[int]]:
    """A replica on ``store`` with its committer started, and the seqs its commits log."""
    r = Replica(store, name="a", commit_delay=0.001)
    store.returned.clear()  # the replica's first commit (its identity), made at open
    seqs: list[int] = []
    r.on_commit.append(lambda entries: seqs.extend(e.seq for e in entries))
    r.start()
    return r, seqs


async def _until_in_flight(r: Replica) -> None:
    """Wait until the committer has taken a batch and its store commit runs."""
    while not r.commit_in_flight:
        await asyncio.sleep(0.001)


def test_the_loop_runs_while_the_store_commits_and_acks_wait_for_it() -> None:
    async def main() -> None:
        store = SlowStore(0.3)
        r = Replica(store, name="a", commit_delay=0.001)
        store.threads.clear()  # the replica's first commit (its identity), made at open
        store.spans.clear()
        store.returned.clear()
        r.start()
        ticks: list[float] = []

        async def ticker() -> None:
            for _ in range(200):
                ticks.append(time.monotonic())
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        write = r.counter("c").increment()
        await write
        acked = time.monotonic()
        task.cancel()
        assert store.threads and all(t.startswith("crdtsync-commit") for t in store.threads)
        assert store.returned and acked >= store.returned[0]  # durable, then told
        start, end = store.spans[0]
        # the loop ran while the store slept (a commit on the loop would leave no tick there)
        assert sum(start < t < end for t in ticks) >= 3
        await r.aclose()

    _run(main())


def test_writes_during_a_commit_go_to_the_next_batch() -> None:
    async def main() -> None:
        store = SlowStore(0.2)
        r, seqs = _started(store)
        first = r.counter("c").increment()
        await _until_in_flight(r)
        second = r.counter("c").increment(5)
        assert first is not second and not first.durable and not second.durable
        await first
        assert first.durable and not second.durable
        await second
        assert second.durable and r.get("c") == 6 and seqs == [1, 2]
        await r.aclose()

    _run(main())


def test_commit_finishes_the_commit_in_flight_first() -> None:
    async def main() -> None:
        store = SlowStore(0.2)
        r, seqs = _started(store)
        first = r.set("s").add("x")
        await _until_in_flight(r)
        r.set("s").add("y")
        assert r.commit() == 2  # waits for entry 1, finishes it, then commits entry 2
        assert first.durable and seqs == [1, 2] and r._inflight is None
        assert [e.seq for e in store.log()] == [1, 2]
        await asyncio.sleep(0.05)  # the committer wakes up to nothing left to do
        assert seqs == [1, 2]
        await r.aclose()

    _run(main())


def test_close_while_a_commit_is_in_flight_keeps_every_write(tmp_path: Path) -> None:
    path = str(tmp_path / "r")

    async def main() -> None:
        r = Replica.open(path, name="a", commit_delay=0.001)
        r.start()
        for i in range(50):
            r.counter(f"c{i % 5}").increment()
            if i % 10 == 0:
                await asyncio.sleep(0)
        r.close()  # the committer may be mid-commit: close finishes it, commits the rest

    _run(main())
    r = Replica.open(path, name="a")
    assert sum(r.get(f"c{i}") for i in range(5)) == 50
    r.close()


def test_a_failed_commit_fails_the_waiting_writers_and_is_tried_again_first() -> None:
    async def main() -> None:
        store = SlowStore(0.1)
        r, seqs = _started(store)
        store.fail_next = True
        first = r.counter("c").increment()
        await _until_in_flight(r)
        second = r.counter("d").increment()
        waiting = asyncio.ensure_future(r.flush())  # waits for second's batch, after first's
        with pytest.raises(StoreError, match="disk on fire"):
            await first
        with pytest.raises(StoreError, match="disk on fire"):
            await waiting  # told too: its batch cannot be durable before the failed one
        assert not first.durable and not second.durable
        await second  # this store did not fail for good: the failed batch goes first
        assert first.durable and second.durable and seqs == [1, 2]
        assert [e.seq for e in store.log()] == [1, 2]
        await r.aclose()

    _run(main())


def test_reading_the_state_for_a_catch_up_makes_the_writes_durable_first() -> None:
    """The engine reads the state only for a catch-up, through ReplicaHost: each read
    finishes a commit in flight and commits the pending writes first, so a peer never gets
    a write that is not durable."""
    from crdtsync.transport.service import ReplicaHost

    async def main() -> None:
        store = SlowStore(0.2)
        r, seqs = _started(store)
        host = ReplicaHost(r)
        first = r.counter("c").increment()
        await _until_in_flight(r)
        second = r.counter("d").increment()  # the next batch
        assert host.keys() == ["c", "d"]
        assert not r.commit_in_flight and not r.has_local_writes()
        assert first.durable and second.durable and seqs == [1, 2]
        assert [e.seq for e in store.log()] == [1, 2]
        r.counter("c").increment()
        assert host.state("c").value == 2 and seqs == [1, 2, 3]
        r.counter("c").increment()
        host.digest("c")
        r.counter("c").increment()
        _ = host.digest_index
        assert seqs == [1, 2, 3, 4, 5]
        await r.aclose()

    _run(main())


def test_served_states_are_bounded_by_the_log_unless_remote_data_waits() -> None:
    """ReplicaHost.served_upto: the states it served hold nothing beyond the log up to the
    last commit, except remote data joined and not yet committed (logged later)."""
    from crdtsync.transport.service import ReplicaHost
    from crdtsync.types import GCounter

    r = Replica(MemoryStore(), name="a")
    host = ReplicaHost(r)
    r.counter("c").increment()
    assert host.state("c").value == 1 and host.served_upto() == r.log_seq == 1
    remote = GCounter()
    remote.increment("b.00000001", 5)
    r.apply_remote({"g": remote}, "b.00000001")
    assert host.state("g").value == 5 and host.served_upto() is None
    r.commit()
    assert host.served_upto() == r.log_seq == 2
    r.close()


def test_the_sync_service_commits_only_when_the_engine_reads_the_state() -> None:
    """Engine calls that read no state leave the writes to the background committer; one
    that reads it commits them there, and the engine hears of that commit only once the
    call has returned (it is never re-entered)."""
    from crdtsync.transport.service import SyncService

    async def main() -> None:
        store = SlowStore(0.01)
        r = Replica(store, name="a", commit_delay=60)  # the committer waits: we commit
        service = SyncService(r)
        engine = service.engine
        r.start()
        r.counter("c").increment()
        service._call(engine.tick, time.monotonic())  # no peer: reads nothing
        assert r.has_local_writes() and engine.last_seq == 0

        seen: list[Any] = []

        def catch_up() -> list[Any]:
            seen.append(engine._host.state("c").value)  # as a catch-up reads it
            seen.append(engine.last_seq)  # still inside the call: not told yet
            return []

        service._call(catch_up)
        assert seen == [1, 0] and not r.has_local_writes()
        assert engine.last_seq == 1  # told after the call
        assert [e.seq for e in store.log()] == [1]
        assert service._held is None
        await service.stop()
        await r.aclose()

    _run(main())


def test_subscribers_hear_only_durable_values() -> None:
    """A key written again while its commit was in flight is reported with the commit that
    makes its new value durable, not with the value's non-durable part earlier."""
    async def main() -> None:
        store = SlowStore(0.2)
        r, _ = _started(store)
        heard: list[tuple[str, object, int]] = []
        r.subscribe(lambda key, value: heard.append((key, value, len(store.returned))))
        first = r.counter("c").increment()
        r.counter("d").increment()
        await _until_in_flight(r)
        second = r.counter("c").increment(5)
        await first
        assert heard == [("d", 1, 1)]  # c's live value (6) is not durable yet
        await second
        assert heard == [("d", 1, 1), ("c", 6, 2)]
        await r.aclose()

    _run(main())
