"""Peer authentication on replica links: a shared cluster secret, challenge-response.

Runs in the transport on every new link, before any sync message reaches the engine. Like
the engine it is sans-I/O: :class:`Authenticator` takes the frames received and returns the
frames to send; the caller owns the socket, the clock and the timeout.

Both sides speak at once (there is no initiator), each in its *role*: ``"dial"`` for the
side that opened the connection, ``"accept"`` for the side that accepted it. Frames are
binary, canonical JSON, with type tags no sync message uses::

    {"type": "auth.challenge", "v": 1, "cluster": C, "replica": ID, "role": R, "nonce": N}
    {"type": "auth.proof", "mac": M}

1. Each side sends its challenge at once: a fresh 32-byte random nonce
   (:func:`secrets.token_bytes`), its replica id, its role and the cluster name.
2. On the peer's challenge, each side sends its proof::

       M = HMAC-SHA256(secret, ["crdtsync-auth/1", LABEL, cluster,
                                dial replica id, accept replica id, dial nonce, accept nonce])

   (canonical JSON of that array), where ``LABEL`` is ``"dial->accept"`` for the proof the
   dialling side sends and ``"accept->dial"`` for the accepting side's.
3. On the peer's proof, each side computes the proof it expects and compares the two with
   :func:`hmac.compare_digest`. Only then is the link handed to the sync engine.

Why this holds: the secret never crosses the wire, only MACs over fresh nonces. A recorded
handshake replayed later fails, because the other side's nonce is new. A proof reflected
back to its sender (or a challenge echoed back) fails, because the label and the order of
the replica ids and nonces depend on the role. A proof covers both replica ids and the
cluster, so it cannot be moved to another identity; the transport then requires the
peer's sync ``hello`` to carry the replica id authenticated here.

What it does not do: it does not encrypt the link (use TLS for that, see docs/security.md),
and anyone holding the secret can claim any replica id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any

import orjson

from crdtsync.codec import MAX_REPLICA_LEN, dumps
from crdtsync.errors import PeerError

__all__ = [
    "AuthError",
    "Authenticator",
    "load_secret",
    "proof",
    "is_auth_frame",
    "MIN_SECRET_BYTES",
    "MAX_AUTH_FRAME",
    "NONCE_BYTES",
]

AUTH_VERSION = 1
NONCE_BYTES = 32
MIN_SECRET_BYTES = 16
"""A shared secret shorter than this is refused (generate one: ``openssl rand -hex 32``)."""
MAX_AUTH_FRAME = 1024
"""Largest frame accepted before a link is authenticated (a challenge is ~300 bytes)."""
ROLES = ("dial", "accept")
_LABEL = {"dial": "dial->accept", "accept": "accept->dial"}
_HEX = frozenset("0123456789abcdef")


class AuthError(PeerError):
    """A peer failed authentication; the link is refused and nothing it sent is used."""


def load_secret(path: str | Path) -> bytes:
    """Read the shared cluster secret from ``path`` (surrounding whitespace is ignored)."""
    try:
        secret = Path(path).read_bytes().strip()
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from exc
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"secret in {path} is {len(secret)} bytes; at least "
                         f"{MIN_SECRET_BYTES} are required")
    return secret


def proof(secret: bytes, *, prover: str, cluster: str, dial_id: str, accept_id: str,
          dial_nonce: bytes, accept_nonce: bytes) -> bytes:
    """Return the MAC the side in role ``prover`` sends (see the module docstring)."""
    transcript = dumps(["crdtsync-auth/1", _LABEL[prover], cluster, dial_id, accept_id,
                        dial_nonce.hex(), accept_nonce.hex()])
    return hmac.new(secret, transcript, hashlib.sha256).digest()


def is_auth_frame(data: Any) -> bool:
    """Return True if ``data`` looks like an authentication frame (for clear log messages)."""
    if not isinstance(data, bytes) or len(data) > MAX_AUTH_FRAME:
        return False
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(obj, dict) and str(obj.get("type", "")).startswith("auth.")


class Authenticator:
    """One side of the challenge-response on one link (sans-I/O; see the module docstring).

    ::

        auth = Authenticator(secret, cluster="feed", replica="us.3f9a2c1b", role="dial")
        send(auth.start())
        while not auth.done:
            for frame in auth.receive(recv()):   # AuthError: refuse the link
                send(frame)
        auth.peer                                # the authenticated peer replica id
    """

    def __init__(self, secret: bytes, *, cluster: str, replica: str, role: str,
                 nonce: bytes | None = None) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be 'dial' or 'accept', got {role!r}")
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a secret of at least {MIN_SECRET_BYTES} bytes is required")
        self._secret = secret
        self.cluster = cluster
        self.replica = replica
        self.role = role
        self.nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
        self.peer: str | None = None
        self._peer_nonce: bytes | None = None
        self.done = False
        self._started = False

    def start(self) -> bytes:
        """Return this side's challenge frame (send it first)."""
        self._started = True
        return dumps({"type": "auth.challenge", "v": AUTH_VERSION, "cluster": self.cluster,
                      "replica": self.replica, "role": self.role, "nonce": self.nonce.hex()})

    def receive(self, frame: Any) -> list[bytes]:
        """Take one frame from the peer; return the frames to send. Raise AuthError."""
        if not self._started:
            raise ValueError("call start() first")
        if self.done:
            raise AuthError("authentication frame after the handshake ended")
        obj = _parse(frame)
        if self.peer is None:
            if obj.get("type") != "auth.challenge":
                raise AuthError(f"expected an auth.challenge, got {obj.get('type')!r:.40}")
            self._on_challenge(obj)
            mine = self._proof(self.role)
            return [dumps({"type": "auth.proof", "mac": mine.hex()})]
        if obj.get("type") != "auth.proof":
            raise AuthError(f"expected an auth.proof, got {obj.get('type')!r:.40}")
        _exact(obj, {"type", "mac"})
        mac = _hex(obj["mac"], 32, "mac")
        peer_role = "accept" if self.role == "dial" else "dial"
        if not hmac.compare_digest(mac, self._proof(peer_role)):
            raise AuthError(f"replica {self.peer!r} failed the challenge: its proof does not "
                            f"verify (another secret, or a replayed or reflected answer)")
        self.done = True
        return []

    def _on_challenge(self, obj: dict[str, Any]) -> None:
        _exact(obj, {"type", "v", "cluster", "replica", "role", "nonce"})
        if obj["v"] != AUTH_VERSION or type(obj["v"]) is not int:
            raise AuthError(f"authentication version {obj['v']!r:.20} is not supported")
        cluster, replica, role = obj["cluster"], obj["replica"], obj["role"]
        if type(cluster) is not str or cluster != self.cluster:
            raise AuthError(f"peer is in cluster {cluster!r:.80}, not {self.cluster!r}")
        if type(replica) is not str or not 0 < len(replica) <= MAX_REPLICA_LEN:
            raise AuthError("challenge carries no valid replica id")
        if replica == self.replica:
            raise AuthError(f"peer claims this replica's own id {replica!r}")
        expect = "accept" if self.role == "dial" else "dial"
        if role != expect:
            raise AuthError(f"peer {replica!r} says it is in role {role!r:.20}; expected "
                            f"{expect!r} (a reflected challenge?)")
        nonce = _hex(obj["nonce"], NONCE_BYTES, "nonce")
        if hmac.compare_digest(nonce, self.nonce):
            raise AuthError(f"peer {replica!r} echoed this side's nonce")
        self.peer, self._peer_nonce = replica, nonce

    def _proof(self, prover: str) -> bytes:
        assert self.peer is not None and self._peer_nonce is not None
        mine, theirs = (self.replica, self.nonce), (self.peer, self._peer_nonce)
        (dial_id, dial_nonce), (accept_id, accept_nonce) = (
            (mine, theirs) if self.role == "dial" else (theirs, mine))
        return proof(self._secret, prover=prover, cluster=self.cluster, dial_id=dial_id,
                     accept_id=accept_id, dial_nonce=dial_nonce, accept_nonce=accept_nonce)


def _parse(frame: Any) -> dict[str, Any]:
    if not isinstance(frame, bytes):
        raise AuthError("expected a binary authentication frame, got a text frame")
    if len(frame) > MAX_AUTH_FRAME:
        raise AuthError(f"authentication frame of {len(frame)} bytes exceeds {MAX_AUTH_FRAME}")
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise AuthError("authentication frame is not JSON") from exc
    if not isinstance(obj, dict):
        raise AuthError("authentication frame is not a JSON object")
    if obj.get("type") in ("hello", "accept", "refuse"):
        raise AuthError("peer sent a sync message before authenticating (no shared secret "
                        "configured there?)")
    return obj


def _exact(obj: dict[str, Any], names: set[str]) -> None:
    if obj.keys() != names:
        raise AuthError(f"{obj.get('type')} frame: expected fields {sorted(names)}, got "
                        f"{sorted(map(str, obj))[:8]}")


def _hex(value: Any, nbytes: int, what: str) -> bytes:
    if type(value) is not str or len(value) != 2 * nbytes or not _HEX.issuperset(value):
        raise AuthError(f"{what} must be {2 * nbytes} lowercase hex digits")
    return bytes.fromhex(value)
