"""crdtsync: a multi-master sync engine built on delta-state CRDTs.

Every value is a join-semilattice with delta-mutators: a mutator changes the value in place
and returns the delta, itself a value of the same type, which joins like a state.
"""

from __future__ import annotations

from crdtsync.clock import HybridLogicalClock
from crdtsync.errors import ClockSkewError, CrdtSyncError, DecodeError, TypeMismatchError
from crdtsync.types import (
    AWORSet,
    EWFlag,
    GCounter,
    LWWRegister,
    MVRegister,
    ORMap,
    PNCounter,
    RWORSet,
    join,
)

__all__ = [
    "GCounter",
    "PNCounter",
    "AWORSet",
    "RWORSet",
    "LWWRegister",
    "MVRegister",
    "EWFlag",
    "ORMap",
    "join",
    "HybridLogicalClock",
    "CrdtSyncError",
    "DecodeError",
    "ClockSkewError",
    "TypeMismatchError",
]

__version__ = "0.1.0"
