"""Bar charts of a results file: ops/s and bytes per workload and library.

Usage (from the repository root)::

    python -m bench.plot bench/results/FILE.jsonl [--out-dir DIR]

Writes ``<stem>-ops.png`` (ops/s, median with min–max whiskers) and ``<stem>-bytes.png``
(full-state bytes for W1–W3, bytes sent for W4–W6; log scale) next to the file, or into
``--out-dir``. Only measurements whose check passed are drawn; workloads a driver has not
implemented are marked "n/i", libraries not installed "skip". Needs matplotlib (the
``bench`` extra); without it, prints a message and exits 0.
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


def plot(jsonl: Path, out_dir: Path | None = None) -> list[Path]:
    """Write the PNGs for ``jsonl``; return their paths ([] without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench.plot: matplotlib is not installed (pip install matplotlib, or the "
              "'bench' extra); no plots written", file=sys.stderr)
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
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.plot", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("jsonl", type=Path)
    ap.add_argument("--out-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    for p in plot(a.jsonl, a.out_dir):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
