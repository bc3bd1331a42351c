"""Fuzzing the decoders, the sync receive path and the client API with hypothesis.

Every target checks the same contract: hostile input is refused with the documented error
(DecodeError, PeerError, an error code), never another exception, never a hang; whatever
is accepted round-trips through the canonical encoding (so a peer can decode it); and the
replica's state is unchanged unless the input was a valid write, after which the replica
still answers.

``CRDTSYNC_FUZZ_EXAMPLES=N`` sets the number of examples per target (default: a short
run for CI); see docs/security.md for the long run.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson
import pytest
from crdtsync_server.client_api import ClientSession
from crdtsync_server.metrics import Metrics
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crdtsync.codec import decode, decode_group, encode, encode_group
from crdtsync.errors import DecodeError, PeerError
from crdtsync.replica import Replica
from crdtsync.sync import (
    PROTOCOL_VERSION,
    Close,
    Delta,
    Hello,
    SyncConfig,
    SyncEngine,
    decode_message,
    encode_message,
)
from crdtsync.transport import ReplicaHost, SyncService
from crdtsync.transport.gate import Link
from crdtsync.types import GCounter
from tests.security.fuzz_strategies import (
    client_frames,
    encodings,
    frames,
    groups,
    messages,
    mutated_bytes,
)
from tests.security.helpers import record_applied

EXAMPLES = int(os.environ.get("CRDTSYNC_FUZZ_EXAMPLES", "0"))


def fuzz(default: int) -> Any:
    """Hypothesis settings of a fuzz target: ``default`` examples, or the long run's."""
    extra: dict[str, Any] = {"database": None} if EXAMPLES else {}
    return settings(max_examples=EXAMPLES or default, deadline=None,
                    suppress_health_check=list(HealthCheck), **extra)


# -- codec --------------------------------------------------------------------------------


def _roundtrips(value: Any) -> None:
    again = decode(encode(value))
    assert encode(again) == encode(value)


@fuzz(300)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=200), encodings,
                 mutated_bytes(encodings)))
def test_decode_refuses_or_roundtrips(data: bytes | str) -> None:
    try:
        value = decode(data)
    except DecodeError:
        return
    _roundtrips(value)


@fuzz(200)
@given(st.one_of(st.binary(max_size=400), groups.map(encode_group),
                 mutated_bytes(groups.map(encode_group))))
def test_decode_group_refuses_or_roundtrips(data: bytes) -> None:
    try:
        group = decode_group(data)
    except DecodeError:
        return
    assert decode_group(encode_group(group)).keys() == group.keys()
    for value in group.values():
        _roundtrips(value)


@fuzz(300)
@given(st.one_of(st.binary(max_size=400), messages.map(encode_message),
                 mutated_bytes(messages.map(encode_message))))
def test_decode_message_refuses_or_roundtrips(data: bytes) -> None:
    try:
        msg = decode_message(data)
    except DecodeError:
        return
    assert encode_message(decode_message(encode_message(msg))) == encode_message(msg)


# -- the sync receive path: engine, gate and delta rule as the service runs them ------------


class _Conn:
    """Stands in for a websocket: the service only queues frames for it here."""

    remote_address = ("127.0.0.1", 0)


def _victim() -> tuple[Replica, SyncService]:
    replica = Replica.open(None, name="us")
    replica.counter("k0").increment(3)
    replica.set("k1").add("x")
    replica.map("post:1").register("title").assign("hello")
    replica.commit()
    service = SyncService(replica, cluster="fuzz", members=["us", "a", "b", "c", "d"])
    return replica, service


def _snapshot(replica: Replica) -> dict[str, bytes]:
    return {k: encode(replica._live(k)) for k in replica.keys()}


def _expected(before: dict[str, bytes], accepted: list[dict[str, Any]]) -> dict[str, bytes]:
    """The state joined with the accepted groups, by the replica's documented rules: the
    greater type tag wins a type clash, and a delta is joined when ``novel`` finds
    something new in it (RR). For consistent deltas that is the plain join; a forged delta
    that reuses a dot with another payload is where the two differ."""
    state = {k: decode(v) for k, v in before.items()}
    for group in accepted:
        for key, delta in group.items():
            cur = state.get(key)
            if cur is None or (type(cur) is not type(delta) and delta.TYPE > cur.TYPE):
                cur = state[key] = type(delta)()
            if type(cur) is type(delta) and cur.novel(delta) is not None:
                cur.merge(delta)
    return {k: encode(v) for k, v in sorted(state.items())}


class _Pump:
    """Feed frames to the service's receive path the way a websocket link does."""

    def __init__(self, service: SyncService, hello_as: str | None = None) -> None:
        self.service = service
        self.n = 0
        self.hello = None if hello_as is None else encode_message(
            Hello(PROTOCOL_VERSION, "fuzz", hello_as, False, 60))
        self.key, self.link = self.connect()

    def connect(self) -> tuple[str, Link]:
        """A new link; the peer says hello again, as a real peer does after redialling."""
        self.n += 1
        key, link = f"L{self.n}", Link(_Conn(), f"fuzz{self.n}")
        self.service._links[key] = link
        self.service._run(self.service.engine.connect(key, float(self.n)))
        if self.hello is not None:
            try:
                self.service._deliver(key, link, self.hello)
            except PeerError:
                link.close_after_sends()  # an outsider: refused at every hello
        return key, link

    def feed(self, frame: bytes) -> None:
        try:
            self.service._deliver(self.key, self.link, frame)
        except (PeerError, DecodeError):  # the service drops such a link
            self.link.close_after_sends()
        if self.link.closing:  # dropped, or closed by the engine: the peer dials again
            self.service.engine.disconnect(self.key)
            self.service._links.pop(self.key, None)
            self.key, self.link = self.connect()
        self.service.replica.commit()  # what the group committer does


def test_a_delta_ending_at_the_highest_seq_is_applied_and_logged() -> None:
    """A peer's interval may end at the wire's highest seq (2**63 - 1): the entry logged
    for it keeps that as its bound, and the commit goes through (the long fuzz run found a
    commit refused: the store took the bound for one of its own seqs, one lower at most)."""
    replica, service = _victim()
    pump = _Pump(service, "a.live0001")
    live = GCounter()
    live.increment("a.live0001", 4)
    pump.feed(encode_message(Delta(1, 2**63 - 1, {"top": live})))
    assert replica.get("top") == 4
    assert [(e.origin, e.upto) for e in replica.store.log()][-1] == ("a.live0001", 2**63 - 1)
    replica.close()


@fuzz(150)
@given(st.lists(frames, min_size=1, max_size=6), st.sampled_from(
    [None, "b.00000001", "b.00000001", "c.00000002", "mallory.3"]))
def test_receive_path_applies_only_valid_writes(batch: list[bytes], hello_as: str | None
                                                ) -> None:
    replica, service = _victim()
    def rule_abiding(group: dict[str, Any]) -> None:  # only those get to the replica
        assert service.rules.check(group) is None

    accepted = record_applied(replica, rule_abiding)
    before = _snapshot(replica)
    pump = _Pump(service, hello_as)  # a hello gets deltas past the handshake
    for frame in batch:
        pump.feed(frame)
    after = _snapshot(replica)
    event(f"groups joined: {min(len(accepted), 2)}; refused by the delta rule: "
          f"{min(service.rejected_groups, 1)}")
    if not accepted:
        assert after == before
    else:
        assert after == _expected(before, accepted)
    for blob in after.values():
        decode(blob)  # what the replica holds, a peer can decode
    # The replica still answers and still applies a valid delta.
    pump.hello = encode_message(Hello(PROTOCOL_VERSION, "fuzz", "a.live0001", False, 1))
    pump.key, pump.link = pump.connect()
    live = GCounter()
    live.increment("a.live0001", 2)
    pump.feed(encode_message(Delta(1, 1, {"live:check": live})))
    assert replica.get("live:check") == 2
    replica.close()


@fuzz(200)
@given(st.lists(st.one_of(st.binary(max_size=200), frames), min_size=1, max_size=8))
def test_engine_receive_takes_any_bytes(batch: list[bytes]) -> None:
    """SyncEngine.receive on raw bytes: outputs or PeerError, never anything else; the
    engine keeps serving new links."""
    replica = Replica.open(None, name="us")
    engine = SyncEngine(ReplicaHost(replica), SyncConfig(replica=replica.replica_id,
                                                         cluster="fuzz"))
    link = 0
    engine.connect(link, 0.0)
    hello = Hello(PROTOCOL_VERSION, "fuzz", "b.00000001", False, 60)
    engine.receive(link, encode_message(hello), 0.0)
    for data in batch:
        try:
            closed = any(isinstance(o, Close) for o in engine.receive(link, data, 1.0))
        except PeerError:
            closed = True
        if closed:  # the transport closes the link; the peer dials again
            link += 1
            engine.connect(link, 1.0)
    link += 1
    engine.connect(link, 2.0)
    hello = Hello(PROTOCOL_VERSION, "fuzz", "a.live0001", False, 0)
    out = engine.receive(link, encode_message(hello), 2.0)
    assert out  # an accept (at least) for a fresh peer
    replica.close()


# -- the client API parser and dispatch -----------------------------------------------------

ERROR_CODES = {"bad_json", "bad_request", "unknown_op", "bad_argument", "type_mismatch",
               "read_only", "timeout", "internal", "rate_limited"}
READS = {"get", "keys", "clock.now", "watch"}


def known_partial_batch(answer: dict[str, Any]) -> bool:
    """A batch refused while it was applied (a counter overflow): its earlier ops stay.
    A known bug, pinned by test_client_limits.py::test_batch_that_overflows_a_counter_..."""
    return answer["error"]["message"].startswith("batch refused: ") and \
        "would exceed" in answer["error"]["message"]


class _App:
    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.metrics = Metrics()

    async def wait_replicated(self, seq: int, mode: str, timeout: float) -> bool:
        return True


class _ClientConn:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, message: str | bytes, text: bool | None = None) -> None:
        # websockets' send: bytes go as a text frame only with text=True
        assert isinstance(message, str) or text is True, "an answer must be a text frame"
        self.sent.append(orjson.loads(message))


@pytest.fixture(scope="module")
def loop() -> Any:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _client_victim() -> tuple[Replica, ClientSession, _ClientConn]:
    replica = Replica.open(None, name="us")
    replica.counter("c").increment(2)
    replica.set("s").add("x")
    replica.map("m").counter("views").increment()
    replica.commit()
    conn = _ClientConn()
    return replica, ClientSession(_App(replica), conn), conn  # type: ignore[arg-type]


def _pending_writes(session: ClientSession) -> list[asyncio.Task[None]]:
    """The session's tasks but its watch pumps (which run until the session ends)."""
    return [t for t in session._tasks
            if getattr(t.get_coro(), "__name__", "") != "pump"]


async def _answer(session: ClientSession, frame: str | bytes) -> None:
    await session.handle(frame)
    while pending := _pending_writes(session):
        await asyncio.gather(*pending, return_exceptions=True)
    await asyncio.sleep(0)  # let watch pumps send their events


@fuzz(400)
@given(st.lists(client_frames, min_size=1, max_size=5))
def test_client_api_answers_every_frame_and_changes_state_only_on_valid_writes(
        loop: asyncio.AbstractEventLoop, batch: list[str | bytes]) -> None:
    replica, session, conn = _client_victim()
    for frame in batch:
        before = _snapshot(replica)
        conn.sent.clear()
        loop.run_until_complete(asyncio.wait_for(_answer(session, frame), 10))
        answers = [m for m in conn.sent if "event" not in m]
        assert len(answers) == 1, (frame, conn.sent)
        answer = answers[0]
        event(f"answer: {'ok' if answer['ok'] else answer['error']['code']}")
        after = _snapshot(replica)
        if not answer["ok"]:
            assert answer["error"]["code"] in ERROR_CODES, answer
            assert answer["error"]["code"] not in ("internal", "timeout"), answer
            if not known_partial_batch(answer):
                assert after == before, (frame, answer)
        elif orjson.loads(frame).get("op") in READS:
            assert after == before
        for blob in after.values():
            decode(blob)  # whatever a client wrote, every peer can decode
    for task in list(session._tasks):
        task.cancel()
    conn.sent.clear()
    loop.run_until_complete(_answer(session, '{"id": 1, "op": "get", "key": "c"}'))
    assert conn.sent[-1]["ok"] and conn.sent[-1]["value"] == replica.get("c")
    replica.close()
