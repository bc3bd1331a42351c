"""Creating, checking and opening the SQLite file behind :class:`~crdtsync.store.SQLiteStore`.

A store file is created whole or not at all: the schema is written to a temporary file in
the same directory, which is then hard-linked into place (no-clobber, then the directory is
fsynced). So a file that exists at the store's path is always a complete store, and any
file there that is empty, not SQLite, damaged, or lacks the schema is reported as such
(:class:`~crdtsync.errors.StoreError` naming the path), never taken for a new, empty store.
"""

from __future__ import annotations

import logging
import os
import pathlib
import sqlite3
import time

from crdtsync.errors import StoreError
from crdtsync.store import _filelock
from crdtsync.store._files import publish, remove_quietly, temp_beside

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "BUSY_TIMEOUT",
    "open_connection",
    "describe",
    "verify",
]

_log = logging.getLogger("crdtsync.store")

APPLICATION_ID = 0x43524454
"""``PRAGMA application_id`` of a crdtsync store ("CRDT"): tells it from other SQLite files."""
SCHEMA_VERSION = 2
"""``PRAGMA user_version`` of the schema this module writes and reads. A file of version 1
(no ``log.upto`` column) is upgraded in place when it is opened (:func:`_upgrade`)."""
BUSY_TIMEOUT = 5.0
"""Seconds a statement waits for another connection's lock before failing."""

_MAGIC = b"SQLite format 3\x00"

_SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE kv (key TEXT PRIMARY KEY, tag TEXT NOT NULL, base BLOB)",
    "CREATE TABLE kv_delta (key TEXT NOT NULL, n INTEGER NOT NULL, blob BLOB NOT NULL,"
    " PRIMARY KEY (key, n))",
    "CREATE TABLE log (seq INTEGER PRIMARY KEY, origin TEXT, blob BLOB NOT NULL, upto INTEGER)",
    "CREATE TABLE store_info (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT INTO store_info (name, value) VALUES ('next_seq', 0)",
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

_COLUMNS = {
    "meta": ["name", "value"],
    "kv": ["key", "tag", "base"],
    "kv_delta": ["key", "n", "blob"],
    "log": ["seq", "origin", "blob", "upto"],
    "store_info": ["name", "value"],
}
_V1_LOG = ["seq", "origin", "blob"]  # version 1: the log had no upto column


def describe(exc: sqlite3.Error) -> str:
    """Say in words what a SQLite error means for a store file."""
    text = str(exc)
    if "file is not a database" in text:
        return "is not a SQLite database, or its header is damaged"
    if "malformed" in text:
        return f"is damaged ({text})"
    if "locked" in text or "busy" in text:
        return "is in use by another process or connection"
    return f"cannot be used ({type(exc).__name__}: {text})"


def _precheck(path: str) -> None:
    """Reject what is plainly not a store before SQLite sees it, with a precise message."""
    if os.path.isdir(path):
        raise StoreError(f"store file {path!r} is a directory")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise StoreError(f"store file {path!r} cannot be read: {exc}") from exc
    if size == 0:
        raise StoreError(f"store file {path!r} is empty (0 bytes): not a crdtsync store")
    if not (header.startswith(_MAGIC) or _MAGIC.startswith(header)):
        raise StoreError(f"store file {path!r} is not a SQLite database")
    if len(header) < 100:
        raise StoreError(f"store file {path!r} is truncated ({size} bytes, header cut short)")
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    if page < 512 or page & (page - 1):
        raise StoreError(f"store file {path!r} is damaged (bad page size {page} in header)")
    if size % page:
        raise StoreError(
            f"store file {path!r} is truncated ({size} bytes is not a whole number of "
            f"{page}-byte pages)"
        )


def _create(path: str) -> None:
    """Create a complete, empty store at ``path`` unless a file appears there first."""
    tmp: str | None = None
    try:
        tmp = temp_beside(path)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA journal_mode = WAL")  # persistent: no conversion at open
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("COMMIT")
        finally:
            conn.close()  # checkpoints the WAL into the file (fsynced) and removes it
        if os.path.exists(tmp + "-wal"):
            raise OSError("the new store's WAL was not checkpointed")
        publish(tmp, path)  # False: another opener created it first; we open theirs
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot create store file {path!r}: {exc}") from exc
    finally:
        if tmp is not None:
            for name in (tmp, tmp + "-wal", tmp + "-shm"):
                remove_quietly(name)


def _check_schema(conn: sqlite3.Connection, path: str) -> int:
    """Check the file's schema; return its version (1, to be upgraded, or the current)."""
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    if app != APPLICATION_ID:
        raise StoreError(
            f"store file {path!r} is a SQLite database but not a crdtsync store "
            f"(application_id {app:#x})"
        )
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version not in (1, SCHEMA_VERSION):
        newer = " (written by a newer crdtsync)" if version > SCHEMA_VERSION else ""
        raise StoreError(
            f"store file {path!r} has schema version {version}{newer}; "
            f"this crdtsync reads versions 1 and {SCHEMA_VERSION}"
        )
    for table, expected in _COLUMNS.items():
        if table == "log" and version == 1:
            expected = _V1_LOG
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        if not columns:
            raise StoreError(f"store file {path!r} is damaged: table {table!r} is missing")
        if columns != expected:
            raise StoreError(
                f"store file {path!r} is damaged: table {table!r} has columns {columns}, "
                f"expected {expected}"
            )
    row = conn.execute("SELECT value FROM store_info WHERE name = 'next_seq'").fetchone()
    if row is None or not isinstance(row[0], int):
        raise StoreError(f"store file {path!r} is damaged: next_seq is missing")
    return int(version)


def _upgrade(conn: sqlite3.Connection, path: str) -> None:
    """Upgrade a version-1 file to the current schema, in one transaction.

    Version 2 adds the log's ``upto`` column (NULL for the entries already there: no bound
    known, as before). ``ALTER TABLE ... ADD COLUMN`` only edits the schema; no row is
    rewritten. A crdtsync that reads only version 1 then refuses the file, naming its version.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("ALTER TABLE log ADD COLUMN upto INTEGER")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    _log.info("upgraded store file %s from schema version 1 to %d", path, SCHEMA_VERSION)


def _check(conn: sqlite3.Connection, path: str, quick_check: bool) -> int:
    """Read-only checks: a file that is rejected is never written to. Returns the version."""
    version = _check_schema(conn, path)
    if quick_check:
        started = time.monotonic()
        rows = conn.execute("PRAGMA quick_check").fetchall()
        if [tuple(r) for r in rows] != [("ok",)]:
            lines = [ln for r in rows for ln in str(r[0]).splitlines() if not ln.startswith("*")]
            problems = "; ".join(lines[:3]) + ("; ..." if len(lines) > 3 else "")
            raise StoreError(f"store file {path!r} is damaged (quick_check: {problems})")
        _log.debug("quick_check of %s took %.3f s", path, time.monotonic() - started)
    return version


def _setup(conn: sqlite3.Connection, path: str, synchronous: str) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"store file {path!r}: cannot use WAL journal mode (got {mode!r})")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA fullfsync = ON")  # macOS: fsync alone does not reach the disk


def verify(path: str, *, quick_check: bool = True) -> int:
    """Check that the file at ``path`` is a complete crdtsync store (of a schema this module
    reads), without writing anything: no upgrade, no ``-wal`` or ``-shm`` file made beside
    it. Raise StoreError naming it if not; return its schema version.

    Opened immutable, so only for a file no process writes and with no ``-wal`` beside it
    (a snapshot, as ``crdtsync backup`` writes): such a log would not be read.
    """
    _precheck(path)
    uri = pathlib.Path(os.path.abspath(path)).as_uri() + "?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"store file {path!r} {describe(exc)}") from exc
    try:
        return _check(conn, path, quick_check)
    except sqlite3.Error as exc:
        raise StoreError(f"store file {path!r} {describe(exc)}") from exc
    finally:
        conn.close()


def open_connection(
    path: str, *, create: bool, synchronous: str, quick_check: bool
) -> tuple[sqlite3.Connection, str | None]:
    """Open (creating if allowed) the store file at ``path`` and check it; raise StoreError.

    Returns the connection and the key of the process lock (see :mod:`._filelock`).
    """
    if not os.path.exists(path):
        if not create:
            raise StoreError(f"store file {path!r} does not exist")
        _create(path)
    _precheck(path)
    uri = pathlib.Path(os.path.abspath(path)).as_uri() + "?mode=rw"
    lock: str | None = None
    try:
        conn = sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT
        )
    except sqlite3.Error as exc:
        raise StoreError(f"store file {path!r} {describe(exc)}") from exc
    try:
        version = _check(conn, path, quick_check)
        lock = _filelock.acquire(path)
        _setup(conn, path, synchronous)
        if version == 1:
            _upgrade(conn, path)
    except BaseException as exc:
        conn.close()
        _filelock.release(lock)
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"store file {path!r} {describe(exc)}") from exc
        raise
    return conn, lock
