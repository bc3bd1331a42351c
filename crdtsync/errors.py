"""The crdtsync error tree.

::

    CrdtSyncError                 base of every error raised on purpose by crdtsync
    ├── DecodeError (ValueError)  bytes or JSON that are not a valid encoding; nothing applied
    ├── ClockSkewError (ValueError)
    │                             a remote HLC timestamp too far ahead of local physical time
    ├── TypeMismatchError (TypeError)
    │                             a key written or received as another type than it holds
    ├── StoreError                the durable store cannot be opened or is damaged
    ├── LocalError                you misused the API (a closed replica, a follower written to)
    └── PeerError                 a peer broke the protocol; the link is dropped, not the replica

Mutators reject bad arguments with plain ``ValueError`` / ``TypeError`` (an increment of
``-1``, an element that is neither ``str`` nor ``int``).
"""

from __future__ import annotations

__all__ = [
    "CrdtSyncError",
    "DecodeError",
    "ClockSkewError",
    "TypeMismatchError",
    "StoreError",
    "LocalError",
    "PeerError",
]


class CrdtSyncError(Exception):
    """Base class of every error crdtsync raises on purpose."""


class DecodeError(CrdtSyncError, ValueError):
    """Input is not a valid encoding; nothing of it was applied."""


class ClockSkewError(CrdtSyncError, ValueError):
    """A remote timestamp is further ahead of local physical time than allowed."""


class TypeMismatchError(CrdtSyncError, TypeError):
    """A key was written or received as a different CRDT type than the one it holds."""


class StoreError(CrdtSyncError):
    """The durable store cannot be opened, or its contents are damaged."""


class LocalError(CrdtSyncError):
    """The API was misused by the caller."""


class PeerError(CrdtSyncError):
    """A peer broke the protocol."""
