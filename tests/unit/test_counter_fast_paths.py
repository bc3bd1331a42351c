"""The counters' inlined join paths agree with the plain version-vector code they replaced.

``PNCounter.join_all`` / ``join_novel`` / ``merge`` and ``GCounter``'s, and the helpers
``_vv_join_all`` / ``_vv_join_novel``, inline their loops for speed (a sync interval or a
received group calls them once per key). Each is checked against a reference model on random
inputs: same result, same state afterwards, inputs left unchanged.
"""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync.transport.validate import DeltaRules
from crdtsync.types import GCounter, PNCounter
from crdtsync.types.counters import _vv_join_all, _vv_join_novel

VV = st.dictionaries(st.sampled_from(["a.1", "b.2", "c.3", "d.4"]), st.integers(1, 2**63 - 1),
                     max_size=4)


def ref_join(vvs: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for vv in vvs:
        for r, n in vv.items():
            out[r] = max(out.get(r, 0), n)
    return out


def ref_novel(mine: dict[str, int], theirs: dict[str, int]) -> dict[str, int]:
    return {r: n for r, n in theirs.items() if n > mine.get(r, 0)}


def pn(p: dict[str, int], n: dict[str, int]) -> PNCounter:
    return PNCounter.from_json([p, n])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(VV, VV), min_size=1, max_size=8))
def test_pncounter_join_all_equals_reference(halves: list[tuple[dict[str, int], ...]]) -> None:
    values = [pn(p, n) for p, n in halves]
    before = copy.deepcopy(values)
    out = PNCounter.join_all(values)
    assert out._p == ref_join([p for p, _ in halves])
    assert out._n == ref_join([n for _, n in halves])
    assert values == before and all(out._p is not v._p and out._n is not v._n for v in values)
    g = GCounter.join_all([GCounter.from_json(p) for p, _ in halves])
    assert g._p == ref_join([p for p, _ in halves])
    assert _vv_join_all([p for p, _ in halves]) == ref_join([p for p, _ in halves])


@settings(max_examples=300, deadline=None)
@given(VV, VV, VV, VV)
def test_join_novel_and_merge_equal_reference(p1: dict[str, int], n1: dict[str, int],
                                              p2: dict[str, int], n2: dict[str, int]) -> None:
    mine, delta = pn(p1, n1), pn(p2, n2)
    fresh = mine.join_novel(delta)
    want_p, want_n = ref_novel(p1, p2), ref_novel(n1, n2)
    if want_p or want_n:
        assert fresh is not None and (fresh._p, fresh._n) == (want_p, want_n)
    else:
        assert fresh is None
    assert (mine._p, mine._n) == (ref_join([p1, p2]), ref_join([n1, n2]))
    assert (delta._p, delta._n) == (p2, n2)
    merged = pn(p1, n1)
    merged.merge(delta)
    assert merged == mine
    g = GCounter.from_json(p1)
    gfresh = g.join_novel(GCounter.from_json(p2))
    assert (gfresh._p if gfresh is not None else {}) == want_p and g._p == ref_join([p1, p2])
    vv = dict(p1)
    assert _vv_join_novel(vv, p2) == want_p and vv == ref_join([p1, p2])
    assert mine.join_novel(mine) is None  # joining itself adds nothing, changes nothing


def test_delta_rule_skips_counters_only_without_members() -> None:
    group = {"a": pn({"a.1": 1}, {}), "b": GCounter.from_json({"zz.9": 2})}
    assert DeltaRules.of().check(group) is None
    reason = DeltaRules.of(members=["a"]).check(group)
    assert reason is not None and "zz.9" in reason
