"""SIGKILL a process that commits in a loop; every acknowledged commit must survive.

The child (crash_child.py) prints ``i`` after ``commit(commit_for(i))`` returns. The parent
kills it at a random moment, reopens the store (which must pass its checks), and compares it
with a MemoryStore that applied the same commits: exactly commits 1..c, where c is the last
acknowledged commit or the one after it (in flight when the kill came). Rounds go on with the
same file. CRDTSYNC_CRASH_ROUNDS raises the number of rounds (default 20, each well under 2 s).
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crdtsync.store import MemoryStore, SQLiteStore

from .helpers import model_after, snapshot

CHILD = str(Path(__file__).with_name("crash_child.py"))
READY_TIMEOUT = 20.0  # only reached if something is badly wrong; a round is ~0.2 s

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def _read_line(fd: int, buf: bytearray, deadline: float) -> None:
    """Read from ``fd`` into ``buf`` until it holds a full line, EOF or the deadline."""
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "child did not report ready in time"
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            buf += chunk


def _run_round(path: str, rng: random.Random) -> tuple[int, list[int]]:
    """Start the child, kill it at a random moment; return (commits it found, acks)."""
    proc = subprocess.Popen(
        [sys.executable, CHILD, path, "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        buf = bytearray()
        _read_line(proc.stdout.fileno(), buf, time.monotonic() + READY_TIMEOUT)
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        buf += proc.stdout.read()
        err = proc.stderr.read().decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"child ended by itself: {err}"
    lines = bytes(buf).split(b"\n")[:-1]  # a cut-off last line was not fully acknowledged
    assert lines and lines[0].startswith(b"ready "), f"child never got ready: {err}"
    return int(lines[0].split()[1]), [int(line) for line in lines[1:]]


def test_acknowledged_commits_survive_sigkill(tmp_path: Path) -> None:
    rounds = max(20, int(os.environ.get("CRDTSYNC_CRASH_ROUNDS", "20")))
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    path = str(tmp_path / "store.db")
    model = MemoryStore()
    durable = 0  # commits known to be in the store
    total_acks = 0
    for rnd in range(rounds):
        found, acks = _run_round(path, rng)
        where = f"round {rnd} (seed {seed})"
        assert found == durable, f"{where}: child found {found} commits, expected {durable}"
        assert acks == list(range(durable + 1, durable + 1 + len(acks))), where
        acked = acks[-1] if acks else durable
        with SQLiteStore(path, create=False) as store:  # runs quick_check
            count = int(store.meta().get("count", 0))
            assert acked <= count <= acked + 1, f"{where}: acked {acked}, store has {count}"
            model_after(count, into=model, start=durable + 1)
            assert snapshot(store) == snapshot(model), f"{where}: store differs from model"
        durable = count
        total_acks += len(acks)
    assert total_acks > 0, "no round committed anything: the test proved nothing"
