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
            log=[LogEntry(3, None, b"x"), LogEntry(4, "eu", b"y")],
            meta={"n": [1, {"k": None}]},
            trim_log_below=4,
        )
    )
    store.backup(tmp_path / "m.json")
    assert orjson.loads((tmp_path / "m.json").read_bytes()) == {
        "format": "crdtsync-memory-store",
        "version": 1,
        "next_seq": 5,
        "meta": {"n": [1, {"k": None}]},
        "keys": [["a", "u", None, ["ZA=="]], ["b", "t", "AP8=", ["ZQ=="]]],
        "log": [[4, "eu", "eQ=="]],
    }


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
        "version": 1,
        "next_seq": 3,
        "meta": {},
        "keys": [["a", "t", None, ["ZA=="]]],
        "log": [[1, None, "eA=="], [2, "p", "eQ=="]],
    }


BAD_DOCS: dict[str, tuple[object, str]] = {
    "not ours": ({"hello": 1}, "not a crdtsync memory store backup"),
    "a list": ([1, 2], "not a crdtsync memory store backup"),
    "newer version": ({**_good_doc(), "version": 2}, "format version 2"),
    "negative next_seq": ({**_good_doc(), "next_seq": -1}, "next_seq"),
    "missing log": ({k: v for k, v in _good_doc().items() if k != "log"}, "log"),
    "bad base64": ({**_good_doc(), "keys": [["a", "t", "!!", []]]}, "base64"),
    "repeated key": (
        {**_good_doc(), "keys": [["a", "t", None, []], ["a", "t", None, []]]},
        "repeated",
    ),
    "empty tag": ({**_good_doc(), "keys": [["a", "", None, []]]}, "empty tag"),
    "short key row": ({**_good_doc(), "keys": [["a", "t", None]]}, "4-item"),
    "log out of order": ({**_good_doc(), "log": [[2, None, ""], [1, None, ""]]}, "out of order"),
    "log at next_seq": ({**_good_doc(), "log": [[3, None, ""]]}, "next_seq"),
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
