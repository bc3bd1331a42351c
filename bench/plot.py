"""Bar charts of a results file: ops/s and bytes per workload and library.

Usage (from the repository root)::

    python -m bench.plot bench/results/FILE.jsonl [--out-dir DIR]

    python -m bench.plot --scaling bench/results/scaling.jsonl

Writes ``<stem>-ops.png`` (ops/s, median with min–max whiskers), ``<stem>-bytes.png``
(full-state bytes for W1–W3, bytes sent for W4–W6; log scale) and, when the file has
W4–W6 rows, ``<stem>-sync.png`` (W4–W6 only: bytes sent per workload, and wall and CPU
seconds) next to the file, or into ``--out-dir``. Only measurements whose check passed
are drawn; workloads a driver has not implemented are marked "n/i", libraries not
installed "skip". ``--scaling`` draws a :mod:`bench.scaling` file instead: bytes and CPU
seconds per sync round against the keyspace size, and the catch-up bytes of one changed
key (``<stem>.png``). Needs matplotlib (the ``bench`` extra); without it, prints a message
and exits 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.run import STATE_BYTES_WORKLOADS, _lib_order, _row_bytes

Series = dict[tuple[str, str], list[float]]


def _series(rows: list[dict[str, Any]], value: Any
            ) -> tuple[list[str], list[str], Series, dict[tuple[str, str], str]]:
    measured = [r for r in rows if "status" not in r and r.get("check") == "pass"]
    status = {(r["library"], r["workload"]): r["status"] for r in rows if "status" in r}
    scales: dict[str, set[Any]] = {}
    for r in measured:
        scales.setdefault(r["workload"], set()).add(r.get("scale"))
    libs = _lib_order(rows)
    data: Series = {}
    for r in measured:
        v = value(r)
        if v is None:
            continue
        label = r["workload"]
        if len(scales[r["workload"]]) > 1:
            label += f" (scale {r['scale']})"
        data.setdefault((label, r["library"]), []).append(float(v))
    wls = sorted({k[0] for k in data} | {wl for _, wl in status})
    return wls, libs, data, status


def _bars(ax: Any, wls: list[str], libs: list[str], data: Series,
          status: dict[tuple[str, str], str], log: bool) -> None:
    width = 0.8 / max(len(libs), 1)
    for j, lib in enumerate(libs):
        xs, meds, lo, hi = [], [], [], []
        for i, wl in enumerate(wls):
            x = i - 0.4 + width * (j + 0.5)
            vals = data.get((wl, lib))
            if vals:
                m = statistics.median(vals)
                xs.append(x)
                meds.append(m)
                lo.append(m - min(vals))
                hi.append(max(vals) - m)
            else:
                why = status.get((lib, wl.split(" ")[0]), "")
                mark = "skip" if why.startswith("skipped") else "n/i" if why else ""
                if mark:
                    ax.annotate(mark, (x, 0), xycoords=("data", "axes fraction"),
                                xytext=(0, 3), textcoords="offset points", ha="center",
                                va="bottom", fontsize=7, rotation=90, color="0.4")
        ax.bar(xs, meds, width, yerr=[lo, hi], capsize=2, label=lib)
    ax.set_xticks(range(len(wls)), wls)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


SYNC_WORKLOADS = ("W4", "W5", "W6")


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench.plot: matplotlib is not installed (pip install matplotlib, or the "
              "'bench' extra); no plots written", file=sys.stderr)
        return None
    return plt


def _sync_chart(plt: Any, rows: list[dict[str, Any]], title: str, path: Path) -> bool:
    """W4–W6 side by side: bytes sent (log) and wall / CPU seconds, one bar per library."""
    sync_rows = [r for r in rows if r.get("workload") in SYNC_WORKLOADS]
    if not any("status" not in r and r.get("check") == "pass" for r in sync_rows):
        return False
    panels = [
        ("bytes sent (median, min–max), log scale", True, _row_bytes),
        ("seconds, wall (median, min–max)", True, lambda r: r.get("seconds")),
        ("seconds, process CPU (median, min–max)", True, lambda r: r.get("cpu_seconds")),
    ]
    wls0, libs, _, _ = _series(sync_rows, _row_bytes)
    fig, axes = plt.subplots(1, 3, figsize=(max(12.0, 2.2 * len(libs) + 8), 4.4))
    for ax, (ylabel, log, value) in zip(axes, panels, strict=True):
        wls, libs, data, status = _series(sync_rows, value)
        _bars(ax, wls, libs, data, status, log)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_scaling(jsonl: Path, out_dir: Path | None = None) -> list[Path]:
    """Draw a :mod:`bench.scaling` file: per-round bytes and CPU s against keyspace size."""
    plt = _pyplot()
    if plt is None:
        return []
    with jsonl.open() as f:
        rows = sorted((json.loads(ln) for ln in f if ln.strip()), key=lambda r: r["keys"])
    rows = [r for r in rows if "error" not in r]
    if not rows:
        print(f"bench.plot: no measured sizes in {jsonl}", file=sys.stderr)
        return []
    keys = [r["keys"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    ax = axes[0]
    med = [r["round_bytes_median"] for r in rows]
    lo = [m - r["round_bytes_min"] for m, r in zip(med, rows, strict=True)]
    hi = [r["round_bytes_max"] - m for m, r in zip(med, rows, strict=True)]
    ax.errorbar(keys, med, yerr=[lo, hi], marker="o", capsize=3)
    ax.set_xscale("log")
    ax.set_ylim(0, max(r["round_bytes_max"] for r in rows) * 1.3)
    ax.set_xlabel("keys in both replicas")
    ax.set_ylabel(f"bytes per sync round ({rows[0]['changes_per_round']:,} changes)")
    ax.set_title("bytes per round (median, min–max)", fontsize=10)
    ax = axes[1]
    for field, label, style in (("round_cpu_seconds", "whole round, CPU", "-o"),
                                ("round_sync_cpu_seconds", "sync part, CPU", "-o"),
                                ("round_seconds", "whole round, wall", "--x")):
        ax.plot(keys, [1e3 * r[f"{field}_median"] for r in rows], style, label=label)
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("keys in both replicas")
    ax.set_ylabel("ms per round (median)")
    ax.set_title("time per round", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[2]
    parts = [("catchup_bytes_buckets", "bucket digests"), ("catchup_bytes_keys", "key digests"),
             ("catchup_bytes_states", "states"), ("catchup_bytes_hello", "hello"),
             ("catchup_bytes_accept", "accept"), ("catchup_bytes_ack", "ack")]
    x = range(len(rows))
    bottom = [0.0] * len(rows)
    for field, label in parts:
        vals = [float(r.get(field, 0)) for r in rows]
        ax.bar(x, vals, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_xticks(list(x), [f"{k:,}" for k in keys])
    ax.set_xlabel("keys in both replicas")
    ax.set_ylabel("bytes")
    ax.set_title("catch-up of one changed key from state", fontsize=10)
    ax.legend(fontsize=7)
    fig.suptitle(f"{jsonl.stem}: sync cost vs state size ({rows[0]['store'].split(' (')[0]})",
                 fontsize=10)
    fig.tight_layout()
    out_dir = out_dir or jsonl.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{jsonl.stem}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def plot(jsonl: Path, out_dir: Path | None = None) -> list[Path]:
    """Write the PNGs for ``jsonl``; return their paths ([] without matplotlib)."""
    plt = _pyplot()
    if plt is None:
        return []
    with jsonl.open() as f:
        rows = [json.loads(ln) for ln in f if ln.strip()]
    out_dir = out_dir or jsonl.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    charts = [
        ("ops", "ops/s (median, min–max)", False, lambda r: r.get("ops_per_s")),
        ("bytes", "bytes (W1–W3: full state; W4–W6: sent), log scale", True, _row_bytes),
    ]
    for suffix, ylabel, log, value in charts:
        wls, libs, data, status = _series(rows, value)
        if suffix == "bytes":  # a workload with no byte figure at all is left out
            wls = [w for w in wls if any((w, lib) in data for lib in libs)
                   or w.split(" ")[0] in STATE_BYTES_WORKLOADS]
        fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(wls) + 2), 4.2))
        _bars(ax, wls, libs, data, status, log)
        ax.set_ylabel(ylabel)
        scales = sorted({r.get("scale") for r in rows if "scale" in r})
        what = ylabel.split(" (")[0]
        ax.set_title(f"{jsonl.stem}: {what} per workload (scale {', '.join(map(str, scales))})",
                     fontsize=10)
        fig.tight_layout()
        path = out_dir / f"{jsonl.stem}-{suffix}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    scales = sorted({r.get("scale") for r in rows if "scale" in r})
    path = out_dir / f"{jsonl.stem}-sync.png"
    if _sync_chart(plt, rows, f"{jsonl.stem}: W4–W6 (scale {', '.join(map(str, scales))})",
                   path):
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.plot", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("jsonl", type=Path)
    ap.add_argument("--out-dir", type=Path, default=None)
    ap.add_argument("--scaling", action="store_true",
                    help="the file comes from python -m bench.scaling")
    a = ap.parse_args(argv)
    for p in (plot_scaling if a.scaling else plot)(a.jsonl, a.out_dir):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
