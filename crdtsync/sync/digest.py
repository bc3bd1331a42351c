"""Per-key digests in buckets: find the keys two replicas hold differently, cheaply.

A key falls in bucket ``H(key) mod n`` (``n`` a power of two, about the square root of the
sender's key count). A bucket's hash is the XOR of ``H(key, digest)`` over its keys, so it
is independent of order. Catch-up compares the n bucket hashes first, then the per-key
hashes of the differing buckets only: with one changed key among N, about sqrt(N) hashes
and one state cross the wire, not N digests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from hashlib import blake2b
from typing import TypeVar

from crdtsync.codec import encode
from crdtsync.sync.host import SyncHost
from crdtsync.sync.wire import MAX_BUCKETS
from crdtsync.types.base import Crdt

__all__ = [
    "default_digest",
    "bucket_count",
    "bucket_of",
    "key_hash",
    "bucket_hashes",
    "differing_buckets",
    "key_digests",
    "keys_to_send",
    "split",
]

T = TypeVar("T")


def default_digest(value: Crdt) -> bytes:
    """Return a 16-byte blake2b digest of the canonical encoding of ``value``."""
    return blake2b(encode(value), digest_size=16).digest()


def bucket_count(nkeys: int) -> int:
    """Return the bucket count for ``nkeys`` keys: a power of two near sqrt(nkeys)."""
    n = 1
    target = min(math.isqrt(max(nkeys, 1)), MAX_BUCKETS)
    while n < target:
        n <<= 1
    return n


def bucket_of(key: str, nbuckets: int) -> int:
    """Return the bucket of ``key`` among ``nbuckets`` (a power of two)."""
    h = blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(h, "big") & (nbuckets - 1)


def key_hash(key: str, digest: bytes) -> int:
    """Return a 64-bit hash of a key and its state digest."""
    raw = key.encode("utf-8", "surrogatepass")
    h = blake2b(len(raw).to_bytes(4, "big") + raw + digest, digest_size=8).digest()
    return int.from_bytes(h, "big")


def _hex(h: int) -> str:
    return f"{h:016x}"


def bucket_hashes(host: SyncHost, nbuckets: int) -> tuple[str, ...]:
    """Return the hash of every bucket of the host's keys, as 16 hex digits each."""
    acc = [0] * nbuckets
    for key in host.keys():
        acc[bucket_of(key, nbuckets)] ^= key_hash(key, host.digest(key))
    return tuple(_hex(h) for h in acc)


def differing_buckets(host: SyncHost, theirs: Sequence[str]) -> list[int]:
    """Return the ids of the buckets whose hash differs from ``theirs``."""
    mine = bucket_hashes(host, len(theirs))
    return [i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b]


def _by_bucket(host: SyncHost, buckets: Iterable[int], nbuckets: int) -> dict[int, list[str]]:
    wanted: dict[int, list[str]] = {b: [] for b in buckets}
    for key in host.keys():
        keys = wanted.get(bucket_of(key, nbuckets))
        if keys is not None:
            keys.append(key)
    return wanted


def key_digests(host: SyncHost, buckets: Iterable[int],
                nbuckets: int) -> dict[int, list[tuple[str, str]]]:
    """Return, per bucket, the ``(key, hash)`` of every host key in it, sorted by key."""
    return {
        b: [(k, _hex(key_hash(k, host.digest(k)))) for k in sorted(keys)]
        for b, keys in _by_bucket(host, buckets, nbuckets).items()
    }


def keys_to_send(host: SyncHost, buckets: Iterable[int], nbuckets: int,
                 theirs: dict[str, str]) -> list[str]:
    """Return the host keys in ``buckets`` that the peer lacks or holds differently."""
    out = []
    for keys in _by_bucket(host, buckets, nbuckets).values():
        for key in keys:
            if theirs.get(key) != _hex(key_hash(key, host.digest(key))):
                out.append(key)
    return sorted(out)


def split(items: Sequence[T], size_of: Callable[[T], int], max_bytes: int) -> list[list[T]]:
    """Cut ``items`` into consecutive runs of at most ``max_bytes`` (at least one run)."""
    runs: list[list[T]] = [[]]
    size = 0
    for item in items:
        n = size_of(item)
        if runs[-1] and size + n > max_bytes:
            runs.append([])
            size = 0
        runs[-1].append(item)
        size += n
    return runs
