"""Workload runners written once against a small replica interface.

A driver supplies ``new_replica(idx)`` returning an object with the methods a workload
needs (see :class:`Replica`); the runners here replay the op streams of ``workloads.py``,
time them with ``time.perf_counter()`` and check the final state against the workload's
reference. Timing excludes generating the op stream, the check, the full-state encodings
and the memory probe, exactly as in the peers' harness.

``cpu_seconds`` is the process CPU time (``time.process_time()``) over the same timed part:
on a machine shared with other work it moves much less than wall time.

Peak RSS (``ru_maxrss``) is read after the check and the encodings, like the peers'
harness, but its high-water mark is reset just before the timed part when Linux allows it
(``peak_rss_since``), so it leaves out building the op stream.

Each runner returns the measured fields (``ops``, ``seconds``, ``check``, ``rss_before_mb``,
``peak_rss_mb``, ...); :mod:`bench.run` adds library, version, workload, scale, ops/s,
model and run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from bench.common import PEAK_RESET, peak_rss_mb, rss_now_mb, settle, traced_bytes, workloads

MEM_METHOD = (
    "tracemalloc: bytes still held by the final objects, measured by replaying the same op "
    "stream on a fresh instance under tracemalloc after the timed run (untimed; garbage "
    "collected first; the workload's pre-built element/key name strings are not counted)"
)


class Replica(Protocol):
    """What the generic runners call. ``a``/``b`` index one batch of the op arrays."""

    def inc_batch(self, ops: Any, a: int, b: int) -> None: ...  # W1, W4, W6
    def counter_values(self) -> list[int]: ...  # index -> value, N_COUNTERS long
    def add_batch(self, sidx: Any, eidx: Any, a: int, b: int) -> None: ...  # W2, W6
    def remove_batch(self, sidx: Any, eidx: Any, a: int, b: int) -> None: ...  # W2
    def set_values(self) -> list[set[int]]: ...  # per set, element indices
    def lww_batch(self, keys: Any, values: Any, a: int, b: int) -> None: ...  # W3
    def lww_values(self) -> dict[int, int]: ...  # key index -> value
    def state_bytes(self) -> dict[str, int]: ...  # {"full_state_bytes": n, ...}
    def state_vector(self) -> bytes: ...  # W4, W6: "what I have"
    def diff_since(self, sv: bytes) -> bytes: ...  # what a peer with ``sv`` lacks
    def apply(self, update: bytes) -> None: ...


Factory = Callable[[int], Any]


def _fields(ops: int, seconds: float, cpu: float, check: str, before: float, after: float,
            **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ops": ops, "seconds": round(seconds, 4),
                           "cpu_seconds": round(cpu, 4)}
    out.update(extra)
    out["rss_before_mb"] = round(before, 1)
    out["rss_after_mb"] = round(after, 1)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["peak_rss_since"] = "timed part" if PEAK_RESET["ok"] else "process start"
    out["check"] = check
    return out


def _memory(build: Callable[[], Any], per: str, units: int) -> dict[str, Any]:
    held = traced_bytes(build)
    return {"mem_traced_bytes": held, f"mem_bytes_per_{per}": round(held / max(units, 1), 1),
            "mem_method": MEM_METHOD}


# ---------------------------------------------------------------- W1 counters


def w1(new_replica: Factory, scale: float, *, memory: bool = False) -> dict[str, Any]:
    W = workloads()
    ops = W.w1(scale)
    expected = W.counter_expected(ops)
    spans = list(W.batches(len(ops)))
    rep = new_replica(0)
    before = settle()
    c0 = time.process_time()
    t0 = time.perf_counter()
    for a, b in spans:
        rep.inc_batch(ops, a, b)
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    after = rss_now_mb()
    vals = rep.counter_values()
    ok = vals == expected and sum(vals) == len(ops)
    check = "pass" if ok else f"FAIL sum={sum(vals)} expected={len(ops)}"
    out = _fields(len(ops), dt, cpu, check, before, after, **rep.state_bytes())
    if memory:
        def build() -> Any:
            r = new_replica(0)
            for a, b in spans:
                r.inc_batch(ops, a, b)
            return r

        out.update(_memory(build, "counter", sum(1 for x in expected if x)))
    return out


# ---------------------------------------------------------------- W2 sets


def w2(new_replica: Factory, scale: float, *, memory: bool = False) -> dict[str, Any]:
    W = workloads()
    wl = W.w2(scale)
    add_spans = list(W.batches(len(wl.add_set)))
    rem_spans = list(W.batches(len(wl.rem_set)))
    rep = new_replica(0)
    before = settle()
    c0 = time.process_time()
    t0 = time.perf_counter()
    for a, b in add_spans:
        rep.add_batch(wl.add_set, wl.add_elem, a, b)
    t_add = time.perf_counter() - t0
    for a, b in rem_spans:
        rep.remove_batch(wl.rem_set, wl.rem_elem, a, b)
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    after = rss_now_mb()
    got = rep.set_values()
    n_final = sum(len(s) for s in got)
    n_expected = sum(len(s) for s in wl.expected)
    check = "pass" if got == wl.expected else f"FAIL final_elements={n_final} expected={n_expected}"
    out = _fields(len(wl.add_set) + len(wl.rem_set), dt, cpu, check, before, after,
                  adds=len(wl.add_set), removes=len(wl.rem_set),
                  add_seconds=round(t_add, 4), remove_seconds=round(dt - t_add, 4),
                  final_elements=n_final, **rep.state_bytes())
    if memory:
        def build() -> Any:
            r = new_replica(0)
            for a, b in add_spans:
                r.add_batch(wl.add_set, wl.add_elem, a, b)
            for a, b in rem_spans:
                r.remove_batch(wl.rem_set, wl.rem_elem, a, b)
            return r

        out.update(_memory(build, "live_element", n_expected))
    return out


# ---------------------------------------------------------------- W3 LWW map


def w3(new_replica: Factory, scale: float, *, memory: bool = False) -> dict[str, Any]:
    W = workloads()
    wl = W.w3(scale)
    spans = list(W.batches(len(wl.keys)))
    rep = new_replica(0)
    before = settle()
    c0 = time.process_time()
    t0 = time.perf_counter()
    for a, b in spans:
        rep.lww_batch(wl.keys, wl.values, a, b)
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    after = rss_now_mb()
    got = rep.lww_values()
    if got == wl.expected:
        check = "pass"
    else:
        bad = sum(1 for k, v in wl.expected.items() if got.get(k) != v)
        check = f"FAIL keys={len(got)} expected={len(wl.expected)} mismatches={bad}"
    out = _fields(len(wl.keys), dt, cpu, check, before, after,
                  keys_written=len(wl.expected), **rep.state_bytes())
    if memory:
        def build() -> Any:
            r = new_replica(0)
            for a, b in spans:
                r.lww_batch(wl.keys, wl.values, a, b)
            return r

        out.update(_memory(build, "key", len(wl.expected)))
    return out


# ---------------------------------------------------------------- W4 delta sync A -> B


def w4(new_replica: Factory, scale: float) -> dict[str, Any]:
    """A replays W1 in ``W4_BATCHES`` sync rounds; after each, B sends its state vector,
    A answers with what B lacks, B applies it. Times A's ops and all sync rounds."""
    W = workloads()
    ops = W.w1(scale)
    expected = W.counter_expected(ops)
    n = len(ops)
    per = -(-n // W.W4_BATCHES)  # 10,000 ops per round at full scale
    rounds = [(s, min(s + per, n)) for s in range(0, n, per)]
    A, B = new_replica(0), new_replica(1)
    before = settle()
    upd_bytes = sv_bytes = max_upd = 0
    t_sync = 0.0
    c0 = time.process_time()
    t0 = time.perf_counter()
    for start, stop in rounds:
        for a, b in W.batches(stop - start):
            A.inc_batch(ops, start + a, start + b)
        ts = time.perf_counter()
        sv = B.state_vector()
        upd = A.diff_since(sv)
        B.apply(upd)
        t_sync += time.perf_counter() - ts
        sv_bytes += len(sv)
        upd_bytes += len(upd)
        max_upd = max(max_upd, len(upd))
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    after = rss_now_mb()
    va, vb = A.counter_values(), B.counter_values()
    ok = va == vb == expected
    check = "pass" if ok else f"FAIL sumA={sum(va)} sumB={sum(vb)} expected={n}"
    return _fields(n, dt, cpu, check, before, after,
                   bytes=upd_bytes + sv_bytes, update_bytes=upd_bytes,
                   state_vector_bytes=sv_bytes, bytes_per_op=round(upd_bytes / n, 2),
                   max_update_bytes=max_upd, sync_rounds=len(rounds),
                   sync_seconds=round(t_sync, 4))


# ---------------------------------------------------------------- W6 partition, reconnect


def w6(new_replica: Factory, scale: float) -> dict[str, Any]:
    """A and B work apart (counters then set adds), then one anti-entropy round trip in
    both directions, in process. Only the reconnect exchange is timed."""
    W = workloads()
    work = W.w6(scale)
    exp_counts, exp_sets = W.w6_expected(work)
    A, B = new_replica(0), new_replica(1)
    before = settle()
    t0 = time.perf_counter()
    w6_apart(W, A, B, work)
    t_local = time.perf_counter() - t0
    c0 = time.process_time()
    ts = time.perf_counter()
    sva, svb = A.state_vector(), B.state_vector()
    u_ab, u_ba = A.diff_since(svb), B.diff_since(sva)
    B.apply(u_ab)
    A.apply(u_ba)
    dt = time.perf_counter() - ts
    cpu = time.process_time() - c0
    after = rss_now_mb()
    check = w6_check(A, B, exp_counts, exp_sets)
    n_ops = sum(len(o.incs) + len(o.add_set) for o in work)
    return _fields(n_ops, dt, cpu, check, before, after,
                   bytes=len(sva) + len(svb) + len(u_ab) + len(u_ba),
                   update_bytes_a_to_b=len(u_ab), update_bytes_b_to_a=len(u_ba),
                   state_vector_bytes=len(sva) + len(svb),
                   local_work_seconds=round(t_local, 4))


def w6_apart(W: Any, a: Any, b: Any, work: Any) -> None:
    """W6's partitioned phase: each replica runs its counter batches, then its set adds."""
    for rep, o in ((a, work[0]), (b, work[1])):
        for start, end in W.batches(len(o.incs)):
            rep.inc_batch(o.incs, start, end)
        for start, end in W.batches(len(o.add_set)):
            rep.add_batch(o.add_set, o.add_elem, start, end)


def w6_check(a: Any, b: Any, exp_counts: Any, exp_sets: Any) -> str:
    """W6's check: both replicas hold the expected counters and identical, expected sets."""
    ca, cb = a.counter_values(), b.counter_values()
    sa, sb = a.set_values(), b.set_values()
    if ca == cb == exp_counts and sa == sb == exp_sets:
        return "pass"
    return (f"FAIL sumA={sum(ca)} sumB={sum(cb)} expected={sum(exp_counts)} "
            f"sets_equal={sa == sb}")
