"""The CRDT types, one per module. See each module's docstring for its conflict semantics."""

from __future__ import annotations

from crdtsync.types.base import CausalCrdt, Crdt, join
from crdtsync.types.counters import GCounter, PNCounter
from crdtsync.types.ewflag import EWFlag
from crdtsync.types.lww import LWWRegister
from crdtsync.types.mvregister import MVRegister
from crdtsync.types.ormap import ORMap
from crdtsync.types.orset import AWORSet, RWORSet

__all__ = [
    "Crdt",
    "CausalCrdt",
    "join",
    "GCounter",
    "PNCounter",
    "AWORSet",
    "RWORSet",
    "LWWRegister",
    "MVRegister",
    "EWFlag",
    "ORMap",
]
