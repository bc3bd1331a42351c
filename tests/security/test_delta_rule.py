"""The delta rule (crdtsync.transport.validate): members only, dot sequence numbers bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from crdtsync.codec import decode
from crdtsync.transport.validate import DEFAULT_MAX_SEQ, DeltaRules
from crdtsync.types import AWORSet, GCounter, LWWRegister, ORMap, PNCounter
from tests.security.helpers import RawPeer, rejected, running, url_of, write_secret

RULES = DeltaRules.of(members=["us", "eu"], own_name="ap")


def env(tag: str, state: Any) -> Any:
    return decode(orjson.dumps([tag, 1, state]))


def gcounter(replica: str) -> GCounter:
    g = GCounter()
    g.increment(replica, 5)
    return g


def test_member_writes_pass() -> None:
    s = AWORSet()
    s.add("eu.1", "x")
    m = ORMap()
    m.update("us.2", "title", LWWRegister, lambda r: r.assign("us.2", "hi", 10))
    m.update("ap.3", "likes", AWORSet, lambda x: x.add("ap.3", "bob"))
    reg = LWWRegister()
    reg.assign("eu.1", "v", 5)
    group = {"g": gcounter("us.1"), "s": s, "m": m, "r": reg, "empty": LWWRegister()}
    assert RULES.check(group) is None
    assert DeltaRules().check({"g": gcounter("anyone.1")}) is None  # no member list


@pytest.mark.parametrize("value", [
    gcounter("mallory.1"),
    env("pncounter", [{"us.1": 1}, {"mallory": 3}]),
    env("aworset", [[["x", [["mallory.9", 1]]]], [{"mallory.9": 1}, []]]),
    env("aworset", [[], [{}, [["mallory.9", 5]]]]),  # only in the cloud of the context
    env("ewflag", [[], [{"us.1": 1, "mallory.2": 1}, []]]),
    env("lww", [5, "mallory.1", "x"]),
    env("ormap", [[["title", "lww", [["us.1", 1, 5, "mallory.9", "x"]]]], [{"us.1": 1}, []]]),
    env("ormap", [[["meta", "ormap", [["t", "lww", [["us.1", 1, 5, "mallory.9", "x"]]]]]],
                  [{"us.1": 1}, []]]),
    env("mvregister", [[["mallory.1", 1, "v"]], [{"mallory.1": 1}, []]]),
], ids=["gcounter", "pncounter", "aworset", "cloud", "ewflag", "lww", "map-lww-writer",
        "nested-map-writer", "mvregister"])
def test_outsiders_are_rejected(value: Any) -> None:
    reason = RULES.check({"us.ok": gcounter("us.1"), "k": value})
    assert reason is not None and "mallory" in reason and "'k'" in reason


@pytest.mark.parametrize("value", [
    env("aworset", [[["x", [["us.1", 2**48 + 1]]]], [{}, [["us.1", 2**48 + 1]]]]),
    env("aworset", [[], [{"us.1": 2**62}, []]]),
    env("ormap", [[], [{"eu.1": 2**63 - 1}, []]]),
])
def test_absurd_sequence_numbers_are_rejected(value: Any) -> None:
    reason = RULES.check({"k": value})
    assert reason is not None and "sequence bound" in reason
    assert DeltaRules().check({"k": value}) is not None  # the bound holds without members
    assert DeltaRules.of(max_seq=2**63 - 1).check({"k": value}) is None
    assert DEFAULT_MAX_SEQ == 2**48


def test_counter_totals_and_timestamps_are_not_sequence_numbers() -> None:
    big = env("gcounter", {"us.1": 2**63 - 1})
    late = env("lww", [2**63 - 1, "us.1", "x"])
    assert RULES.check({"a": big, "b": late}) is None
    with pytest.raises(ValueError):
        DeltaRules.of(max_seq=0)


def test_rejected_group_is_acked_counted_and_not_applied(tmp_path: Path) -> None:
    """An authenticated member forwards a group naming an outsider: rejected as a whole;
    the interval is still acked and the link goes on."""
    secret = write_secret(tmp_path / "secret")

    async def main() -> None:
        async with running(tmp_path, "us", secret_file=secret, members=["us", "eu"]) as us:
            async with RawPeer.connect(url_of(us, "/sync"), replica="eu.00000002") as peer:
                await peer.authenticate(b"correct horse battery staple")
                await peer.hello(last_seq=3)
                good = PNCounter()
                good.increment("eu.00000002", 1)
                await peer.delta(1, 1, {"mixed": good, "evil": gcounter("mallory.1")})
                assert (await peer.ack_for(1)).upto == 1
                huge = env("aworset", [[["x", [["eu.00000002", 2**50]]]],
                                       [{}, [["eu.00000002", 2**50]]]])
                await peer.delta(2, 2, {"huge": huge})
                assert (await peer.ack_for(2)).upto == 2
                await peer.delta(3, 3, {"fine": good})
                await peer.ack_for(3)
            assert us.replica.get("mixed") is None and us.replica.get("evil") is None
            assert us.replica.get("huge") is None
            assert us.replica.get("fine") == 1
            assert rejected(us, "delta_rule") == 2 and us.sync.rejected_groups == 2

    asyncio.run(asyncio.wait_for(main(), 60))


def test_non_member_hello_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path, "us", members=["us", "eu"]) as us:
            async with RawPeer.connect(url_of(us, "/sync"), replica="mallory.1") as peer:
                await peer.send_hello_and_delta({"evil": gcounter("mallory.1")})
                assert await peer.closed_with() == 1008
            assert us.replica.get("evil") is None
            assert rejected(us, "peer_auth") == 1

    asyncio.run(asyncio.wait_for(main(), 60))
