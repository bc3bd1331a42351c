"""Helpers of the security tests: in-process servers, a hand-driven peer, throwaway certificates.

Everything listens on 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from crdtsync_server.app import ReplicaServer
from crdtsync_server.config import load_config
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from crdtsync.codec import encode
from crdtsync.sync import (
    PROTOCOL_VERSION,
    Accept,
    Ack,
    Delta,
    Hello,
    decode_message,
    encode_message,
)
from crdtsync.transport.auth import Authenticator

__all__ = ["running", "url_of", "RawPeer", "eventually", "write_secret", "make_pki", "Pki",
           "rejected", "state_digest", "json_frame", "record_applied", "HAVE_CRYPTOGRAPHY"]

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    HAVE_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - the TLS tests skip with a reason
    HAVE_CRYPTOGRAPHY = False


@asynccontextmanager
async def running(root: Path, name: str, **settings: Any) -> AsyncIterator[ReplicaServer]:
    """Run a ReplicaServer in this event loop (settings as in TOML, validated like the CLI)."""
    flags = {"id": name, "data": str(root / name), "listen": "127.0.0.1:0",
             "log_level": "WARNING", **settings}
    server = ReplicaServer(load_config(flags))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def url_of(server: ReplicaServer, path: str = "") -> str:
    """The server's ws:// (or wss://) URL."""
    scheme = "wss" if server.config.tls else "ws"
    return f"{scheme}://127.0.0.1:{server.port}{path}"


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``check()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


def write_secret(path: Path, secret: str = "correct horse battery staple") -> str:
    """Write a shared-secret (or token) file; return its path."""
    path.write_text(secret + "\n")
    return str(path)


def rejected(server: ReplicaServer, reason: str) -> float:
    """The server's ``crdtsync_rejected{reason}`` counter."""
    value = server.metrics.registry.get_sample_value("crdtsync_rejected_total",
                                                     {"reason": reason})
    return value or 0.0


def record_applied(replica: Any,
                   check: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Wrap ``replica.apply_remote``: every non-empty group handed to it is checked
    (``check``, which raises to fail the test) and a copy recorded in the list returned,
    then applied as before."""
    accepted: list[dict[str, Any]] = []
    apply_remote = replica.apply_remote

    def spy(group: dict[str, Any], origin: str, token: Any = None, **kw: Any) -> Any:
        if group:
            if check is not None:
                check(group)
            accepted.append({k: v.copy() for k, v in group.items()})
        return apply_remote(group, origin, token, **kw)

    replica.apply_remote = spy
    return accepted


def state_digest(replica: Any) -> bytes:
    """Canonical bytes of a replica's whole keyspace (equal states, equal bytes)."""
    return b"\n".join(k.encode() + b"=" + encode(replica._live(k)) for k in replica.keys())


@dataclass
class RawPeer:
    """A peer driven by the test: it speaks the auth frames and sync messages by hand."""

    conn: ClientConnection
    replica: str = "mallory.00000001"
    cluster: str = "default"

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str, **kw: Any) -> AsyncIterator[RawPeer]:
        """Open a /sync connection (no compression, like a real peer)."""
        ssl_ctx = kw.pop("ssl", None)
        extra = {"ssl": ssl_ctx} if ssl_ctx is not None else {}
        async with connect(url, compression=None, open_timeout=5, **extra) as conn:
            yield cls(conn, **kw)

    async def authenticate(self, secret: bytes, *, role: str = "dial") -> Authenticator:
        """Run the challenge-response as a real peer would."""
        auth = Authenticator(secret, cluster=self.cluster, replica=self.replica, role=role)
        await self.conn.send(auth.start())
        async with asyncio.timeout(5):
            while not auth.done:
                for out in auth.receive(await self.conn.recv()):
                    await self.conn.send(out)
        return auth

    async def hello(self, last_seq: int = 0) -> list[Any]:
        """Send a hello and return the victim's hello and accept."""
        await self.send(Hello(PROTOCOL_VERSION, self.cluster, self.replica, False, last_seq))
        got = [await self.recv(), await self.recv()]
        await self.send(Accept(0))
        return got

    async def send_hello_and_delta(self, group: dict[str, Any], *, last_seq: int = 1) -> None:
        """Send a hello and a delta without waiting for answers (a hostile peer's script)."""
        try:
            await self.send(Hello(PROTOCOL_VERSION, self.cluster, self.replica, False, last_seq))
            await self.send(Delta(1, 1, group))
        except ConnectionClosed:
            pass  # the victim closed first

    async def send(self, message: Any) -> None:
        """Send one sync message."""
        await self.conn.send(encode_message(message))

    async def recv(self, timeout: float = 5) -> Any:
        """Receive one sync message."""
        async with asyncio.timeout(timeout):
            return decode_message(await self.conn.recv())

    async def delta(self, start: int, end: int, group: dict[str, Any]) -> None:
        """Send a delta interval."""
        await self.send(Delta(start, end, group))

    async def ack_for(self, upto: int, timeout: float = 5) -> Ack:
        """Wait for the victim's ack of ``upto`` (skipping its other messages)."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.recv(timeout)
                if isinstance(msg, Ack) and msg.upto >= upto:
                    return msg

    async def closed_with(self, timeout: float = 5) -> int | None:
        """Read until the victim closes the link; return its close code."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.conn.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None
        except TimeoutError as exc:
            raise AssertionError("the link was not closed") from exc


# -- a throwaway private CA -----------------------------------------------------------------


@dataclass
class Pki:
    """Files of a throwaway CA and the certificates it issued (name -> (cert, key))."""

    root: Path
    ca: str
    certs: dict[str, tuple[str, str]]

    def files(self, name: str) -> dict[str, str]:
        """TOML-style settings turning on mutual TLS with ``name``'s certificate."""
        cert, key = self.certs[name]
        return {"tls_cert": cert, "tls_key": key, "tls_ca": self.ca}

    def client_context(self, name: str) -> ssl.SSLContext:
        """A client context presenting ``name``'s certificate."""
        from crdtsync.transport.tls import client_context

        cert, key = self.certs[name]
        return client_context(cert, key, self.ca)


def _write_key(path: Path, key: Any) -> str:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return str(path)


def make_pki(root: Path, leaves: dict[str, tuple[str, list[str]]], *,
             ca_name: str = "crdtsync test CA") -> Pki:
    """Make a CA and leaf certificates: ``{file stem: (common name, DNS SANs)}``."""
    root.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_subject).issuer_name(ca_subject)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                            crl_sign=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    ca_path = root / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    certs = {}
    for stem, (cn, sans) in leaves.items():
        key = ec.generate_private_key(ec.SECP256R1())
        alt = [x509.DNSName(n) for n in sans] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(ca_subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(alt), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        cert_path = root / f"{stem}.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        certs[stem] = (str(cert_path), _write_key(root / f"{stem}.key", key))
    return Pki(root, str(ca_path), certs)


def json_frame(obj: Any) -> str:
    """One client API text frame."""
    return orjson.dumps(obj).decode()
