"""EWFlag: enable wins over a concurrent disable."""

from __future__ import annotations

import pytest

from crdtsync.codec import decode, encode
from crdtsync.errors import TypeMismatchError
from crdtsync.types import AWORSet, EWFlag, join


def test_enable_wins_over_concurrent_disable() -> None:
    a, b = EWFlag(), EWFlag()
    b.merge(a.enable("a"))
    a.enable("a")
    b.disable("b")
    assert join(a, b).value is True
    assert join(b, a) == join(a, b)


def test_causally_later_disable_turns_it_off() -> None:
    a, b = EWFlag(), EWFlag()
    b.merge(a.enable("a"))
    a.merge(b.disable("b"))
    assert a.value is False and b.value is False
    assert a == b


def test_reenable_after_disable() -> None:
    a, b = EWFlag(), EWFlag()
    b.merge(a.enable("a"))
    a.merge(b.disable("b"))
    b.merge(a.enable("a"))
    assert a.value is b.value is True


def test_concurrent_enables_need_a_disable_that_saw_both() -> None:
    a, b, c = EWFlag(), EWFlag(), EWFlag()
    da, db = a.enable("a"), b.enable("b")
    c.merge(da)
    c.disable("c")  # saw only a's enable
    assert join(join(a, b), c).value is True
    c.merge(db)
    c.disable("c")
    assert join(join(a, b), c).value is False


def test_bottom_and_round_trip() -> None:
    f = EWFlag()
    assert f.value is False and f.is_bottom()
    f.enable("a")
    assert decode(encode(f)) == f
    f.disable("a")
    assert decode(encode(f)) == f
    assert not f.is_bottom()


@pytest.mark.parametrize("replica", [1, None, ""])
def test_bad_replicas(replica: object) -> None:
    f = EWFlag()
    with pytest.raises((TypeError, ValueError)):
        f.enable(replica)  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError)):
        f.disable(replica)  # type: ignore[arg-type]
    assert f.is_bottom()


def test_merge_of_another_type_raises() -> None:
    with pytest.raises(TypeMismatchError):
        EWFlag().merge(AWORSet())
