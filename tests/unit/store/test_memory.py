"""MemoryStore beyond the contract: its backup file format and loading damaged backups."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from crdtsync.errors import StoreError
from crdtsync.store import Commit, LogEntry, MemoryStore

from .helpers import commit_for, model_after, snapshot


def test_backup_file_format_is_the_documented_json(tmp_path: Path) -> None:
    store = MemoryStore()
    store.commit(
        Commit(
            bases={"b": ("t", b"\x00\xff")},
            deltas={"a": ("u", b"d"), "b": ("t", b"e")},
            log=[LogEntry(3, None, b"x"), LogEntry(4, "eu", b"y", 17), LogEntry(5, "ap", b"z")],
            meta={"n": [1, {"k": None}]},
            trim_log_below=4,
        )
    )
    store.backup(tmp_path / "m.json")
    assert orjson.loads((tmp_path / "m.json").read_bytes()) == {
        "format": "crdtsync-memory-store",
        "version": 2,
        "next_seq": 6,
        "meta": {"n": [1, {"k": None}]},
        "keys": [["a", "u", None, ["ZA=="]], ["b", "t", "AP8=", ["ZQ=="]]],
        "log": [[4, "eu", "eQ==", 17], [5, "ap", "eg==", None]],
    }
    loaded = MemoryStore.from_file(tmp_path / "m.json")
    assert list(loaded.log()) == [LogEntry(4, "eu", b"y", 17), LogEntry(5, "ap", b"z")]


def test_a_version_1_backup_still_loads_with_no_bounds(tmp_path: Path) -> None:
    doc = {**_good_doc(), "version": 1, "log": [[1, None, "eA=="], [2, "p", "eQ=="]]}
    (tmp_path / "m.json").write_bytes(orjson.dumps(doc))
    loaded = MemoryStore.from_file(tmp_path / "m.json")
    assert list(loaded.log()) == [LogEntry(1, None, b"x"), LogEntry(2, "p", b"y")]
    loaded.backup(tmp_path / "again.json")  # written back as version 2
    again = orjson.loads((tmp_path / "again.json").read_bytes())
    assert again["version"] == 2 and again["log"] == [[1, None, "eA==", None],
                                                      [2, "p", "eQ==", None]]


def test_backup_round_trips(tmp_path: Path) -> None:
    store = model_after(120)
    store.backup(str(tmp_path / "m.json"))
    loaded = MemoryStore.from_file(str(tmp_path / "m.json"))
    assert snapshot(loaded) == snapshot(store)
    loaded.commit(commit_for(121))  # the loaded store keeps the rules (next_seq included)
    with pytest.raises(ValueError):
        loaded.commit(Commit(log=[LogEntry(100, None, b"old")]))


def _good_doc() -> dict[str, object]:
    return {
        "format": "crdtsync-memory-store",
        "version": 2,
        "next_seq": 3,
        "meta": {},
        "keys": [["a", "t", None, ["ZA=="]]],
        "log": [[1, None, "eA==", None], [2, "p", "eQ==", 5]],
    }


BAD_DOCS: dict[str, tuple[object, str]] = {
    "not ours": ({"hello": 1}, "not a crdtsync memory store backup"),
    "a list": ([1, 2], "not a crdtsync memory store backup"),
    "newer version": ({**_good_doc(), "version": 3}, "format version 3"),
    "version true": ({**_good_doc(), "version": True}, "format version True"),
    "version 1 with 4-item log rows": ({**_good_doc(), "version": 1}, "3-item"),
    "short log row": ({**_good_doc(), "log": [[1, None, "eA=="]]}, "4-item"),
    "upto on a local entry": ({**_good_doc(), "log": [[1, None, "eA==", 3]]}, "local"),
    "upto zero": ({**_good_doc(), "log": [[2, "p", "eQ==", 0]]}, "out of range"),
    "upto text": ({**_good_doc(), "log": [[2, "p", "eQ==", "5"]]}, "upto must be int"),
    "negative next_seq": ({**_good_doc(), "next_seq": -1}, "next_seq"),
    "missing log": ({k: v for k, v in _good_doc().items() if k != "log"}, "log"),
    "bad base64": ({**_good_doc(), "keys": [["a", "t", "!!", []]]}, "base64"),
    "repeated key": (
        {**_good_doc(), "keys": [["a", "t", None, []], ["a", "t", None, []]]},
        "repeated",
    ),
    "empty tag": ({**_good_doc(), "keys": [["a", "", None, []]]}, "empty tag"),
    "short key row": ({**_good_doc(), "keys": [["a", "t", None]]}, "4-item"),
    "log out of order": (
        {**_good_doc(), "log": [[2, None, "", None], [1, None, "", None]]},
        "out of order",
    ),
    "log at next_seq": ({**_good_doc(), "log": [[3, None, "", None]]}, "next_seq"),
}


@pytest.mark.parametrize("case", list(BAD_DOCS))
def test_a_damaged_backup_raises_store_error_naming_it(case: str, tmp_path: Path) -> None:
    doc, match = BAD_DOCS[case]
    path = tmp_path / "m.json"
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(StoreError, match=match) as info:
        MemoryStore.from_file(str(path))
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "not valid JSON"), (b"\x00garbage", "not valid JSON"), (b'{"format": ', "JSON")],
)
def test_a_file_that_is_not_json_raises_store_error(
    content: bytes, match: str, tmp_path: Path
) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(content)
    with pytest.raises(StoreError, match=match) as info:
        MemoryStore.from_file(path)
    assert str(path) in str(info.value)


def test_a_missing_backup_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot be read"):
        MemoryStore.from_file(tmp_path / "none.json")
