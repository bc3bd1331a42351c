"""The checker and the schedules, on synthetic histories: no process, no socket."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from crdtsync.clock import pack
from crdtsync.codec import encode
from crdtsync.types import LWWRegister

from .checker import FAIL, OK, UNKNOWN, Observation, Op, RegisterState, check, classify
from .schedule import NAMES, client_ops, make_schedule


def op(f: str, key: str, value: Any, invoke: float, complete: float | None, status: str = OK,
       *, replica: str = "us", lo: int | None = None, hi: int | None = None) -> Op:
    return Op(0, f, key, value, replica, invoke, complete, status, None, lo, hi)


def observe(values: dict[str, Any], *, replicas: tuple[str, ...] = ("us", "eu"),
            registers: dict[str, RegisterState] | None = None, **extra: Any) -> Observation:
    regs = registers or {}
    return Observation(
        values={r: dict(values) for r in replicas},
        states={r: {k: repr(v).encode() for k, v in values.items()} for r in replicas},
        registers={r: dict(regs) for r in replicas}, dots=extra.pop("dots", {}),
        stamps=extra.pop("stamps", {}), converged_after=extra.pop("converged_after", 0.1),
        **extra)


def kinds(history: list[Op], obs: Observation) -> list[str]:
    return [a.kind for a in check(history, obs).anomalies]


def test_classify_maps_error_codes() -> None:
    assert classify({"id": 1, "ok": True, "value": 3}) == (OK, None)
    assert classify({"ok": False, "error": {"code": "type_mismatch"}}) == (FAIL, "type_mismatch")
    # the write may still take effect: indeterminate
    assert classify({"ok": False, "error": {"code": "timeout"}}) == (UNKNOWN, "timeout")
    assert classify({"ok": False, "error": {"code": "internal"}}) == (UNKNOWN, "internal")


def test_clean_history_passes() -> None:
    history = [op("add", "s", 1, 0.0, 0.1), op("add", "s", 2, 0.2, None, UNKNOWN),
               op("incr", "c", 2, 0.0, 0.1), op("incr", "c", 3, 0.3, None, UNKNOWN)]
    report = check(history, observe({"s": [1], "c": 2}))
    assert report.ok, report.text()
    assert report.counts == {OK: 2, UNKNOWN: 2}


def test_acknowledged_add_missing_is_lost() -> None:
    history = [op("add", "s", 1, 0.0, 0.1), op("add", "s", 2, 0.0, 0.1)]
    report = check(history, observe({"s": [1]}))
    assert [a.kind for a in report.anomalies] == ["lost", "lost"]  # on both replicas
    assert report.lost == 1


def test_remove_that_may_have_seen_the_add_excuses_its_absence() -> None:
    add = op("add", "s", 1, 1.0, 1.1)
    for remove in (op("remove", "s", 1, 1.05, 1.2),           # overlaps the add
                   op("remove", "s", 1, 2.0, 2.1),            # after it
                   op("remove", "s", 1, 0.0, None, UNKNOWN)):  # may land any time
        assert kinds([add, remove], observe({"s": []})) == []


def test_remove_before_the_add_or_failed_does_not_excuse() -> None:
    add = op("add", "s", 1, 1.0, 1.1)
    assert "lost" in kinds([op("remove", "s", 1, 0.0, 0.9), add], observe({"s": []}))
    assert "lost" in kinds([add, op("remove", "s", 1, 2.0, 2.1, FAIL)], observe({"s": []}))
    # a later add that no remove can have seen makes the element required again
    later = [add, op("remove", "s", 1, 2.0, 2.1), op("add", "s", 1, 3.0, 3.1)]
    assert "lost" in kinds(later, observe({"s": []}))


def test_element_never_added_is_a_phantom() -> None:
    history = [op("add", "s", 1, 0.0, 0.1), op("add", "s", 2, 0.0, 0.1, FAIL)]
    assert kinds(history, observe({"s": [1, 2, 3]})) == ["phantom"] * 4


def test_counter_bounds() -> None:
    history = [op("incr", "c", 2, 0.0, 0.1), op("incr", "c", 1, 0.0, None, UNKNOWN),
               op("incr", "c", 5, 0.0, 0.1, FAIL)]
    for value in (2, 3):
        assert check(history, observe({"c": value})).ok
    low = check(history, observe({"c": 1}))
    assert [a.kind for a in low.anomalies] == ["counter", "counter"] and low.lost == 1
    assert kinds(history, observe({"c": 4})) == ["counter", "counter"]


def _register_history() -> list[Op]:
    return [op("assign", "r", "a", 0.0, 0.1, lo=pack(100), hi=pack(102)),
            op("assign", "r", "b", 0.5, None, UNKNOWN, replica="eu", lo=pack(99)),
            op("assign", "r", "c", 1.0, 1.1, FAIL, lo=pack(200), hi=pack(201))]


def test_register_winner_matches_a_write() -> None:
    winner = {"r": RegisterState(pack(101), "us.0001", "a")}
    report = check(_register_history(), observe({"r": "a"}, registers=winner))
    assert report.ok, report.text()
    assert report.notes and "'a' won" in report.notes[0]
    unknown_won = {"r": RegisterState(pack(150), "eu.0002", "b")}  # an unknown write may win
    assert check(_register_history(), observe({"r": "b"}, registers=unknown_won)).ok


def test_register_rules() -> None:
    never = {"r": RegisterState(pack(101), "us.0001", "zzz")}
    assert kinds(_register_history(), observe({"r": "zzz"}, registers=never)) == ["lww-phantom"]
    failed = {"r": RegisterState(pack(200), "us.0001", "c")}  # a refused write cannot win
    assert kinds(_register_history(), observe({"r": "c"}, registers=failed)) == ["lww-phantom"]
    outside = {"r": RegisterState(pack(103), "us.0001", "a")}  # after the "after" stamp
    assert kinds(_register_history(), observe({"r": "a"}, registers=outside)) == ["lww-stamp"]
    wrong_writer = {"r": RegisterState(pack(101), "eu.0002", "a")}
    assert kinds(_register_history(), observe({"r": "a"}, registers=wrong_writer)) == [
        "lww-stamp"]
    # an acknowledged write whose "before" stamp is above the winner's stamp should have won
    history = [*_register_history(), op("assign", "r", "d", 2.0, 2.1, lo=pack(300))]
    assert kinds(history, observe({"r": "a"}, registers={
        "r": RegisterState(pack(101), "us.0001", "a")})) == ["lww-order"]
    assert kinds(_register_history(), observe({"r": None})) == ["lww-phantom"]


def _stamped(value: str, ts: int, rid: str) -> dict[tuple[str, int, str], set[bytes]]:
    reg = LWWRegister()
    reg.assign(rid, value, ts)
    return {("r", ts, rid): {encode(reg)}}


def test_register_exact_stamps_from_stores() -> None:
    winner = {"r": RegisterState(pack(101), "us.0001", "a")}
    # a later write without an "after" stamp whose exact stamp a store still holds
    history = [*_register_history(), op("assign", "r", "d", 2.0, 2.1, replica="eu",
                                        lo=pack(100, 5))]
    older = _stamped("d", pack(100, 6), "eu.0002")
    assert check(history, observe({"r": "a"}, registers=winner, stamps=older)).ok
    newer = _stamped("d", pack(101, 1), "eu.0002")
    assert kinds(history, observe({"r": "a"}, registers=winner, stamps=newer)) == [
        "lww-order"]
    # equal timestamps: the greater replica id wins
    tie = _stamped("d", pack(101), "eu.0002")
    assert check(history, observe({"r": "a"}, registers=winner, stamps=tie)).ok
    tie = _stamped("d", pack(101), "uz.0002")
    assert kinds(history, observe({"r": "a"}, registers=winner, stamps=tie)) == ["lww-order"]
    outside = _stamped("d", pack(100, 2), "eu.0002")  # below its "before" stamp
    assert kinds(history, observe({"r": "a"}, registers=winner, stamps=outside)) == [
        "lww-stamp"]


def test_reused_event_ids_and_divergence() -> None:
    dots = {("s", ("us.1", 4)): {1, 2}, ("s", ("us.1", 5)): {3}}
    assert kinds([], observe({}, dots=dots)) == ["dot-reuse"]
    x, y = LWWRegister(), LWWRegister()
    x.assign("us.1", "x", 7)
    y.assign("us.1", "y", 7)
    stamps = {("r", 7, "us.1"): {encode(x), encode(y)}}
    assert kinds([], observe({}, stamps=stamps)) == ["stamp-reuse"]
    obs = observe({"c": 1})
    obs.states["eu"]["c"] = b"other"
    assert kinds([], obs) == ["divergence"]
    report = check([], observe({}, converged_after=None, read_divergence="..."))
    assert report.divergent and not report.ok


@pytest.mark.parametrize("seed", range(40))
def test_schedules_are_seeded_and_well_formed(seed: int) -> None:
    s = make_schedule(seed)
    assert s == make_schedule(seed)
    assert 3 <= s.replicas <= 5 and s.names == list(NAMES[: s.replicas])
    for lane in (s.network, s.process):
        for a, b in itertools.pairwise(lane):
            assert a.at + a.hold <= b.at, f"overlapping faults in one lane: {s.describe()}"
            assert not a.until_heal
        for f in lane:
            assert 0 <= f.at <= s.duration and f.at + f.hold <= s.duration + 1e-9
            assert all(0 <= x < y < s.replicas for x, y in f.pairs)
            assert f.replica < s.replicas
    assert sum(f.kind == "skew" for f in s.process) <= 1


def test_client_ops_are_seeded_and_register_values_unique() -> None:
    a = list(itertools.islice(client_ops(7, 1), 300))
    assert a == list(itertools.islice(client_ops(7, 1), 300))
    assert a != list(itertools.islice(client_ops(7, 2), 300))
    values = [v for f, _, v in a if f == "assign"]
    values += [v for f, _, v in itertools.islice(client_ops(7, 2), 300) if f == "assign"]
    assert len(values) == len(set(values)) > 0
