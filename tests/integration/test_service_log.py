"""A SyncService's delta log across a restart: restored encoded, decoded only when a peer
collects it, and served the same as the groups the replica committed."""

from __future__ import annotations

from pathlib import Path

from crdtsync.codec import encode_group
from crdtsync.replica import Replica
from crdtsync.transport.service import SyncService


def _write_batches(replica: Replica, n: int) -> None:
    for i in range(n):
        replica.counter(f"c{i % 3}").increment(i + 1)
        replica.set("s").add(f"e{i}")
        replica.register(f"r{i % 2}").assign(i)
        replica.commit()


def test_restart_restores_the_log_encoded_and_serves_the_committed_groups(
        tmp_path: Path) -> None:
    path = str(tmp_path / "a")
    replica = Replica.open(path, name="a")
    logged: dict[int, bytes] = {}
    service = SyncService(replica)  # holds the log for peers from here on
    replica.on_commit.append(lambda entries: logged.update(
        {e.seq: encode_group(e.group) for e in entries if e.seq}))
    _write_batches(replica, 6)
    stats = service.engine.log_stats()
    assert stats["entries"] == 6 and stats["hot_bytes"] == stats["bytes"]  # kept decoded
    replica.close()

    replica = Replica.open(path, name="a")
    service = SyncService(replica)
    stats = service.engine.log_stats()
    assert stats["entries"] == 6 and stats["hot_bytes"] == 0 and stats["decoded"] == 0
    assert stats["bytes"] == sum(len(e.blob) for e in replica.store.log())
    log = service.engine._log
    for seq, canonical in logged.items():  # each entry decodes to the group committed
        end, group = log.collect(seq, "peer.1", 1)
        assert end == seq and encode_group(group) == canonical
    assert service.engine.log_stats()["decoded"] == 6
    _write_batches(replica, 1)  # a new commit is appended decoded, with its blob
    entry = log.entries[7]
    assert entry.hot and entry.blob == list(replica.store.log(7))[0].blob
    replica.close()
