"""The embedded default store: one SQLite file in WAL mode, through the stdlib ``sqlite3``.

Schema (``PRAGMA user_version`` 2, ``PRAGMA application_id`` 0x43524454; a version-1 file
is upgraded in place when opened)::

    meta(name TEXT PRIMARY KEY, value TEXT)            -- value: JSON text
    kv(key TEXT PRIMARY KEY, tag TEXT, base BLOB)      -- base NULL: only deltas so far
    kv_delta(key TEXT, n INTEGER, blob BLOB, PRIMARY KEY (key, n))   -- the key's chain
    log(seq INTEGER PRIMARY KEY, origin TEXT NULL, blob BLOB, upto INTEGER NULL)
    store_info(name TEXT PRIMARY KEY, value INTEGER)   -- 'next_seq': log high-water mark

Every :meth:`SQLiteStore.commit` is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction and
costs what the commit holds: one indexed lookup and one or two indexed writes per key, log
entry and meta value, plus one range delete for a trim. Nothing scans a table.

Durability: ``synchronous="FULL"`` (default) fsyncs the WAL on every commit, so a commit
that returned survives power loss; ``"NORMAL"`` fsyncs only at checkpoints, so a commit
survives a crash of the process but the last ones may be lost with the machine's power.
See docs/storage.md.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Literal

from crdtsync.errors import LocalError, StoreError
from crdtsync.store import _filelock
from crdtsync.store._files import fsync_file, publish, remove_quietly, temp_beside
from crdtsync.store._sqlite_file import describe, open_connection, verify
from crdtsync.store._validate import Prepared, check_against, json_value, prepare
from crdtsync.store.base import Commit, KeyRecord, LogEntry

__all__ = ["SQLiteStore"]

_log = logging.getLogger("crdtsync.store")

_FETCH = 256  # rows fetched per step of an iterator: memory stays bounded while streaming
_INT64 = 2**63 - 1

_UPSERT_BASE = (
    "INSERT INTO kv (key, tag, base) VALUES (?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET tag = excluded.tag, base = excluded.base"
)
_ENSURE_KEY = "INSERT INTO kv (key, tag, base) VALUES (?, ?, NULL) ON CONFLICT (key) DO NOTHING"
_APPEND_DELTA = (
    "INSERT INTO kv_delta (key, n, blob)"
    " SELECT :key, coalesce(max(n), -1) + 1, :blob FROM kv_delta WHERE key = :key"
)
_UPSERT_META = (
    "INSERT INTO meta (name, value) VALUES (?, ?)"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)


class SQLiteStore:
    """A :class:`~crdtsync.store.Store` in one SQLite file (WAL mode, one connection).

    Options (keyword-only):

    - ``create`` (default True): create the file if it does not exist; False raises
      StoreError naming the path instead;
    - ``synchronous``: ``"FULL"`` (default: an acknowledged commit survives power loss) or
      ``"NORMAL"`` (it survives a process crash; faster);
    - ``quick_check`` (default True): run ``PRAGMA quick_check`` at open, which reads every
      page once (about a second per GB) and turns silent damage into StoreError.

    Opening an existing file that is empty, not SQLite, truncated, damaged, not a crdtsync
    store or of another schema version raises :class:`~crdtsync.errors.StoreError` naming the
    file; it never yields an empty store. While the store is open, ``<path>-lock`` holds a
    lock that makes a store on the same file in another process fail to open (StoreError);
    stores in the same process share it, and the last one to close removes the file.

    Safe to share between threads (calls are serialized). Iterators from :meth:`keys` and
    :meth:`log` stream in batches; a later call to :meth:`commit` (even a rejected one)
    invalidates them, and their next step raises LocalError.
    A commit that fails inside SQLite (I/O error, disk full) leaves the store failed: later
    calls raise StoreError, and reopening the file tells what is durable.
    """

    COMMIT_BLOCKS = True
    """A commit waits for the disk (an fsync with ``synchronous="FULL"``): a replica's
    background committer runs it in a worker thread, off the event loop."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        quick_check: bool = True,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', not {synchronous!r}")
        self._path = os.fspath(path)
        self._lock = threading.RLock()
        self._generation = 0
        self._failure: str | None = None
        conn, self._process_lock = open_connection(
            self._path, create=create, synchronous=synchronous, quick_check=quick_check
        )
        self._conn: sqlite3.Connection | None = conn
        _log.debug("opened store %s (synchronous=%s)", self._path, synchronous)

    @property
    def path(self) -> str:
        """The store file's path, as given."""
        return self._path

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"<SQLiteStore {self._path!r} {state}>"

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------

    def commit(self, commit: Commit) -> None:
        """Apply ``commit`` in one transaction; when this returns, all of it is durable.

        Raises ValueError or TypeError (nothing written) for a commit that breaks a rule,
        LocalError if the store is closed, StoreError if SQLite fails (the store is then
        failed). Any exception raised inside the transaction rolls all of it back.
        """
        with self._lock:
            conn = self._live()
            self._generation += 1  # open iterators must not mix in what this may write
            prepared = prepare(commit)
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._fail(conn, exc) from exc
            try:
                self._write(conn, prepared)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise self._fail(conn, exc) from exc
            except BaseException:
                self._rollback(conn)
                raise

    def _write(self, conn: sqlite3.Connection, p: Prepared) -> None:
        check_against(p, lambda key: self._stored_tag(conn, key), self._next_seq(conn))
        self._write_bases(conn, p)
        self._write_deltas(conn, p)
        self._write_log(conn, p)
        self._write_meta(conn, p)
        self._write_trim(conn, p)

    @staticmethod
    def _stored_tag(conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT tag FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _next_seq(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM store_info WHERE name = 'next_seq'").fetchone()
        return int(row[0])

    def _write_bases(self, conn: sqlite3.Connection, p: Prepared) -> None:
        conn.executemany(_UPSERT_BASE, p.bases)
        conn.executemany("DELETE FROM kv_delta WHERE key = ?", [(k,) for k, _, _ in p.bases])

    def _write_deltas(self, conn: sqlite3.Connection, p: Prepared) -> None:
        conn.executemany(_ENSURE_KEY, [(k, t) for k, t, _ in p.deltas])
        conn.executemany(_APPEND_DELTA, [{"key": k, "blob": b} for k, _, b in p.deltas])

    def _write_log(self, conn: sqlite3.Connection, p: Prepared) -> None:
        if not p.log:
            return
        conn.executemany(
            "INSERT INTO log (seq, origin, blob, upto) VALUES (?, ?, ?, ?)",
            [(e.seq, e.origin, e.blob, e.upto) for e in p.log],
        )
        conn.execute(
            "UPDATE store_info SET value = ? WHERE name = 'next_seq'", (p.log[-1].seq + 1,)
        )

    def _write_meta(self, conn: sqlite3.Connection, p: Prepared) -> None:
        conn.executemany(_UPSERT_META, p.meta)

    def _write_trim(self, conn: sqlite3.Connection, p: Prepared) -> None:
        if p.trim_log_below is not None:
            conn.execute("DELETE FROM log WHERE seq < ?", (p.trim_log_below,))

    def _rollback(self, conn: sqlite3.Connection) -> None:
        if not conn.in_transaction:  # SQLite already rolled back (some I/O errors do)
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            self._fail(conn, exc)

    def _fail(self, conn: sqlite3.Connection, exc: sqlite3.Error) -> StoreError:
        # After a failed write or fsync, what reached the disk is unknown until the file is
        # read again from scratch: stop here rather than build on a state we cannot trust.
        if self._failure is None:
            self._failure = f"store file {self._path!r}: commit failed: {describe(exc)}"
            _log.error("%s; the store is closed, reopen it to recover", self._failure)
            self._conn = None
            try:
                conn.close()
            except sqlite3.Error:
                pass
            finally:
                _filelock.release(self._process_lock)
                self._process_lock = None
        return StoreError(self._failure)

    # -- reading ------------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """Return every meta value (decoded JSON), as a new dict."""
        rows = self._fetchall("SELECT name, value FROM meta")
        return {str(name): json_value(value) for name, value in rows}

    def next_seq(self) -> int:
        """Return the lowest seq a new log entry may take (see :meth:`Store.next_seq`)."""
        with self._lock:
            conn = self._live()
            try:
                return self._next_seq(conn)
            except sqlite3.Error as exc:
                raise StoreError(f"store file {self._path!r} {describe(exc)}") from exc

    def keys(self) -> Iterator[KeyRecord]:
        """Iterate over every key with its base and delta chain, in key order, streaming."""
        gen = self._generation_now()
        return self._iter_keys(gen)

    def _iter_keys(self, gen: int) -> Iterator[KeyRecord]:
        deltas = self._rows("SELECT key, blob FROM kv_delta ORDER BY key, n", (), gen)
        pending = next(deltas, None)
        for key, tag, base in self._rows("SELECT key, tag, base FROM kv ORDER BY key", (), gen):
            chain: list[bytes] = []
            while pending is not None and pending[0] == key:
                chain.append(pending[1])
                pending = next(deltas, None)
            if pending is not None and pending[0] < key:
                raise self._orphan(pending[0])
            yield KeyRecord(key, tag, base, tuple(chain))
        if pending is not None:
            raise self._orphan(pending[0])

    def _orphan(self, key: str) -> StoreError:
        return StoreError(f"store file {self._path!r} is damaged: deltas for unknown key {key!r}")

    def log(self, start: int = 0) -> Iterator[LogEntry]:
        """Iterate over the log entries with seq >= ``start``, in seq order, streaming."""
        if not isinstance(start, int):
            raise TypeError(f"start must be int, not {type(start).__name__}")
        gen = self._generation_now()
        bound = min(max(start, 0), _INT64)
        sql = "SELECT seq, origin, blob, upto FROM log WHERE seq >= ? ORDER BY seq"
        return (LogEntry(seq, origin, blob, upto)
                for seq, origin, blob, upto in self._rows(sql, (bound,), gen))

    def _generation_now(self) -> int:
        with self._lock:
            self._live()
            return self._generation

    def _rows(self, sql: str, params: tuple[Any, ...], gen: int) -> Iterator[Any]:
        cursor: sqlite3.Cursor | None = None
        try:
            while True:
                with self._lock:
                    conn = self._live()
                    if gen != self._generation:
                        raise LocalError(f"store {self._path!r} changed during iteration")
                    try:
                        if cursor is None:
                            cursor = conn.execute(sql, params)
                        batch = cursor.fetchmany(_FETCH)
                    except sqlite3.Error as exc:
                        raise StoreError(f"store file {self._path!r} {describe(exc)}") from exc
                yield from batch
                if len(batch) < _FETCH:
                    return
        finally:
            if cursor is not None and self._conn is not None:
                with self._lock:
                    cursor.close()

    def _fetchall(self, sql: str) -> list[Any]:
        with self._lock:
            conn = self._live()
            try:
                return conn.execute(sql).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"store file {self._path!r} {describe(exc)}") from exc

    # -- backup and close ---------------------------------------------------------------------

    @staticmethod
    def verify(path: str | os.PathLike[str], *, quick_check: bool = True) -> int:
        """Check that ``path`` is a complete store file, reading it only (no upgrade, no
        ``-wal``/``-shm`` made beside it): for a snapshot no process writes. Returns its
        schema version; StoreError naming the file if it is not one."""
        return verify(os.fspath(path), quick_check=quick_check)

    def backup(self, path: str | os.PathLike[str]) -> None:
        """Write a consistent snapshot of the store to a new file at ``path``.

        Uses SQLite's online backup while holding the store (commits wait for it). The
        snapshot is written to a temporary file beside ``path``, fsynced, then linked into
        place, so ``path`` is either absent or a complete store. An existing ``path`` is
        never overwritten (LocalError): a stale ``-wal`` beside it could be replayed into it.
        """
        target = os.fspath(path)
        with self._lock:
            conn = self._live()
            if os.path.lexists(target):
                raise LocalError(f"backup target {target!r} already exists")
            tmp: str | None = None
            try:
                tmp = temp_beside(target)
                self._backup_to(conn, tmp)
                if not publish(tmp, target):
                    raise LocalError(f"backup target {target!r} already exists")
            except (OSError, sqlite3.Error) as exc:
                raise StoreError(f"cannot back up {self._path!r} to {target!r}: {exc}") from exc
            finally:
                if tmp is not None:
                    remove_quietly(tmp)

    @staticmethod
    def _backup_to(conn: sqlite3.Connection, tmp: str) -> None:
        dest = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.backup(dest)
            dest.execute("PRAGMA journal_mode = DELETE")  # a self-contained single file
        finally:
            dest.close()
        fsync_file(tmp)

    def close(self) -> None:
        """Close the store (checkpointing the WAL into the file). Idempotent."""
        with self._lock:
            conn, self._conn = self._conn, None
            lock, self._process_lock = self._process_lock, None
            self._failure = None  # from now on, a call is a use after close: LocalError
            try:
                if conn is not None:
                    conn.close()
            except sqlite3.Error as exc:
                raise StoreError(f"store file {self._path!r} {describe(exc)}") from exc
            finally:
                _filelock.release(lock)

    def _live(self) -> sqlite3.Connection:
        if self._failure is not None:
            raise StoreError(f"{self._failure}; reopen the store")
        if self._conn is None:
            raise LocalError(f"store {self._path!r} is closed")
        return self._conn
