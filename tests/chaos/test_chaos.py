"""Chaos schedules over real replica processes: crashes, pauses, partitions, delay, skew.

CI runs ``CRDTSYNC_CHAOS_SCHEDULES`` schedules (default 20, seeds from
``CRDTSYNC_CHAOS_FIRST_SEED``, default 0), each ~5 s of faults and operations. A failing
schedule prints its seed, what happened and the command that replays it::

    CRDTSYNC_CHAOS_SEED=17 .venv/bin/python -m pytest tests/chaos -k replay

``CRDTSYNC_CHAOS_REPLICAS`` fixes the number of replicas (3..5) and
``CRDTSYNC_CHAOS_DURATION`` the seconds of operations. See docs/chaos.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import traceback
from pathlib import Path

import pytest

from .harness import RunResult, replay_command, run
from .schedule import make_schedule

SCHEDULES = int(os.environ.get("CRDTSYNC_CHAOS_SCHEDULES", "20"))
FIRST_SEED = int(os.environ.get("CRDTSYNC_CHAOS_FIRST_SEED", "0"))
_replicas = os.environ.get("CRDTSYNC_CHAOS_REPLICAS")
REPLICAS = int(_replicas) if _replicas else None
DURATION = float(os.environ.get("CRDTSYNC_CHAOS_DURATION", "5"))


def _run(seed: int, root: Path) -> RunResult:
    schedule = make_schedule(seed, replicas=REPLICAS, duration=DURATION)
    cmd = replay_command(schedule, fixed_replicas=REPLICAS is not None)
    try:
        result = run(schedule, root)
    except Exception:
        pytest.fail(f"chaos schedule {seed}: harness error\n{traceback.format_exc()}"
                    f"replay: {cmd}\nserver logs and data: {root}", pytrace=False)
    rep = result.report
    print(f"seed {seed}: {len(result.history)} ops, heal->converged "
          f"{rep.converged_after}, lost {rep.lost}, divergent {rep.divergent}")
    for note in rep.notes:  # which write won each register (and under which clock offset)
        print(f"  {note}")
    if not rep.ok:
        # pytest rotates tmp_path away after a few sessions: keep the evidence elsewhere
        keep = Path(tempfile.mkdtemp(prefix=f"crdtsync-chaos-seed{seed}-"))
        shutil.copytree(root, keep, dirs_exist_ok=True)
        result.root = keep
        pytest.fail(f"chaos schedule {seed} broke the rules\n{result.text(cmd)}", pytrace=False)
    return result


@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + SCHEDULES))
def test_schedule(seed: int, tmp_path: Path) -> None:
    result = _run(seed, tmp_path)
    assert result.history, "the clients recorded no operation"
    assert result.report.counts.get("ok", 0) > 0


if os.environ.get("CRDTSYNC_CHAOS_SEED") is not None:  # a replay tool, collected only on demand

    def test_replay(tmp_path: Path) -> None:
        _run(int(os.environ["CRDTSYNC_CHAOS_SEED"]), tmp_path)
