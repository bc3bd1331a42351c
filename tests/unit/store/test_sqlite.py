"""SQLiteStore beyond the contract: reopening, durability knobs, locking, failures, cost."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from crdtsync.errors import LocalError, StoreError
from crdtsync.store import Commit, KeyRecord, LogEntry, SQLiteStore

from .helpers import commit_for, model_after, snapshot


def _pragma(store: SQLiteStore, name: str) -> Any:
    return store._conn.execute(f"PRAGMA {name}").fetchone()[0]  # type: ignore[union-attr]


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with SQLiteStore(path) as store:
        for i in range(1, 60):
            store.commit(commit_for(i))
        before = snapshot(store)
    assert before == snapshot(model_after(59))
    with SQLiteStore(path, create=False) as again:
        assert snapshot(again) == before
        again.commit(commit_for(60))  # and it goes on where it stopped
        assert snapshot(again) == snapshot(model_after(60))


def test_missing_file_without_create_names_the_path(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.db")
    with pytest.raises(StoreError, match="does not exist") as info:
        SQLiteStore(path, create=False)
    assert path in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    path = str(tmp_path / "no" / "such" / "s.db")
    with pytest.raises(StoreError, match="cannot create") as info:
        SQLiteStore(path)
    assert path in str(info.value)


def test_wal_and_synchronous_knobs(tmp_path: Path) -> None:
    with SQLiteStore(str(tmp_path / "full.db")) as full:
        assert _pragma(full, "journal_mode") == "wal"
        assert _pragma(full, "synchronous") == 2  # FULL
    with SQLiteStore(str(tmp_path / "normal.db"), synchronous="NORMAL") as normal:
        assert _pragma(normal, "synchronous") == 1  # NORMAL
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteStore(str(tmp_path / "x.db"), synchronous="OFF")  # type: ignore[arg-type]


def test_creation_and_close_leave_no_other_files(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    assert "s.db-lock" in {p.name for p in tmp_path.iterdir()}
    store.close()
    assert [p.name for p in tmp_path.iterdir()] == ["s.db"]


_TRY_OPEN = textwrap.dedent(
    """
    import sys
    from crdtsync.errors import StoreError
    from crdtsync.store import SQLiteStore
    try:
        SQLiteStore(sys.argv[1]).close()
    except StoreError as exc:
        print(exc)
    """
)


def _open_elsewhere(path: str) -> str:
    """Open the store in another process; return its StoreError message ('' if it opened)."""
    out = subprocess.run(
        [sys.executable, "-c", _TRY_OPEN, path], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_another_process_cannot_open_a_store_in_use(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    first = SQLiteStore(path)
    second = SQLiteStore(path)  # the same process may (a crash simulated by abandoning)
    first.close()
    message = _open_elsewhere(path)
    assert "in use by another process" in message and path in message
    second.close()
    assert _open_elsewhere(path) == ""


def test_a_failure_inside_sqlite_fails_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "s.db")
    store = SQLiteStore(path)
    store.commit(commit_for(1))

    def disk_error(*args: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "_write_meta", disk_error)
    with pytest.raises(StoreError, match="commit failed") as info:
        store.commit(commit_for(2))
    assert path in str(info.value)
    with pytest.raises(StoreError, match="reopen"):
        store.meta()
    store.close()
    with pytest.raises(LocalError):
        store.meta()
    with SQLiteStore(path) as again:  # the lock was released; the failed commit is not there
        assert snapshot(again) == snapshot(model_after(1))


def test_no_commit_statement_scans_a_table(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    for i in range(1, 30):
        store.commit(commit_for(i))
    conn = store._conn
    assert conn is not None
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    store.commit(
        Commit(
            bases={"k1": ("t", b"b")},
            deltas={"k2": ("t", b"d"), "new": ("t", b"n")},
            log=[LogEntry(100, "p", b"l")],
            meta={"m": 1},
            trim_log_below=50,
        )
    )
    conn.set_trace_callback(None)
    plans = {
        sql: conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
        for sql in statements
        if sql.split()[0] in ("SELECT", "INSERT", "UPDATE", "DELETE")
    }
    assert len(plans) >= 8
    for sql, plan in plans.items():
        assert not any(" SCAN " in f" {row[-1]} " for row in plan), (sql, plan)
    store.close()


def test_quick_check_can_be_skipped(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    SQLiteStore(path).close()
    with SQLiteStore(path, quick_check=False) as store:
        store.commit(Commit(deltas={"k": ("t", b"x")}))
        assert list(store.keys()) == [KeyRecord("k", "t", None, (b"x",))]


def test_a_file_path_with_uri_characters_works(tmp_path: Path) -> None:
    path = str(tmp_path / "we ird?mode=ro#x%20.db")
    with SQLiteStore(path) as store:
        store.commit(Commit(meta={"ok": True}))
    with SQLiteStore(path, create=False) as store:
        assert store.meta() == {"ok": True}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_inherit_the_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    store = SQLiteStore(path)
    pid = os.fork()
    if pid == 0:  # the child: opening must fail, the parent still holds the file
        try:
            SQLiteStore(path)
            code = 1
        except StoreError:
            code = 0
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.commit(Commit(meta={"still": "mine"}))  # and the parent's lock is intact
    assert "in use" in _open_elsewhere(path)
    store.close()


_V1_SCHEMA = (  # crdtsync's schema version 1, as it created store files before log.upto
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE kv (key TEXT PRIMARY KEY, tag TEXT NOT NULL, base BLOB)",
    "CREATE TABLE kv_delta (key TEXT NOT NULL, n INTEGER NOT NULL, blob BLOB NOT NULL,"
    " PRIMARY KEY (key, n))",
    "CREATE TABLE log (seq INTEGER PRIMARY KEY, origin TEXT, blob BLOB NOT NULL)",
    "CREATE TABLE store_info (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT INTO store_info (name, value) VALUES ('next_seq', 8)",
    "INSERT INTO meta (name, value) VALUES ('replica_id', '\"us.1\"')",
    "INSERT INTO kv (key, tag, base) VALUES ('a', 'gset', x'4130')",
    "INSERT INTO log (seq, origin, blob) VALUES (6, NULL, x'4c36'), (7, 'eu.1', x'4c37')",
    "PRAGMA application_id = 1129464916",
    "PRAGMA user_version = 1",
)


def test_a_version_1_file_is_upgraded_in_place_and_keeps_everything(tmp_path: Path) -> None:
    path = str(tmp_path / "v1.db")
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _V1_SCHEMA:
        conn.execute(statement)
    conn.close()
    with SQLiteStore(path, create=False) as store:
        assert _pragma(store, "user_version") == 2
        assert list(store.log()) == [LogEntry(6, None, b"L6"), LogEntry(7, "eu.1", b"L7")]
        assert list(store.keys()) == [KeyRecord("a", "gset", b"A0", ())]
        assert store.meta() == {"replica_id": "us.1"} and store.next_seq() == 8
        store.commit(Commit(log=[LogEntry(8, "eu.1", b"L8", 7)]))
    with SQLiteStore(path, create=False) as again:  # opened as version 2: nothing to do
        assert list(again.log(7)) == [LogEntry(7, "eu.1", b"L7"), LogEntry(8, "eu.1", b"L8", 7)]
    conn = sqlite3.connect(path)
    assert [r[1] for r in conn.execute("PRAGMA table_info(log)")] == [
        "seq", "origin", "blob", "upto"]
    conn.close()


def test_verify_reads_a_store_file_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _V1_SCHEMA:
        conn.execute(statement)
    conn.close()
    before = path.read_bytes()
    assert SQLiteStore.verify(path) == 1  # read as it is: not upgraded
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["v1.db"]
    with SQLiteStore(str(path), create=False):
        pass  # opened: upgraded
    assert SQLiteStore.verify(str(path), quick_check=False) == 2
    (tmp_path / "junk.db").write_bytes(b"junk" * 1024)
    with pytest.raises(StoreError, match="junk.db.*not a SQLite database"):
        SQLiteStore.verify(tmp_path / "junk.db")
    with pytest.raises(StoreError, match="nope.db"):
        SQLiteStore.verify(tmp_path / "nope.db")
