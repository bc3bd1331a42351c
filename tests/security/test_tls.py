"""Mutual TLS on replica links: a throwaway private CA, certificates bound to replica names."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidMessage

from crdtsync.types import GCounter
from tests.security.helpers import (
    HAVE_CRYPTOGRAPHY,
    Pki,
    RawPeer,
    eventually,
    make_pki,
    rejected,
    running,
    url_of,
    write_secret,
)

pytestmark = pytest.mark.skipif(
    not HAVE_CRYPTOGRAPHY,
    reason="the TLS tests make a throwaway CA with the 'cryptography' package "
           "(pip install cryptography)")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), {
        "us": ("us", ["us"]),
        "eu": ("eu", ["eu"]),
        "eu_san_only": ("node-7", ["eu"]),
        "mallory": ("mallory", ["mallory"]),
        "app": ("app-client", []),
    })


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("other"), {"eu": ("eu", ["eu"])},
                    ca_name="someone else's CA")


def _run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


def _evil() -> dict[str, GCounter]:
    g = GCounter()
    g.increment("eu.00000002", 7)
    return {"evil": g}


def test_mutual_tls_with_secret_converges(tmp_path: Path, pki: Pki) -> None:
    secret = write_secret(tmp_path / "secret")

    async def main() -> None:
        async with running(tmp_path, "us", secret_file=secret, **pki.files("us")) as us, \
                running(tmp_path, "eu", secret_file=secret, peers=[url_of(us, "/sync")],
                        **pki.files("eu_san_only")) as eu:
            assert url_of(us).startswith("wss://")
            await us.replica.counter("c").increment(2)
            await eu.replica.counter("c").increment(3)
            await eventually(lambda: us.replica.get("c") == 5 and eu.replica.get("c") == 5)
            assert rejected(us, "peer_auth") == 0

    _run(main())


def test_certificate_of_another_name_is_refused(tmp_path: Path, pki: Pki) -> None:
    """A replica named eu presenting mallory's (valid) certificate: refused at hello."""

    async def main() -> None:
        async with running(tmp_path, "us", **pki.files("us")) as us, \
                running(tmp_path, "eu", peers=[url_of(us, "/sync")],
                        **pki.files("mallory")) as eu:
            await eu.replica.counter("evil").increment()
            await eventually(lambda: rejected(us, "peer_auth") >= 1)
            await asyncio.sleep(0.3)
            assert us.replica.get("evil") is None
        async with running(tmp_path, "us2", **pki.files("us")) as us2:
            async with RawPeer.connect(url_of(us2, "/sync"), ssl=pki.client_context("mallory"),
                                       replica="eu.00000002") as peer:
                await peer.send_hello_and_delta(_evil())
                assert await peer.closed_with() == 1008
            assert us2.replica.get("evil") is None
            assert rejected(us2, "peer_auth") == 1

    _run(main())


def test_dialler_checks_the_acceptors_certificate_too(tmp_path: Path, pki: Pki) -> None:
    """us runs with mallory's certificate: the dialling eu refuses it."""

    async def main() -> None:
        async with running(tmp_path, "us", **pki.files("mallory")) as us, \
                running(tmp_path, "eu", peers=[url_of(us, "/sync")], **pki.files("eu")) as eu:
            await us.replica.counter("c").increment()
            await eventually(lambda: rejected(eu, "peer_auth") >= 1)
            assert eu.replica.get("c") is None

    _run(main())


def test_certificate_from_another_ca_fails_the_tls_handshake(
        tmp_path: Path, pki: Pki, other_pki: Pki) -> None:
    """The listener refuses a client certificate it cannot verify, and one that is missing;
    a dialler refuses a server certificate from another CA."""
    handshake_failed = (ssl.SSLError, InvalidMessage, ConnectionClosed, OSError)

    def context(cert: tuple[str, str] | None, ca: str) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(ca)
        if cert is not None:
            ctx.load_cert_chain(*cert)
        return ctx

    async def attempt(url: str, ctx: ssl.SSLContext) -> None:
        async with connect(url, ssl=ctx, open_timeout=5) as conn:
            await conn.send('{"id": 1, "op": "keys"}')
            await asyncio.wait_for(conn.recv(), 5)

    async def main() -> None:
        async with running(tmp_path, "us", **pki.files("us")) as us:
            foreign = context(other_pki.certs["eu"], pki.ca)  # trusts us, but a foreign cert
            with pytest.raises(handshake_failed):
                await attempt(url_of(us, "/sync"), foreign)
            with pytest.raises(handshake_failed):  # no client certificate at all
                await attempt(url_of(us, "/client"), context(None, pki.ca))
            with pytest.raises(ssl.SSLCertVerificationError):  # we do not trust the server
                await attempt(url_of(us, "/client"), other_pki.client_context("eu"))
            async with connect(url_of(us, "/client"), ssl=pki.client_context("app")) as conn:
                await conn.send('{"id": 1, "op": "keys"}')
                assert '"ok":true' in str(await asyncio.wait_for(conn.recv(), 5))

    _run(main())


def test_plain_peer_urls_are_refused_with_tls(tmp_path: Path, pki: Pki) -> None:
    from crdtsync_server.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="wss://"):
        load_config({"id": "us", "data": str(tmp_path), "peers": ["ws://127.0.0.1:1/sync"],
                     **pki.files("us")})
    with pytest.raises(ConfigError, match="--tls-key"):
        load_config({"id": "us", "data": str(tmp_path), "tls_cert": pki.certs["us"][0],
                     "tls_ca": pki.ca})
    with pytest.raises(ConfigError, match="cannot load"):
        load_config({"id": "us", "data": str(tmp_path), "tls_cert": pki.ca,
                     "tls_key": pki.ca, "tls_ca": pki.ca})


def test_status_over_mutual_tls(tmp_path: Path, pki: Pki) -> None:
    """``crdtsync status wss://...`` with a client certificate reads /health; without one
    the TLS handshake fails and it exits 1."""
    import subprocess
    import sys

    async def main() -> None:
        async with running(tmp_path, "us", **pki.files("us")) as us:
            app = pki.files("app")
            cmd = [sys.executable, "-m", "crdtsync_server.cli", "status", url_of(us)]
            ok = await asyncio.to_thread(subprocess.run, [
                *cmd, "--tls-ca", app["tls_ca"], "--tls-cert", app["tls_cert"],
                "--tls-key", app["tls_key"]], capture_output=True, text=True, timeout=30)
            assert ok.returncode == 0 and "replica us" in ok.stdout, ok.stderr
            bare = await asyncio.to_thread(subprocess.run, [*cmd, "--tls-ca", app["tls_ca"]],
                                           capture_output=True, text=True, timeout=30)
            assert bare.returncode == 1 and "cannot reach" in bare.stderr

    _run(main())
