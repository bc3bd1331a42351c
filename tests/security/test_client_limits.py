"""Client API hardening: token, origin allow-list, rate limit, connection limit, frame size,
no compression, and an error code for every class of malformed request."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from crdtsync_server.access import TokenBucket, origin_ok, request_token, token_ok
from crdtsync_server.app import ReplicaServer
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.security.helpers import rejected, running, url_of, write_secret

TOKEN = "s3cret-client-token-0123456789"


def _run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


async def ask(conn: ClientConnection, req: dict[str, Any] | str | bytes) -> dict[str, Any]:
    frame = req if isinstance(req, (str, bytes)) else orjson.dumps(req).decode()
    await conn.send(frame)
    return orjson.loads(await asyncio.wait_for(conn.recv(), 5))  # type: ignore[no-any-return]


async def status_of(url: str, **kw: Any) -> int:
    try:
        async with connect(url, open_timeout=5, **kw):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def http_status(url: str, headers: dict[str, str] | None = None) -> int:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_token_auth_on_client_and_optionally_on_health(tmp_path: Path) -> None:
    token_file = write_secret(tmp_path / "token", TOKEN)

    async def main() -> None:
        async with running(tmp_path, "us", client_token_file=token_file) as us:
            url = url_of(us, "/client")
            assert await status_of(url) == 401
            assert await status_of(url, additional_headers={"Authorization": "Bearer nope"}) == 401
            assert await status_of(url + "?token=nope") == 401
            good = {"Authorization": f"Bearer {TOKEN}"}
            assert await status_of(url, additional_headers=good) == 101
            async with connect(f"{url}?token={TOKEN}") as conn:
                assert (await ask(conn, {"id": 1, "op": "keys"}))["ok"]
            assert rejected(us, "client_unauthorized") == 3
            health = f"http://127.0.0.1:{us.port}/health"
            assert await asyncio.to_thread(http_status, health) == 200  # open by default
        async with running(tmp_path, "eu", client_token_file=token_file,
                           protect_health=True) as eu:
            for path in ("/health", "/metrics"):
                url = f"http://127.0.0.1:{eu.port}{path}"
                assert await asyncio.to_thread(http_status, url) == 401
                assert await asyncio.to_thread(
                    http_status, url, {"Authorization": f"Bearer {TOKEN}"}) == 200

    _run(main())


def test_origin_allow_list(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path, "us", allow_origins=["https://app.example"]) as us:
            url = url_of(us, "/client")
            assert await status_of(url, origin="https://evil.example") == 403
            assert await status_of(url, origin="null") == 403
            assert await status_of(url, origin="https://app.example") == 101
            assert await status_of(url, origin="HTTPS://APP.EXAMPLE") == 101
            assert await status_of(url) == 101  # not a browser: no Origin header
            assert rejected(us, "client_origin") == 2
            two = [("Origin", "https://app.example"), ("Origin", "https://evil.example")]
            assert await status_of(url, additional_headers=two) == 403  # never a 500
            # A browser page can never open a replica link.
            assert await status_of(url_of(us, "/sync"), origin="https://app.example") == 403
        async with running(tmp_path, "eu") as eu:  # no allow-list: any origin
            assert await status_of(url_of(eu, "/client"), origin="https://x.example") == 101

    _run(main())


def test_rate_limit_per_connection(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path, "us", client_rate=1.0, client_burst=3) as us:
            async with connect(url_of(us, "/client")) as conn:
                for i in range(20):  # pipelined: far faster than 1/s
                    await conn.send(orjson.dumps({"id": i, "op": "counter.increment",
                                                  "key": "c"}).decode())
                answers = [orjson.loads(await asyncio.wait_for(conn.recv(), 5))
                           for _ in range(20)]
                limited = [a for a in answers if not a["ok"]]
                assert all(a["error"]["code"] == "rate_limited" for a in limited)
                assert len(limited) >= 10 and len(answers) - len(limited) >= 3
                ok_ids = {a["id"] for a in answers if a["ok"]}
                assert {0, 1, 2} <= ok_ids
                assert us.replica.get("c") == len(ok_ids)  # limited requests did nothing
                big = {"id": 99, "op": "batch", "ops": [
                    {"op": "counter.increment", "key": "c"}] * 10}
                assert (await ask(conn, big))["error"]["code"] == "rate_limited"
            async with connect(url_of(us, "/client")) as other:  # another connection: its own
                assert (await ask(other, {"id": 1, "op": "keys"}))["ok"]
            assert rejected(us, "client_rate_limited") >= 11

    _run(main())


def test_token_bucket() -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, 4, clock=lambda: now[0])
    assert [bucket.take() for _ in range(5)] == [True] * 4 + [False]
    now[0] += 1.0
    assert bucket.take(2) and not bucket.take()
    now[0] += 100
    assert bucket.take(1000)  # a request bigger than the burst costs the burst
    assert not bucket.take()
    assert all(TokenBucket(0).take(10**9) for _ in range(3))  # 0: unlimited


def test_access_helpers() -> None:
    from websockets.datastructures import Headers

    assert request_token("/client?token=abc", Headers()) == "abc"
    assert request_token("/client?token=abc", Headers({"Authorization": "Bearer xyz"})) == "xyz"
    assert request_token("/client", Headers({"Authorization": "Basic xyz"})) is None
    assert token_ok("abc", b"abc") and not token_ok("abd", b"abc") and not token_ok(None, b"a")
    assert not token_ok("\udcff", b"abc")
    assert origin_ok([], frozenset({"https://a"})) and origin_ok(["x"], frozenset())
    assert origin_ok(["https://a/"], frozenset({"https://a"}))
    assert not origin_ok(["https://a", "https://a"], frozenset({"https://a"}))
    two = Headers([("Authorization", "Bearer abc"), ("Authorization", "Bearer abc")])
    assert request_token("/client", two) is None
    assert request_token("/client?token=a&token=a", Headers()) is None


def test_connection_limit(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path, "us", max_clients=2, max_queue=4) as us:
            url = url_of(us, "/client")
            async with connect(url) as a, connect(url) as b:
                for c in (a, b):
                    assert (await ask(c, {"id": 1, "op": "keys"}))["ok"]
                assert us._server is not None
                assert {c.max_queue_high for c in us._server.connections} == {4}
                assert await status_of(url) == 503
                assert rejected(us, "client_capacity") == 1
            for _ in range(100):  # the two have gone: room again
                if await status_of(url) == 101:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("no room after the clients left")

    _run(main())


def test_oversized_frames_close_with_1009(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path, "us", client_max_frame_bytes=2048,
                           max_frame_bytes=8192) as us:
            async with connect(url_of(us, "/client"), max_size=None) as conn:
                assert (await ask(conn, {"id": 1, "op": "keys", "pad": "x" * 1500}))["ok"]
                await conn.send(orjson.dumps({"id": 2, "op": "keys",
                                              "pad": "x" * 3000}).decode())
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(conn.recv(), 5)
                assert conn.close_code == 1009
            async with connect(url_of(us, "/sync"), compression=None) as conn:
                await conn.send(b"x" * 10_000)
                with pytest.raises(ConnectionClosed):
                    for _ in range(10):
                        await asyncio.wait_for(conn.recv(), 5)
                assert conn.close_code == 1009
            async with connect(url_of(us, "/client")) as conn:  # the server goes on
                assert (await ask(conn, {"id": 3, "op": "keys"}))["ok"]

    _run(main())


def test_permessage_deflate_is_never_negotiated(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path, "us") as us:
            for path in ("/client", "/sync"):
                async with connect(url_of(us, path), compression="deflate") as conn:
                    offered = conn.request.headers.get("Sec-WebSocket-Extensions")
                    assert offered is not None and "permessage-deflate" in offered
                    assert conn.response.headers.get("Sec-WebSocket-Extensions") is None
                    assert conn.protocol.extensions == []

    _run(main())


def _nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


MALFORMED: list[tuple[Any, str]] = [
    ("{not json", "bad_json"),
    ('{"id": 1, "op": "keys", "prefix": 1e400}', "bad_json"),  # infinity
    ('{"id": 1, "op": "counter.increment", "key": "c", "by": 18446744073709551616}',
     "bad_request"),  # beyond 64 bits JSON numbers parse as floats: not an int
    ('{"id": 1, "op": "counter.increment", "key": "c", "by": 18446744073709551615}',
     "bad_argument"),  # an int, above 2^63-1
    ("[" * 2000 + "]" * 2000, "bad_json"),  # the parser's own depth limit
    (b'{"id": 1, "op": "keys"}', "bad_request"),  # binary frame
    ("[1, 2]", "bad_request"),
    ('"just a string"', "bad_request"),
    ({"op": "keys"}, "bad_request"),  # no id
    ({"id": True, "op": "keys"}, "bad_request"),  # a bool is not an int
    ({"id": 1.0, "op": "keys"}, "bad_request"),
    ({"id": "1", "op": "keys"}, "bad_request"),
    ({"id": -1, "op": "keys"}, "bad_argument"),
    ({"id": 2**63, "op": "keys"}, "bad_argument"),
    ({"id": 1}, "bad_request"),  # no op
    ({"id": 1, "op": 7}, "bad_request"),
    ({"id": 1, "op": "counter.explode", "key": "c"}, "unknown_op"),
    ({"id": 1, "op": "counter.increment"}, "bad_request"),  # no key
    ({"id": 1, "op": "counter.increment", "key": ""}, "bad_argument"),
    ({"id": 1, "op": "counter.increment", "key": "k" * 1025}, "bad_argument"),
    ({"id": 1, "op": "counter.increment", "key": "c", "by": 0}, "bad_argument"),
    ({"id": 1, "op": "counter.increment", "key": "c", "by": -5}, "bad_argument"),
    ({"id": 1, "op": "counter.increment", "key": "c", "by": 2**63}, "bad_argument"),
    ({"id": 1, "op": "counter.increment", "key": "c", "by": True}, "bad_request"),
    ({"id": 1, "op": "counter.increment", "key": "c", "by": 1.5}, "bad_request"),
    ({"id": 1, "op": "set.add", "key": "s", "element": True}, "bad_argument"),
    ({"id": 1, "op": "set.add", "key": "s", "element": 1.5}, "bad_request"),
    ({"id": 1, "op": "set.add", "key": "s", "element": 2**63}, "bad_argument"),
    ({"id": 1, "op": "set.add", "key": "s", "element": "e" * 5000}, "bad_argument"),
    ({"id": 1, "op": "register.assign", "key": "r"}, "bad_request"),
    ({"id": 1, "op": "register.assign", "key": "r", "value": _nest(40)},
     "bad_request"),  # request nested too deep
    ({"id": 1, "op": "counter.increment", "key": "c", "wait": "most"}, "bad_argument"),
    ({"id": 1, "op": "counter.increment", "key": "c", "timeout_ms": 0}, "bad_argument"),
    ({"id": 1, "op": "counter.increment", "key": "c", "timeout_ms": True}, "bad_request"),
    ({"id": 1, "op": "map.set.add", "key": "m", "field": [], "element": 1}, "bad_request"),
    ({"id": 1, "op": "map.set.add", "key": "m", "field": True, "element": 1}, "bad_request"),
    ({"id": 1, "op": "map.set.add", "key": "m", "field": ["a", {}], "element": 1},
     "bad_request"),
    ({"id": 1, "op": "map.set.add", "key": "m", "field": ["a"] * 20, "element": 1},
     "bad_argument"),  # maps nested deeper than 16
    ({"id": 1, "op": "batch", "ops": []}, "bad_argument"),
    ({"id": 1, "op": "batch", "ops": [1]}, "bad_request"),
    ({"id": 1, "op": "batch", "ops": [{"op": "get", "key": "x"}]}, "unknown_op"),
    ({"id": 1, "op": "keys", "prefix": 5}, "bad_request"),
    ({"id": 1, "op": "set.add", "key": "c", "element": "x"}, "type_mismatch"),
]


def test_each_malformed_class_gets_its_error_code(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path, "us") as us:
            await us.replica.counter("c").increment()
            before = us.replica.state("c")
            async with connect(url_of(us, "/client")) as conn:
                for req, code in MALFORMED:
                    answer = await ask(conn, req)
                    assert not answer["ok"], (req, answer)
                    assert answer["error"]["code"] == code, (req, answer)
                    if isinstance(req, dict) and type(req.get("id")) is int \
                            and 0 <= req["id"] < 2**63:
                        assert answer["id"] == req["id"]
                assert (await ask(conn, {"id": 5, "op": "get", "key": "c"}))["value"] == 1
            assert us.replica.keys() == ["c"] and us.replica.state("c") == before
        async with running(tmp_path, "ro", follower=True) as ro:
            async with connect(url_of(ro, "/client")) as conn:
                answer = await ask(conn, {"id": 1, "op": "counter.increment", "key": "c"})
                assert answer["error"]["code"] == "read_only"

    _run(main())


def test_watch_limit_and_many_pipelined_writes(tmp_path: Path) -> None:
    from crdtsync_server.client_api import MAX_WATCHES

    async def main() -> None:
        async with running(tmp_path, "us") as us:
            async with connect(url_of(us, "/client")) as conn:
                for i in range(MAX_WATCHES):
                    assert (await ask(conn, {"id": i, "op": "watch", "prefix": "w"}))["ok"]
                answer = await ask(conn, {"id": 999, "op": "watch", "prefix": "w"})
                assert answer["error"]["code"] == "bad_request"
            async with connect(url_of(us, "/client")) as conn:
                n = 3000
                for i in range(n):
                    await conn.send(orjson.dumps({"id": i, "op": "counter.increment",
                                                  "key": "p"}).decode())
                got = {orjson.loads(await asyncio.wait_for(conn.recv(), 10))["id"]
                       for _ in range(n)}
                assert got == set(range(n)) and us.replica.get("p") == n
            assert _server_alive(us)

    _run(main())


def _server_alive(server: ReplicaServer) -> bool:
    return server.replica.get("p") is not None


def test_batch_that_overflows_a_counter_applies_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path, "us") as us:
            await us.replica.counter("c").increment(2)
            async with connect(url_of(us, "/client")) as conn:
                answer = await ask(conn, {"id": 1, "op": "batch", "ops": [
                    {"op": "counter.increment", "key": "d"},
                    {"op": "counter.increment", "key": "c", "by": 2**63 - 2}]})
                assert answer["error"]["code"] == "bad_argument"  # the connection lives on
                assert (await ask(conn, {"id": 2, "op": "get", "key": "c"}))["value"] == 2
            assert us.replica.get("d") is None  # atomic: nothing of the batch

    _run(main())


def _deeper_than(obj: Any, limit: int, depth: int = 0) -> bool:
    """The rule, stated plainly: some value sits at a depth greater than ``limit``."""
    if depth > limit:
        return True
    children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else ()
    return any(_deeper_than(v, limit, depth + 1) for v in children)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 40).flatmap(lambda n: st.tuples(st.just(n), st.lists(
    st.sampled_from(["list", "dict", "empty-list", "empty-dict", "scalar"]),
    min_size=1, max_size=3))))
def test_request_depth_limit_is_exact(shape: tuple[int, list[str]]) -> None:
    """parse_request refuses exactly the requests holding a value nested deeper than
    MAX_JSON_DEPTH (a request field is at depth 1), containers empty or not."""
    from crdtsync_server.client_api import MAX_JSON_DEPTH, ClientError, parse_request

    depth, leaves = shape
    inner: Any = {"empty-list": [], "empty-dict": {}, "list": [1], "dict": {"a": 1},
                  "scalar": 7}[leaves[0]]
    for i in range(depth):
        inner = [inner, 2] if (i + len(leaves)) % 2 else {"k": inner, "j": leaves[-1]}
    req = {"id": 1, "op": "register.assign", "key": "r", "value": inner}
    try:
        parse_request(orjson.dumps(req).decode())
        refused = False
    except ClientError as exc:
        assert exc.code == "bad_request" and exc.rid == 1
        refused = True
    assert refused == _deeper_than(req, MAX_JSON_DEPTH)
