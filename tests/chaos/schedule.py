"""Seeded schedules: which faults happen when, and which operations each client attempts.

Everything here is a pure function of the seed (``random.Random(seed)``), so a schedule is
printed, compared and replayed exactly; only the interleaving of real processes varies
between two runs of one seed. Two fault *lanes* run side by side: a network lane
(partitions, delay, connection resets) and a process lane (SIGKILL + restart, SIGSTOP /
SIGCONT, a restart with a skewed clock); faults within a lane do not overlap.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Fault", "Schedule", "make_schedule", "client_ops", "KEYS", "NAMES"]

NAMES = ("us", "eu", "ap", "sa", "af")
KEYS = {"counter": ("c0", "c1"), "set": ("s0", "s1"), "register": ("r0", "r1")}
UNIVERSE = 24  # set elements are ints 0..UNIVERSE-1: adds and removes of one element collide

Pair = tuple[int, int]


@dataclass(frozen=True)
class Fault:
    """One fault: applied ``at`` seconds after the workload starts, reverted ``hold`` later.

    ``kind``: ``halves`` / ``isolate`` / ``ring`` cut the links in ``pairs`` (unordered
    replica pairs; both directions); ``delay`` slows the links in ``pairs`` by ``delay_ms``;
    ``flap`` resets every open peer connection; ``kill`` SIGKILLs ``replica`` and restarts
    it on its data directory after ``hold``; ``pause`` SIGSTOPs it for ``hold``; ``skew``
    stops it (``signal`` KILL or TERM) and restarts it with ``--clock-offset-ms offset_ms``
    after ``hold``, for the rest of the run. A fault ``until_heal`` is not reverted after a
    hold but by the final heal, after the workload: what the heal->converged time measures.
    """

    at: float
    hold: float
    kind: str
    replica: int = -1
    pairs: tuple[Pair, ...] = ()
    delay_ms: int = 0
    offset_ms: int = 0
    signal: str = ""
    until_heal: bool = False

    def describe(self) -> str:
        """One line, e.g. ``t=1.20s +0.80s kill eu``."""
        hold = "until the final heal" if self.until_heal else f"+{self.hold:.2f}s"
        head = f"t={self.at:.2f}s {hold} {self.kind}"
        if self.kind in ("halves", "isolate", "ring", "delay"):
            links = " ".join(f"{NAMES[a]}-{NAMES[b]}" for a, b in self.pairs)
            extra = f" {self.delay_ms} ms" if self.kind == "delay" else ""
            return f"{head}{extra} [{links}]"
        if self.kind in ("kill", "pause"):
            return f"{head} {NAMES[self.replica]}"
        if self.kind == "skew":
            return f"{head} {NAMES[self.replica]} SIG{self.signal} offset {self.offset_ms:+d} ms"
        return head


@dataclass(frozen=True)
class Schedule:
    """A whole run: replicas, clients, workload duration and both fault lanes."""

    seed: int
    replicas: int
    clients: int
    duration: float
    network: tuple[Fault, ...]
    process: tuple[Fault, ...]

    @property
    def names(self) -> list[str]:
        """Replica names, index i -> name."""
        return list(NAMES[: self.replicas])

    @property
    def skewed(self) -> bool:
        """True if some replica's clock is offset in this schedule."""
        return any(f.kind == "skew" for f in self.process)

    def describe(self) -> str:
        """Several lines: the parameters, then every fault in time order."""
        faults = sorted(self.network + self.process, key=lambda f: f.at)
        head = (f"seed {self.seed}: {self.replicas} replicas ({', '.join(self.names)}), "
                f"{self.clients} clients, {self.duration:.1f} s of operations")
        return "\n".join([head, *("  " + f.describe() for f in faults)])


def make_schedule(seed: int, *, replicas: int | None = None, duration: float = 5.0) -> Schedule:
    """Return the schedule of ``seed`` (3-5 replicas unless ``replicas`` is given)."""
    rng = random.Random(seed)
    n = replicas if replicas is not None else rng.randint(3, 5)
    if not 3 <= n <= len(NAMES):
        raise ValueError(f"replicas must be 3..{len(NAMES)}, got {n}")
    clients = n + rng.randint(1, 2)
    network = tuple(_network_lane(rng, n, duration))
    process = tuple(_process_lane(rng, n, duration))
    return Schedule(seed, n, clients, duration, network, process)


def _all_pairs(n: int) -> list[Pair]:
    return [(a, b) for a in range(n) for b in range(a + 1, n)]


def _cut_pairs(rng: random.Random, n: int, kind: str) -> tuple[Pair, ...]:
    pairs = _all_pairs(n)
    if kind == "halves":
        order = rng.sample(range(n), n)
        side = set(order[: rng.randint(1, n // 2)])
        return tuple(p for p in pairs if (p[0] in side) != (p[1] in side))
    if kind == "isolate":
        lone = rng.randrange(n)
        return tuple(p for p in pairs if lone in p)
    # ring: keep only the links between neighbours of a random cycle, so every message
    # between non-neighbours must be forwarded (with 3 replicas: cut one link).
    if n == 3:
        return (rng.choice(pairs),)
    order = rng.sample(range(n), n)
    ring = {tuple(sorted((order[i], order[(i + 1) % n]))) for i in range(n)}
    return tuple(p for p in pairs if p not in ring)


def _network_lane(rng: random.Random, n: int, duration: float) -> Iterator[Fault]:
    kinds = ["halves", "isolate", "ring", "delay", "flap"]
    weights = [3, 3, 2, 2, 1]
    t = rng.uniform(0.1, 0.6)
    end = duration - rng.uniform(0.6, 1.5)  # then a partition that lasts until the heal
    for _ in range(50):
        kind = rng.choices(kinds, weights)[0]
        hold = 0.0 if kind == "flap" else rng.uniform(0.4, 1.8)
        if t + hold > end:
            break
        if kind == "flap":
            yield Fault(t, hold, kind)
        elif kind == "delay":
            pairs = _all_pairs(n)
            chosen = tuple(sorted(rng.sample(pairs, rng.randint(1, len(pairs)))))
            yield Fault(t, hold, kind, pairs=chosen, delay_ms=rng.randint(20, 300))
        else:
            yield Fault(t, hold, kind, pairs=_cut_pairs(rng, n, kind))
        t += hold + rng.uniform(0.1, 0.7)
    t = max(t, end)
    if t < duration - 0.2:
        kind = rng.choice(["halves", "isolate", "ring"])
        yield Fault(t, duration - t, kind, pairs=_cut_pairs(rng, n, kind), until_heal=True)


def _process_lane(rng: random.Random, n: int, duration: float) -> Iterator[Fault]:
    skew_at = rng.uniform(0.2, duration / 2) if rng.random() < 0.5 else None
    final = rng.choice([None, None, "kill", "pause"])
    end = duration - (rng.uniform(0.5, 1.5) if final else 0.3)
    t = rng.uniform(0.2, 0.8)
    for _ in range(50):
        if skew_at is not None and t >= skew_at and t + 1.2 <= end:
            kind = "skew"
            offset = rng.choice((-1, 1)) * rng.randint(300, 4000)
            hold = rng.uniform(0.0, 0.4)
            yield Fault(t, hold, kind, replica=rng.randrange(n), offset_ms=offset,
                        signal=rng.choice(("KILL", "TERM")))
            skew_at = None
        else:
            kind = rng.choices(["kill", "pause"], [3, 2])[0]
            hold = rng.uniform(0.2, 1.5)
            if t + hold > end:
                break
            yield Fault(t, hold, kind, replica=rng.randrange(n))
        # a restart takes ~1 s of the lane's time; the harness waits for it
        t += hold + rng.uniform(0.3, 1.0) + (0.8 if kind != "pause" else 0.0)
        if t > end:
            break
    t = max(t, end)
    if final is not None and t < duration - 0.2:
        yield Fault(t, duration - t, final, replica=rng.randrange(n), until_heal=True)


def client_ops(seed: int, client: int) -> Iterator[tuple[str, str, Any]]:
    """Yield client ``client``'s operations ``(f, key, value)`` forever, from the seed.

    ``f`` is ``incr`` (value: the amount), ``add`` / ``remove`` (an int element) or
    ``assign`` (a string unique to this write, so the checker can tell every write apart).
    """
    rng = random.Random(f"{seed}/{client}")
    for n in range(10**9):
        f = rng.choices(["incr", "add", "remove", "assign"], [3, 4, 2, 2])[0]
        if f == "incr":
            yield f, rng.choice(KEYS["counter"]), rng.randint(1, 3)
        elif f in ("add", "remove"):
            yield f, rng.choice(KEYS["set"]), rng.randrange(UNIVERSE)
        else:
            yield f, rng.choice(KEYS["register"]), f"w{client}.{n}"
