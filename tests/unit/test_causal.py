"""CausalContext compaction and the dot-store join (Almeida et al. §5)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crdtsync.causal import CausalContext, DotMap, seen_dots, store_copy, store_join

dots = st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=1, max_value=12))
dot_lists = st.lists(dots, max_size=30)


def ctx_of(*dots: tuple[str, int]) -> CausalContext:
    ctx = CausalContext()
    ctx.add_all(dots)
    return ctx


def assert_normalised(ctx: CausalContext) -> None:
    for replica, n in ctx.vv.items():
        assert n >= 1
        assert n + 1 not in ctx.cloud.get(replica, set())
    for replica, extra in ctx.cloud.items():
        assert extra, "empty cloud entry"
        assert min(extra) > ctx.vv.get(replica, 0) + 1


def test_contiguous_dots_collapse_into_the_version_vector() -> None:
    ctx = ctx_of(("a", 1), ("a", 2), ("a", 3))
    assert ctx.vv == {"a": 3}
    assert ctx.cloud == {}


def test_gap_stays_in_the_cloud_until_filled() -> None:
    ctx = ctx_of(("a", 1), ("a", 3), ("a", 5))
    assert ctx.vv == {"a": 1}
    assert ctx.cloud == {"a": {3, 5}}
    ctx.add(("a", 2))
    assert ctx.vv == {"a": 3}
    assert ctx.cloud == {"a": {5}}
    ctx.add(("a", 4))
    assert ctx.vv == {"a": 5}
    assert ctx.cloud == {}


def test_cloud_only_replica_has_no_vv_entry() -> None:
    ctx = ctx_of(("b", 2))
    assert ctx.vv == {}
    assert ctx.cloud == {"b": {2}}
    assert ("b", 2) in ctx
    assert ("b", 1) not in ctx
    assert len(ctx) == 1


def test_merge_absorbs_cloud_below_the_other_version_vector() -> None:
    mine = ctx_of(("a", 1), ("a", 4), ("a", 7))
    theirs = ctx_of(*[("a", s) for s in range(1, 6)])
    mine.merge(theirs)
    assert mine.vv == {"a": 5}
    assert mine.cloud == {"a": {7}}
    assert theirs.vv == {"a": 5}  # argument unchanged


def test_next_dot_follows_the_highest_known_seq() -> None:
    ctx = ctx_of(("a", 1), ("a", 5))
    assert ctx.next_dot("a") == ("a", 6)
    assert ("a", 6) in ctx
    assert ctx.next_dot("b") == ("b", 1)
    assert ctx.max_seq("a") == 6
    assert ctx.max_seq("zz") == 0


@given(dot_lists, st.randoms(use_true_random=False))
def test_equal_dot_sets_give_equal_contexts(dots: list[tuple[str, int]], rnd: object) -> None:
    shuffled = list(dots)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a, b = ctx_of(*dots), ctx_of(*shuffled)
    assert a == b
    assert a.to_json() == b.to_json()
    assert set(a.dots()) == set(dots)
    assert len(a) == len(set(dots))
    assert_normalised(a)


@given(dot_lists, dot_lists)
def test_merge_is_set_union_and_stays_normalised(d1: list[tuple[str, int]],
                                                 d2: list[tuple[str, int]]) -> None:
    a, b = ctx_of(*d1), ctx_of(*d2)
    a.merge(b)
    assert a == ctx_of(*d1, *d2)
    assert set(a.dots()) == set(d1) | set(d2)
    assert_normalised(a)
    for dot in set(d1) | set(d2):
        assert dot in a


@given(dot_lists)
def test_from_json_inverts_to_json(dots: list[tuple[str, int]]) -> None:
    ctx = ctx_of(*dots)
    assert CausalContext.from_json(ctx.to_json()) == ctx


@given(dot_lists, dot_lists)
def test_seen_dots_is_the_intersection(store_dots: list[tuple[str, int]],
                                       ctx_dots: list[tuple[str, int]]) -> None:
    store = set(store_dots)
    assert seen_dots(store, ctx_of(*ctx_dots)) == store & set(ctx_dots)


def test_dotset_join_keeps_unseen_and_common_dots() -> None:
    # s1 = {a1, a2} c1 = {a1, a2, b1}; s2 = {b2}, c2 = {a1, b1, b2}
    s1, c1 = {("a", 1), ("a", 2)}, ctx_of(("a", 1), ("a", 2), ("b", 1))
    s2, c2 = {("b", 2)}, ctx_of(("a", 1), ("b", 1), ("b", 2))
    joined = store_join(s1, c1, s2, c2)
    # a1: held by s1 only, seen by c2 -> removed. a2: unseen by c2 -> kept. b2: new -> added.
    assert joined == {("a", 2), ("b", 2)}


def test_dotfun_join_keeps_payloads() -> None:
    s1, c1 = {("a", 1): "x"}, ctx_of(("a", 1))
    s2, c2 = {("b", 1): "y"}, ctx_of(("b", 1))
    assert store_join(s1, c1, s2, c2) == {("a", 1): "x", ("b", 1): "y"}


def test_dotmap_join_drops_emptied_keys_and_keeps_the_index() -> None:
    m1 = DotMap()
    m1.set_entry("k", {("a", 1)})
    m1.set_entry("j", {("a", 2)})
    c1 = ctx_of(("a", 1), ("a", 2))
    m2 = DotMap()
    m2.set_entry("j", {("a", 2), ("b", 1)})
    c2 = ctx_of(("a", 1), ("a", 2), ("b", 1))
    m2_copy = store_copy(m2)
    joined = store_join(m1, c1, m2, c2)
    assert set(joined.entries) == {"j"}
    assert joined.entries["j"] == {("a", 2), ("b", 1)}
    assert joined.owner == {("a", 2): "j", ("b", 1): "j"}
    assert m2 == m2_copy


def test_dotmap_set_entry_of_bottom_removes_the_key() -> None:
    m = DotMap()
    m.set_entry("k", {("a", 1)})
    m.set_entry("k", set())
    assert m.entries == {}
    assert m.owner == {}
