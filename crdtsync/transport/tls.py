"""Mutual TLS for replica links: contexts from files, and the certificate <-> replica binding.

Both ends present a certificate signed by the cluster's private CA and verify the other's
(``CERT_REQUIRED``, TLS 1.2 or later). A verified certificate only says "a member of this
CA"; the transport then binds it to the replica on the link: the replica *name* (the part
of the replica id before the first ``.``) the peer announces must appear in the
certificate, as its subject common name or as a DNS subject alternative name. Hostname
checking is off for the same reason: a peer's identity is its replica name, not the host
in the URL it was dialled at.
"""

from __future__ import annotations

import ssl
from typing import Any

__all__ = ["server_context", "client_context", "peer_names", "replica_name", "names_match"]


def _context(purpose: int, cert: str, key: str, ca: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(purpose)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cafile=ca)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def server_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """Return the listener's context: our certificate, peers' certificates required."""
    return _context(ssl.PROTOCOL_TLS_SERVER, cert, key, ca)


def client_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """Return the context for dialling ``wss://`` peers: our certificate, theirs required."""
    return _context(ssl.PROTOCOL_TLS_CLIENT, cert, key, ca)


def peer_names(conn: Any) -> frozenset[str] | None:
    """Return the names in the peer's verified certificate (CN and DNS SANs); None if no TLS."""
    transport = getattr(conn, "transport", None)
    if transport is None or transport.get_extra_info("ssl_object") is None:
        return None
    cert = transport.get_extra_info("peercert") or {}
    names = {value for rdn in cert.get("subject", ()) for attr, value in rdn
             if attr == "commonName"}
    names |= {value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"}
    return frozenset(names)


def replica_name(replica_id: str) -> str:
    """Return the name part of a replica id ("us" for "us.3f9a2c1b")."""
    return replica_id.partition(".")[0]


def names_match(names: frozenset[str], replica_id: str) -> bool:
    """Return True if the certificate ``names`` include the name of ``replica_id``."""
    return replica_name(replica_id) in names
