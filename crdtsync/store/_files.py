"""Small file-system helpers shared by the stores: write beside, publish, fsync."""

from __future__ import annotations

import os
import tempfile

__all__ = ["fsync_dir", "fsync_file", "temp_beside", "publish", "remove_quietly"]


def fsync_dir(directory: str) -> None:
    """Make a directory's entries (a new or renamed file) durable; a no-op where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: str) -> None:
    """Flush a file's contents to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_beside(path: str) -> str:
    """Create an empty temporary file in ``path``'s directory and return its name."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".", suffix=".new")
    os.close(fd)
    return tmp


def remove_quietly(path: str) -> None:
    """Remove ``path`` if it exists."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def publish(tmp: str, path: str) -> bool:
    """Give the complete file ``tmp`` the name ``path`` durably; False if ``path`` exists."""
    try:
        os.link(tmp, path)  # atomic, and never replaces a file that appeared meanwhile
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links
        if os.path.lexists(path):
            return False
        os.replace(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))
    return True
