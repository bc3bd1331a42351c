"""The replica's asyncio side: the background group committer, durable waits, subscriptions.

A :class:`~crdtsync.replica.Replica` commits when asked (:meth:`commit`), or, once
:meth:`Background.start` ran on an event loop, by itself: a background task waits for a
write, gathers more for ``commit_delay`` seconds (or until ``commit_max_ops`` wait), and
commits them in one transaction. ``await``-ing a write, or :meth:`Background.flush`, waits
for the commit that makes it durable. Subscribers hear of every key a commit changed, after
the commit. These parts of the replica are kept apart for size: they use its internals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crdtsync.replica import Committed

__all__ = ["Background"]

log = logging.getLogger("crdtsync.replica")


class Background:
    """Mixin of :class:`~crdtsync.replica.Replica`: background commits and subscriptions."""

    commit_delay: float
    commit_max_ops: int
    _batch_no: int

    def commit(self) -> int:
        raise NotImplementedError  # the replica's

    def close(self) -> None:
        raise NotImplementedError  # the replica's

    def get(self, key: str, default: Any = None) -> Any:
        raise NotImplementedError  # the replica's

    def _waiting_writes(self) -> int:
        raise NotImplementedError  # the replica's

    def _init_background(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []
        self._wakeup: asyncio.Event | None = None
        self._committer: asyncio.Task[None] | None = None
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
                self.commit()
            except Exception:
                log.exception("group commit failed; will retry with the next write")

    def _stop_committer(self) -> None:
        if self._committer is not None:
            self._committer.cancel()
            self._committer = None

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
        if batch_no < self._batch_no:
            return
        if self._committer is None:
            self.commit()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        assert self._wakeup is not None
        self._wakeup.set()
        await fut

    async def flush(self) -> None:
        """Wait until everything written so far is durable."""
        await self._wait_durable(self._batch_no)

    def _release(self, exc: BaseException | None) -> None:
        """Tell the writers waiting for durability that the commit succeeded (or failed)."""
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
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

    def _notify(self, entries: list[Committed]) -> None:
        """Call the subscribers of each key the committed ``entries`` changed, in key order."""
        changed = sorted({k for e in entries for k in e.group.touched()})
        for key in changed:
            value = self.get(key)
            for prefix, callback in list(self._subscribers):
                if key.startswith(prefix):
                    callback(key, value)
