"""Three SyncServices over real websockets on 127.0.0.1, full mesh: a region that was cut
off comes back and gets each other region's writes once (relayed marks and needs, protocol
version 3), its marks go all the way up through the service's commit pipeline (the
mark-only Applies that needs hold back), and all three converge."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import serve

from crdtsync.replica import Replica
from crdtsync.transport.service import SyncService

LIMIT_S = 30.0
ROUNDS = 20


async def _until(check: Any, what: str, deadline: float) -> None:
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("restart", [False, True], ids=["running", "a-and-b-restarted"])
def test_a_region_back_from_a_cut_gets_each_write_once_and_converges(
        tmp_path: Path, restart: bool) -> None:
    """With ``restart``, a and b are stopped and reopened from their data directories
    while c is away: the entries they logged to forward keep their bounds in the store,
    so each still leaves the other's writes out for c."""
    async def main() -> None:
        reps = {n: Replica.open(str(tmp_path / n), name=n, commit_delay=0.001) for n in "abc"}
        a, b, c = reps["a"], reps["b"], reps["c"]
        servers: dict[str, Any] = {}
        url: dict[str, str] = {}

        async def serve_ab() -> tuple[SyncService, SyncService]:
            sa = SyncService(reps["a"], rng=random.Random(1))
            sb = SyncService(reps["b"], rng=random.Random(2))
            for name, svc in (("a", sa), ("b", sb)):
                servers[name] = await serve(svc.accept, "127.0.0.1", 0, compression=None,
                                            ping_interval=None)
                url[name] = f"ws://127.0.0.1:{servers[name].sockets[0].getsockname()[1]}/sync"
            sb.urls = [url["a"]]
            return sa, sb

        sa, sb = await serve_ab()
        deadline = time.monotonic() + LIMIT_S
        sc = SyncService(c, peers=[url["a"], url["b"]], rng=random.Random(3))
        try:
            for svc in (sa, sb, sc):
                await svc.start()
            def connected() -> bool:
                status = sc.peer_status()
                return len(status) == 2 and all(s["connected"] for s in status.values())

            await _until(connected, "c did not connect to a and b", deadline)
            await sc.stop()  # c is cut off
            for i in range(ROUNDS):  # a and b write in turn, each forwarding the other's
                await a.counter(f"a{i % 7}").increment()
                await b.counter(f"b{i % 5}").increment(2)
                await a.set("s").add(f"a{i}")
                await b.set("s").add(f"b{i}")
            await _until(lambda: dict(a.items()) == dict(b.items()), "a and b differ",
                         deadline)
            want = dict(a.items())
            if restart:
                for svc in (sb, sa):
                    await svc.stop()
                for server in servers.values():
                    server.close()
                    await server.wait_closed()
                for n in "ab":
                    await reps[n].aclose()
                    reps[n] = Replica.open(str(tmp_path / n), name=n, commit_delay=0.001)
                a, b = reps["a"], reps["b"]
                assert any(e.upto for e in a.store.log()) and any(e.upto for e in b.store.log())
                sa, sb = await serve_ab()
                for svc in (sa, sb):
                    await svc.start()
            received = sc.bytes_received
            sc = SyncService(c, peers=[url["a"], url["b"]], rng=random.Random(4))
            await sc.start()  # c is back
            await _until(lambda: dict(c.items()) == want, "c did not converge", deadline)
            # c holds each log up to its end: the marks the needs held back came through
            marks = {p: s.received for p, s in sc.engine.status().items()}
            await _until(lambda: {p: s.received for p, s in sc.engine.status().items()}
                         == {a.replica_id: a.log_seq, b.replica_id: b.log_seq},
                         f"c's marks stopped at {marks}", deadline)
            left_out = (sa.engine.log_stats()["left_out"], sb.engine.log_stats()["left_out"])
            assert all(n > 0 for n in left_out), left_out  # each left the other's out for c
            # and c never had to refuse what they left out (it got it from the other)
            assert [svc.engine._tx[c.replica_id].doubted for svc in (sa, sb)] == [{}, {}]
            assert sc.bytes_received > received
        finally:
            for svc in (sc, sb, sa):
                await svc.stop()
            for server in servers.values():
                server.close()
                await server.wait_closed()
            for r in reps.values():
                await r.aclose()

    asyncio.run(asyncio.wait_for(main(), 60))
