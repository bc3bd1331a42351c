"""crdtsync replicas on SQLite, ``synchronous=FULL`` (the default): ``crdtsync-durable``.

Same workloads and op paths as :mod:`bench.drivers.crdtsync_replica`, but each replica is
``Replica(SQLiteStore(path))`` in a fresh temporary directory (removed afterwards): every
batch of 1,000 ops is one ``replica.commit()``, a SQLite transaction whose WAL is fsynced
before it returns, so a batch is acknowledged only once durable. The temp directory's
filesystem is reported as ``store_fs``.
"""

from __future__ import annotations

from bench.drivers.crdtsync_replica import model, workloads_for
from bench.drivers.crdtsync_types import version  # noqa: F401 -- part of the API
from bench.replica_common import SQLITE_FULL

LIBRARY = "crdtsync-durable"
KIND = "crdtsync"
REQUIRES = ("crdtsync",)
MODEL = model(SQLITE_FULL)
PENDING: dict[str, str] = {}
WORKLOADS = workloads_for(SQLITE_FULL, memory=False)
