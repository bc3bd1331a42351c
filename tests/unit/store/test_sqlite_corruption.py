"""A damaged or foreign file raises StoreError naming it, and is never taken for a new store.

Each case starts from a copy of a healthy store file and damages it; opening must fail with
StoreError whose message holds the path, and must leave the file's bytes as they were.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from crdtsync.errors import StoreError
from crdtsync.store import SQLiteStore

from .helpers import commit_for

PAGE = 4096


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("healthy") / "store.db"
    with SQLiteStore(str(path), synchronous="NORMAL") as store:
        for i in range(1, 300):
            store.commit(commit_for(i))
    assert path.stat().st_size >= 10 * PAGE and path.stat().st_size % PAGE == 0
    return path


def _sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


def _truncate(at: int | Callable[[int], int]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.truncate(at(size) if callable(at) else at)

    return damage


def _overwrite(offset: int | Callable[[Path], int], data: bytes) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with open(path, "r+b") as f:
            f.seek(offset(path) if callable(offset) else offset)
            f.write(data)

    return damage


def _replace(data: bytes) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        path.write_bytes(data)

    return damage


def _root_page(table: str) -> Callable[[Path], int]:
    def offset(path: Path) -> int:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            (root,) = conn.execute(
                "SELECT rootpage FROM sqlite_schema WHERE name = ?", (table,)
            ).fetchone()
        finally:
            conn.close()
        return (int(root) - 1) * PAGE

    return offset


def _sql_case(*statements: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        _sql(path, *statements)

    return damage


_rng = random.Random(1234)
GARBAGE = bytes(_rng.randrange(256) for _ in range(3 * PAGE))

CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "random garbage": (_replace(GARBAGE), "not a SQLite database"),
    "garbage after a valid magic": (
        _replace(b"SQLite format 3\x00" + GARBAGE[16:]),
        "damaged|not a SQLite",
    ),
    "text file": (_replace(b"hello, I am not a database\n"), "not a SQLite database"),
    "json file": (_replace(b'{"format": "crdtsync-memory-store"}'), "not a SQLite database"),
    "empty file": (_replace(b""), "empty"),
    "zeroed header": (_overwrite(0, bytes(100)), "not a SQLite database"),
    "zeroed first page": (_overwrite(0, bytes(PAGE)), "not a SQLite database"),
    "truncated to 10 bytes": (_truncate(10), "truncated"),
    "truncated in the header": (_truncate(60), "truncated"),
    "truncated after the header": (_truncate(100), "truncated"),
    "truncated mid page": (_truncate(PAGE + 1234), "truncated"),
    "truncated to one page": (_truncate(PAGE), "damaged"),
    "truncated to half": (_truncate(lambda n: n // PAGE // 2 * PAGE), "damaged"),
    "last page cut off": (_truncate(lambda n: n - PAGE), "damaged"),
    "one byte cut off": (_truncate(lambda n: n - 1), "truncated"),
    "bad page size": (_overwrite(16, b"\x03\x00"), "page size"),
    "garbage in a table's root page": (_overwrite(_root_page("log"), GARBAGE[:64]), "damaged"),
    "bad cell pointers in a b-tree page": (
        _overwrite(lambda p: _root_page("kv_delta")(p) + 8, b"\xff" * 16),
        "damaged",
    ),
    "newer schema version": (_sql_case("PRAGMA user_version = 3"), "schema version 3"),
    "version 1 with version 2's log": (_sql_case("PRAGMA user_version = 1"), "table 'log' has"),
    "older schema version": (_sql_case("PRAGMA user_version = 0"), "schema version 0"),
    "another application's database": (
        _sql_case("PRAGMA application_id = 0"),
        "not a crdtsync store",
    ),
    "missing table": (_sql_case("DROP TABLE kv_delta"), "table 'kv_delta' is missing"),
    "changed table": (_sql_case("ALTER TABLE meta ADD COLUMN extra"), "table 'meta' has"),
    "missing next_seq": (_sql_case("DELETE FROM store_info"), "next_seq is missing"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_file_raises_store_error_naming_it(
    case: str, healthy: Path, tmp_path: Path
) -> None:
    damage, match = CASES[case]
    path = tmp_path / "store.db"
    shutil.copyfile(healthy, path)
    damage(path)
    before = path.read_bytes()
    for create in (True, False):
        with pytest.raises(StoreError, match=match) as info:
            SQLiteStore(str(path), create=create)
        assert str(path) in str(info.value)
    assert path.read_bytes() == before  # a rejected file is never written to


def test_a_foreign_sqlite_database_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    _sql(path, "CREATE TABLE t (x)", "INSERT INTO t VALUES (1)")
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a crdtsync store"):
        SQLiteStore(str(path))
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists()


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory") as info:
        SQLiteStore(str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_the_healthy_copy_opens(healthy: Path, tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    shutil.copyfile(healthy, path)
    with SQLiteStore(str(path), create=False) as store:
        assert store.meta()["count"] == 299


def test_quick_check_finds_damage_that_opening_does_not_read(healthy: Path, tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    shutil.copyfile(healthy, path)
    _overwrite(lambda p: _root_page("log")(p) + 8, b"\xff" * 16)(path)
    with pytest.raises(StoreError, match="damaged") as info:
        SQLiteStore(str(path))
    assert str(path) in str(info.value)
    SQLiteStore(str(path), quick_check=False).close()  # nothing else at open reads the log
