"""A replica server over real websockets under a burst of hostile traffic from an
authenticated peer and from a client: afterwards its state digest is what it was, joined
with exactly the groups the delta rule let through, and it still serves and syncs."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from crdtsync.codec import encode
from crdtsync.sync import PROTOCOL_VERSION, Ack, Delta, Hello, States, encode_message
from crdtsync.types import AWORSet, GCounter, ORMap
from tests.security.fuzz_long import mutate_bytes, mutate_json
from tests.security.helpers import (
    RawPeer,
    eventually,
    record_applied,
    rejected,
    running,
    state_digest,
    url_of,
    write_secret,
)
from tests.security.test_client_limits import MALFORMED
from tests.security.test_fuzz import _expected


def _base_frames() -> list[bytes]:
    """Valid messages whose groups name an outsider (the mutator takes them from here)."""
    g = GCounter()
    g.increment("mallory.1", 5)
    s = AWORSet()
    s.add("mallory.1", "x")
    m = ORMap()
    m.update("mallory.1", "f", AWORSet, lambda v: v.add("mallory.1", 1))
    return [encode_message(msg) for msg in (
        Delta(1, 1, {"g": g}), Delta(1, 2, {"s": s, "m": m}), Delta(2, 5, {"g": g}),
        States(1, 3, 0, 1, {"m": m}), Ack(0),
        Hello(PROTOCOL_VERSION, "default", "eu.00000002", False, 9))]


def test_state_digest_unchanged_by_hostile_peer_and_client(tmp_path: Path) -> None:
    secret = write_secret(tmp_path / "secret")
    rng = random.Random(7)
    base = _base_frames()

    async def peer_burst(url: str, frames: int) -> None:
        sent = 0
        for _ in range(frames):  # reconnect (and authenticate again) when dropped; bounded
            try:
                async with RawPeer.connect(url, replica="eu.00000002") as peer:
                    await peer.authenticate(b"correct horse battery staple")
                    await peer.hello(last_seq=9)
                    while sent < frames:
                        frame = rng.choice(base)
                        r = rng.random()
                        if r < 0.4:
                            frame = orjson.dumps(mutate_json(rng, orjson.loads(frame)))
                        elif r < 0.65:
                            frame = mutate_bytes(rng, frame, base)
                        sent += 1
                        await peer.conn.send(frame)
                        await asyncio.sleep(0.005)  # let a refusal arrive before the next
                        if peer.conn.state is not State.OPEN:
                            break  # dropped: dial and authenticate again
                    else:
                        await asyncio.sleep(0.2)
                        return
            except (ConnectionClosed, OSError, TimeoutError):
                continue

    async def client_burst(url: str) -> None:
        async with connect(url) as conn:
            for req, _code in MALFORMED * 3:
                frame = req if isinstance(req, (str, bytes)) else orjson.dumps(req).decode()
                if isinstance(frame, str) and rng.random() < 0.3:
                    frame = mutate_bytes(rng, frame.encode(), base).decode("utf-8", "replace")
                await conn.send(frame)
                answer = orjson.loads(await asyncio.wait_for(conn.recv(), 5))
                assert answer["ok"] is False, (frame, answer)

    async def main() -> None:
        async with running(tmp_path, "us", secret_file=secret, members=["us", "eu"]) as us:
            await us.replica.counter("c").increment(2)
            await us.replica.map("post:1").set("likes").add("bob")
            accepted = record_applied(us.replica)
            before_digest = state_digest(us.replica)
            before = {k: encode(us.replica._live(k)) for k in us.replica.keys()}
            await client_burst(url_of(us, "/client"))
            assert state_digest(us.replica) == before_digest  # no client frame was a write
            await peer_burst(url_of(us, "/sync"), 300)
            await us.replica.flush()
            after = {k: encode(us.replica._live(k)) for k in us.replica.keys()}
            if accepted:
                assert after == _expected(before, accepted)
            else:
                assert state_digest(us.replica) == before_digest
            assert us.sync.rejected_groups > 0
            print(f"hostile traffic: {len(accepted)} groups joined, "
                  f"{us.sync.rejected_groups} refused by the delta rule, "
                  f"{rejected(us, 'peer_protocol'):.0f} links dropped")
            # Still serving clients, and still syncing with a real peer.
            async with running(tmp_path, "eu", secret_file=secret, members=["us", "eu"],
                               peers=[url_of(us, "/sync")]) as eu:
                await eu.replica.counter("c").increment(3)
                await eventually(lambda: us.replica.get("c") == 5 == eu.replica.get("c"))

    asyncio.run(asyncio.wait_for(main(), 90))


def test_compressed_bomb_is_refused_before_it_inflates(tmp_path: Path) -> None:
    """A small compressed frame that would inflate past 4x the frame limit: link dropped."""
    import zlib

    bomb = b"\x01" + zlib.compress(b'{"type":"ack","upto":1' + b" " * (40 << 20) + b"}", 9)
    assert len(bomb) < 100_000

    async def main() -> None:
        async with running(tmp_path, "us", max_frame_bytes=1 << 20) as us:
            assert us.sync.max_message_bytes == 4 << 20
            async with RawPeer.connect(url_of(us, "/sync"), replica="eu.00000002") as peer:
                await peer.hello()
                await peer.conn.send(bomb)
                assert await peer.closed_with() == 1002
            assert rejected(us, "peer_protocol") == 1

    asyncio.run(asyncio.wait_for(main(), 60))
