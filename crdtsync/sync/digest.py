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
    "DigestIndex",
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


def _int(data: bytes) -> int:
    """A 64-bit blake2b hash of ``data`` as an int."""
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "big")


def bucket_of(key: str, nbuckets: int) -> int:
    """Return the bucket of ``key`` among ``nbuckets`` (a power of two)."""
    return _int(key.encode("utf-8", "surrogatepass")) & (nbuckets - 1)


def key_hash(key: str, digest: bytes) -> int:
    """Return a 64-bit hash of a key and its state digest."""
    raw = key.encode("utf-8", "surrogatepass")
    return _int(len(raw).to_bytes(4, "big") + raw + digest)


def _hex(h: int) -> str:
    return f"{h:016x}"


class DigestIndex:
    """Per-key hashes of a host's state kept between catch-ups, refreshed by what changed.

    Without it every catch-up hashes every key (encoding each state): seconds of CPU for a
    million keys to find the one that differs. The index keeps, per key, its fine bucket
    (one of ``MAX_BUCKETS``, from the key alone) and its :func:`key_hash`, and the XOR of
    the key hashes of every fine bucket; a coarser bucket count (a power of two dividing
    ``MAX_BUCKETS``) folds the fine buckets. The host calls :meth:`changed` with the keys
    each commit touched; the next catch-up rehashes only those. The first use hashes every
    key once. A host with an index (attribute ``digest_index``) raises KeyError from
    ``digest`` for a key that holds nothing.
    """

    __slots__ = ("_hash", "_slot", "_fine", "_dirty", "_built")

    def __init__(self) -> None:
        self._hash: dict[str, int] = {}
        self._slot: dict[str, int] = {}
        self._fine = [0] * MAX_BUCKETS
        self._dirty: set[str] = set()
        self._built = False

    def changed(self, keys: Iterable[str]) -> None:
        """Note that the states of ``keys`` changed (cost: one set insert per key)."""
        if self._built:
            self._dirty.update(keys)

    def refresh(self, host: SyncHost) -> None:
        """Bring the index up to date with ``host`` (every key on first use)."""
        if not self._built:
            self._build(host)
            return
        dirty, self._dirty = self._dirty, set()
        fine, hashes, slots = self._fine, self._hash, self._slot
        for key in dirty:
            old = hashes.pop(key, None)
            slot = slots.get(key)
            if slot is None:
                slot = slots[key] = bucket_of(key, MAX_BUCKETS)
            if old is not None:
                fine[slot] ^= old
            try:
                digest = host.digest(key)
            except KeyError:  # the key holds nothing (any more)
                del slots[key]
                continue
            h = hashes[key] = key_hash(key, digest)
            fine[slot] ^= h

    def _build(self, host: SyncHost) -> None:
        """Hash every key of ``host`` (the first use; from scratch if one was cut short)."""
        self._fine, self._hash, self._slot = [0] * MAX_BUCKETS, {}, {}
        fine, hashes, slots = self._fine, self._hash, self._slot
        mask = MAX_BUCKETS - 1
        digest_of = host.digest
        for key in host.keys():
            raw = key.encode("utf-8", "surrogatepass")
            slot = slots[key] = _int(raw) & mask  # = bucket_of(key, MAX_BUCKETS)
            h = hashes[key] = _int(len(raw).to_bytes(4, "big") + raw + digest_of(key))
            fine[slot] ^= h
        self._built = True

    def bucket_hashes(self, nbuckets: int) -> list[int]:
        """Return the XOR of the key hashes of each of ``nbuckets`` buckets."""
        mask = nbuckets - 1
        acc = [0] * nbuckets
        for slot, h in enumerate(self._fine):
            acc[slot & mask] ^= h
        return acc

    def keys_in(self, buckets: Iterable[int], nbuckets: int) -> dict[int, list[str]]:
        """Return the keys of each of ``buckets`` (of ``nbuckets``)."""
        wanted: dict[int, list[str]] = {b: [] for b in buckets}
        mask = nbuckets - 1
        for key, slot in self._slot.items():
            keys = wanted.get(slot & mask)
            if keys is not None:
                keys.append(key)
        return wanted

    def key_hash(self, key: str) -> int:
        """Return the cached :func:`key_hash` of ``key`` (after :meth:`refresh`)."""
        return self._hash[key]


def _index(host: SyncHost) -> DigestIndex | None:
    """The host's :class:`DigestIndex` (attribute ``digest_index``), refreshed; or None."""
    index = getattr(host, "digest_index", None)
    if isinstance(index, DigestIndex):
        index.refresh(host)
        return index
    return None


def bucket_hashes(host: SyncHost, nbuckets: int) -> tuple[str, ...]:
    """Return the hash of every bucket of the host's keys, as 16 hex digits each."""
    index = _index(host)
    if index is not None:
        return tuple(_hex(h) for h in index.bucket_hashes(nbuckets))
    acc = [0] * nbuckets
    for key in host.keys():
        acc[bucket_of(key, nbuckets)] ^= key_hash(key, host.digest(key))
    return tuple(_hex(h) for h in acc)


def differing_buckets(host: SyncHost, theirs: Sequence[str]) -> list[int]:
    """Return the ids of the buckets whose hash differs from ``theirs``."""
    mine = bucket_hashes(host, len(theirs))
    return [i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b]


def _by_bucket(host: SyncHost, buckets: Iterable[int], nbuckets: int) -> dict[int, list[str]]:
    index = _index(host)
    if index is not None:
        return index.keys_in(buckets, nbuckets)
    wanted: dict[int, list[str]] = {b: [] for b in buckets}
    for key in host.keys():
        keys = wanted.get(bucket_of(key, nbuckets))
        if keys is not None:
            keys.append(key)
    return wanted


def key_digests(host: SyncHost, buckets: Iterable[int],
                nbuckets: int) -> dict[int, list[tuple[str, str]]]:
    """Return, per bucket, the ``(key, hash)`` of every host key in it, sorted by key."""
    hash_of = _hasher(host)
    return {
        b: [(k, _hex(hash_of(k))) for k in sorted(keys)]
        for b, keys in _by_bucket(host, buckets, nbuckets).items()
    }


def _hasher(host: SyncHost) -> Callable[[str], int]:
    """``key -> key_hash(key, digest)``: from the host's index if it has one."""
    index = _index(host)
    if index is not None:
        return index.key_hash
    return lambda key: key_hash(key, host.digest(key))


def keys_to_send(host: SyncHost, buckets: Iterable[int], nbuckets: int,
                 theirs: dict[str, str]) -> list[str]:
    """Return the host keys in ``buckets`` that the peer lacks or holds differently."""
    hash_of = _hasher(host)
    out = []
    for keys in _by_bucket(host, buckets, nbuckets).values():
        for key in keys:
            if theirs.get(key) != _hex(hash_of(key)):
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
