"""Run the benchmark workloads W1-W6 on crdtsync and the peer libraries.

Usage (from the repository root)::

    python -m bench.run --quick                          # everything, small scale, < 1 min
    python -m bench.run --libs crdtsync-types,pycrdt,loro --workloads W1,W2,W3 --repeat 3 \\
        --results-dir bench/results
    python -m bench.run --summarize bench/results/FILE.jsonl   # re-print a table

Every (library, workload, run) runs in a fresh child process (``python -m bench.run
--child LIB WL ...``) with a time limit, so its peak RSS belongs to that measurement
alone. The child prints one JSON line; the parent shows progress on stderr, writes the
lines to ``--out`` (default ``<results-dir>/bench-<UTC time>.jsonl``), writes the markdown
summary beside it (same name, ``.md``) and prints it on stdout.

Libraries whose package is not installed are reported as "skipped: not installed";
workloads a driver cannot run yet as "not implemented yet". Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import drivers
from bench.common import REPO, WorkloadsMissing, peak_rss_mb, workloads

QUICK_SCALE = 0.05
DEFAULT_RESULTS_DIR = REPO / "bench" / "out"
CHILD_TIMEOUT_S = 600.0

WORKLOAD_TITLES = {
    "W1": "1,000,000 increments over 1,000 counters, one replica",
    "W2": "200,000 adds then 100,000 removes over 10 sets (universe 50,000)",
    "W3": "500,000 writes of random ints to 10,000 LWW keys",
    "W4": "A runs W1 in 100 rounds, delta-syncing A -> B after each",
    "W5": "3 replicas over websockets, 100,000 increments each",
    "W6": "2 replicas apart (50,000 increments + 20,000 adds each), then one sync round trip",
}
STATE_BYTES_WORKLOADS = {"W1", "W2", "W3"}  # "bytes" = full-state encoding; else bytes sent

# Fields shown in the main table (everything else numeric is listed as an extra).
MAIN_FIELDS = {"library", "kind", "version", "workload", "scale", "ops", "batch", "seconds",
               "cpu_seconds", "ops_per_s", "bytes", "full_state_bytes", "rss_before_mb",
               "rss_after_mb", "peak_rss_mb", "peak_rss_since", "check", "model", "run",
               "status", "commit", "mem_method"}


# ---------------------------------------------------------------- child


def child(lib: str, wl: str, scale: float, batch: int, run: int) -> dict[str, Any]:
    """Run one measurement in this process and return its JSON row."""
    row: dict[str, Any] = {"library": lib}
    try:
        drv = drivers.load(lib)
        row["kind"] = drv.KIND
        row["version"] = drv.version()
        W = workloads()
        W.BATCH = batch  # read by workloads.batches() at call time
        row.update(workload=wl, scale=scale)
        res = drv.WORKLOADS[wl](scale)
        row.update(ops=res.pop("ops"), batch=batch, seconds=res.pop("seconds"))
        row["ops_per_s"] = round(row["ops"] / row["seconds"], 1) if row["seconds"] > 0 else None
        if "bytes" in res:
            row["bytes"] = res.pop("bytes")
        check = res.pop("check")
        row.update(res)
        row["check"] = check
        row["model"] = drv.MODEL
    except Exception as e:  # noqa: BLE001 -- report it as this measurement's result
        row.update(workload=wl, scale=scale, batch=batch,
                   check=f"ERROR {type(e).__name__}: {e}",
                   peak_rss_mb=round(peak_rss_mb(), 1))
    row["run"] = run
    return row


# ---------------------------------------------------------------- parent


def plan(libs: list[str], wls: list[str], repeat: int
         ) -> tuple[list[tuple[int, str, str]], list[dict[str, Any]]]:
    """Return (jobs, status rows): jobs are (run, lib, workload) in run-major order."""
    status_rows: list[dict[str, Any]] = []
    runnable: list[tuple[str, str]] = []
    for lib in libs:
        drv = drivers.load(lib)
        for wl in wls:
            why = drivers.status(drv, wl)
            if why is None:
                runnable.append((lib, wl))
            elif why != "not applicable":
                status_rows.append({"library": lib, "kind": drv.KIND, "workload": wl,
                                    "status": why})
    jobs = [(run, lib, wl) for run in range(1, repeat + 1) for lib, wl in runnable]
    return jobs, status_rows


def run_child(lib: str, wl: str, scale: float, batch: int, run: int,
              timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.run", "--child", lib, wl, "--scale", repr(scale),
           "--batch", str(batch), "--run", str(run)]
    base = {"library": lib, "kind": drivers.load(lib).KIND, "workload": wl, "scale": scale,
            "batch": batch}
    try:
        p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**base, "check": f"ERROR child timeout after {timeout:g} s", "run": run}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (p.stderr or p.stdout).strip()[-800:]
        return {**base, "check": f"ERROR child exit {p.returncode}: {tail}", "run": run}
    row: dict[str, Any] = json.loads(lines[-1])
    return row


def _progress(msg: str, end: str = "\n") -> None:
    print(msg, end=end, file=sys.stderr, flush=True)


def run_suite(jobs: list[tuple[int, str, str]], scale: float, batch: int, timeout: float,
              out: Path) -> list[dict[str, Any]]:
    rows = []
    n = len(jobs)
    for i, (run, lib, wl) in enumerate(jobs, 1):
        _progress(f"[{i}/{n}] {lib} {wl} run {run} ... ", end="")
        row = run_child(lib, wl, scale, batch, run, timeout)
        if row.get("check") == "pass":
            _progress(f"{row['seconds']:.3f} s")
        else:
            secs = f"{row['seconds']:.3f} s " if "seconds" in row else ""
            _progress(f"{secs}{row.get('check')}")
        rows.append(row)
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
    return rows


def read_rows(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def environment() -> dict[str, Any]:
    vers = {"python": platform.python_version()}
    for pkg in ("crdtsync", "pycrdt", "loro", "orjson"):
        try:
            vers[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            vers[pkg] = "not installed"
    return {"versions": vers, "cpus": os.cpu_count(), "platform": platform.platform()}


# ---------------------------------------------------------------- summary


def _med(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def _range(xs: Sequence[float], fmt: Any) -> str:
    m = _med(xs)
    if min(xs) == max(xs):
        return fmt(m)
    return f"{fmt(m)} [{fmt(min(xs))}–{fmt(max(xs))}]"


def _int(x: float) -> str:
    return f"{int(round(x)):,}"


def _secs(x: float) -> str:
    return f"{x:.3f}" if x < 100 else f"{x:.1f}"


def _row_bytes(r: dict[str, Any]) -> int | None:
    if r.get("bytes") is not None:
        return int(r["bytes"])
    if r.get("full_state_bytes") is not None:
        return int(r["full_state_bytes"])
    return None


def _lib_order(rows: Iterable[dict[str, Any]]) -> list[str]:
    kinds: dict[str, str] = {}
    for r in rows:
        kinds.setdefault(r["library"], r.get("kind", "peer"))
    registered = list(drivers.DRIVERS)

    def key(lib: str) -> tuple[int, int, str]:
        pos = registered.index(lib) if lib in registered else len(registered)
        return (0 if kinds[lib] == "crdtsync" else 1, pos, lib)

    return sorted(kinds, key=key)


class _Group:
    """All runs of one library on one workload at one scale and batch."""

    def __init__(self, lib: str, rows: list[dict[str, Any]]) -> None:
        self.lib = lib
        self.rows = rows
        self.good = [r for r in rows if r.get("check") == "pass" and r.get("seconds")]
        self.kind = rows[0].get("kind", "peer")
        self.checks = sorted({str(r.get("check")) for r in rows})

    @property
    def ops_s(self) -> float | None:
        return _med([r["ops_per_s"] for r in self.good]) if self.good else None

    @property
    def cpu_ops_s(self) -> float | None:
        xs = [r["ops"] / r["cpu_seconds"] for r in self.good if r.get("cpu_seconds")]
        return _med(xs) if xs else None

    @property
    def nbytes(self) -> float | None:
        b = [x for r in self.good if (x := _row_bytes(r)) is not None]
        return _med(b) if b else None


def _ratio(x: float | None, best: tuple[str, float] | None, me: str) -> str:
    if x is None or best is None:
        return "–"
    lib, ref = best
    if lib == me:
        return "1.00 (best)"
    if not ref:
        return "–"
    r = x / ref
    return f"{r:.2f}× {lib}" if r >= 0.1 else f"{r:.2g}× {lib}"


def summarize(rows: list[dict[str, Any]]) -> str:
    """Markdown: an overview (ops/s medians), then one detailed table per workload."""
    measured = [r for r in rows if "status" not in r]
    status = {(r["library"], r["workload"]): r["status"] for r in rows if "status" in r}
    libs = _lib_order(rows)
    wls = sorted({r["workload"] for r in rows})
    # (workload, scale, batch) -> lib -> rows
    sections: dict[tuple[str, float, int], dict[str, list[dict[str, Any]]]] = {}
    for r in measured:
        k = (r["workload"], r.get("scale", 1.0), r.get("batch", 0))
        sections.setdefault(k, {}).setdefault(r["library"], []).append(r)
    for wl in wls:  # a workload with only status rows still gets a section
        if not any(k[0] == wl for k in sections):
            sections[(wl, 0.0, 0)] = {}

    out: list[str] = []
    out.append("### Overview: ops/s, median over runs (bytes: full state for W1–W3, "
               "sent for W4–W6)\n")
    out.append("| workload | scale | " + " | ".join(libs) + " |")
    out.append("|---|---|" + "---|" * len(libs))
    for (wl, scale, _batch), by_lib in sorted(sections.items()):
        cells = []
        for lib in libs:
            if lib in by_lib:
                g = _Group(lib, by_lib[lib])
                if g.ops_s is None:
                    cells.append("; ".join(g.checks)[:60])
                else:
                    nb = g.nbytes
                    cells.append(f"{_int(g.ops_s)} ops/s" + (f", {_int(nb)} B" if nb else ""))
            elif (lib, wl) in status:
                cells.append(status[(lib, wl)].split(":")[0])
            else:
                cells.append("–")
        out.append(f"| {wl} | {scale if scale else '–'} | " + " | ".join(cells) + " |")

    for (wl, scale, batch), by_lib in sorted(sections.items()):
        groups = [_Group(lib, by_lib[lib]) for lib in libs if lib in by_lib]
        peers = [g for g in groups if g.kind != "crdtsync"]
        fast = [(g.lib, g.ops_s) for g in peers if g.ops_s is not None]
        small = [(g.lib, g.nbytes) for g in peers if g.nbytes is not None]
        best_ops = max(fast, key=lambda t: t[1]) if fast else None
        fast_cpu = [(g.lib, g.cpu_ops_s) for g in peers if g.cpu_ops_s is not None]
        best_cpu = max(fast_cpu, key=lambda t: t[1]) if fast_cpu else None
        best_bytes = min(small, key=lambda t: t[1]) if small else None
        what = "state" if wl in STATE_BYTES_WORKLOADS else "sent"
        head = f"\n### {wl}: {WORKLOAD_TITLES.get(wl, '')}"
        if groups:
            head += f" (scale {scale}, {groups[0].rows[0].get('ops', 0):,} ops, batch {batch:,})"
        out.append(head + "\n")
        out.append(f"| library | version | runs | seconds median [min–max] | CPU s median | "
                   f"ops/s median [min–max] | ops/s vs best peer | bytes ({what}) median "
                   f"[min–max] | bytes vs best peer | peak RSS MB | ΔRSS MB | check |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        extras: list[str] = []
        for g in groups:
            if not g.good:
                out.append(f"| {g.lib} | {g.rows[0].get('version', '–')} | {len(g.rows)} | "
                           f"– | – | – | – | – | – | – | – | {'; '.join(g.checks)[:300]} |")
                continue
            secs = [r["seconds"] for r in g.good]
            cpus = [r["cpu_seconds"] for r in g.good if "cpu_seconds" in r]
            cpu = _secs(_med(cpus)) if cpus else "–"
            opss = [r["ops_per_s"] for r in g.good]
            b = [x for r in g.good if (x := _row_bytes(r)) is not None]
            rss = [r["peak_rss_mb"] for r in g.good]
            drss = max(0.0, _med([r["peak_rss_mb"] - r["rss_before_mb"] for r in g.good]))
            bad = len(g.rows) - len(g.good)
            check = "pass" if not bad else f"{bad} of {len(g.rows)} not pass: {'; '.join(g.checks)}"
            out.append(
                f"| {g.lib} | {g.good[0].get('version', '–')} | {len(g.good)} | "
                f"{_range(secs, _secs)} | {cpu} | {_range(opss, _int)} | "
                f"{_ratio(g.ops_s, best_ops, g.lib)}; "
                f"CPU: {_ratio(g.cpu_ops_s, best_cpu, g.lib)} | "
                f"{_range(b, _int) if b else '–'} | {_ratio(g.nbytes, best_bytes, g.lib)} | "
                f"{_range(rss, lambda x: f'{x:.1f}')} | {drss:.1f} | {check} |")
            ex = _extras(g.good)
            if ex:
                extras.append(f"- {g.lib}: {ex}")
        for lib in libs:
            if lib not in by_lib and (lib, wl) in status:
                out.append(f"| {lib} | – | – | – | – | – | – | – | – | – | – | "
                           f"{status[(lib, wl)]} |")
        if extras:
            out.append("\n" + "\n".join(extras))
    return "\n".join(out) + "\n"


def _extras(good: list[dict[str, Any]]) -> str:
    parts = []
    for k, v in good[0].items():
        if k in MAIN_FIELDS or isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            xs = [r[k] for r in good if isinstance(r.get(k), (int, float))]
            m = _med(xs)
            whole = all(float(x).is_integer() for x in xs)
            fmt = _int if whole else (lambda x: f"{x:.4g}")
            parts.append(f"{k}={_range(xs, fmt)}" if min(xs) != max(xs) else f"{k}={fmt(m)}")
    if "commit" in good[0]:
        parts.append(f"commit={good[0]['commit']}")
    if "mem_method" in good[0]:
        parts.append("memory by tracemalloc")
    return ", ".join(parts)


def render(rows: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> str:
    head = ["## crdtsync benchmark results\n"]
    if meta:
        v = meta.get("versions", {})
        head.append(f"- command: `{meta.get('command', '')}`")
        head.append(f"- date (UTC): {meta.get('date', '')}; "
                    f"wall time {meta.get('wall_s', 0):.1f} s")
        head.append(f"- machine: {meta.get('cpus')} CPUs, {meta.get('platform')}")
        if meta.get("load"):
            lb, la = meta["load"]
            head.append(f"- 1-min load average: {lb:.2f} before, {la:.2f} after (the run "
                        "itself adds about 1; more means other work shared the CPUs)")
        head.append("- versions: " + ", ".join(f"{k} {x}" for k, x in v.items()))
        head.append("- medians over runs, [min–max] when they differ; ratios compare medians "
                    "with the best peer (fastest ops/s, smallest bytes); \"CPU:\" is the same "
                    "ratio on process CPU time (ops / cpu_seconds), steadier when other work "
                    "shares the machine; peak RSS = ru_maxrss "
                    "after the check and encodings, its high-water mark reset just before the "
                    "timed part (field peak_rss_since); ΔRSS = peak RSS − RSS before the timed "
                    "part\n")
    return "\n".join(head) + "\n" + summarize(rows)


# ---------------------------------------------------------------- CLI


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"small scale ({QUICK_SCALE}) and 1 repeat unless given")
    ap.add_argument("--libs", default=",".join(drivers.DRIVERS),
                    help="comma-separated (default: %(default)s)")
    ap.add_argument("--workloads", default=",".join(drivers.WORKLOADS),
                    help="comma-separated (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=None, help="runs per measurement (default 1)")
    ap.add_argument("--scale", type=float, default=None,
                    help="multiply every workload size by this, in (0, 1] (default 1)")
    ap.add_argument("--batch", type=int, default=None,
                    help="ops per batch/transaction/commit (default: workloads.BATCH = 1000)")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON lines file (default: <results-dir>/bench-<UTC time>.jsonl); "
                    "the markdown summary goes beside it with suffix .md")
    ap.add_argument("--append", action="store_true",
                    help="append to --out instead of replacing it (summary covers the file)")
    ap.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR,
                    help="where the default --out goes (default: bench/out, not tracked)")
    ap.add_argument("--timeout", type=float, default=CHILD_TIMEOUT_S,
                    help="seconds before a child is killed (default %(default)s)")
    ap.add_argument("--summarize", type=Path, metavar="JSONL",
                    help="only print the summary of an existing JSON lines file")
    ap.add_argument("--child", nargs=2, metavar=("LIB", "WORKLOAD"), help=argparse.SUPPRESS)
    ap.add_argument("--run", type=int, default=1, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    try:
        W = workloads()
    except WorkloadsMissing as e:
        print(e, file=sys.stderr)
        return 2
    scale = a.scale if a.scale is not None else (QUICK_SCALE if a.quick else 1.0)
    repeat = a.repeat if a.repeat is not None else 1
    batch = a.batch if a.batch is not None else W.BATCH
    if not 0 < scale <= 1:
        ap.error("--scale must be in (0, 1]")
    if repeat < 1 or batch < 1:
        ap.error("--repeat and --batch must be >= 1")

    if a.child:
        print(json.dumps(child(a.child[0], a.child[1], scale, batch, a.run)), flush=True)
        return 0
    if a.summarize:
        print(summarize(read_rows(a.summarize)))
        return 0

    libs, wls = _csv(a.libs), _csv(a.workloads)
    for lib in libs:
        if lib not in drivers.DRIVERS:
            ap.error(f"unknown library {lib!r}; known: {', '.join(drivers.DRIVERS)}")
    for wl in wls:
        if wl not in drivers.WORKLOADS:
            ap.error(f"unknown workload {wl!r}; known: {', '.join(drivers.WORKLOADS)}")

    stamp = datetime.now(UTC)
    out: Path = a.out or a.results_dir / f"bench-{stamp:%Y%m%d-%H%M%S}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not a.append:
        out.write_text("")
    jobs, status_rows = plan(libs, wls, repeat)
    with out.open("a") as f:
        for r in status_rows:
            f.write(json.dumps(r) + "\n")
    for r in status_rows:
        _progress(f"{r['library']} {r['workload']}: {r['status']}")
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    run_suite(jobs, scale, batch, a.timeout, out)
    wall = time.perf_counter() - t0
    meta = environment()
    meta.update(date=f"{stamp:%Y-%m-%d %H:%M}", wall_s=wall,
                load=(load_before, os.getloadavg()[0]),
                command="python -m bench.run " + shlex.join(sys.argv[1:] if argv is None
                                                             else argv))
    table = render(read_rows(out), meta)
    md = out.with_suffix(".md")
    md.write_text(table)
    print(table, end="")
    _progress(f"\n{len(jobs)} measurements in {wall:.1f} s; JSON lines: {out}; table: {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
