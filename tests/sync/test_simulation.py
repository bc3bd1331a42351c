"""Deterministic simulation: seeded schedules of writes, loss, duplication, reordering,
delay, partitions and crashes on mesh, ring and star topologies must converge.

After heal and quiescence every replica equals every other and the join of every committed
local write (delta sync == full-state merge on the same history), and every log is empty.

- ``CRDTSYNC_SIM_SCHEDULES=N``: run N schedules (default 1,000);
- ``CRDTSYNC_SIM_SEED=S``: run only seed S (replay a failure).
"""

from __future__ import annotations

import os

import pytest

from tests.sync.sim import run_schedule

SCHEDULES = int(os.environ.get("CRDTSYNC_SIM_SCHEDULES", "1000"))
CHUNK = 50
ONLY = os.environ.get("CRDTSYNC_SIM_SEED")
SEEDS = [int(ONLY)] if ONLY else list(range(SCHEDULES))
CHUNKS = [SEEDS[i:i + CHUNK] for i in range(0, len(SEEDS), CHUNK)]


def _replay(seed: int) -> str:
    return f"CRDTSYNC_SIM_SEED={seed} .venv/bin/python -m pytest tests/sync/test_simulation.py"


@pytest.mark.parametrize("seeds", CHUNKS, ids=lambda s: f"seeds{s[0]}-{s[-1]}")
def test_schedules_converge(seeds: list[int]) -> None:
    for seed in seeds:
        try:
            run_schedule(seed)
        except Exception as exc:
            pytest.fail(f"simulation seed {seed} failed: {type(exc).__name__}: {exc}\n"
                        f"replay: {_replay(seed)}", pytrace=True)
