"""CatchupProgress: what the log says while state catch-ups come in and go out."""

from __future__ import annotations

import logging

import pytest

from crdtsync.group import Group
from crdtsync.sync import States
from crdtsync.transport.progress import CatchupProgress
from crdtsync.types import GCounter


def _part(cid: int, part: int, parts: int, nkeys: int) -> States:
    return States(cid, 9, part, parts, Group({f"k{part}.{i}": GCounter() for i in range(nkeys)}))


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    out = [r.getMessage() for r in caplog.records if r.name == "crdtsync.sync"]
    caplog.clear()
    return out


def test_a_long_incoming_catch_up_logs_its_start_its_progress_and_its_end(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="crdtsync.sync")
    clock = _Clock()
    progress = CatchupProgress(every=5.0, clock=clock)
    assert progress.received("eu", _part(1, 0, 4, 1000), 60_000)  # a new catch-up
    assert _lines(caplog) == ["catch-up from eu: 4 parts coming"]
    clock.now += 3
    assert not progress.received("eu", _part(1, 1, 4, 1000), 60_000)
    assert _lines(caplog) == []  # less than 5 s since the last line
    clock.now += 3
    assert not progress.received("eu", _part(1, 1, 4, 1000), 60_000)  # sent again: once
    assert not progress.received("eu", _part(1, 2, 4, 1000), 60_000)
    assert _lines(caplog) == ["catch-up from eu: 3 of 4 parts, 3,000 keys, 0.2 MB so far"]
    clock.now += 1.5
    progress.received("eu", _part(1, 3, 4, 500), 2_000_000)
    assert _lines(caplog) == ["caught up from eu: 3,500 keys in 4 parts, 2.2 MB, 7.5 s"]


def test_a_new_cid_starts_over_and_a_one_part_catch_up_logs_once(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="crdtsync.sync")
    clock = _Clock()
    progress = CatchupProgress(clock=clock)
    progress.received("eu", _part(1, 0, 3, 10), 100)
    assert progress.received("eu", _part(2, 0, 1, 7), 400)  # the sender gave cid 1 up
    assert _lines(caplog) == ["catch-up from eu: 3 parts coming",
                              "caught up from eu: 7 keys in 1 part, 400 bytes, 0.0 s"]
    progress.received("ap", _part(5, 0, 2, 10), 100)
    progress.forget("ap")  # the link dropped: a later part starts a new record
    assert progress.received("ap", _part(5, 1, 2, 10), 100)


def test_an_outgoing_catch_up_logs_once_all_its_parts_are_sent(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="crdtsync.sync")
    progress = CatchupProgress(clock=_Clock())
    progress.sent("ap", _part(3, 0, 2, 600), 150_000)
    assert _lines(caplog) == []
    progress.sent("ap", _part(3, 1, 2, 400), 100_000)
    assert _lines(caplog) == ["catching ap up from state: 1,000 keys in 2 parts, 0.2 MB"]
