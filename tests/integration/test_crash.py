"""Crash safety with real processes: SIGKILL a writer at random moments, reopen, check.

Every write the child reported as acknowledged (after ``commit()`` returned, or, through the
background committer, after awaiting the write returned) must be present
after the crash, and writes made after the restart must merge correctly at a replica that saw
the writes from before the crash (no dot or log number is reused). CRDTSYNC_CRASH_ROUNDS sets
the number of rounds (default 20).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crdtsync.codec import decode_group
from crdtsync.replica import Replica

CHILD = r"""
import sys
from crdtsync.replica import Replica
r = Replica.open(sys.argv[1], name="a", checkpoint_entries=200)
r.hold_log_for_sync()  # as a replica serving peers does: its log waits for their acks
start = int(sys.argv[2])
i = start
while i < start + 1_000_000:
    r.set("s").add(f"e{i}")
    r.counter("c").increment()
    if i % 5 == 0:
        r.commit()
        print(i, flush=True)
    i += 1
"""

# The same writes through the background committer (store commits in its worker thread):
# a write is acknowledged when awaiting it returned; several are in flight at once.
CHILD_ASYNC = r"""
import asyncio, sys
from crdtsync.replica import Replica

async def main():
    r = Replica.open(sys.argv[1], name="a", checkpoint_entries=200, commit_delay=0.001)
    r.hold_log_for_sync()
    r.start()
    start = int(sys.argv[2])

    async def one(i):
        r.counter("c").increment()
        await r.set("s").add(f"e{i}")
        return i

    i = start
    while i < start + 1_000_000:
        for n in await asyncio.gather(*(one(j) for j in range(i, i + 5))):
            print(n, flush=True)
        i += 5

asyncio.run(main())
"""


def _run_round(path: str, start: int, rng: random.Random, child: str = CHILD) -> int:
    """Run the child from ``start`` until killed; return the last acknowledged index."""
    proc = subprocess.Popen([sys.executable, "-c", child, path, str(start)],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(rng.uniform(0.3, 0.9))
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=10)
    acked = [int(line) for line in out.split()]
    return acked[-1] if acked else start - 1


@pytest.mark.parametrize("child", [CHILD, CHILD_ASYNC], ids=["commit", "background"])
def test_acknowledged_writes_survive_sigkill(tmp_path: Path, child: str) -> None:
    rounds = int(os.environ.get("CRDTSYNC_CRASH_ROUNDS", "20"))
    rng = random.Random(int(os.environ.get("CRDTSYNC_CRASH_SEED", "1")))
    path = str(tmp_path / "a")
    peer = Replica.open(None, name="b")
    shipped = 0
    acked = 0
    for rnd in range(rounds):
        start = rnd * 10_000_000
        last = _run_round(path, start, rng, child)
        acked += last - start + 1
        a = Replica.open(path, checkpoint_entries=200)
        a.hold_log_for_sync()
        present = a.get("s", frozenset())
        missing = [i for i in range(start, last + 1) if f"e{i}" not in present]
        assert not missing, f"round {rnd}: acknowledged writes lost: {missing[:10]}"
        assert a.get("c", 0) >= acked
        # ship what became durable to the peer; after the restart the state must agree
        for entry in a.store.log(shipped + 1):
            peer.apply_remote(decode_group(entry.blob), origin=entry.origin or a.replica_id)
        shipped = a.log_seq
        a.trim_log(shipped)  # the peer has them (its "ack")
        assert peer.state("s") == a.state("s"), f"round {rnd}: peer diverged"
        assert peer.get("c") == a.get("c")
        a.close()
