"""The Store contract, run against SQLiteStore and MemoryStore alike."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crdtsync.errors import LocalError
from crdtsync.store import Commit, KeyRecord, LogEntry, MemoryStore, SQLiteStore, Store

from .helpers import Kind, Snapshot, commit_for, model_after, snapshot

EMPTY: Snapshot = ([], [], {}, 0)


def _populate(store: Store) -> None:
    store.commit(
        Commit(
            bases={"a": ("gset", b"A0")},
            deltas={"a": ("gset", b"a1"), "b": ("pn", b"b1")},
            log=[LogEntry(1, None, b"L1"), LogEntry(2, "eu.1", b"L2", 9)],
            meta={"replica_id": "us.1", "hlc": 17},
        )
    )
    store.commit(Commit(deltas={"a": ("gset", b"a2")}, log=[LogEntry(5, None, b"L5")]))


def test_new_store_is_empty(store: Store) -> None:
    assert snapshot(store) == EMPTY


def test_a_bound_as_high_as_the_wire_allows_reads_back(store: Store) -> None:
    store.commit(Commit(log=[LogEntry(1, "eu.1", b"x", 2**63 - 1)]))
    assert list(store.log()) == [LogEntry(1, "eu.1", b"x", 2**63 - 1)]


def test_commit_reads_back_bases_deltas_log_and_meta(store: Store) -> None:
    _populate(store)
    assert list(store.keys()) == [
        KeyRecord("a", "gset", b"A0", (b"a1", b"a2")),
        KeyRecord("b", "pn", None, (b"b1",)),
    ]
    assert list(store.log()) == [
        LogEntry(1, None, b"L1"),
        LogEntry(2, "eu.1", b"L2", 9),
        LogEntry(5, None, b"L5"),
    ]
    assert [e.seq for e in store.log(2)] == [2, 5]
    assert [e.seq for e in store.log(3)] == [5]
    assert list(store.log(6)) == [] and list(store.log(2**70)) == []
    assert [e.seq for e in store.log(-5)] == [1, 2, 5]
    assert store.meta() == {"replica_id": "us.1", "hlc": 17}
    assert store.next_seq() == 6


def test_base_replaces_base_and_drops_the_chain(store: Store) -> None:
    _populate(store)
    store.commit(Commit(bases={"a": ("gset", b"A1")}))
    assert next(iter(store.keys())) == KeyRecord("a", "gset", b"A1", ())
    store.commit(Commit(deltas={"a": ("gset", b"x")}))
    store.commit(Commit(bases={"a": ("gset", b"A2")}, deltas={"a": ("gset", b"y")}))
    store.commit(Commit(deltas={"a": ("gset", b"z")}))
    assert next(iter(store.keys())) == KeyRecord("a", "gset", b"A2", (b"y", b"z"))


def test_keys_come_in_code_point_order(store: Store) -> None:
    names = ["b", "a", "é", "Z", "a\x00b", "aa", "\u4e00", "\U0001f600", "", "~"]
    store.commit(Commit(deltas={k: ("t", k.encode()) for k in names}))
    assert [r.key for r in store.keys()] == sorted(names)
    assert all(r.deltas == (r.key.encode(),) for r in store.keys())


def test_long_listings_stream_with_chains_intact(store: Store) -> None:
    # more rows than one fetch batch, with chains of varying length
    store.commit(Commit(deltas={f"k{i:04}": ("t", b"0") for i in range(700)}))
    for n in range(1, 4):
        store.commit(Commit(deltas={f"k{i:04}": ("t", b"%d" % n) for i in range(0, 700, n + 1)}))
    records = list(store.keys())
    assert [r.key for r in records] == [f"k{i:04}" for i in range(700)]
    for i, r in enumerate(records):
        assert r.deltas == (b"0", *[b"%d" % n for n in range(1, 4) if i % (n + 1) == 0])
    store.commit(Commit(log=[LogEntry(s, None, b"%d" % s) for s in range(1000)]))
    assert [e.seq for e in store.log(300)] == list(range(300, 1000))


def test_meta_upserts_and_round_trips_json(store: Store) -> None:
    store.commit(Commit(meta={"a": 1, "b": [1, "x", None], "c": {"k": 1.5}}))
    store.commit(Commit(meta={"a": 2, "d": (1, 2), "e": True}))
    got = store.meta()
    assert got == {"a": 2, "b": [1, "x", None], "c": {"k": 1.5}, "d": [1, 2], "e": True}
    got["a"] = 99  # a copy: the store is not changed through it
    assert store.meta()["a"] == 2


def test_trim_drops_the_front_and_seqs_never_come_back(store: Store) -> None:
    store.commit(Commit(log=[LogEntry(s, None, b"x") for s in range(1, 11)]))
    store.commit(Commit(trim_log_below=4))
    assert [e.seq for e in store.log()] == list(range(4, 11))
    store.commit(Commit(log=[LogEntry(11, None, b"y")], trim_log_below=100))
    assert list(store.log()) == [] and store.next_seq() == 12
    with pytest.raises(ValueError, match="not above"):
        store.commit(Commit(log=[LogEntry(11, None, b"again")]))
    store.commit(Commit(log=[LogEntry(20, None, b"z")]))
    assert [e.seq for e in store.log()] == [20] and store.next_seq() == 21


def test_a_base_replaces_the_key_type_included(store: Store) -> None:
    store.commit(Commit(deltas={"k": ("pn", b"d1")}))
    store.commit(Commit(bases={"k": ("gset", b"full")}))
    assert [(r.key, r.tag, r.base, r.deltas) for r in store.keys()] == [("k", "gset", b"full", ())]
    with pytest.raises(ValueError, match="holds type"):
        store.commit(Commit(deltas={"k": ("pn", b"d2")}))


def test_seq_zero_is_the_first_seq(store: Store) -> None:
    store.commit(Commit(log=[LogEntry(0, None, b"first")]))
    assert store.next_seq() == 1


BAD_COMMITS: list[tuple[str, Commit, type[Exception], str]] = [
    ("tag change by delta", Commit(deltas={"a": ("pn", b"x")}), ValueError, "holds type"),
    (
        "tags disagree in the commit",
        Commit(bases={"n": ("t1", b"x")}, deltas={"n": ("t2", b"y")}),
        ValueError,
        "tagged",
    ),
    ("seq equal to stored", Commit(log=[LogEntry(5, None, b"x")]), ValueError, "not above"),
    ("seq below stored", Commit(log=[LogEntry(3, None, b"x")]), ValueError, "not above"),
    (
        "seqs not increasing",
        Commit(log=[LogEntry(8, None, b"x"), LogEntry(8, None, b"y")]),
        ValueError,
        "does not follow",
    ),
    ("negative seq", Commit(log=[LogEntry(-1, None, b"x")]), ValueError, "out of range"),
    ("huge seq", Commit(log=[LogEntry(2**63, None, b"x")]), ValueError, "out of range"),
    ("blob is str", Commit(deltas={"n": ("t", "x")}), TypeError, "bytes"),  # type: ignore[dict-item]
    ("tag not str", Commit(deltas={"n": (1, b"x")}), TypeError, "tag"),  # type: ignore[dict-item]
    ("empty tag", Commit(deltas={"n": ("", b"x")}), ValueError, "empty"),
    ("meta not JSON", Commit(meta={"m": {1, 2}}), TypeError, "JSON"),
    ("key not unicode", Commit(deltas={"\ud800": ("t", b"x")}), ValueError, "unicode"),
    ("trim negative", Commit(trim_log_below=-1), ValueError, "out of range"),
    ("upto on a local entry", Commit(log=[LogEntry(9, None, b"x", 3)]), ValueError, "local"),
    ("upto zero", Commit(log=[LogEntry(9, "eu.1", b"x", 0)]), ValueError, "out of range"),
    ("upto str", Commit(log=[LogEntry(9, "eu.1", b"x", "3")]), TypeError, "upto must be int"),  # type: ignore[arg-type]
    ("upto bool", Commit(log=[LogEntry(9, "eu.1", b"x", True)]), TypeError, "upto must be int"),
    ("upto above int64", Commit(log=[LogEntry(9, "eu.1", b"x", 2**63)]), ValueError,
     "out of range"),
]


@pytest.mark.parametrize(
    ("case", "bad", "error", "match"), BAD_COMMITS, ids=[c[0] for c in BAD_COMMITS]
)
def test_a_rejected_commit_writes_nothing(
    store: Store, case: str, bad: Commit, error: type[Exception], match: str
) -> None:
    _populate(store)
    before = snapshot(store)
    bad = copy.deepcopy(bad)
    # the bad part rides along with good changes of every kind: none may land
    bad.bases.setdefault("fresh", ("t", b"F"))
    bad.deltas.setdefault("a", ("gset", b"a3"))
    bad.meta.setdefault("hlc", 99)
    if not bad.log:
        bad.log.append(LogEntry(9, None, b"L9"))
    bad.trim_log_below = bad.trim_log_below if bad.trim_log_below is not None else 100
    with pytest.raises(error, match=match):
        store.commit(bad)
    assert snapshot(store) == before
    store.commit(Commit(deltas={"b": ("pn", b"ok")}, log=[LogEntry(6, None, b"ok")]))
    assert snapshot(store) != before  # still usable


@pytest.mark.parametrize(
    "step", ["_write_bases", "_write_deltas", "_write_log", "_write_meta", "_write_trim"]
)
def test_a_commit_failing_midway_is_rolled_back(
    store: Store, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _populate(store)
    before = snapshot(store)

    def boom(*args: Any) -> None:
        raise RuntimeError("injected fault")

    big = Commit(
        bases={"a": ("gset", b"NEW"), "c": ("t", b"C")},
        deltas={"b": ("pn", b"b2"), "d": ("t", b"D")},
        log=[LogEntry(7, None, b"L7")],
        meta={"hlc": 99, "new": 1},
        trim_log_below=3,
    )
    monkeypatch.setattr(store, step, boom)
    with pytest.raises(RuntimeError, match="injected"):
        store.commit(big)
    assert snapshot(store) == before
    monkeypatch.undo()
    store.commit(big)
    assert store.next_seq() == 8 and store.meta()["new"] == 1


def test_bytes_like_blobs_are_stored_as_bytes(store: Store) -> None:
    blob = bytearray(b"abc")
    store.commit(Commit(deltas={"k": ("t", blob)}, log=[LogEntry(1, None, memoryview(b"m"))]))  # type: ignore[dict-item,arg-type]
    blob[0] = ord("X")  # the caller's buffer changing later changes nothing stored
    assert next(iter(store.keys())).deltas == (b"abc",)
    assert next(iter(store.log())).blob == b"m"


def test_an_empty_commit_is_a_no_op(store: Store) -> None:
    store.commit(Commit())
    assert snapshot(store) == EMPTY


def test_iterators_are_invalidated_by_a_later_commit(store: Store) -> None:
    store.commit(Commit(deltas={f"k{i:04}": ("t", b"x") for i in range(600)}))
    store.commit(Commit(log=[LogEntry(s, None, b"x") for s in range(600)]))
    keys, log = store.keys(), store.log()
    next(log)
    store.commit(Commit(meta={"m": 1}))
    with pytest.raises(LocalError, match="changed during iteration"):
        list(keys)
    with pytest.raises(LocalError, match="changed during iteration"):
        list(log)


def test_backup_then_open_it(store: Store, kind: Kind, tmp_path: Path) -> None:
    _populate(store)
    store.commit(Commit(trim_log_below=2))
    target = str(tmp_path / "backup")
    store.backup(target)
    store.commit(Commit(deltas={"b": ("pn", b"after")}))  # not in the backup
    restored = kind.load_backup(target)
    try:
        assert snapshot(restored) == (
            [KeyRecord("a", "gset", b"A0", (b"a1", b"a2")), KeyRecord("b", "pn", None, (b"b1",))],
            [LogEntry(2, "eu.1", b"L2", 9), LogEntry(5, None, b"L5")],
            {"replica_id": "us.1", "hlc": 17},
            6,
        )
    finally:
        restored.close()


def test_backup_never_overwrites(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "backup"
    target.write_bytes(b"precious")
    with pytest.raises(LocalError, match="already exists"):
        store.backup(str(target))
    assert target.read_bytes() == b"precious"


def test_backup_while_commits_run_is_a_consistent_snapshot(
    store: Store, kind: Kind, tmp_path: Path
) -> None:
    done = [0]
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(1, 2000):
                if stop.is_set():
                    return
                store.commit(commit_for(i))
                done[0] = i
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    counts = []
    try:
        for n in range(5):
            deadline = time.monotonic() + 10
            while done[0] < 10 * (n + 1) and time.monotonic() < deadline and not errors:
                time.sleep(0.001)
            target = str(tmp_path / f"backup{n}")
            store.backup(target)
            restored = kind.load_backup(target)
            count = int(restored.meta().get("count", 0))
            assert snapshot(restored) == snapshot(model_after(count)), f"backup {n} at {count}"
            restored.close()
            counts.append(count)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors
    assert counts[0] >= 10 and counts == sorted(counts)  # taken while the writer ran


def test_close_is_idempotent_and_any_use_after_raises(store: Store, tmp_path: Path) -> None:
    _populate(store)
    keys = store.keys()
    store.close()
    store.close()
    with pytest.raises(LocalError, match="closed"):
        next(keys)
    calls: list[Callable[[], object]] = [
        lambda: store.commit(Commit()),
        lambda: store.commit(Commit(log=[LogEntry(-1, None, b"bad")])),  # closed comes first
        store.meta,
        store.next_seq,
        lambda: store.keys(),
        lambda: store.log(),
        lambda: store.backup(str(tmp_path / "b")),
    ]
    for call in calls:
        with pytest.raises(LocalError, match="closed"):
            call()
    assert not (tmp_path / "b").exists()


def test_a_store_is_a_context_manager(kind: Kind) -> None:
    s = kind.open()
    assert isinstance(s, SQLiteStore | MemoryStore)
    with s as entered:
        assert entered is s
        s.commit(Commit(meta={"x": 1}))
    with pytest.raises(LocalError):
        s.meta()
