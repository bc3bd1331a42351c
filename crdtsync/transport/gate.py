"""Who may speak on a replica link: the link object and its gate (secret, TLS names, members).

:class:`LinkGate` runs before a link's frames reach the sync engine and again on the
peer's ``hello``:

- with a shared secret, the challenge-response of :mod:`.auth` (frames limited to
  :data:`~.auth.MAX_AUTH_FRAME` bytes, within ``timeout`` seconds);
- with TLS, the names of the peer's verified certificate (:mod:`.tls`) must include the
  name of the replica it authenticates as, and later says hello as;
- with a member list, that replica's name must be a member.

Any failure raises :class:`~.auth.AuthError`; the service refuses the link (close code
1008), logs the reason and counts ``crdtsync_rejected{reason="peer_auth"}``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .auth import MAX_AUTH_FRAME, Authenticator, AuthError
from .tls import names_match, peer_names, replica_name

__all__ = ["Link", "LinkGate", "SEND_QUEUE_LIMIT"]

log = logging.getLogger("crdtsync.transport")

SEND_QUEUE_LIMIT = 4096


class Link:
    """One websocket carrying sync messages, with a bounded send queue and its identity."""

    def __init__(self, conn: Any, label: str) -> None:
        self.conn = conn
        self.label = label
        self.peer: str | None = None
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closing = False
        self.auth_peer: str | None = None  # the replica id the shared secret authenticated
        self.cert_names: frozenset[str] | None = None  # names in its TLS cert (TLS binding on)
        self.delivered = False  # a sync message went through after authentication

    def send(self, data: bytes) -> bool:
        """Queue ``data``; False if the link is closing or its queue is full."""
        if self.closing:
            return False
        if self.queue.qsize() >= SEND_QUEUE_LIMIT:
            return False
        self.queue.put_nowait(data)
        return True

    def close_after_sends(self) -> None:
        """Close the websocket once what is queued is sent."""
        if not self.closing:
            self.closing = True
            self.queue.put_nowait(None)


class LinkGate:
    """The checks a link passes before and during sync (see the module docstring)."""

    def __init__(self, *, replica: str, cluster: str, secret: bytes | None, tls: bool,
                 members: frozenset[str] | None, timeout: float, max_frame_bytes: int,
                 metrics: Any = None) -> None:
        self.replica = replica
        self.cluster = cluster
        self.secret = secret
        self.tls = tls
        self.members = members
        self.timeout = timeout
        self.max_frame_bytes = max_frame_bytes
        self.metrics = metrics
        self.authenticating = 0

    async def authenticate(self, link: Link, role: str) -> None:
        """Run the challenge-response (with a secret), read the TLS names (with TLS)."""
        conn = link.conn
        if self.tls:
            link.cert_names = peer_names(conn)
            if link.cert_names is None:
                raise AuthError(f"{link.label}: TLS is configured but this link is not TLS")
        if self.secret is None:
            return
        conn.protocol.max_message_size = MAX_AUTH_FRAME
        auth = Authenticator(self.secret, cluster=self.cluster, replica=self.replica, role=role)
        self.authenticating += 1
        try:
            async with asyncio.timeout(self.timeout):
                await conn.send(auth.start())
                while not auth.done:
                    for out in auth.receive(await conn.recv()):
                        await conn.send(out)
        except TimeoutError as exc:
            raise AuthError(f"no authentication within {self.timeout} s") from exc
        finally:
            self.authenticating -= 1
        assert auth.peer is not None
        link.auth_peer = auth.peer
        self.check_identity(link, auth.peer)
        conn.protocol.max_message_size = self.max_frame_bytes

    def check_identity(self, link: Link, replica: str) -> None:
        """Raise AuthError unless ``replica`` may speak on ``link`` (secret, TLS, members)."""
        if link.auth_peer is not None and replica != link.auth_peer:
            raise AuthError(f"peer authenticated as {link.auth_peer!r} said hello as {replica!r}")
        if link.cert_names is not None and not names_match(link.cert_names, replica):
            raise AuthError(f"certificate of {link.label} names {sorted(link.cert_names)[:4]}, "
                            f"not replica {replica_name(replica)!r} ({replica!r})")
        if self.members is not None and replica_name(replica) not in self.members:
            raise AuthError(f"replica {replica!r} is not a member of cluster {self.cluster!r}")

    def refuse(self, link: Link, exc: Exception) -> None:
        """Log and count a refused link."""
        log.warning("refused peer link %s: %s", link.label, exc)
        if self.metrics is not None:
            self.metrics.rejected("peer_auth")
