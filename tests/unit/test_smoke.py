from crdtsync import AWORSet, join
from crdtsync.codec import decode, encode


def test_add_wins_roundtrip() -> None:
    a, b = AWORSet(), AWORSet()
    b.merge(decode(encode(a.add("A", "x"))))
    b.remove("B", "x")
    a.add("A", "x")
    assert join(a, b).value == frozenset({"x"})
    assert join(a, b) == join(b, a)
