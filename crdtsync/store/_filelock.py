"""One writer process per store file: a lock on ``<store path>-lock``.

Two processes writing one store could both hand out the same dots and log seqs, which
silently loses writes; this lock makes the second one fail to open instead. It is a POSIX
record lock (``lockf``), so the kernel drops it when the process dies, however it dies, and a
``fork`` child does not inherit it. Stores opened on the same file *within* one process share
the lock (reference-counted): tests simulate a crash by abandoning a store and reopening.
The last store to close removes the lock file. Where ``fcntl`` is missing (Windows) nothing
is locked.
"""

from __future__ import annotations

import os
import threading

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

from crdtsync.errors import StoreError

__all__ = ["acquire", "release"]

_held: dict[str, list[int]] = {}  # lock file's real path -> [fd, number of stores]
_guard = threading.Lock()


def acquire(path: str) -> str | None:
    """Lock the store file at ``path`` for this process; return the key to :func:`release`.

    Raises StoreError naming ``path`` if another process holds it.
    """
    if fcntl is None:  # pragma: no cover - not POSIX
        return None
    name = os.path.realpath(path + "-lock")
    with _guard:
        held = _held.get(name)
        if held is not None:
            held[1] += 1
            return name
        for _ in range(5):
            fd = _open(name, path)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                raise StoreError(f"store file {path!r} is in use by another process") from exc
            if _still_named(fd, name):
                _held[name] = [fd, 1]
                return name
            os.close(fd)  # its owner unlinked it while closing: lock the new one
        raise StoreError(f"cannot lock store file {path!r}: its lock file keeps changing")


def release(key: str | None) -> None:
    """Release one hold taken by :func:`acquire`; the last one unlocks and removes the file."""
    if key is None:
        return
    with _guard:
        held = _held.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1]:
            return
        del _held[key]
        try:
            os.unlink(key)  # while still locked: a waiter then sees the name is gone
        except OSError:
            pass
        os.close(held[0])


def _forget_after_fork() -> None:
    # A fork child does not inherit record locks, only the descriptors: it holds nothing.
    for fd, _ in _held.values():
        try:
            os.close(fd)  # closing the child's copy leaves the parent's lock in place
        except OSError:
            pass
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _open(name: str, path: str) -> int:
    try:
        return os.open(name, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot create lock file {name!r} of store {path!r}: {exc}") from exc


def _still_named(fd: int, name: str) -> bool:
    try:
        st = os.stat(name)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)
