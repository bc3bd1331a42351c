"""crdtsync replicas on SQLite, ``synchronous=NORMAL``: ``crdtsync-durable-normal``.

As :mod:`bench.drivers.crdtsync_durable`, with ``SQLiteStore(path, synchronous="NORMAL")``:
the WAL is fsynced only at checkpoints, so an acknowledged batch survives a crash of the
process but not necessarily a power loss (see docs/storage.md).
"""

from __future__ import annotations

from bench.drivers.crdtsync_replica import model, workloads_for
from bench.drivers.crdtsync_types import version  # noqa: F401 -- part of the API
from bench.replica_common import SQLITE_NORMAL

LIBRARY = "crdtsync-durable-normal"
KIND = "crdtsync"
REQUIRES = ("crdtsync",)
MODEL = model(SQLITE_NORMAL)
PENDING: dict[str, str] = {}
WORKLOADS = workloads_for(SQLITE_NORMAL, memory=False)
