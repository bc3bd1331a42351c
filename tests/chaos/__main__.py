"""``python -m tests.chaos --schedules N [--seed S] [--replicas K]``: run many schedules.

Prints one progress line per schedule, the full report of every failing one (with the
command that replays it), and a summary: lost writes, divergences, heal->converged
p50 / p99 / max. Exits 1 if any schedule failed. Run from the repository root.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .harness import RunResult, replay_command, run
from .schedule import make_schedule


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    p.add_argument("--schedules", type=int,
                   default=int(os.environ.get("CRDTSYNC_CHAOS_SCHEDULES", "20")),
                   help="how many schedules (default: $CRDTSYNC_CHAOS_SCHEDULES or 20)")
    p.add_argument("--seed", type=int, default=0, help="first seed (then seed+1, ...)")
    p.add_argument("--replicas", type=int, default=None, help="3..5 (default: per seed)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of ops and faults")
    p.add_argument("--keep", action="store_true", help="keep every run's data and logs")
    return p


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0..100) of ``values`` (non-empty)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _line(k: int, total: int, r: RunResult) -> str:
    rep, s = r.report, r.schedule
    conv = "-" if rep.converged_after is None else f"{rep.converged_after:.2f} s"
    faults = len(s.network) + len(s.process)
    verdict = "ok" if rep.ok else f"FAIL ({len(rep.anomalies)} anomalies)"
    return (f"[{k:>{len(str(total))}}/{total}] seed {s.seed}: {s.replicas} replicas, "
            f"{faults} faults{' (skew)' if s.skewed else ''}, {len(r.history)} ops "
            f"({rep.counts.get('unknown', 0)} unknown), lost {rep.lost}, heal->converged "
            f"{conv}: {verdict}")


def main(argv: list[str] | None = None) -> int:
    """Run the schedules; print progress and the summary."""
    args = _parser().parse_args(argv)
    if args.schedules < 1:
        print("--schedules must be >= 1", file=sys.stderr)
        return 2
    started = time.monotonic()
    converge: list[float] = []
    failed: list[int] = []
    lost = divergent = ops = unknown = overtaken = 0
    for k, seed in enumerate(range(args.seed, args.seed + args.schedules), 1):
        schedule = make_schedule(seed, replicas=args.replicas, duration=args.duration)
        root = Path(tempfile.mkdtemp(prefix=f"crdtsync-chaos-{seed}-"))
        result = run(schedule, root)
        rep = result.report
        print(_line(k, args.schedules, result), flush=True)
        lost += rep.lost
        divergent += rep.divergent
        ops += len(result.history)
        unknown += rep.counts.get("unknown", 0)
        overtaken += rep.overtaken
        if rep.converged_after is not None:
            converge.append(rep.converged_after)
        if rep.ok and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        elif not rep.ok:
            failed.append(seed)
            cmd = replay_command(schedule, fixed_replicas=args.replicas is not None)
            print(result.text(cmd), flush=True)
    elapsed = time.monotonic() - started
    print(f"\n{args.schedules} schedules (seeds {args.seed}..{args.seed + args.schedules - 1})"
          f" in {elapsed:.0f} s: {ops} ops ({unknown} unknown)")
    print(f"lost writes: {lost}; divergent schedules: {divergent}; failed schedules: "
          f"{len(failed)}{' ' + str(failed) if failed else ''}")
    if converge:
        print(f"heal->converged: p50 {percentile(converge, 50):.2f} s, p99 "
              f"{percentile(converge, 99):.2f} s, max {max(converge):.2f} s "
              f"({len(converge)} schedules)")
    print(f"LWW: {overtaken} acknowledged register writes lost to a write that completed "
          "before they were invoked (HLC order under partitions and clock skew)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
