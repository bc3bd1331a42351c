"""Authenticated replica links over real websockets on 127.0.0.1 (servers in this process).

A victim replica runs with a shared secret; a test-driven peer tries to get a write in
without it, with a wrong one, by replaying a recorded handshake, by reflecting the
victim's own answer. Each is refused with a logged reason and a metric, and its write
never appears at the victim. Two replicas with the same secret converge.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect

from crdtsync.transport.auth import Authenticator
from crdtsync.types import GCounter
from tests.security.helpers import RawPeer, eventually, rejected, running, url_of, write_secret

SECRET = "correct horse battery staple"


def _evil() -> dict[str, GCounter]:
    g = GCounter()
    g.increment("mallory.00000001", 1000)
    return {"evil": g}


def _run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


def test_same_secret_converges_and_peer_identity_is_bound(tmp_path: Path) -> None:
    secret = write_secret(tmp_path / "secret")

    async def main() -> None:
        async with running(tmp_path, "us", secret_file=secret) as us, \
                running(tmp_path, "eu", secret_file=secret,
                        peers=[url_of(us, "/sync")]) as eu:
            await us.replica.counter("c").increment(2)
            await eu.replica.counter("c").increment(3)
            await eventually(lambda: us.replica.get("c") == 5 and eu.replica.get("c") == 5)
            assert rejected(us, "peer_auth") == 0 and rejected(eu, "peer_auth") == 0

    _run(main())


def test_unauthenticated_peer_is_refused_and_its_write_never_applied(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = write_secret(tmp_path / "secret")

    async def main() -> None:
        async with running(tmp_path, "us", secret_file=secret) as us:
            async with RawPeer.connect(url_of(us, "/sync")) as peer:
                first = await peer.conn.recv()  # the victim's challenge, never a sync message
                assert orjson.loads(first)["type"] == "auth.challenge"
                await peer.send_hello_and_delta(_evil())
                assert await peer.closed_with() == 1008
            await asyncio.sleep(0.3)
            assert us.replica.get("evil") is None
            assert rejected(us, "peer_auth") == 1

    with caplog.at_level(logging.WARNING, logger="crdtsync.transport"):
        _run(main())
    assert "before authenticating" in caplog.text


def test_wrong_secret_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = write_secret(tmp_path / "secret")

    async def main() -> None:
        async with running(tmp_path, "us", secret_file=secret) as us:
            async with RawPeer.connect(url_of(us, "/sync")) as peer:
                with pytest.raises(Exception):  # noqa: B017 - closed, or the proof refused
                    await peer.authenticate(b"the wrong secret, long enough")
                    await peer.send_hello_and_delta(_evil())
                    await peer.recv()
            await asyncio.sleep(0.3)
            assert us.replica.get("evil") is None
            assert rejected(us, "peer_auth") == 1

    with caplog.at_level(logging.WARNING, logger="crdtsync.transport"):
        _run(main())
    assert "does not verify" in caplog.text


def test_a_real_server_with_a_wrong_secret_never_syncs(tmp_path: Path) -> None:
    good = write_secret(tmp_path / "good")
    bad = write_secret(tmp_path / "bad", "another secret entirely, long")

    async def main() -> None:
        async with running(tmp_path, "us", secret_file=good) as us, \
                running(tmp_path, "eu", secret_file=bad, peers=[url_of(us, "/sync")]) as eu:
            await eu.replica.counter("evil").increment()
            await eventually(lambda: rejected(us, "peer_auth") >= 1)
            await asyncio.sleep(0.5)
            assert us.replica.get("evil") is None
            # The dialler was refused, so it backs off instead of redialling in a tight loop.
            assert rejected(us, "peer_auth") < 10

    _run(main())


def test_replayed_handshake_is_refused(tmp_path: Path) -> None:
    """Record a legitimate peer's handshake frames; replaying them on a new link fails."""
    secret = write_secret(tmp_path / "secret")

    async def main() -> None:
        async with running(tmp_path, "us", secret_file=secret) as us:
            recorded: list[bytes] = []
            async with RawPeer.connect(url_of(us, "/sync"), replica="eu.00000002") as peer:
                auth = Authenticator(secret_bytes(), cluster="default",
                                     replica=peer.replica, role="dial")
                recorded.append(auth.start())
                await peer.conn.send(recorded[0])
                recorded += auth.receive(await peer.conn.recv())
                await peer.conn.send(recorded[1])
                assert auth.receive(await peer.conn.recv()) == [] and auth.done
            async with RawPeer.connect(url_of(us, "/sync"), replica="eu.00000002") as replay:
                await replay.conn.recv()  # a fresh challenge
                for frame in recorded:
                    await replay.conn.send(frame)
                await replay.send_hello_and_delta(_evil())
                assert await replay.closed_with() == 1008
            await asyncio.sleep(0.3)
            assert us.replica.get("evil") is None
            assert rejected(us, "peer_auth") == 1

    _run(main())


def test_reflected_answer_is_refused(tmp_path: Path) -> None:
    """Without the secret, send the victim's own proof back as ours: refused."""
    write_secret(tmp_path / "secret")

    async def main() -> None:
        async with running(tmp_path, "us", secret_file=str(tmp_path / "secret")) as us:
            async with RawPeer.connect(url_of(us, "/sync")) as peer:
                await peer.conn.recv()  # the victim's challenge
                await peer.conn.send(orjson.dumps({
                    "type": "auth.challenge", "v": 1, "cluster": "default",
                    "replica": peer.replica, "role": "dial", "nonce": "ab" * 32}))
                victim_proof = await peer.conn.recv()
                assert orjson.loads(victim_proof)["type"] == "auth.proof"
                await peer.conn.send(victim_proof)  # reflect it
                await peer.send_hello_and_delta(_evil())
                assert await peer.closed_with() == 1008
            assert us.replica.get("evil") is None
            assert rejected(us, "peer_auth") == 1

    _run(main())


def test_secret_on_one_side_only_never_links(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                             ) -> None:
    """One replica with a secret, one without: both refuse, neither applies anything."""
    secret = write_secret(tmp_path / "secret")

    async def main() -> None:
        async with running(tmp_path, "us", secret_file=secret) as us, \
                running(tmp_path, "eu", peers=[url_of(us, "/sync")]) as eu:
            await eu.replica.counter("from_eu").increment()
            await us.replica.counter("from_us").increment()
            await eventually(lambda: rejected(us, "peer_auth") >= 1
                             and rejected(eu, "peer_auth") >= 1)
            await asyncio.sleep(0.3)
            assert us.replica.get("from_eu") is None and eu.replica.get("from_us") is None

        async with running(tmp_path, "ap") as ap, \
                running(tmp_path, "sa", secret_file=secret, peers=[url_of(ap, "/sync")]) as sa:
            await eventually(lambda: rejected(ap, "peer_auth") >= 1
                             and rejected(sa, "peer_auth") >= 1)

    with caplog.at_level(logging.WARNING, logger="crdtsync.transport"):
        _run(main())
    assert "this replica has none" in caplog.text  # the side without a secret says why
    assert ("before authenticating" in caplog.text  # the side with one: a hello came first,
            or "during authentication" in caplog.text)  # or the other side closed first


def test_hello_must_match_the_authenticated_id(tmp_path: Path) -> None:
    secret = write_secret(tmp_path / "secret")

    async def main() -> None:
        async with running(tmp_path, "us", secret_file=secret) as us:
            async with RawPeer.connect(url_of(us, "/sync"), replica="eu.00000002") as peer:
                await peer.authenticate(secret_bytes())
                peer.replica = "ap.00000003"  # say hello as someone else
                await peer.send_hello_and_delta(_evil())
                assert await peer.closed_with() == 1008
            assert us.replica.get("evil") is None
            assert rejected(us, "peer_auth") == 1

    _run(main())


def test_silent_peer_times_out_and_many_pending_are_capped(tmp_path: Path) -> None:
    secret = write_secret(tmp_path / "secret")

    async def main() -> None:
        async with running(tmp_path, "us", secret_file=secret) as us:
            us.sync.gate.timeout = 0.3
            async with RawPeer.connect(url_of(us, "/sync")) as peer:
                assert await peer.closed_with(timeout=5) == 1008
            assert rejected(us, "peer_auth") == 1
            # A big frame before authentication closes the link (message too big).
            async with connect(url_of(us, "/sync"), compression=None) as conn:
                await conn.recv()
                await conn.send(b"x" * 100_000)
                with pytest.raises(Exception):  # noqa: B017
                    await asyncio.wait_for(conn.recv(), 5)
                assert conn.close_code == 1009

    _run(main())


def secret_bytes() -> bytes:
    return SECRET.encode()
