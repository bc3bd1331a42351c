"""Who may open a client connection, and how fast it may go (docs/security.md).

Checked in the websocket opening handshake, before any frame is read:

- **token**: with ``--client-token-file``, ``/client`` (and, with ``--protect-health``,
  ``/health`` and ``/metrics``) needs ``Authorization: Bearer TOKEN`` or ``?token=TOKEN``;
  compared in constant time; HTTP 401 otherwise;
- **origin**: with ``--allow-origin``, a ``/client`` handshake whose ``Origin`` header is
  not listed gets HTTP 403 (browsers always send ``Origin``; other clients usually do not,
  and are let through: give them the token). A ``/sync`` handshake with an ``Origin`` is
  always refused: peers never send one, so it can only be a browser page;
- **connections**: beyond ``--max-clients`` concurrent client connections, HTTP 503.

Per connection, a :class:`TokenBucket` of ``--client-rate`` requests per second (burst
``--client-burst``) answers requests beyond it with the error ``rate_limited``.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlparse

from websockets.datastructures import Headers

__all__ = ["request_token", "token_ok", "origin_ok", "TokenBucket"]


def request_token(path: str, headers: Headers) -> str | None:
    """Return the token a request presents (bearer header first, then ``?token=``)."""
    auths = headers.get_all("Authorization")
    if len(auths) > 1:
        return None  # ambiguous: refuse rather than pick one
    if auths:
        scheme, _, value = auths[0].partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    values = parse_qs(urlparse(path).query).get("token")
    return values[0] if values and len(values) == 1 else None


def token_ok(presented: str | None, expected: bytes) -> bool:
    """Return True if ``presented`` equals ``expected`` (constant-time comparison)."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected)


def origin_ok(origins: list[str], allowed: frozenset[str]) -> bool:
    """Return True if a handshake with these ``Origin`` headers may open ``/client``."""
    if not allowed or not origins:
        return True
    return len(origins) == 1 and origins[0].rstrip("/").lower() in allowed


class TokenBucket:
    """Allow ``rate`` operations per second on average, ``burst`` at once (``rate`` 0: all).

    ``take(n)`` returns True and spends ``n`` tokens if that many are there; a request of
    more than ``burst`` costs ``burst``, so a big batch is slowed, never refused forever.
    """

    def __init__(self, rate: float, burst: int = 0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst or max(1, round(rate)))
        self._tokens = self.burst
        self._clock = clock
        self._last = clock()

    def take(self, n: int = 1) -> bool:
        """Spend ``n`` tokens if available; return whether the operation may go."""
        if self.rate <= 0:
            return True
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        cost = min(float(n), self.burst)
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True
