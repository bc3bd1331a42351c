"""A TCP fault proxy for peer links: cut, heal, delay, drop (tests and the demo's switch).

``FaultProxy(target_port)`` listens on 127.0.0.1 and forwards every connection to the
target. ``cut()`` closes the connections it carries and refuses new ones until ``heal()``;
``delay`` adds latency to every chunk; ``drop_connections()`` resets what is open now but
keeps accepting. Loopback only; every loop ends when the proxy is closed.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["FaultProxy"]


class FaultProxy:
    """Forward 127.0.0.1:``port`` to 127.0.0.1:``target_port``, with faults on demand."""

    def __init__(self, target_port: int, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.target_port = target_port
        self.host = host
        self.port = port
        self.cut_off = False
        self.delay = 0.0
        self._closed = False
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> FaultProxy:
        """Start listening; returns self (``port`` is then the bound port)."""
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closed = True
        if self._server is not None:
            self._server.close()
        self.drop_connections()
        for task in list(self._pipes):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def cut(self) -> None:
        """Drop every connection and refuse new ones until heal()."""
        self.cut_off = True
        self.drop_connections()

    def heal(self) -> None:
        """Accept connections again."""
        self.cut_off = False

    def drop_connections(self) -> None:
        """Abort every connection open now (new ones are still accepted unless cut)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        if self._closed or self.cut_off:  # closed or cut while we were connecting upstream
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        tasks = [asyncio.ensure_future(self._pipe(reader, up_writer)),
                 asyncio.ensure_future(self._pipe(up_reader, writer))]
        self._pipes.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
                self._pipes.discard(task)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not reader.at_eof():
            chunk = await reader.read(65536)
            if not chunk:
                return
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.cut_off:
                return
            writer.write(chunk)
            await writer.drain()
