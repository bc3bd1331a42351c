"""MVRegister: keeps concurrent values; a causally later assign collapses them."""

from __future__ import annotations

import pytest

from crdtsync.codec import decode, encode
from crdtsync.errors import TypeMismatchError
from crdtsync.types import LWWRegister, MVRegister, join


def test_concurrent_assigns_are_all_kept_in_a_deterministic_order() -> None:
    a, b = MVRegister(), MVRegister()
    a.assign("a", "apple")
    b.assign("b", "banana")
    ab, ba = join(a, b), join(b, a)
    assert set(ab.value) == {"apple", "banana"}
    assert ab.value == ba.value  # same tuple, same order
    assert ab == ba


def test_causally_later_assign_collapses_the_values() -> None:
    a, b = MVRegister(), MVRegister()
    a.assign("a", "apple")
    b.assign("b", "banana")
    a.merge(b)
    assert len(a.value) == 2
    d = a.assign("a", "cherry")
    b.merge(d)
    assert a.value == b.value == ("cherry",)
    assert a == b


def test_assign_only_replaces_what_it_saw() -> None:
    a, b, c = MVRegister(), MVRegister(), MVRegister()
    b.merge(a.assign("a", 1))
    b.assign("b", 2)       # b saw 1
    c.assign("c", 3)       # c saw nothing
    total = join(join(a, b), c)
    assert sorted(total.value) == [2, 3]


def test_equal_concurrent_values_show_once() -> None:
    a, b = MVRegister(), MVRegister()
    a.assign("a", {"x": 1})
    b.assign("b", {"x": 1})
    assert join(a, b).value == ({"x": 1},)


def test_1_and_true_and_1_0_are_different_values() -> None:
    regs = [MVRegister() for _ in range(3)]
    for reg, replica, value in zip(regs, "abc", [1, True, 1.0], strict=True):
        reg.assign(replica, value)
    total = join(join(regs[0], regs[1]), regs[2])
    assert len(total.value) == 3
    y = decode(encode(total))
    assert y == total
    assert sorted(repr(v) for v in y.value) == ["1", "1.0", "True"]


def test_clear_removes_what_it_saw_but_not_concurrent_assigns() -> None:
    a, b = MVRegister(), MVRegister()
    b.merge(a.assign("a", "x"))
    b.clear("b")
    assert b.value == ()
    a.assign("a", "y")  # concurrent with the clear
    assert join(a, b).value == ("y",)
    assert join(b, a).value == ("y",)


def test_bottom() -> None:
    r = MVRegister()
    assert r.is_bottom() and r.value == ()
    assert decode(encode(r)) == r


@pytest.mark.parametrize("replica", [1, None, "", "r" * 129])
def test_assign_rejects_bad_replicas(replica: object) -> None:
    r = MVRegister()
    with pytest.raises((TypeError, ValueError)):
        r.assign(replica, 1)  # type: ignore[arg-type]
    assert r.is_bottom()


@pytest.mark.parametrize("value", [float("nan"), {1: 2}, object(), b"x"])
def test_assign_rejects_non_json_values(value: object) -> None:
    r = MVRegister()
    with pytest.raises((TypeError, ValueError)):
        r.assign("a", value)
    assert r.is_bottom()


def test_merge_of_another_type_raises() -> None:
    with pytest.raises(TypeMismatchError):
        MVRegister().merge(LWWRegister())
