"""The engine's delta log: intervals (BP), joins that stay decodable, trimming, bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync.codec import decode, encode, encode_group
from crdtsync.errors import LocalError
from crdtsync.sync.log import DeltaLog
from crdtsync.types import GCounter, ORMap, PNCounter, join
from tests.strategies import SPECS, universes


def counter(rid: str, by: int) -> GCounter:
    g = GCounter()
    g.increment(rid, by)
    return g


def test_interval_joins_entries_and_skips_the_peers_own() -> None:
    log = DeltaLog()
    log.append(1, None, {"a": counter("x", 1)})
    log.append(2, "q", {"a": counter("q", 5)})
    log.append(3, "p", {"a": counter("p", 2), "b": counter("p", 1)})
    end, group = log.collect(1, "q", 1 << 20)
    assert end == 3
    assert group["a"].value == 3 and group["b"].value == 1
    assert log.entries[1].group["a"].value == 1  # the log's own values are not touched


def test_interval_is_cut_by_size_but_takes_at_least_one_entry() -> None:
    log = DeltaLog()
    for seq in range(1, 6):
        log.append(seq, None, {f"k{seq}": counter("x", seq)})
    size = log.entries[1].size
    assert log.collect(1, "q", size * 2)[0] == 2
    assert log.collect(1, "q", 1)[0] == 1


def test_join_across_a_skipped_remove_decodes_reads_and_joins_correctly() -> None:
    m = ORMap()
    add = m.update("r3", "n", PNCounter, lambda c: c.increment("r3"))
    remove = m.remove("q", "n")
    add_again = m.update("r3", "n", PNCounter, lambda c: c.increment("r3"))
    log = DeltaLog()
    log.append(1, None, {"m": add})
    log.append(2, "q", {"m": remove})
    log.append(3, None, {"m": add_again})
    # BP leaves entry 2 out: the join holds two live dots of r3 in one counter field.
    end, group = log.collect(1, "q", 1 << 20)
    assert end == 3
    joined = group["m"]
    assert decode(encode(joined)) == joined
    assert joined.value == {"n": 1}  # r3's latest dot carries its running total
    at_q = join(add, remove)  # q holds entries 1 and 2 already
    at_q.merge(joined)
    full = join(join(add, remove), add_again)
    assert at_q == full and at_q.value == {"n": 1}


def test_trim_and_bounds() -> None:
    log = DeltaLog()
    for seq in (1, 2, 4, 7):  # the host may skip seqs
        log.append(seq, None, {"k": counter("x", seq)})
    assert log.bound(max_entries=2, max_bytes=1 << 20) == 2
    assert log.bound(max_entries=10, max_bytes=log.entries[7].size) == 4
    log.trim(3)
    assert log.seqs == [4, 7] and log.trimmed_upto == 3
    assert log.collect(4, "q", 1 << 20)[0] == 7


def test_restore_counts_missing_prefix_as_trimmed() -> None:
    log = DeltaLog.restored([(5, None, {}), (6, "p", {})], 9)
    assert log.trimmed_upto == 4 and log.last_seq == 9
    with pytest.raises(LocalError):
        DeltaLog.restored([(5, None, {})], 4)
    assert DeltaLog.restored([], 9).trimmed_upto == 9


def test_restore_takes_the_hosts_sizes_or_encodes() -> None:
    g = {"a": counter("x", 3)}
    log = DeltaLog.restored([(1, None, g, 7), (2, "p", g)], 2)
    assert log.entries[1].size == 7  # the host's (its log blob's length)
    assert log.entries[2].size == len(encode_group(g))
    assert log.bytes == 7 + len(encode_group(g))
    with pytest.raises(LocalError, match="seq, origin, group"):
        DeltaLog.restored([(1, None)], 1)  # type: ignore[list-item]


def test_an_interval_across_a_type_replacement_keeps_the_greatest_tag() -> None:
    """A key replaced by a remote delta of a greater type tag between two entries: the
    interval carries the winner (as every replica would keep), never raises."""
    from crdtsync.types import LWWRegister

    for order in ((0, 1), (1, 0)):
        log = DeltaLog()
        values = [LWWRegister(), PNCounter()]
        deltas = [values[0].assign("a.1", "x", 10), values[1].increment("x.1", 3)]
        for seq, i in enumerate(order, start=1):
            log.append(seq, None if i == 0 else "x.1", {"k": deltas[i]})
        log.append(3, None, {"j": counter("a.1", 1)})
        end, group = log.collect(1, "p.1", 1 << 20)
        assert end == 3 and type(group["k"]) is PNCounter and group["k"].value == 3
        assert group["j"].value == 1


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_an_interval_is_the_join_of_its_entries(data: st.DataObject) -> None:
    """For every type, collect() equals joining the entries one by one, and leaves the
    entries' values unchanged."""
    spec = data.draw(st.sampled_from(SPECS), label="type")
    u = data.draw(universes(spec))
    values = data.draw(st.lists(st.sampled_from([d for _, d in u.deltas] + u.states),
                                min_size=1, max_size=6))
    log = DeltaLog()
    for seq, value in enumerate(values, start=1):
        log.append(seq, None, {"k": value})
    before = [encode(v) for v in values]
    _, group = log.collect(1, "p.1", 1 << 30)
    expect = values[0]
    for value in values[1:]:
        expect = join(expect, value)
    assert encode(group["k"]) == encode(expect)
    assert [encode(v) for v in values] == before
