"""How far state catch-ups got, for the log: a long catch-up says so while it runs.

A region that joins (or comes back after its peers trimmed their logs) receives every
state it lacks in ``states`` parts, which may take a while. :class:`CatchupProgress`
follows the parts of each peer's catch-up as the service sends and receives them and logs
(logger ``crdtsync.sync``, INFO):

- receiving: ``catch-up from <peer>: 40 parts coming`` at the first part of a catch-up of
  several, ``... 12 of 40 parts, 30,000 keys, 48.2 MB so far`` at most every
  ``every`` seconds, and ``caught up from <peer>: 120,000 keys in 40 parts, 160.5 MB,
  12.3 s`` once every part came;
- sending: ``catching <peer> up from state: 120,000 keys in 40 parts, 160.5 MB`` once
  every part of it is handed to the link.

A catch-up the sender gives up (a new ``cid`` from the same peer, or the link drops) is
replaced without a last line; the next one starts its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from crdtsync.sync import States

__all__ = ["CatchupProgress"]

log = logging.getLogger("crdtsync.sync")


@dataclass(slots=True)
class _Run:
    cid: int
    parts: int
    started: float
    logged: float
    seen: set[int] = field(default_factory=set)
    keys: int = 0
    nbytes: int = 0

    def take(self, msg: States, nbytes: int) -> bool:
        """Count part ``msg`` (``nbytes`` on the wire); False if it was counted already."""
        if msg.part in self.seen:
            return False
        self.seen.add(msg.part)
        self.keys += len(msg.group)
        self.nbytes += nbytes
        return True

    def summary(self) -> tuple[str, int, str, str]:
        """Keys, parts, "s" or "", size: for the last line."""
        return f"{self.keys:,}", self.parts, "" if self.parts == 1 else "s", _mb(self.nbytes)


class CatchupProgress:
    """The catch-ups in flight, by peer, one each way (see the module docstring)."""

    def __init__(self, *, every: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self._clock = clock
        self._incoming: dict[str, _Run] = {}
        self._outgoing: dict[str, _Run] = {}

    def received(self, peer: str, msg: States, nbytes: int) -> bool:
        """A ``states`` part of ``nbytes`` came from ``peer``; return True if it is the
        first part seen of a new catch-up."""
        now = self._clock()
        run = self._incoming.get(peer)
        fresh = run is None or run.cid != msg.cid
        if fresh:
            run = self._incoming[peer] = _Run(msg.cid, msg.parts, now, now)
            if msg.parts > 1:
                log.info("catch-up from %s: %d parts coming", peer, msg.parts)
        assert run is not None
        if not run.take(msg, nbytes):
            return fresh  # sent again: counted once
        if len(run.seen) >= run.parts:
            del self._incoming[peer]
            log.info("caught up from %s: %s keys in %d part%s, %s, %.1f s", peer,
                     *run.summary(), now - run.started)
        elif now - run.logged >= self.every:
            run.logged = now
            log.info("catch-up from %s: %d of %d parts, %s keys, %s so far", peer,
                     len(run.seen), run.parts, f"{run.keys:,}", _mb(run.nbytes))
        return fresh

    def sent(self, peer: str, msg: States, nbytes: int) -> None:
        """A ``states`` part of ``nbytes`` went to ``peer``'s link."""
        now = self._clock()
        run = self._outgoing.get(peer)
        if run is None or run.cid != msg.cid:
            run = self._outgoing[peer] = _Run(msg.cid, msg.parts, now, now)
        if run.take(msg, nbytes) and len(run.seen) >= run.parts:
            del self._outgoing[peer]
            log.info("catching %s up from state: %s keys in %d part%s, %s", peer,
                     *run.summary())

    def forget(self, peer: str) -> None:
        """The peer's link is gone: its catch-ups in flight end here, unfinished."""
        self._incoming.pop(peer, None)
        self._outgoing.pop(peer, None)


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.1f} MB" if nbytes >= 100_000 else f"{nbytes:,} bytes"
