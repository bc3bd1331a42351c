"""How the client API answers pipelined writes: in order, once durable, each on time.

A connection's writes that wait only to be durable here are answered by one task in
arrival order, once per group commit (server/client_api.py, ``_answer_durable``). These
tests run a server in this event loop and slow or break its store's commits.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from crdtsync_server.client_api import MAX_IN_FLIGHT
from websockets.asyncio.client import ClientConnection, connect

from crdtsync.errors import StoreError
from tests.security.helpers import running, url_of


def _run(coro: Any) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


async def _send(conn: ClientConnection, rid: int, **fields: Any) -> None:
    await conn.send(orjson.dumps({"id": rid, "op": "counter.increment", "key": "c",
                                  **fields}).decode())


async def _answers(conn: ClientConnection, n: int) -> list[dict[str, Any]]:
    return [orjson.loads(await asyncio.wait_for(conn.recv(), 10)) for _ in range(n)]


def _slow_commits(server: Any, seconds: float, fail: list[bool] | None = None) -> None:
    """Make each store commit of the server's replica take ``seconds`` (and raise once
    while ``fail`` holds True)."""
    store = server.replica.store
    inner = store.commit

    def commit(what: Any) -> None:
        time.sleep(seconds)
        if fail and fail[0]:
            fail[0] = False
            raise StoreError("disk on fire")
        inner(what)

    store.commit = commit


def test_pipelined_writes_are_answered_in_order_once_durable(tmp_path: Path) -> None:
    """More writes than MAX_IN_FLIGHT: each answer frees its slot (else this stalls)."""
    n = MAX_IN_FLIGHT * 2 + 100

    async def main() -> None:
        async with running(tmp_path, "us") as server:
            async with connect(url_of(server, "/client")) as conn:
                for rid in range(n):
                    await _send(conn, rid)
                answers = await _answers(conn, n)
                assert [a["id"] for a in answers] == list(range(n))
                assert all(a["ok"] for a in answers)
                assert [a["value"] for a in answers] == list(range(1, n + 1))
                assert server.replica.log_seq >= 1 and not server.replica.has_local_writes()

    _run(main())


def test_the_server_stops_reading_at_max_in_flight_unanswered_writes(tmp_path: Path) -> None:
    """Backpressure: with the commits held, the server applies MAX_IN_FLIGHT writes of a
    connection and reads no further; once the commits go, every write is answered."""
    n = MAX_IN_FLIGHT + 200
    gate = threading.Event()

    async def main() -> None:
        async with running(tmp_path, "us") as server:
            store = server.replica.store
            inner = store.commit

            def held_commit(what: Any) -> None:
                gate.wait(30)
                inner(what)

            store.commit = held_commit
            async with connect(url_of(server, "/client")) as conn:
                for rid in range(n):
                    await _send(conn, rid)
                deadline = time.monotonic() + 10
                while server.replica.get("c", 0) < MAX_IN_FLIGHT and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.3)  # time to read more, if it did
                assert server.replica.get("c", 0) == MAX_IN_FLIGHT
                gate.set()
                answers = await _answers(conn, n)
                assert [a["id"] for a in answers] == list(range(n))
                assert all(a["ok"] for a in answers)

    try:
        _run(main())
    finally:
        gate.set()


def test_a_write_whose_timeout_is_up_is_answered_then_and_the_rest_later(
        tmp_path: Path) -> None:
    """Timeouts per request: one that is up is answered "timeout" while the writes queued
    before it still wait, and they are answered ok once durable."""
    async def main() -> None:
        async with running(tmp_path, "us") as server:
            _slow_commits(server, 0.4)
            async with connect(url_of(server, "/client")) as conn:
                started = time.monotonic()
                await _send(conn, 1, timeout_ms=5000)
                await _send(conn, 2, timeout_ms=50)
                first = orjson.loads(await asyncio.wait_for(conn.recv(), 10))
                assert first["id"] == 2 and first["error"]["code"] == "timeout"
                assert time.monotonic() - started < 0.35  # at its timeout, not the commit's
                second = orjson.loads(await asyncio.wait_for(conn.recv(), 10))
                assert second == {"id": 1, "ok": True, "value": 1}  # the value it wrote
                await _send(conn, 3)
                assert (await _answers(conn, 1))[0] == {"id": 3, "ok": True, "value": 3}

    _run(main())


def test_a_failed_commit_fails_the_queued_writes_and_the_connection_goes_on(
        tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path, "us") as server:
            fail = [True]
            _slow_commits(server, 0.05, fail)
            async with connect(url_of(server, "/client")) as conn:
                for rid in range(5):
                    await _send(conn, rid)
                answers = await _answers(conn, 5)
                assert [a["id"] for a in answers] == list(range(5))
                assert all(a["error"]["code"] == "internal" for a in answers), answers
                await _send(conn, 9)
                [after] = await _answers(conn, 1)
                assert after["id"] == 9 and after["ok"] is True

    _run(main())
