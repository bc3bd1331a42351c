"""Reconnect back-off: exponential with full jitter, as a pure generator.

``backoff(rng)`` yields the delays (seconds) to wait before successive reconnection attempts:
a random value in ``[0, min(cap, base * factor**n)]`` (AWS "full jitter"), after an initial
short random delay so that replicas restarted together do not all dial at once. The caller
supplies the random source, so tests replay it exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

__all__ = ["backoff"]


def backoff(rng: random.Random | None = None, *, initial: float = 0.05, base: float = 0.1,
            factor: float = 2.0, cap: float = 10.0) -> Iterator[float]:
    """Yield reconnect delays forever (see module docstring)."""
    rng = rng or random.Random()
    yield rng.uniform(0, initial)
    attempt = 0
    while True:
        yield rng.uniform(0, min(cap, base * factor**attempt))
        attempt += 1
