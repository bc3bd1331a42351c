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


def test_restore_keeps_each_entrys_bound() -> None:
    g = {"a": counter("x", 3)}
    log = DeltaLog.restored([(1, None, g, None, None), (2, "p", encode_group(g), None, 9),
                             (3, "p", g, 5, 11), (4, "q", g)], 4)
    assert [log.entries[s].upto for s in (1, 2, 3, 4)] == [None, 9, 11, None]
    assert log.entries[2].size == len(encode_group(g)) and log.entries[3].size == 5
    for bad in ((5, None, g, None, 3), (5, "p", g, None, 0), (5, "p", g, None, "9"),
                (5, "p", g, None, True)):
        with pytest.raises(LocalError, match="upto must be"):
            DeltaLog.restored([bad], 5)


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


# -- the decoded part of the log -----------------------------------------------------------


def test_older_entries_keep_only_their_blob_and_decode_when_collected() -> None:
    groups = [{f"k{seq}": counter("x", seq)} for seq in range(1, 6)]
    size = len(encode_group(groups[0]))
    log = DeltaLog(hot_bytes=2 * size)
    for seq, g in enumerate(groups, start=1):
        log.append(seq, None, g)
    assert [log.entries[s].hot for s in range(1, 6)] == [False, False, False, True, True]
    assert log.hot_size == 2 * size and log.decoded == 0
    assert log.entries[1].blob == encode_group(groups[0])  # encoded once, kept
    end, group = log.collect(1, "q", 1 << 20)
    assert end == 5 and {k: v.value for k, v in group.items()} == {
        f"k{seq}": seq for seq in range(1, 6)}
    assert log.decoded == 3  # the three cold entries, the hot ones as they are
    assert not log.entries[1].hot  # decoding does not make an entry hot again


def test_the_hosts_blob_is_kept_and_the_newest_entry_stays_hot() -> None:
    g = {"a": counter("x", 3)}
    blob = encode_group(g) + b" "  # any encoding decode_group reads: the host's own
    log = DeltaLog(hot_bytes=0)
    log.append(1, None, g, blob=blob)
    assert log.entries[1].hot and log.entries[1].size == len(blob)  # the newest: hot
    log.append(2, None, {"b": counter("x", 1)})
    assert not log.entries[1].hot and log.entries[1].blob == blob
    assert log.entries[1].group["a"].value == 3
    with pytest.raises(LocalError, match="blob must be bytes"):
        log.append(3, None, g, blob="text")  # type: ignore[arg-type]


def test_trim_takes_hot_entries_off_the_hot_part() -> None:
    log = DeltaLog(hot_bytes=1 << 20)
    for seq in range(1, 5):
        log.append(seq, None, {"k": counter("x", seq)})
    log.trim(2)
    assert log.hot_size == log.bytes == log.entries[3].size + log.entries[4].size
    assert all(log.entries[s].hot for s in (3, 4))
    log.hot_bytes = 0
    log.append(5, None, {"k": counter("x", 5)})
    assert [log.entries[s].hot for s in (3, 4, 5)] == [False, False, True]
    assert log.hot_size == log.entries[5].size


def test_restore_from_blobs_decodes_nothing_until_collected() -> None:
    groups = [{"a": counter("x", 1)}, {"b": counter("p", 2)}]
    blobs = [encode_group(g) for g in groups]
    log = DeltaLog.restored([(1, None, blobs[0]), (2, "p", blobs[1], 99)], 2)
    assert log.decoded == 0 and log.hot_size == 0
    assert log.entries[1].size == len(blobs[0]) and log.entries[2].size == 99
    assert log.bytes == len(blobs[0]) + 99
    end, group = log.collect(1, "q", 1 << 20)
    assert end == 2 and group["a"].value == 1 and group["b"].value == 2
    assert log.decoded == 2


def test_an_entry_that_does_not_decode_is_reported_with_its_seq() -> None:
    from crdtsync.sync.log import CorruptEntry

    good = encode_group({"a": counter("x", 1)})
    log = DeltaLog.restored([(1, None, good), (2, None, b'{"d": [oops'), (3, None, good)], 3)
    with pytest.raises(CorruptEntry, match="entry 2 does not decode") as info:
        log.collect(1, "q", 1 << 20)
    assert info.value.seq == 2
    assert log.collect(3, "q", 1 << 20)[1]["a"].value == 1  # the others still serve


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_intervals_do_not_depend_on_what_is_kept_decoded(data: st.DataObject) -> None:
    """collect() gives the same interval whether its entries are hot, cooled or restored
    from blobs, for every type."""
    spec = data.draw(st.sampled_from(SPECS), label="type")
    u = data.draw(universes(spec))
    values = data.draw(st.lists(st.sampled_from([d for _, d in u.deltas] + u.states),
                                min_size=1, max_size=6))
    hot_bytes = data.draw(st.sampled_from([0, 40, 1 << 20]), label="hot_bytes")
    as_blob = data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    start = data.draw(st.integers(1, len(values)), label="start")
    reference = DeltaLog()
    records = []
    for seq, (value, blob) in enumerate(zip(values, as_blob, strict=True), start=1):
        reference.append(seq, None, {"k": value})
        records.append((seq, None, encode_group({"k": value}) if blob else {"k": value}))
    log = DeltaLog.restored(records, len(values), hot_bytes=hot_bytes)
    log.append(len(values) + 1, None, {"z": counter("x", 1)})
    reference.append(len(values) + 1, None, {"z": counter("x", 1)})
    end, group = log.collect(start, "p.1", 1 << 30)
    expect_end, expect = reference.collect(start, "p.1", 1 << 30)
    assert end == expect_end == len(values) + 1
    assert encode_group(group) == encode_group(expect)


def test_kept_blobs_cost_their_length() -> None:
    """Bytes made by orjson hold on to their output buffer (a 12.7 KB log blob kept 0.26 MB
    here): the log keeps exact-size copies, so a cold log costs about its encoded size."""
    import gc
    import tracemalloc

    from crdtsync.codec import dumps_unsorted, group_json

    group = {f"key-{i:05d}": counter("x", i + 1) for i in range(800)}
    gc.collect()
    tracemalloc.start()
    try:
        log = DeltaLog(hot_bytes=0)
        for seq in range(1, 41):  # the replica's log blobs, as a host hands them over
            log.append_blob(seq, None, dumps_unsorted(group_json(group, log=True)))
        for seq in range(41, 81):
            log.append(seq, None, group)  # encoded by the log itself, then cooled
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept < 2 * log.bytes + (256 << 10), (kept, log.bytes)
