"""The replica's asyncio side: the background group committer, durable waits, subscriptions.

A :class:`~crdtsync.replica.Replica` commits when asked (:meth:`commit`), or, once
:meth:`Background.start` ran on an event loop, by itself: a background task waits for a
write, gathers more for ``commit_delay`` seconds (or until ``commit_max_ops`` wait), and
commits them in one transaction. ``await``-ing a write, or :meth:`Background.flush`, waits
for the commit that makes it durable. Subscribers hear of every key a commit changed, after
the commit. These parts of the replica are kept apart for size: they use its internals.

The background committer keeps the event loop free while the store writes: it takes the
batch on the loop, runs the store's transaction (an fsync, on SQLite) in a worker thread,
and finishes the commit (writers released, ``on_commit`` hooks, subscribers) back on the
loop. Meanwhile the loop serves reads, takes writes into the next batch and joins remote
deltas; one commit is in flight at a time, and :meth:`commit` called meanwhile finishes it
first. Stores whose commits do not block (``MemoryStore``) commit on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from crdtsync.gcpause import gc_paused

if TYPE_CHECKING:
    from crdtsync.replica import Committed, _Pending
    from crdtsync.store.base import Store

__all__ = ["Background"]

log = logging.getLogger("crdtsync.replica")


class Background:
    """Mixin of :class:`~crdtsync.replica.Replica`: background commits and subscriptions."""

    commit_delay: float
    commit_max_ops: int
    _batch_no: int
    _durable_no: int
    _inflight: tuple[_Pending, Future[float]] | None
    _failed: _Pending | None
    _store: Store
    _closed: bool
    _remote: list[Any]
    _meta_dirty: dict[str, Any]

    def commit(self) -> int:
        raise NotImplementedError  # the replica's

    def has_local_writes(self) -> bool:
        raise NotImplementedError  # the replica's

    def _begin_commit(self) -> _Pending:
        raise NotImplementedError  # the replica's

    def _finish_inflight(self) -> None:
        raise NotImplementedError  # the replica's

    def close(self) -> None:
        raise NotImplementedError  # the replica's

    def get(self, key: str, default: Any = None) -> Any:
        raise NotImplementedError  # the replica's

    def _waiting_writes(self) -> int:
        raise NotImplementedError  # the replica's

    def _init_background(self) -> None:
        # (batch number, future): released once that batch is durable (or its commit failed)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wakeup: asyncio.Event | None = None
        self._committer: asyncio.Task[None] | None = None
        self._worker: ThreadPoolExecutor | None = None
        self._subscribers: list[tuple[str, Callable[[str, Any], None]]] = []

    # -- background group commit ------------------------------------------------------------

    def start(self) -> None:
        """Start the background committer on the running event loop (idempotent)."""
        if self._committer is None:
            self._wakeup = asyncio.Event()
            self._committer = asyncio.get_running_loop().create_task(self._commit_loop())

    async def _commit_loop(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            if self._waiting_writes() < self.commit_max_ops:
                await asyncio.sleep(self.commit_delay)
            self._wakeup.clear()
            try:
                await self._commit_off_loop()
            except Exception:
                log.exception("group commit failed; its writers were told")

    async def _commit_off_loop(self) -> None:
        """One group commit with the store's transaction in the worker thread (see the
        module docstring); on a store whose commits do not block, :meth:`commit`."""
        if self._inflight is not None:  # a commit() elsewhere may have finished it already
            self._finish_inflight()
        if not getattr(self._store, "COMMIT_BLOCKS", False) or self._failed is not None or not (
                self.has_local_writes() or self._remote or self._meta_dirty):
            self.commit()  # (a failed commit is tried again there, on the loop: rare)
            return
        with gc_paused():
            pending = self._begin_commit()
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="crdtsync-commit")
        future = self._worker.submit(_timed, self._store.commit, pending.commit)
        inflight = self._inflight = (pending, future)
        try:
            # shielded: cancelling the committer (close) must not cancel the store commit,
            # which close() then finishes through commit()
            await asyncio.shield(asyncio.wrap_future(future))
        except Exception:  # noqa: BLE001 - raised again by _finish_inflight below
            pass
        if self._inflight is inflight:
            self._finish_inflight()

    def _stop_committer(self) -> None:
        if self._committer is not None:
            self._committer.cancel()
            self._committer = None

    def _stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None

    async def aclose(self) -> None:
        """Async variant of :meth:`close` (waits for the background committer to stop)."""
        task, self._committer = self._committer, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self.close()

    async def _wait_durable(self, batch_no: int) -> None:
        if batch_no < self._durable_no:
            return
        if self._committer is None:
            self.commit()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((batch_no, fut))
        assert self._wakeup is not None
        self._wakeup.set()
        await fut

    async def flush(self) -> None:
        """Wait until everything written so far is durable."""
        await self._wait_durable(self._batch_no)

    def _release(self, exc: BaseException | None, batch_no: int) -> None:
        """Tell the writers waiting for batches up to ``batch_no`` that their commit
        succeeded (or failed); writers of later batches keep waiting."""
        if not self._waiters:
            return
        waiters = self._waiters
        self._waiters = [(n, fut) for n, fut in waiters if n > batch_no]
        for n, fut in waiters:
            if n <= batch_no and not fut.done():
                if exc is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(exc)

    # -- subscriptions ----------------------------------------------------------------------

    def subscribe(self, callback: Callable[[str, Any], None],
                  prefix: str = "") -> Callable[[], None]:
        """Call ``callback(key, value)`` after each commit that changed a key with ``prefix``.

        Local and remote changes are both reported, once durable. Returns a function that
        cancels the subscription.
        """
        entry = (prefix, callback)
        self._subscribers.append(entry)

        def cancel() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return cancel

    async def watch(self, prefix: str = "") -> AsyncIterator[tuple[str, Any]]:
        """Yield ``(key, value)`` for each durable change under ``prefix`` (async iterator).

        A slow consumer never makes memory grow without bound: changes to one key that the
        consumer has not taken yet are coalesced into the latest value.
        """
        pending: dict[str, Any] = {}
        ready = asyncio.Event()

        def on_change(key: str, value: Any) -> None:
            pending[key] = value
            ready.set()

        cancel = self.subscribe(on_change, prefix)
        try:
            while True:
                await ready.wait()
                ready.clear()
                batch = list(pending.items())
                pending.clear()
                for item in batch:
                    yield item
        finally:
            cancel()

    def _notify(self, entries: list[Committed], later: set[str]) -> None:
        """Call the subscribers of each key the committed ``entries`` changed, in key order,
        but those in ``later``: changed again since, not durably yet (the commit that makes
        them durable reports them)."""
        changed = sorted({k for e in entries for k in e.group.touched()} - later)
        for key in changed:
            value = self.get(key)
            for prefix, callback in list(self._subscribers):
                if key.startswith(prefix):
                    callback(key, value)


def _timed(commit: Callable[[Any], None], what: Any) -> float:
    """Run ``commit(what)`` (in the worker thread); return how long it took."""
    started = time.perf_counter()
    commit(what)
    return time.perf_counter() - started
