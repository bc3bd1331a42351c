"""Smoke test of the benchmark harness (bench/) at a tiny scale.

The harness runs exactly as a user runs it, ``python -m bench.run`` from the repository
root (which also keeps the top-level ``bench`` package apart from this ``tests/bench``).
It needs ``../shared/peers-bench/workloads.py`` beside the repository, as in CI. Nothing
here looks at a time: benchmarks print figures, they never assert them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIELDS = {"library", "kind", "version", "workload", "scale", "ops", "batch", "seconds",
          "ops_per_s", "full_state_bytes", "rss_before_mb", "peak_rss_mb", "check", "model",
          "run"}


def _bench(tmp_path: Path, *args: str) -> tuple[list[dict], str]:
    out = tmp_path / "bench.jsonl"
    p = subprocess.run([sys.executable, "-m", "bench.run", "--out", str(out), *args],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = [json.loads(ln) for ln in out.read_text().splitlines() if ln.strip()]
    assert out.with_suffix(".md").read_text() == p.stdout
    return rows, p.stdout


def test_crdtsync_types_w1_w3_pass(tmp_path: Path) -> None:
    rows, table = _bench(tmp_path, "--libs", "crdtsync-types", "--workloads", "W1,W2,W3",
                         "--scale", "0.005")
    assert [r["workload"] for r in rows] == ["W1", "W2", "W3"]
    for r in rows:
        assert r["check"] == "pass", r
        assert FIELDS <= r.keys(), FIELDS - r.keys()
        assert r["library"] == "crdtsync-types" and r["scale"] == 0.005 and r["ops"] > 0
        assert r["full_state_bytes"] > 0 and r["mem_traced_bytes"] > 0
    w1, w2, w3 = rows
    assert w1["ops"] == 5_000 and w1["mem_bytes_per_counter"] > 0
    assert w2["ops"] == 1_500 and w2["mem_bytes_per_live_element"] > 0
    assert w3["ops"] == 2_500 and w3["mem_bytes_per_key"] > 0
    for wl in ("W1", "W2", "W3"):
        assert f"### {wl}:" in table


def test_unavailable_and_pending_are_reported(tmp_path: Path) -> None:
    # crdtsync-types has no W4 yet; pycrdt is either measured or "skipped: not installed".
    rows, table = _bench(tmp_path, "--libs", "crdtsync-types,pycrdt", "--workloads", "W4",
                         "--scale", "0.005")
    status = {r["library"]: r["status"] for r in rows if "status" in r}
    assert status["crdtsync-types"].startswith("not implemented yet")
    measured = [r for r in rows if "status" not in r]
    if "pycrdt" in status:
        assert status["pycrdt"] == "skipped: not installed" and not measured
    else:
        assert [r["check"] for r in measured] == ["pass"]
    assert "not implemented yet" in table
