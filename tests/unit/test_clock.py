"""Hybrid logical clock: monotonic, close to physical time, refuses far-future peers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdtsync.clock import (
    DEFAULT_MAX_DRIFT_MS,
    LOGICAL_BITS,
    HLCTimestamp,
    HybridLogicalClock,
    pack,
    unpack,
)
from crdtsync.errors import ClockSkewError

T0 = 1_700_000_000_000


def test_pack_unpack_round_trip_and_order() -> None:
    assert unpack(pack(T0, 7)) == HLCTimestamp(T0, 7)
    assert pack(T0, 0) == T0 << LOGICAL_BITS
    assert pack(T0, 65535) < pack(T0 + 1, 0)
    with pytest.raises(ValueError):
        pack(-1)
    with pytest.raises(ValueError):
        pack(T0, 1 << LOGICAL_BITS)


def test_now_follows_physical_time() -> None:
    clock = HybridLogicalClock()
    assert unpack(clock.now(T0)) == (T0, 0)
    assert unpack(clock.now(T0 + 5)) == (T0 + 5, 0)


def test_now_counts_events_within_one_millisecond() -> None:
    clock = HybridLogicalClock()
    stamps = [clock.now(T0) for _ in range(3)]
    assert [unpack(s) for s in stamps] == [(T0, 0), (T0, 1), (T0, 2)]


def test_never_goes_backwards_when_physical_time_steps_back() -> None:
    clock = HybridLogicalClock()
    first = clock.now(T0)
    second = clock.now(T0 - 10_000)
    third = clock.now(0)
    assert first < second < third
    assert unpack(third).physical_ms == T0  # stays at the high-water mark
    assert clock.now(T0 + 1) == pack(T0 + 1)


@given(st.lists(st.integers(min_value=0, max_value=2**40), min_size=1, max_size=40))
def test_timestamps_strictly_increase(times: list[int]) -> None:
    clock = HybridLogicalClock()
    stamps = [clock.now(t) for t in times]
    assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))
    for t, s in zip(times, stamps, strict=True):
        assert unpack(s).physical_ms >= t


def test_update_returns_a_stamp_above_the_remote_and_the_past() -> None:
    clock = HybridLogicalClock()
    local = clock.now(T0)
    remote = pack(T0 + 1_000, 3)
    got = clock.update(remote, T0)
    assert got > remote > local
    assert clock.last == got
    assert clock.now(T0) > got


def test_update_with_an_older_remote_still_advances() -> None:
    clock = HybridLogicalClock()
    local = clock.now(T0)
    assert clock.update(pack(T0 - 5_000), T0) > local


def test_update_too_far_ahead_raises_and_leaves_the_clock_unchanged() -> None:
    clock = HybridLogicalClock()
    clock.now(T0)
    last = clock.last
    remote = pack(T0 + DEFAULT_MAX_DRIFT_MS + 1)
    with pytest.raises(ClockSkewError):
        clock.update(remote, T0)
    assert clock.last == last
    assert isinstance(ClockSkewError("x"), ValueError)
    # exactly at the limit is accepted
    at_limit = pack(T0 + DEFAULT_MAX_DRIFT_MS)
    assert clock.update(at_limit, T0) > at_limit


def test_max_drift_is_configurable() -> None:
    strict = HybridLogicalClock(max_drift_ms=10)
    with pytest.raises(ClockSkewError):
        strict.update(pack(T0 + 11), T0)
    assert strict.last == 0
    strict.update(pack(T0 + 10), T0)
    lax = HybridLogicalClock(max_drift_ms=3_600_000)
    lax.update(pack(T0 + 3_000_000), T0)


@pytest.mark.parametrize("remote", [-1, True, 1.5, "1", None])
def test_update_rejects_non_timestamps(remote: object) -> None:
    clock = HybridLogicalClock()
    with pytest.raises(ClockSkewError):
        clock.update(remote, T0)  # type: ignore[arg-type]
    assert clock.last == 0


def test_restore_from_persisted_high_water_mark() -> None:
    clock = HybridLogicalClock()
    for _ in range(5):
        clock.now(T0)
    restored = HybridLogicalClock(last=clock.last)
    assert restored.now(T0 - 1) > clock.last


@pytest.mark.parametrize("kwargs", [{"last": -1}, {"max_drift_ms": -5},
                                    {"last": 1.5}, {"max_drift_ms": "10"}])
def test_constructor_validates(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        HybridLogicalClock(**kwargs)  # type: ignore[arg-type]


def _reference_now(last: int, physical_ms: int) -> int:
    """now() as the HLC paper states it, with no shortcut: max(pt << 16, last + 1)."""
    candidate = max(physical_ms, 0) << LOGICAL_BITS
    return candidate if candidate > last else last + 1


@given(st.lists(st.tuples(st.sampled_from(["now", "update"]),
                          st.integers(min_value=0, max_value=50),
                          st.integers(min_value=0, max_value=60)), max_size=60))
def test_now_matches_the_reference_with_repeated_milliseconds(
        steps: list[tuple[str, int, int]]) -> None:
    """now() skips the shift when the millisecond repeats; the stamps must not change.

    Physical times repeat and step back, and received stamps move ``last`` in between.
    """
    hlc = HybridLogicalClock(max_drift_ms=10**6)
    last = 0
    base = 1_000
    for op, ms, remote_ms in steps:
        pt = base + ms
        if op == "update":
            remote = (base + remote_ms) << LOGICAL_BITS | 7
            got = hlc.update(remote, pt)
            last = _reference_now(max(last, remote), pt)
        else:
            got = hlc.now(pt)
            last = _reference_now(last, pt)
        assert got == last == hlc.last
