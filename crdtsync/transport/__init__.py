"""Asyncio + websockets transport for the sync protocol: links, dialling, pumping."""

from __future__ import annotations

from crdtsync.transport.backoff import backoff
from crdtsync.transport.service import ReplicaHost, SyncService

__all__ = ["SyncService", "ReplicaHost", "backoff"]
