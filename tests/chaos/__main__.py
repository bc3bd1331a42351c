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
import traceback
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
            f"{conv}{'' if r.diverged_at_heal else ' (equal at heal)'}"
            f"{'' if r.quiet else ' (acks still lagging)'}: {verdict}")


class _Summary:
    """Totals over the schedules run so far."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.seeds: list[int] = []
        self.converge: list[float] = []
        self.converge_diverged: list[float] = []
        self.failed: list[int] = []
        self.errors: list[int] = []
        self.lost = self.divergent = self.ops = self.unknown = self.overtaken = 0
        self.lagging = 0

    def add(self, r: RunResult) -> None:
        rep = r.report
        self.seeds.append(r.schedule.seed)
        self.lost += rep.lost
        self.divergent += rep.divergent
        self.ops += len(r.history)
        self.unknown += rep.counts.get("unknown", 0)
        self.overtaken += rep.overtaken
        self.lagging += not r.quiet
        if rep.converged_after is not None:
            self.converge.append(rep.converged_after)
            if r.diverged_at_heal:
                self.converge_diverged.append(rep.converged_after)
        if not rep.ok:
            self.failed.append(r.schedule.seed)

    def text(self) -> str:
        n, conv = len(self.seeds), self.converge
        seeds = f"seeds {min(self.seeds)}..{max(self.seeds)}" if self.seeds else "no seeds"
        lines = [f"{n} schedules ({seeds}) in {time.monotonic() - self.started:.0f} s: "
                 f"{self.ops} ops ({self.unknown} unknown)",
                 f"lost writes: {self.lost}; divergent schedules: {self.divergent}; failed "
                 f"schedules: {len(self.failed)}{' ' + str(self.failed) if self.failed else ''}"]
        for label, values in (("all schedules", conv),
                              ("replicas still apart at the heal", self.converge_diverged)):
            if values:
                lines.append(f"heal->converged, {label} ({len(values)}): p50 "
                             f"{percentile(values, 50):.2f} s, p99 {percentile(values, 99):.2f} "
                             f"s, max {max(values):.2f} s; <= 2 s (target): "
                             f"{sum(c <= 2 for c in values)}")
        if self.errors:
            lines.append(f"harness errors (no verdict): {self.errors}")
        lines.append(f"acks still lagging 10 s after convergence: {self.lagging} schedules")
        lines.append(f"LWW: {self.overtaken} acknowledged register writes lost to a write that "
                     "completed before they were invoked (HLC order under partitions and skew)")
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the schedules; print progress and the summary."""
    args = _parser().parse_args(argv)
    if args.schedules < 1:
        print("--schedules must be >= 1", file=sys.stderr)
        return 2
    summary = _Summary()
    try:
        for k, seed in enumerate(range(args.seed, args.seed + args.schedules), 1):
            schedule = make_schedule(seed, replicas=args.replicas, duration=args.duration)
            root = Path(tempfile.mkdtemp(prefix=f"crdtsync-chaos-{seed}-"))
            try:
                result = run(schedule, root)
            except Exception:  # noqa: BLE001 - report the seed, go on with the next one
                summary.errors.append(seed)
                print(f"[{k}/{args.schedules}] seed {seed}: HARNESS ERROR (data in {root})\n"
                      f"{traceback.format_exc()}replay: {replay_command(schedule)}", flush=True)
                continue
            summary.add(result)
            print(_line(k, args.schedules, result), flush=True)
            if schedule.skewed:  # which write won each register under the skewed clock
                for note in result.report.notes:
                    print(f"    {note}", flush=True)
            if not result.report.ok:
                cmd = replay_command(schedule, fixed_replicas=args.replicas is not None)
                print(result.text(cmd), flush=True)
            elif not args.keep:
                shutil.rmtree(root, ignore_errors=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    print()
    print(summary.text())
    return 1 if summary.failed or summary.errors else 0


if __name__ == "__main__":
    sys.exit(main())
