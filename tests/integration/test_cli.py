"""The ``crdtsync`` command. ``restore``: the snapshot is only read, its write-ahead log is
not lost, an older schema is upgraded on the copy, and a bad snapshot or an existing store
changes nothing; ``backup`` leaves an older schema as it is; ``status`` prints what the
health document says of each peer."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from crdtsync.replica import Replica
from crdtsync.store import SQLiteStore


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crdtsync_server.cli", *args],
                          capture_output=True, text=True, timeout=60)


def _digest(*paths: Path) -> list[str | None]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None for p in paths]


def _replica_with_data(data: Path) -> str:
    with Replica.open(str(data), name="us") as rep:
        rep.counter("c").increment(3)
        rep.set("s").add("x")
        rep.commit()
        return rep.replica_id


def _values(data: Path) -> tuple[int, frozenset[str], str]:
    with Replica.open(str(data), name="us") as rep:
        return rep.get("c"), rep.get("s"), rep.replica_id


def test_a_schema_1_snapshot_restores_and_stays_as_it_was(tmp_path: Path) -> None:
    old_id = _replica_with_data(tmp_path / "live")
    snap = tmp_path / "snap.db"
    shutil.copyfile(tmp_path / "live" / "replica.db", snap)
    conn = sqlite3.connect(snap)  # back to schema version 1: the log without upto
    conn.execute("ALTER TABLE log DROP COLUMN upto")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    before = _digest(snap, Path(f"{snap}-wal"))
    res = _cli("restore", "--data", str(tmp_path / "restored"), "--from", str(snap))
    assert res.returncode == 0 and "new id" in res.stdout, res.stderr
    assert _digest(snap, Path(f"{snap}-wal")) == before  # the snapshot was only read
    value, members, new_id = _values(tmp_path / "restored")
    assert (value, members) == (3, frozenset({"x"})) and new_id != old_id
    store = SQLiteStore(str(tmp_path / "restored" / "replica.db"), create=False)
    try:
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == 2  # type: ignore[union-attr]
    finally:
        store.close()
    assert sorted(p.name for p in (tmp_path / "restored").iterdir()) == ["replica.db"]


def test_a_snapshot_copied_with_its_wal_keeps_the_commits_in_the_wal(tmp_path: Path) -> None:
    rep = Replica.open(str(tmp_path / "live"), name="us")
    try:
        rep.counter("c").increment(5)
        rep.commit()  # in the WAL: the store is open, nothing checkpointed it yet
        live = tmp_path / "live" / "replica.db"
        assert Path(f"{live}-wal").stat().st_size > 0
        shutil.copyfile(live, tmp_path / "snap.db")  # a copy of a running data directory
        shutil.copyfile(f"{live}-wal", tmp_path / "snap.db-wal")
    finally:
        rep.close()
    res = _cli("restore", "--data", str(tmp_path / "restored"), "--from",
               str(tmp_path / "snap.db"))
    assert res.returncode == 0, res.stderr
    assert _values(tmp_path / "restored")[0] == 5


def test_a_bad_snapshot_or_an_existing_store_changes_nothing(tmp_path: Path) -> None:
    _replica_with_data(tmp_path / "data")
    db = tmp_path / "data" / "replica.db"
    kept = _digest(db)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database at all, just some bytes" * 200)
    res = _cli("restore", "--data", str(tmp_path / "data"), "--from", str(bad), "--force")
    assert res.returncode == 1
    assert f"snapshot {str(bad)!r}: it is not a SQLite database" in res.stderr, res.stderr
    res = _cli("restore", "--data", str(tmp_path / "data"), "--from", str(tmp_path / "nope.db"),
               "--force")
    assert res.returncode == 1 and "is not a file" in res.stderr
    res = _cli("restore", "--data", str(tmp_path / "data"), "--from", str(db))
    assert res.returncode == 1 and "pass --force" in res.stderr
    assert _digest(db) == kept
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["replica.db"]
    assert _values(tmp_path / "data")[:2] == (3, frozenset({"x"}))


def test_a_snapshot_of_a_schema_1_store_stays_schema_1(tmp_path: Path) -> None:
    _replica_with_data(tmp_path / "old")
    db = tmp_path / "old" / "replica.db"
    conn = sqlite3.connect(db)  # a data directory of a crdtsync before the log kept upto
    conn.execute("ALTER TABLE log DROP COLUMN upto")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    res = _cli("backup", "--data", str(tmp_path / "old"), "--out", str(tmp_path / "snap.db"))
    assert res.returncode == 0, res.stderr
    assert SQLiteStore.verify(tmp_path / "snap.db") == 1  # restorable by that crdtsync too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old", "snap.db"]


def test_status_says_which_peers_it_catches_up_and_relays_to(tmp_path: Path) -> None:
    import http.server
    import threading

    import orjson

    doc = {"id": "eu", "replica_id": "eu.1", "keys": 3, "log_seq": 9, "peers": {
        "ap.2": {"connected": True, "lag_batches": 4, "lag_seconds": 0.5,
                 "catching_up": True, "relayed": ["us.3"]},
        "us.3": {"connected": False, "lag_batches": 0, "lag_seconds": 0.0,
                 "catching_up": False, "relayed": []}}}

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = orjson.dumps(doc)
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        res = _cli("status", f"ws://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "replica eu (eu.1): 3 keys, log at 9"
    assert lines[1].split() == ["ap.2", "connected", "lag", "4", "batches,", "0.500", "s,",
                                "catching", "it", "up", "from", "state,", "relaying", "us.3",
                                "(it", "does", "not", "reach", "them)"]
    assert lines[2].split() == ["us.3", "DISCONNECTED", "lag", "0", "batches,", "0.000", "s"]
