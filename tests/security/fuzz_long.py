"""The long fuzz run: millions of mutated inputs against the same targets as test_fuzz.py.

``python -m tests.security.fuzz_long --inputs 1000000 [--seed S] [--targets ...]``

Hypothesis (test_fuzz.py) explores structure cleverly but spends most of its time
generating; this runner takes a seed corpus of valid encodings, protocol messages and
client requests drawn once from the same strategies, then mutates them with a plain seeded
``random.Random`` (JSON-structural mutations, byte flips, splices, truncations) at
thousands of inputs a second. Each input is checked against the contract of test_fuzz.py.
A failure prints the target, the seed and the input, and the run exits 1; the same seed
replays the same inputs. Run it from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import random
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings

from crdtsync.codec import decode, decode_group, encode, encode_group
from crdtsync.errors import DecodeError
from crdtsync.sync import PROTOCOL_VERSION, Delta, Hello, decode_message, encode_message
from crdtsync.types import GCounter
from tests.security import fuzz_strategies as fs
from tests.security.helpers import record_applied
from tests.security.test_fuzz import (
    ERROR_CODES,
    READS,
    _answer,
    _client_victim,
    _expected,
    _Pump,
    _snapshot,
    _victim,
    known_partial_batch,
)

HOSTILE = [0, -1, 1, 2, 2**48, 2**48 + 1, 2**62, 2**63 - 1, 2**63, 2**64 - 1, -(2**63), True,
           False, None, 1.5, -0.0, 1e300, "", "x" * 5000, "mallory.1", "us.1", "a", [], {},
           [[]], [None], {"": None}, "\u0000", "\udcff".encode("utf-8", "surrogatepass")
           .decode("utf-8", "replace")]


def corpus(strategy: Any, n: int) -> list[Any]:
    """Draw ``n`` examples of a hypothesis strategy (the seed corpus)."""
    out: list[Any] = []

    @settings(max_examples=n, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(x: Any) -> None:
        out.append(x)

    draw()
    return out


# -- mutators ----------------------------------------------------------------------------


def mutate_json(rng: random.Random, obj: Any) -> Any:
    obj = copy.deepcopy(obj)
    for _ in range(rng.randint(1, 3)):
        paths = fs._paths(obj)
        path = rng.choice(paths)
        action = rng.choice(["replace", "replace", "wrap", "drop", "dup", "rename", "bump"])
        value = copy.deepcopy(rng.choice(HOSTILE)) if rng.random() < 0.7 else rng.randint(
            -(2**63), 2**64 - 1)
        if action == "bump":  # push an int somewhere far: the delta rule's business
            action, value = "replace", rng.choice([2**48 + 1, 2**62, 2**63 - 1])
        obj = fs._mutate(obj, path, action, value)
    return obj


def mutate_bytes(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1 and b:
            i = rng.randrange(len(b))
            del b[i:i + rng.randint(1, 8)]
        elif op == 2:
            i = rng.randrange(len(b) + 1)
            b[i:i] = rng.choice([b"[", b"]", b"{", b"}", b",", b'"', b"0", b"-1", b"null",
                                 b"1e999", b"\xff", b"\\u0000", b"99999999999999999999"])
        elif op == 3 and b:
            del b[rng.randrange(len(b)):]
        elif op == 4:
            other = rng.choice(pool)
            i, j = rng.randrange(len(b) + 1), rng.randrange(len(other) + 1)
            b = b[:i] + bytearray(other[j:])
        elif op == 5 and b:
            i = rng.randrange(len(b))
            b[i:i] = b[i:i + rng.randint(1, 16)]
    return bytes(b)


def variant(rng: random.Random, pool: list[bytes]) -> bytes:
    """A valid input, a JSON-mutated one or a byte-mutated one."""
    base = rng.choice(pool)
    r = rng.random()
    if r < 0.2:
        return base
    if r < 0.75:
        return orjson.dumps(mutate_json(rng, orjson.loads(base)))
    return mutate_bytes(rng, base, pool)


# -- targets (each raises AssertionError on a broken contract) ------------------------------


def t_decode(rng: random.Random, pools: dict[str, list[bytes]]) -> int:
    data = variant(rng, pools["values"])
    try:
        value = decode(data)
    except DecodeError:
        return 1
    assert encode(decode(encode(value))) == encode(value)
    return 1


def t_decode_group(rng: random.Random, pools: dict[str, list[bytes]]) -> int:
    data = variant(rng, pools["groups"])
    try:
        group = decode_group(data)
    except DecodeError:
        return 1
    assert decode_group(encode_group(group)).keys() == group.keys()
    for v in group.values():
        assert encode(decode(encode(v))) == encode(v)
    return 1


def t_decode_message(rng: random.Random, pools: dict[str, list[bytes]]) -> int:
    data = variant(rng, pools["messages"])
    try:
        msg = decode_message(data)
    except DecodeError:
        return 1
    assert encode_message(decode_message(encode_message(msg))) == encode_message(msg)
    return 1


def t_receive(rng: random.Random, pools: dict[str, list[bytes]]) -> int:
    replica, service = _victim()
    def rule_abiding(group: dict[str, Any]) -> None:  # only those get to the replica
        assert service.rules.check(group) is None

    accepted = record_applied(replica, rule_abiding)
    before = _snapshot(replica)
    pump = _Pump(service, rng.choice([None, "b.00000001", "b.00000001", "c.00000002",
                                      "mallory.3"]))
    n = rng.randint(1, 6)
    fed = []
    for _ in range(n):
        fed.append(variant(rng, pools["deltas" if rng.random() < 0.5 else "messages"]))
        pump.feed(fed[-1])
    after = _snapshot(replica)
    assert after == (_expected(before, accepted) if accepted else before), (
        pump.hello, fed, before, after, accepted)
    for blob in after.values():
        decode(blob)
    pump.hello = encode_message(Hello(PROTOCOL_VERSION, "fuzz", "a.live0001", False, 1))
    pump.key, pump.link = pump.connect()
    live = GCounter()
    live.increment("a.live0001", 2)
    pump.feed(encode_message(Delta(1, 1, {"live:check": live})))
    assert replica.get("live:check") == 2
    replica.close()
    return n


def t_client(rng: random.Random, pools: dict[str, list[bytes]],
             loop: asyncio.AbstractEventLoop) -> int:
    replica, session, conn = _client_victim()
    n = rng.randint(1, 5)
    for _ in range(n):
        frame: str | bytes = variant(rng, pools["requests"])
        if rng.random() < 0.9:
            frame = frame.decode("utf-8", "replace")
        before = _snapshot(replica)
        conn.sent.clear()
        loop.run_until_complete(asyncio.wait_for(_answer(session, frame), 10))
        answers = [m for m in conn.sent if "event" not in m]
        assert len(answers) == 1, (frame, conn.sent)
        answer, after = answers[0], _snapshot(replica)
        if not answer["ok"]:
            assert answer["error"]["code"] in ERROR_CODES - {"internal", "timeout"}, answer
            assert after == before or known_partial_batch(answer), (frame, answer)
        elif orjson.loads(frame).get("op") in READS:
            assert after == before
        for blob in after.values():
            decode(blob)
    for task in list(session._tasks):
        task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    replica.close()
    return n


TARGETS = ["decode", "decode_group", "decode_message", "receive", "client"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.security.fuzz_long", description=__doc__)
    p.add_argument("--inputs", type=int, default=1_000_000, help="inputs per target")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--targets", nargs="*", default=TARGETS, choices=TARGETS)
    p.add_argument("--corpus", type=int, default=400, help="seed inputs per kind")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)  # rejections are logged by design; millions of them
    print(f"building the seed corpus ({args.corpus} per kind)...", flush=True)
    pools = {
        "values": [encode(v) for v in corpus(fs.any_delta, args.corpus)],
        "groups": [encode_group(g) for g in corpus(fs.groups, args.corpus)],
        "messages": [encode_message(m) for m in corpus(fs.messages, args.corpus)],
        "deltas": [encode_message(m) for m in corpus(fs.fresh_deltas, args.corpus)],
        "requests": [orjson.dumps(r) for r in corpus(fs.requests(), args.corpus)],
    }
    loop = asyncio.new_event_loop()
    fns: dict[str, Callable[[random.Random, dict[str, list[bytes]]], int]] = {
        "decode": t_decode, "decode_group": t_decode_group, "decode_message": t_decode_message,
        "receive": t_receive, "client": lambda rng, pools: t_client(rng, pools, loop)}
    failed = False
    for name in args.targets:
        rng = random.Random(f"{args.seed}:{name}")
        done = cases = 0
        started = last = time.monotonic()
        while done < args.inputs:
            state = rng.getstate()
            try:
                done += fns[name](rng, pools)
            except Exception:  # noqa: BLE001 - report the input that broke the contract
                rng.setstate(state)
                print(f"FAIL {name} after {done} inputs (seed {args.seed}, case {cases})")
                traceback.print_exc()
                failed = True
                break
            cases += 1
            if time.monotonic() - last > 30:
                last = time.monotonic()
                print(f"  {name}: {done} inputs, {done / (last - started):.0f}/s", flush=True)
        took = time.monotonic() - started
        print(f"{name}: {done} inputs in {cases} cases, {took:.0f} s, "
              f"{'FAILED' if failed else 'ok'}", flush=True)
        if failed:
            break
    loop.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
