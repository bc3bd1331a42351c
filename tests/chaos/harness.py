"""Run one chaos schedule against real replica processes and check what happened.

:func:`run` starts the cluster (:mod:`.cluster`), then for ``schedule.duration`` seconds
runs the clients (each a websocket to one replica's client API, recording every op) beside
two nemesis lanes that apply the schedule's faults. Then it undoes every fault (the *final
heal*: links healed, paused replicas continued, dead ones restarted), measures the time
until every replica reads the same value for every key, waits for the peers' acks to settle,
stops the servers, reads their stores (:mod:`.stores`) and hands all of it to the checker.

Every loop is bounded in count and time, everything listens on 127.0.0.1 only, and the
servers are stopped in ``finally`` blocks whatever fails.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.procs import Client

from .checker import OK, UNKNOWN, Observation, Op, Report, check, classify
from .cluster import ChaosCluster
from .schedule import KEYS, Fault, Schedule, client_ops
from .stores import dump_store

__all__ = ["RunResult", "run", "run_schedule", "replay_command", "ALL_KEYS"]

ALL_KEYS = [k for keys in KEYS.values() for k in keys]
CONVERGE_BOUND = 30.0  # seconds after the final heal: a generous safety bound, not a target
OP_TIMEOUT = 1.0  # a request unanswered this long is "unknown" and its connection dropped
MAX_OPS_PER_CLIENT = 5000
_WRITE = {"incr": ("counter.increment", "by"), "add": ("set.add", "element"),
          "remove": ("set.remove", "element"), "assign": ("register.assign", "value")}


def replay_command(schedule: Schedule, *, fixed_replicas: bool = False) -> str:
    """The one-line command that replays ``schedule``'s seed."""
    env = [f"CRDTSYNC_CHAOS_SEED={schedule.seed}"]
    if fixed_replicas:
        env.append(f"CRDTSYNC_CHAOS_REPLICAS={schedule.replicas}")
    if schedule.duration != 5.0:
        env.append(f"CRDTSYNC_CHAOS_DURATION={schedule.duration:g}")
    return " ".join(env) + " .venv/bin/python -m pytest tests/chaos -k replay"


@dataclass
class RunResult:
    """Everything one run produced."""

    schedule: Schedule
    history: list[Op]
    observation: Observation
    report: Report
    root: Path
    events: list[str] = field(default_factory=list)
    quiet: bool = True
    diverged_at_heal: bool = True

    def text(self, replay: str) -> str:
        """The failure report: schedule, verdict, nemesis log, replay command, logs."""
        return "\n".join([
            self.schedule.describe(), self.report.text(),
            "nemesis:", *("  " + e for e in self.events),
            f"replay: {replay}", f"server logs and data: {self.root}"])


class _Clock:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0


class _Worker:
    """One client: a seeded stream of ops, one at a time, reconnecting after a failure."""

    def __init__(self, cid: int, cluster: ChaosCluster, schedule: Schedule,
                 history: list[Op], clock: _Clock) -> None:
        self.cid = cid
        self.cluster = cluster
        self.n = schedule.replicas
        self.history = history
        self.clock = clock
        self.deadline = schedule.duration
        self.rng = random.Random(f"{schedule.seed}/conn/{cid}")
        self.ops = client_ops(schedule.seed, cid)

    async def run(self) -> None:
        client: Client | None = None
        replica = 0
        try:
            for _ in range(MAX_OPS_PER_CLIENT):
                if self.clock.now() >= self.deadline:
                    return
                if client is None:
                    home = self.cid % self.n
                    replica = home if self.rng.random() < 0.7 else self.rng.randrange(self.n)
                    client = await self._connect(replica)
                    if client is None:
                        await asyncio.sleep(0.05)
                    continue
                if not await self._do(client, replica, *next(self.ops)):
                    client.abort()
                    client = None
                await asyncio.sleep(self.rng.uniform(0.002, 0.02))
        finally:
            if client is not None:
                client.abort()

    async def _connect(self, i: int) -> Client | None:
        client = Client(f"ws://127.0.0.1:{self.cluster.ports[i]}")
        try:
            async with asyncio.timeout(OP_TIMEOUT):
                await client.__aenter__()
        except Exception:  # noqa: BLE001 - down, paused or refusing: try again later
            client.abort()
            return None
        return client

    async def _request(self, client: Client, op: str, **fields: Any) -> dict[str, Any] | None:
        """The response, or None if the connection died or the answer is late."""
        try:
            async with asyncio.timeout(OP_TIMEOUT):
                return await client.request(op, timeout=OP_TIMEOUT, **fields)
        except Exception:  # noqa: BLE001 - TimeoutError, ConnectionClosed, OSError
            return None

    async def _do(self, client: Client, i: int, f: str, key: str, value: Any) -> bool:
        """Run one op and record it; False if the connection must be dropped."""
        lo = None
        if f == "assign":
            resp = await self._request(client, "clock.now")
            if resp is None:
                return False
            lo = int(resp["value"])
        op = Op(self.cid, f, key, value, self.cluster.names[i], self.clock.now(), lo=lo)
        self.history.append(op)
        name, field_name = _WRITE[f]
        resp = await self._request(client, name, key=key, **{field_name: value})
        if resp is None:
            return False
        op.status, op.error = classify(resp)
        if op.status != UNKNOWN:
            op.complete = self.clock.now()
        if f == "assign" and op.status == OK:
            resp = await self._request(client, "clock.now")
            if resp is None:
                return False
            op.hi = int(resp["value"])
        return True


class _Nemesis:
    """Applies one lane of faults at their times and reverts each after its hold."""

    def __init__(self, cluster: ChaosCluster, clock: _Clock, events: list[str],
                 deadline: float) -> None:
        self.cluster = cluster
        self.clock = clock
        self.events = events
        self.deadline = deadline

    def log(self, text: str) -> None:
        self.events.append(f"{self.clock.now():6.2f}s {text}")

    async def lane(self, faults: tuple[Fault, ...]) -> None:
        for fault in faults:
            await asyncio.sleep(max(0.0, fault.at - self.clock.now()))
            if self.clock.now() + (0 if fault.until_heal else fault.hold) > self.deadline:
                self.log(f"skipped (late): {fault.describe()}")
                continue
            self.log(f"apply {fault.describe()}")
            await self.apply(fault)
            if fault.until_heal:
                continue
            await asyncio.sleep(fault.hold)
            await self.revert(fault)
            self.log(f"revert {fault.kind}")

    async def apply(self, fault: Fault) -> None:
        cl, i = self.cluster, fault.replica
        if fault.kind in ("halves", "isolate", "ring"):
            cl.cut(fault.pairs)
        elif fault.kind == "delay":
            cl.delay(fault.pairs, fault.delay_ms / 1000)
        elif fault.kind == "flap":
            cl.flap()
        elif fault.kind == "kill":
            await cl.kill(i, signal.SIGKILL)
        elif fault.kind == "pause":
            cl.pause(i)
        elif fault.kind == "skew":
            await cl.kill(i, signal.SIGKILL if fault.signal == "KILL" else signal.SIGTERM)
            cl.offsets[i] = fault.offset_ms

    async def revert(self, fault: Fault) -> None:
        cl, i = self.cluster, fault.replica
        if fault.kind in ("halves", "isolate", "ring", "delay"):
            cl.heal_network()
        elif fault.kind in ("kill", "skew"):
            await cl.start_one(i)
        elif fault.kind == "pause":
            cl.resume(i)


async def _read_all(cluster: ChaosCluster, clients: dict[int, Client]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for i, name in enumerate(cluster.names):
        if i not in clients:
            clients[i] = await Client(cluster.url(i)).__aenter__()
        out[name] = [(await clients[i].request("get", timeout=5, key=k))["value"]
                     for k in ALL_KEYS]
    return out


@dataclass
class _Convergence:
    seconds: float | None = None  # None: not within the bound
    polls: int = 0
    last: str = ""  # the last unequal reads

    @property
    def diverged_at_heal(self) -> bool:
        """True if the replicas still read differently at the first poll after the heal."""
        return self.polls > 1 or self.seconds is None


async def _await_convergence(cluster: ChaosCluster, bound: float) -> _Convergence:
    """Poll until every replica reads equal values for every key (bounded by ``bound`` s)."""
    start = time.monotonic()
    clients: dict[int, Client] = {}
    out = _Convergence()
    try:
        for _ in range(int(bound / 0.02) + 1):
            if time.monotonic() - start > bound:
                break
            out.polls += 1
            try:
                reads = await _read_all(cluster, clients)
            except Exception as exc:  # noqa: BLE001 - a replica still starting: retry
                out.last = f"read failed: {exc!r}"
                for c in clients.values():
                    c.abort()
                clients.clear()
            else:
                if len({repr(v) for v in reads.values()}) == 1:
                    out.seconds = time.monotonic() - start
                    return out
                out.last = repr(reads)[:4000]
            await asyncio.sleep(0.02)
    finally:
        for c in clients.values():
            c.abort()
    return out


async def _await_quiet(cluster: ChaosCluster, bound: float) -> bool:
    """Wait (bounded) until every replica sees every peer connected with nothing unacked."""
    deadline = time.monotonic() + bound
    for _ in range(int(bound / 0.1) + 1):
        if time.monotonic() > deadline:
            break
        try:
            docs = [await cluster.health(i) for i in range(len(cluster.names))]
        except Exception:  # noqa: BLE001 - retry until the deadline
            docs = []
        if docs and all(len(d["peers"]) >= len(docs) - 1 and all(
                p["connected"] and p["lag_batches"] == 0 for p in d["peers"].values())
                for d in docs):
            return True
        await asyncio.sleep(0.1)
    return False


async def run_schedule(schedule: Schedule, root: Path, *,
                       converge_bound: float = CONVERGE_BOUND) -> RunResult:
    """Run ``schedule`` with data and logs under ``root``; return history, state, verdict."""
    cluster = ChaosCluster(root, schedule.names)
    history: list[Op] = []
    events: list[str] = []
    try:
        await cluster.start()
        clock = _Clock()
        nemesis = _Nemesis(cluster, clock, events, schedule.duration)
        workers = [_Worker(c, cluster, schedule, history, clock) for c in range(schedule.clients)]
        await asyncio.gather(*(w.run() for w in workers), nemesis.lane(schedule.network),
                             nemesis.lane(schedule.process))
        await cluster.heal_all()
        nemesis.log("final heal")
        conv = await _await_convergence(cluster, converge_bound)
        nemesis.log(f"converged after {conv.seconds:.3f} s ({conv.polls} polls)"
                    if conv.seconds is not None else "not converged")
        quiet = await _await_quiet(cluster, 10.0)
        nemesis.log("peers acked everything" if quiet else "peers still lagging after 10 s")
    finally:
        await cluster.stop()
    obs = _observe(cluster, root, conv.seconds, conv.last)
    return RunResult(schedule, history, obs, check(history, obs), root, events, quiet,
                     conv.diverged_at_heal)


def _observe(cluster: ChaosCluster, root: Path, converged: float | None,
             divergence: str) -> Observation:
    dumps = [dump_store(root / name, root / "scratch" / name, name) for name in cluster.names]
    dots: dict[Any, set[Any]] = defaultdict(set)
    stamps: dict[Any, set[bytes]] = defaultdict(set)
    for d in dumps:
        for k, v in d.dots.items():
            dots[k] |= v
        for k2, v2 in d.stamps.items():
            stamps[k2] |= v2
    return Observation(
        values={d.name: d.values for d in dumps}, states={d.name: d.states for d in dumps},
        registers={d.name: d.registers for d in dumps}, dots=dict(dots), stamps=dict(stamps),
        converged_after=converged, read_divergence=divergence,
        offsets={n: o for n, o in zip(cluster.names, cluster.offsets, strict=True) if o})


def run(schedule: Schedule, root: Path) -> RunResult:
    """Run ``schedule`` to completion (bounded: a few minutes at most) and return the result."""
    budget = schedule.duration + CONVERGE_BOUND + 120
    os.makedirs(root, exist_ok=True)
    return asyncio.run(asyncio.wait_for(run_schedule(schedule, root), budget))
