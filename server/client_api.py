"""The client API: JSON requests over a websocket at ``/client`` (docs/client-api.md).

One JSON object per text frame. Request ``{"id": int, "op": str, ...}``; response
``{"id": id, "ok": true, "value": ...}`` or ``{"id": id, "ok": false, "error": {"code",
"message"}}``. A write is answered only once it is durable here (and, with ``"wait":
"majority" | "all"``, once that many replicas hold it). Bad requests get a precise error
and the connection keeps working.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from websockets.exceptions import ConnectionClosed

from crdtsync.codec import MAX_INT, check_element, check_json_value
from crdtsync.errors import LocalError, TypeMismatchError

from .access import TokenBucket
from .values import to_json_value

if TYPE_CHECKING:
    from .app import ReplicaServer

__all__ = ["ClientError", "ClientSession", "WRITE_OPS", "apply_write"]

log = logging.getLogger("crdtsync.server.client")

MAX_IN_FLIGHT = 1024
"""Most writes of one connection waiting for their answer; then the server stops reading."""
MAX_JSON_DEPTH = 32
MAX_WATCHES = 64
"""Most watches one connection may open."""


class ClientError(Exception):
    """A request that cannot be served; ``code`` is the machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.rid: int | None = None  # the request's id, if it had a valid one


def _field(
    req: dict[str, Any],
    name: str,
    kind: type | tuple[type, ...],
    *,
    default: Any = ...,
    check: Callable[[Any], bool] | None = None,
) -> Any:
    if name not in req:
        if default is ...:
            raise ClientError("bad_request", f"missing field {name!r}")
        return default
    value = req[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ClientError(
            "bad_request", f"field {name!r} must be {names}, got {type(value).__name__}"
        )
    if check is not None and not check(value):
        raise ClientError("bad_argument", f"field {name!r} out of range: {value!r:.80}")
    return value


def _key(req: dict[str, Any]) -> str:
    return _field(req, "key", str, check=lambda k: 0 < len(k) <= 1024)  # type: ignore[no-any-return]


def _by(req: dict[str, Any]) -> int:
    by: int = _field(req, "by", int, default=1,
                     check=lambda n: not isinstance(n, bool) and 0 < n <= MAX_INT)
    return by


def _element(req: dict[str, Any]) -> str | int:
    value = _field(req, "element", (str, int))
    if isinstance(value, bool) or (isinstance(value, int) and not -MAX_INT - 1 <= value <= MAX_INT):
        raise ClientError("bad_argument", "field 'element' must be a str or a 64-bit int")
    try:
        # The full check (string length included): what a peer's decoder refuses must
        # never be written here, or every delta carrying it would be refused downstream.
        return check_element(value)
    except ValueError as exc:
        raise ClientError("bad_argument", f"field 'element': {exc}") from exc


def _value(req: dict[str, Any]) -> Any:
    if "value" not in req:
        raise ClientError("bad_request", "missing field 'value'")
    try:
        return check_json_value(req["value"])
    except (TypeError, ValueError) as exc:
        raise ClientError("bad_argument", f"field 'value': {exc}") from exc


def _map_target(writer: Any, req: dict[str, Any]) -> tuple[Any, str | int]:
    path = req.get("field")
    if isinstance(path, (str, int)) and not isinstance(path, bool):
        path = [path]
    if (
        not isinstance(path, list)
        or not path
        or not all(isinstance(p, (str, int)) and not isinstance(p, bool) for p in path)
    ):
        raise ClientError(
            "bad_request", "field 'field' must be a str, an int or a non-empty list of them"
        )
    handle = writer.map(_key(req))
    for step in path[:-1]:
        handle = handle.map(step)
    return handle, path[-1]


WRITE_OPS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "counter.increment": lambda w, r: w.counter(_key(r)).increment(_by(r)),
    "counter.decrement": lambda w, r: w.counter(_key(r)).decrement(_by(r)),
    "gcounter.increment": lambda w, r: w.gcounter(_key(r)).increment(_by(r)),
    "set.add": lambda w, r: w.set(_key(r)).add(_element(r)),
    "set.remove": lambda w, r: w.set(_key(r)).remove(_element(r)),
    "rwset.add": lambda w, r: w.rwset(_key(r)).add(_element(r)),
    "rwset.remove": lambda w, r: w.rwset(_key(r)).remove(_element(r)),
    "register.assign": lambda w, r: w.register(_key(r)).assign(_value(r)),
    "mvregister.assign": lambda w, r: w.mvregister(_key(r)).assign(_value(r)),
    "flag.enable": lambda w, r: w.flag(_key(r)).enable(),
    "flag.disable": lambda w, r: w.flag(_key(r)).disable(),
    "map.counter.increment": lambda w, r: _on_field(
        w, r, lambda h, f: h.counter(f).increment(_by(r))
    ),
    "map.counter.decrement": lambda w, r: _on_field(
        w, r, lambda h, f: h.counter(f).decrement(_by(r))
    ),
    "map.set.add": lambda w, r: _on_field(w, r, lambda h, f: h.set(f).add(_element(r))),
    "map.set.remove": lambda w, r: _on_field(w, r, lambda h, f: h.set(f).remove(_element(r))),
    "map.register.assign": lambda w, r: _on_field(
        w, r, lambda h, f: h.register(f).assign(_value(r))
    ),
    "map.flag.enable": lambda w, r: _on_field(w, r, lambda h, f: h.flag(f).enable()),
    "map.flag.disable": lambda w, r: _on_field(w, r, lambda h, f: h.flag(f).disable()),
    "map.remove": lambda w, r: _on_field(w, r, lambda h, f: h.remove(f)),
}


_KIND_OF = {op: op.rsplit(".", 1)[0] for op in WRITE_OPS}
"""The metrics' write type of each write op (``map.counter.increment`` -> ``map.counter``)."""


def _on_field(writer: Any, req: dict[str, Any], fn: Callable[[Any, Any], Any]) -> Any:
    handle, field = _map_target(writer, req)
    return fn(handle, field)


def apply_write(writer: Any, req: dict[str, Any]) -> Any:
    """Apply one write request through ``writer`` (a replica or a batch); map errors."""
    op = WRITE_OPS.get(req["op"])
    if op is None:
        raise ClientError("unknown_op", f"unknown op {req['op']!r}")
    try:
        return op(writer, req)
    except ClientError:
        raise
    except TypeMismatchError as exc:
        raise ClientError("type_mismatch", str(exc)) from exc
    except LocalError as exc:
        raise ClientError("read_only", str(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise ClientError("bad_argument", str(exc)) from exc


def parse_request(text: str | bytes) -> dict[str, Any]:
    """Parse and shape-check one request frame."""
    if isinstance(text, bytes):
        raise ClientError("bad_request", "send requests as text frames")
    try:
        req = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ClientError("bad_json", f"not valid JSON: {exc}") from exc
    if not isinstance(req, dict):
        raise ClientError("bad_request", "a request must be a JSON object")
    rid = _field(req, "id", int, check=lambda n: 0 <= n <= MAX_INT)
    try:
        _depth_ok(req)
        _field(req, "op", str)
    except ClientError as exc:
        exc.rid = rid  # answer with the id, so the client can match the error
        raise
    return req


def _depth_ok(obj: Any, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ClientError("bad_request", f"request nested deeper than {MAX_JSON_DEPTH}")
    if isinstance(obj, dict):
        for v in obj.values():
            _depth_ok(v, depth + 1)
    elif isinstance(obj, list):
        for v in obj:
            _depth_ok(v, depth + 1)


async def _durable(write: Any) -> None:
    await write


class ClientSession:
    """One client connection: reads requests, answers them, pushes watched changes."""

    def __init__(self, app: ReplicaServer, conn: Any, *, rate: float = 0.0, burst: int = 0) -> None:
        self.app = app
        self.replica = app.replica
        self.conn = conn
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._bucket = TokenBucket(rate, burst)
        self._tasks: set[asyncio.Task[None]] = set()
        self._cancels: list[Callable[[], None]] = []
        # writes answered once durable here ("wait": "local"), in arrival order (so in
        # batch order): (write, request id, value, deadline); one task answers them
        self._queue: deque[tuple[Any, Any, Any, float]] = deque()
        self._in_order = True  # deadlines in the queue never decrease (the head is due first)
        self._answerer: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Serve requests until the client goes away."""
        try:
            async for frame in self.conn:
                await self.handle(frame)
        except ConnectionClosed:
            pass  # an abnormal close is the client's business, not an error here
        finally:
            for cancel in self._cancels:
                cancel()
            for task in self._tasks:
                task.cancel()

    async def send(self, obj: dict[str, Any]) -> None:
        """Send one JSON text frame (orjson's UTF-8 bytes as they are: no decode and encode)."""
        await self.conn.send(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS), text=True)

    async def error(self, rid: Any, code: str, message: str) -> None:
        """Send an error response."""
        self.app.metrics.rejected(f"client_{code}")
        await self.send({"id": rid, "ok": False, "error": {"code": code, "message": message}})

    async def handle(self, frame: str | bytes) -> None:
        """Answer one request frame."""
        rid: Any = None
        try:
            req = parse_request(frame)
            rid = req["id"]
            op = req["op"]
            ops = req.get("ops") if op == "batch" else None
            if not self._bucket.take(len(ops) if isinstance(ops, list) and ops else 1):
                raise ClientError("rate_limited", "too many requests on this connection; slow down")
            if op == "get":
                key = _key(req)
                kind = self.replica.type_of(key)
                await self.send(
                    {
                        "id": rid,
                        "ok": True,
                        "type": kind.TYPE if kind else None,
                        "value": to_json_value(self.replica.get(key)),
                    }
                )
            elif op == "clock.now":
                now = self.replica.now()  # value_str: for clients (JS) without 64-bit ints
                await self.send({"id": rid, "ok": True, "value": now, "value_str": str(now)})
            elif op == "keys":
                prefix = _field(req, "prefix", str, default="")
                await self.send({"id": rid, "ok": True, "value": self.replica.keys(prefix)})
            elif op == "watch":
                if len(self._cancels) >= MAX_WATCHES:
                    raise ClientError(
                        "bad_request", f"at most {MAX_WATCHES} watches per connection"
                    )
                self._watch(_field(req, "prefix", str, default=""))
                await self.send({"id": rid, "ok": True, "value": None})
            else:
                await self._held(self._batch if op == "batch" else self._write, rid, req)
        except ClientError as exc:
            await self.error(exc.rid if rid is None else rid, exc.code, exc.message)

    async def _held(
        self,
        start: Callable[[Any, dict[str, Any]], None],
        rid: Any,
        req: dict[str, Any],
    ) -> None:
        """Start a write holding one in-flight slot until it is answered (backpressure)."""
        await self._slots.acquire()
        try:
            start(rid, req)  # the slot is released once the write is answered
        except BaseException:
            self._slots.release()
            raise

    def _wait_options(self, req: dict[str, Any]) -> tuple[str, float]:
        wait = _field(req, "wait", str, default="local")
        if wait not in ("local", "majority", "all"):
            raise ClientError(
                "bad_argument", f"field 'wait' must be local, majority or all, got {wait!r}"
            )
        timeout = _field(req, "timeout_ms", int, default=5000, check=lambda n: 0 < n <= 3_600_000)
        return wait, timeout / 1000

    def _write(self, rid: Any, req: dict[str, Any]) -> None:
        wait = self._wait_options(req)
        key = req.get("key")
        write = apply_write(self.replica, req)
        value = to_json_value(self.replica.get(key)) if isinstance(key, str) else None
        self.app.metrics.write(_KIND_OF[req["op"]])
        self._answer(rid, write, value, wait)

    def _answer(self, rid: Any, write: Any, value: Any, wait: tuple[str, float]) -> None:
        """Answer a write once it is durable (and replicated, if ``wait`` asks), then free
        its slot.

        A write that waits only to be durable here joins the connection's queue, which one
        task answers in order, waiting once per group commit: a task and a timer per write
        cost more than the rest of the write (with them, 16 connections of 64 writes in
        flight got half the answers per second, bench.client_api).
        """
        mode, timeout = wait
        if mode == "local" and write is not None:
            deadline = time.monotonic() + timeout
            queue = self._queue
            if queue and deadline < queue[-1][3]:
                self._in_order = False  # timeouts differ: the head is not the first due
            queue.append((write, rid, value, deadline))
            if self._answerer is None:
                self._answerer = self._spawn(self._answer_durable())
            return
        task = self._spawn(self._finish(rid, write, value, wait))
        task.add_done_callback(lambda _: self._slots.release())

    async def _answer_durable(self) -> None:
        """Answer the queued writes in order, each once durable, or when its timeout is
        up; if a commit fails, every queued write not durable hears of it."""
        queue = self._queue
        try:
            while queue:
                write = queue[0][0]
                if not write.durable:  # (the durable writes are a prefix of the queue)
                    due = queue[0][3] if self._in_order else min(
                        e[3] for e in queue if not e[0].durable)
                    try:
                        await asyncio.wait_for(_durable(write), due - time.monotonic())
                    except TimeoutError:
                        pass  # answered below
                    except Exception as exc:  # noqa: BLE001 - report, keep the connection
                        log.exception("write failed")
                        await self._answer_all(("internal", f"write failed: {exc}"))
                        continue
                while queue and queue[0][0].durable:  # the same commit made these durable
                    _, rid, value, _ = queue.popleft()
                    self._slots.release()
                    await self.send({"id": rid, "ok": True, "value": value})
                if not queue:
                    self._in_order = True
                await self._answer_late()
        except ConnectionClosed:
            pass  # the client left; the writes stay
        finally:
            self._answerer = None

    async def _answer_late(self) -> None:
        """Answer "timeout" to the queued writes whose timeout is up (not durable yet)."""
        now = time.monotonic()
        queue = self._queue
        if not queue or (queue[0][3] > now if self._in_order
                         else all(e[3] > now for e in queue)):
            return
        late = [e for e in queue if e[3] <= now and not e[0].durable]
        kept = [e for e in queue if e[3] > now or e[0].durable]
        queue.clear()
        queue.extend(kept)
        self._in_order = all(x[3] <= y[3] for x, y in zip(kept, kept[1:], strict=False))
        for _, rid, _, _ in late:
            self._slots.release()
            await self.error(rid, "timeout", "write not durable in time")

    async def _answer_all(self, error: tuple[str, str]) -> None:
        """A commit failed: answer the writes queued then, the durable ones ok, the others
        ``error`` (writes queued while these answers go out wait for their own commit)."""
        queue = self._queue
        for _ in range(len(queue)):
            write, rid, value, _ = queue.popleft()
            self._slots.release()
            if write.durable:
                await self.send({"id": rid, "ok": True, "value": value})
            else:
                await self.error(rid, *error)
        if not queue:
            self._in_order = True

    def _batch(self, rid: Any, req: dict[str, Any]) -> None:
        ops = _field(req, "ops", list, check=lambda v: 0 < len(v) <= 10_000)
        wait = self._wait_options(req)
        try:
            with self.replica.batch() as batch:
                for i, sub in enumerate(ops):
                    if not isinstance(sub, dict) or not isinstance(sub.get("op"), str):
                        raise ClientError("bad_request", f"ops[{i}] must be an object with an 'op'")
                    if sub["op"] not in WRITE_OPS:
                        raise ClientError("unknown_op", f"ops[{i}]: unknown op {sub['op']!r}")
                    try:
                        apply_write(batch, sub)
                    except ClientError as exc:
                        raise ClientError(exc.code, f"ops[{i}]: {exc.message}") from exc
        except LocalError as exc:
            raise ClientError("read_only", str(exc)) from exc
        except TypeMismatchError as exc:
            raise ClientError("type_mismatch", f"batch refused: {exc}") from exc
        except (TypeError, ValueError) as exc:  # raised as the batch is applied (an overflow)
            raise ClientError("bad_argument", f"batch refused: {exc}") from exc
        keys = [sub.get("key") for sub in ops]
        value = [to_json_value(self.replica.get(k)) for k in keys]
        self.app.metrics.write("batch")
        self._answer(rid, batch.write, value, wait)

    async def _finish(self, rid: Any, write: Any, value: Any, wait: tuple[str, float]) -> None:
        mode, timeout = wait
        try:
            if write is not None:
                await asyncio.wait_for(_durable(write), timeout)
            if mode != "local":
                ok = await self.app.wait_replicated(self.replica.log_seq, mode, timeout)
                if not ok:
                    await self.error(
                        rid,
                        "timeout",
                        f"write is durable here but not yet on "
                        f"{mode} replicas after {timeout * 1000:.0f} ms",
                    )
                    return
            await self.send({"id": rid, "ok": True, "value": value})
        except TimeoutError:
            await self.error(rid, "timeout", "write not durable in time")
        except ConnectionClosed:
            pass  # the client left; the write stays
        except Exception as exc:  # noqa: BLE001 - report, keep the connection
            log.exception("write failed")
            await self.error(rid, "internal", f"write failed: {exc}")

    def _watch(self, prefix: str) -> None:
        pending: dict[str, Any] = {}
        ready = asyncio.Event()

        def on_change(key: str, value: Any) -> None:
            pending[key] = value
            ready.set()

        async def pump() -> None:
            while True:
                await ready.wait()
                ready.clear()
                items = list(pending.items())
                pending.clear()
                for key, value in items:
                    await self.send({"event": "change", "key": key, "value": to_json_value(value)})

        self._cancels.append(self.replica.subscribe(on_change, prefix))
        self._spawn(pump())

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
