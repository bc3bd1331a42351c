"""A state catch-up between two SyncServices over real websockets on 127.0.0.1, while the
sender's writers keep writing: the engine reads the state only once it is durable (the
host commits first), and the peers converge."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path
from typing import Any

import pytest
from crdtsync_server.metrics import Metrics
from websockets.asyncio.server import serve

from crdtsync.replica import Replica
from crdtsync.transport.service import ReplicaHost, SyncService

WRITERS = 8
LIMIT_S = 20.0


def _watch_reads(host: ReplicaHost, replica: Replica) -> dict[str, int]:
    """Count the engine's reads of ``host`` and those that found writes not durable."""
    seen = {"reads": 0, "not_durable": 0}
    for name in ("keys", "digest", "state"):
        inner = getattr(host, name)

        def read(*args: Any, inner: Any = inner) -> Any:
            out = inner(*args)
            seen["reads"] += 1
            if replica.has_local_writes() or replica.commit_in_flight:
                seen["not_durable"] += 1
            return out

        setattr(host, name, read)
    return seen


def test_a_catch_up_under_writes_reads_only_durable_state_and_converges(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Both sides also log the catch-up, and b's metrics count catch-ups, not parts."""
    caplog.set_level(logging.INFO, logger="crdtsync.sync")

    async def main() -> None:
        # a's log keeps 2 entries: a new peer cannot be served from it, so it catches up
        # from state
        a = Replica.open(str(tmp_path / "a"), name="a", max_log_entries=2, commit_delay=0.001)
        for i in range(30):
            a.counter(f"c{i % 5}").increment()
            a.set("s").add(f"e{i}")
            for j in range(20):  # enough keys that the states come in several parts
                a.counter(f"k{i}.{j}").increment()
            a.commit()
        b = Replica.open(str(tmp_path / "b"), name="b")
        sa = SyncService(a, rng=random.Random(1), max_frame_bytes=16384)  # parts <= 8 KB
        sb = SyncService(b, rng=random.Random(2), metrics=Metrics())
        seen = _watch_reads(sa.engine._host, a)  # type: ignore[arg-type]
        stop = asyncio.Event()
        acked = [0]

        async def writer(i: int) -> None:
            counter = a.counter(f"w{i}")
            while not stop.is_set():
                await counter.increment()
                acked[0] += 1

        server = await serve(sa.accept, "127.0.0.1", 0, compression=None, ping_interval=None)
        try:
            await sa.start()
            writers = [asyncio.create_task(writer(i)) for i in range(WRITERS)]
            await asyncio.sleep(0.05)  # writes are pending and in flight when b connects
            port = server.sockets[0].getsockname()[1]
            sb.urls = [f"ws://127.0.0.1:{port}/sync"]
            await sb.start()
            deadline = time.monotonic() + LIMIT_S
            while seen["reads"] == 0 or acked[0] < 200:
                assert time.monotonic() < deadline, "no catch-up began"
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.gather(*writers)
            await a.flush()
            want = dict(a.items())
            while dict(b.items()) != want:
                assert time.monotonic() < deadline, "b did not converge to a"
                await asyncio.sleep(0.01)
        finally:
            stop.set()
            await sb.stop()
            await sa.stop()
            server.close()
            await server.wait_closed()
            await a.aclose()
            await b.aclose()
        assert seen["reads"] > 0 and seen["not_durable"] == 0
        assert sb.engine.status()[a.replica_id].received >= 30  # a's log, through the catch-up
        lines = [r.getMessage() for r in caplog.records if r.name == "crdtsync.sync"]
        caught = [ln for ln in lines if ln.startswith(f"caught up from {a.replica_id}: ")]
        sent = [ln for ln in lines if ln.startswith(f"catching {b.replica_id} up from state: ")]
        assert caught and sent, lines
        assert all(" 1 part," not in ln for ln in caught), caught
        catchups = sb.metrics.catchups.labels(a.replica_id)._value.get()  # type: ignore[union-attr]
        assert catchups == len(caught)  # one per catch-up, not one per part

    asyncio.run(asyncio.wait_for(main(), 60))
