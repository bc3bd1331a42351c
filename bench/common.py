"""Shared helpers: where the workload definitions live, memory probes, fixed replica ids.

The workloads (op streams, seeds, expected final states) are not defined here: they come
from ``shared/peers-bench/workloads.py``, the library-independent module the peer
benchmarks used, so every library replays exactly the same ops. The repository is
expected to sit beside ``shared/`` (as in CI: ``<root>/main`` and ``<root>/shared``);
``CRDTSYNC_PEERS_BENCH`` overrides the folder.
"""

from __future__ import annotations

import gc
import os
import random
import resource
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
PEERS_BENCH_ENV = "CRDTSYNC_PEERS_BENCH"
DEFAULT_PEERS_BENCH = REPO.parent / "shared" / "peers-bench"


class WorkloadsMissing(RuntimeError):
    """``workloads.py`` from shared/peers-bench could not be found."""


def peers_bench_dir() -> Path:
    """Folder holding ``workloads.py`` (env override, else ``<repo>/../shared/peers-bench``)."""
    env = os.environ.get(PEERS_BENCH_ENV)
    return Path(env).resolve() if env else DEFAULT_PEERS_BENCH


_W: ModuleType | None = None


def workloads() -> ModuleType:
    """Import and return ``workloads`` (stdlib only) from shared/peers-bench."""
    global _W
    if _W is not None:
        return _W
    folder = peers_bench_dir().resolve()  # shared/ may be a symlink
    if not (folder / "workloads.py").is_file():
        raise WorkloadsMissing(
            f"bench: cannot find the workload definitions {folder / 'workloads.py'}.\n"
            "The benchmark replays the op streams of shared/peers-bench/workloads.py and "
            "expects the shared/ folder beside the repository (…/main and …/shared, as CI "
            f"clones them). Put it there, or set {PEERS_BENCH_ENV}=/path/to/peers-bench."
        )
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    import workloads as w  # noqa: PLC0415 -- located at run time on purpose

    if Path(w.__file__).resolve().parent != folder:
        raise WorkloadsMissing(
            f"bench: 'import workloads' found {w.__file__}, not the one in {folder}"
        )
    _W = w
    return w


# ---------------------------------------------------------------- memory

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_now_mb() -> float:
    """Current resident set size of this process, MiB (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


def peak_rss_mb() -> float:
    """Peak RSS of this process so far, MiB (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Lower the peak-RSS high-water mark to the current RSS; False if not supported.

    Linux resets it when "5" is written to /proc/self/clear_refs, and ``ru_maxrss`` of the
    process follows. Without it, the peak would include building the op stream (a list of
    a million ints before it is packed into an array: ~36 MB), which dwarfs the state of a
    small library.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


PEAK_RESET = {"ok": False}


def settle() -> float:
    """Collect garbage, reset the peak-RSS mark, and return the RSS (MiB) before timing."""
    gc.collect()
    PEAK_RESET["ok"] = reset_peak_rss()
    return rss_now_mb()


def traced_bytes(build: Callable[[], Any]) -> int:
    """Bytes allocated by ``build()`` that are still held once it returns.

    Runs ``build`` under tracemalloc; what it returns is kept alive until the measurement
    is taken, and garbage made on the way (deltas, slices) is collected first, so the
    figure is what the final objects hold. Objects that existed before (element and key
    strings of the workload module, the replica id) are not counted.
    """
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    del kept
    return held


# ---------------------------------------------------------------- fixed replica ids

# Drawn once from Random(7) inside each library's default id range, in the same order as
# the peers' harness, so encoded sizes repeat from run to run and match the peers' results.
_idrng = random.Random(7)
PYCRDT_CLIENT_IDS = [_idrng.randrange(2**52, 2**53) for _ in range(4)]
LORO_PEER_IDS = [_idrng.randrange(2**63, 2**64) for _ in range(4)]
# crdtsync replica ids are strings; 64-bit random ids written as 16 hex digits.
CRDTSYNC_REPLICA_IDS = [f"{_idrng.getrandbits(64):016x}" for _ in range(4)]


def emit(row: dict[str, Any], out: str | None) -> None:
    """Print ``row`` as one JSON line, and append it to the file ``out`` if given."""
    line = orjson.dumps(row).decode()
    print(line)
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(line + "\n")
