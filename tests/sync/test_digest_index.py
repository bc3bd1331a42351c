"""DigestIndex: cached catch-up hashes give exactly what hashing every key gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync.replica import Replica
from crdtsync.sync.digest import (
    DigestIndex,
    bucket_hashes,
    key_digests,
    keys_to_send,
)
from crdtsync.transport.service import ReplicaHost


class _Plain:
    """The same replica seen without an index (every call hashes every key)."""

    def __init__(self, host: ReplicaHost) -> None:
        self._host = host

    def keys(self) -> Any:
        return self._host.keys()

    def digest(self, key: str) -> bytes:
        return self._host.digest(key)

    def state(self, key: str) -> Any:
        return self._host.state(key)


OPS = st.lists(st.tuples(st.sampled_from(["inc", "add", "assign", "commit", "check"]),
                         st.integers(0, 40), st.integers(1, 5)), max_size=80)


@settings(max_examples=60, deadline=None)
@given(OPS, st.sampled_from([1, 2, 8, 64]))
def test_index_matches_hashing_every_key(ops: list[tuple[str, int, int]], nbuckets: int) -> None:
    r = Replica.open(None, name="a")
    host = ReplicaHost(r)
    plain = _Plain(host)
    assert isinstance(host.digest_index, DigestIndex)
    for op, k, n in ops:
        if op == "inc":
            r.counter(f"c{k}").increment(n)
        elif op == "add":
            r.set(f"s{k % 5}").add(f"e{n}")
        elif op == "assign":
            r.register(f"g{k % 7}").assign(n)
        elif op == "commit":
            r.commit()
        else:
            r.commit()
            assert bucket_hashes(host, nbuckets) == bucket_hashes(plain, nbuckets)
            everything = range(nbuckets)
            assert key_digests(host, everything, nbuckets) == key_digests(
                plain, everything, nbuckets)
    r.commit()
    assert bucket_hashes(host, nbuckets) == bucket_hashes(plain, nbuckets)
    theirs = {k: h for pairs in key_digests(plain, [0], nbuckets).values() for k, h in pairs}
    theirs.pop(next(iter(theirs), ""), None)  # the peer lacks one key of bucket 0
    assert keys_to_send(host, [0], nbuckets, theirs) == keys_to_send(plain, [0], nbuckets,
                                                                       theirs)


def test_remote_changes_are_seen() -> None:
    a, b = Replica.open(None, name="a"), Replica.open(None, name="b")
    host = ReplicaHost(a)
    a.counter("x").increment()
    a.commit()
    before = bucket_hashes(host, 4)
    b.counter("x").increment(5)
    b.counter("y").increment()
    b.commit()
    a.apply_remote({k: b.state(k) for k in b.keys()}, b.replica_id)  # type: ignore[misc]
    a.commit()
    after = bucket_hashes(host, 4)
    assert after != before and after == bucket_hashes(_Plain(host), 4)


def test_rehashes_only_what_changed() -> None:
    r = Replica.open(None, name="a")
    for i in range(200):
        r.counter(f"c{i}").increment()
    r.commit()
    calls: list[str] = []
    host = ReplicaHost(r)
    real = host.digest

    def counting(key: str) -> bytes:
        calls.append(key)
        return real(key)

    host.digest = counting  # type: ignore[method-assign]
    bucket_hashes(host, 16)
    assert len(calls) == 200  # first use: every key
    calls.clear()
    r.counter("c7").increment()
    r.commit()
    bucket_hashes(host, 16)
    assert calls == ["c7"]
