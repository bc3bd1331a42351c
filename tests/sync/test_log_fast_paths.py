"""DeltaLog.collect's shortcuts: one entry goes as its own group (groups are values), and
the per-key join checks types with a loop (mixed tags keep the greatest)."""

from __future__ import annotations

from crdtsync.sync.log import DeltaLog
from crdtsync.types import GCounter, LWWRegister, PNCounter


def _pn(rid: str, n: int) -> PNCounter:
    c = PNCounter()
    c.increment(rid, n)
    return c


def test_one_entry_is_sent_as_its_group() -> None:
    log = DeltaLog()
    log.append(1, "q", {"a": _pn("q.1", 9)})
    group = {"a": _pn("x.1", 1), "b": _pn("x.1", 2)}
    log.append(2, None, group)
    log.append(3, "q", {"b": _pn("q.1", 5)})
    end, out = log.collect(1, "q", 1 << 20)
    assert end == 3 and out == group
    assert out is log.entries[2].group  # groups are values: shared, never copied
    assert all(out[k] is group[k] for k in group)  # the log's values, unchanged
    assert log.collect(1, "q", 1 << 20, stop=1) == (1, {})


def test_mixed_tags_keep_the_greatest_and_join_its_values() -> None:
    log = DeltaLog()
    reg = LWWRegister()
    log.append(1, None, {"k": _pn("a.1", 2)})
    log.append(2, None, {"k": reg.assign("a.1", "v", 5)})
    log.append(3, None, {"k": _pn("b.2", 7)})
    g = GCounter()
    g.increment("a.1", 1)
    log.append(4, None, {"k": g})
    _, out = log.collect(1, "p", 1 << 20)
    assert type(out["k"]) is PNCounter and out["k"].value == 9
