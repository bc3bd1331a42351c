"""Benchmark harness: crdtsync against pycrdt and Loro on the shared workloads W1-W6.

Run ``python -m bench.run --help`` from the repository root; see ``bench/README.md``.
"""
