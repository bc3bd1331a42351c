"""Where crdtsync's time and bytes go on the workloads: profiles for whoever optimizes.

Usage (from the repository root)::

    python -m bench.profile                         # all sections, full size (~3 min)
    python -m bench.profile --only W1,W4 --scale 0.2 --top 20 --out /tmp/profile.md

Sections (in-memory replicas, the same op paths as the ``crdtsync-replica`` driver):

- **W1, W2, W3** (one replica; W1 also on SQLite FULL): the time split between the write
  calls and ``replica.commit()`` (and, inside commit, ``store.commit``), measured without
  a profiler, then the top functions by own time under ``cProfile`` (which inflates
  Python-level call costs roughly 2x; the split is the honest figure).
- **W4** (two replicas, persistent in-memory link): time split (A's writes, A's commits
  including ``engine.logged`` and encoding, the pump: B's decode, join, commit, ack) and
  top functions; bytes by message type, and the **anatomy of the Delta messages**: the
  canonical JSON (before any compression the wire codec applies) cut into key names, type
  envelopes (``["pncounter",1,...]``), replica ids, numbers, other strings (set elements)
  and JSON punctuation.
- **W5** (three SyncServices over websockets): every frame captured during the timed
  phase; Delta bytes attributed to the sender's **own** counter entries versus entries of
  other replicas it **forwards** (gossip), plus top functions of the whole event loop.
- **W6**: the anatomy of the two reconnect Deltas (counters part, sets part).

Output: markdown on stdout and in ``--out`` (default ``bench/out/profile-<UTC>.md``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import orjson

from bench.common import REPO, workloads
from bench.replica_common import MEMORY, SQLITE_FULL, Replicas, StoreKind, new_ops
from bench.runners import w6_apart

# ---------------------------------------------------------------- helpers


def _top(prof: cProfile.Profile, n: int, total: float) -> str:
    """Markdown table of the top ``n`` functions by own time."""
    st = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    stats: dict[Any, Any] = st.stats  # type: ignore[attr-defined]
    for (file, line, func), (_cc, nc, tt, ct, _callers) in stats.items():
        rows.append((tt, ct, nc, _where(file, line, func)))
    rows.sort(reverse=True)
    prof_total = sum(r[0] for r in rows) or 1.0
    out = ["| own s | own % | cumulative s | calls | function |", "|---|---|---|---|---|"]
    for tt, ct, nc, where in rows[:n]:
        out.append(f"| {tt:.3f} | {100 * tt / prof_total:.1f} | {ct:.3f} | {nc:,} | "
                   f"`{where}` |")
    out.append(f"\n(profiled run: {prof_total:.2f} s of own time in total; the same work "
               f"took {total:.2f} s without the profiler)")
    return "\n".join(out)


def _where(file: str, line: int, func: str) -> str:
    if file == "~":
        return func
    for marker in ("/crdtsync/", "/bench/", "/site-packages/", "/lib/python3"):
        if marker in file:
            file = file[file.index(marker) + 1:]
            break
    return f"{file}:{line}({func})"


def _profiled(fn: Callable[[], Any]) -> tuple[cProfile.Profile, Any]:
    prof = cProfile.Profile()
    prof.enable()
    try:
        result = fn()
    finally:
        prof.disable()
    return prof, result


class _Timed:
    """Wrap a bound method with a wall-clock accumulator (instance attribute)."""

    def __init__(self, obj: Any, name: str) -> None:
        self.seconds = 0.0
        self.calls = 0
        inner = getattr(obj, name)

        def wrapper(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(*args, **kw)
            finally:
                self.seconds += time.perf_counter() - t0
                self.calls += 1

        setattr(obj, name, wrapper)


# ---------------------------------------------------------------- W1-W3


def _local_split(wl: str, kind: StoreKind, scale: float) -> tuple[str, Callable[[], Any]]:
    """Time the op calls and the commits of one W1/W2/W3 run separately (no profiler)."""
    W = workloads()
    replicas = Replicas(kind)
    ops = new_ops(replicas, 0)
    rep = ops.replica
    store_commit = _Timed(rep.store, "commit")
    rep_commit = _Timed(rep, "commit")
    t0 = time.perf_counter()
    if wl == "W1":
        stream = W.w1(scale)
        t0 = time.perf_counter()
        for a, b in W.batches(len(stream)):
            ops.inc_batch(stream, a, b)
        n = len(stream)
    elif wl == "W2":
        w2 = W.w2(scale)
        t0 = time.perf_counter()
        for a, b in W.batches(len(w2.add_set)):
            ops.add_batch(w2.add_set, w2.add_elem, a, b)
        t_add = time.perf_counter() - t0
        c_add = rep_commit.seconds
        for a, b in W.batches(len(w2.rem_set)):
            ops.remove_batch(w2.rem_set, w2.rem_elem, a, b)
        n = len(w2.add_set) + len(w2.rem_set)
    else:
        w3 = W.w3(scale)
        t0 = time.perf_counter()
        for a, b in W.batches(len(w3.keys)):
            ops.lww_batch(w3.keys, w3.values, a, b)
        n = len(w3.keys)
    total = time.perf_counter() - t0
    commits = rep_commit.seconds
    lines = [f"- {n:,} ops in {total:.3f} s ({n / total:,.0f} ops/s); write calls "
             f"{total - commits:.3f} s ({1e6 * (total - commits) / n:.2f} µs/op); "
             f"`replica.commit()` {commits:.3f} s over {rep_commit.calls:,} commits "
             f"({1e3 * commits / max(rep_commit.calls, 1):.2f} ms each), of which "
             f"`store.commit` {store_commit.seconds:.3f} s"]
    if wl == "W2":
        lines.append(f"- adds: {t_add:.3f} s (commits {c_add:.3f} s); removes: "
                     f"{total - t_add:.3f} s (commits {commits - c_add:.3f} s)")
    replicas.close()

    def again() -> Any:
        with Replicas(kind) as reps2:
            o = new_ops(reps2, 0)
            if wl == "W1":
                for a, b in W.batches(len(stream)):
                    o.inc_batch(stream, a, b)
            elif wl == "W2":
                for a, b in W.batches(len(w2.add_set)):
                    o.add_batch(w2.add_set, w2.add_elem, a, b)
                for a, b in W.batches(len(w2.rem_set)):
                    o.remove_batch(w2.rem_set, w2.rem_elem, a, b)
            else:
                for a, b in W.batches(len(w3.keys)):
                    o.lww_batch(w3.keys, w3.values, a, b)
        return total

    return "\n".join(lines), again


def section_local(wl: str, kind: StoreKind, scale: float, top: int) -> str:
    split, again = _local_split(wl, kind, scale)
    prof, total = _profiled(again)
    title = {"W1": "W1 counters", "W2": "W2 sets", "W3": "W3 LWW registers"}[wl]
    return (f"### {title}: replica on {kind.describe()}\n\n{split}\n\n"
            f"Top functions by own time (cProfile):\n\n{_top(prof, top, total)}\n")


# ---------------------------------------------------------------- message anatomy

_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null')


def _json_of(data: bytes) -> bytes:
    """The canonical JSON of a frame (inflating the wire codec's compressed form)."""
    if data[:1] == b"\x01":
        import zlib

        return zlib.decompress(data[1:])
    return data


class Anatomy:
    """Bytes of Delta/States JSON by role: keys, type envelopes, replica ids, numbers..."""

    def __init__(self, replica_ids: set[str]) -> None:
        self.rids = {f'"{r}"'.encode() for r in replica_ids}
        self.parts: Counter[str] = Counter()
        self.by_type: Counter[str] = Counter()
        self.entries: Counter[str] = Counter()
        self.wire = 0
        self.json = 0
        self.messages = 0

    def add(self, frame: bytes) -> None:
        raw = _json_of(frame)
        obj = orjson.loads(raw)
        if obj.get("type") not in ("delta", "states"):
            return
        self.messages += 1
        self.wire += len(frame)
        self.json += len(raw)
        group = obj["group"]
        body = 0
        if isinstance(group, dict):  # counter columns: {"d": [...], "c": [...]}
            for col in group["c"]:
                tag, _version, replica, up, down = col
                entry = len(orjson.dumps(col))
                names = sum(len(orjson.dumps(k)) for k in chain(up, down))
                nums = sum(len(str(n)) for n in chain(up.values(), down.values()))
                self.parts["key names"] += names
                self.parts["replica ids (quoted)"] += len(orjson.dumps(replica))
                self.parts["numbers (counts, dot seqs, timestamps)"] += nums
                self.parts["column envelopes and punctuation"] += (
                    entry - names - nums - len(orjson.dumps(replica)))
                self.by_type[f"{tag} column"] += entry
                self.entries[f"{tag} column"] += len(up) + len(down)
                body += entry
            group = group["d"]
        for key, env in group:
            tag, _version, state = env
            k = len(orjson.dumps(key))
            st = orjson.dumps(state)
            entry = len(orjson.dumps([key, env]))
            self.parts["key names"] += k
            self.parts["type envelope ([tag, version, ...] and the entry's brackets)"] += (
                entry - k - len(st))
            self._state(st)
            self.by_type[tag] += entry
            self.entries[tag] += 1
            body += entry
        self.parts["message header and group list"] += len(raw) - body

    def _state(self, st: bytes) -> None:
        rest = len(st)
        for m in _TOKEN.finditer(st):
            tok = m.group(0)
            rest -= len(tok)
            if tok in self.rids:
                self.parts["replica ids (quoted)"] += len(tok)
            elif tok[:1] == b'"':
                self.parts["other strings (set elements, values)"] += len(tok)
            else:
                self.parts["numbers (counts, dot seqs, timestamps)"] += len(tok)
        self.parts["JSON punctuation inside states"] += rest

    def table(self) -> str:
        total = sum(self.parts.values()) or 1
        out = [f"{self.messages:,} Delta/States messages: {self.json:,} B of canonical JSON, "
               f"{self.wire:,} B on the wire ({self.wire / max(self.json, 1):.2f}x "
               "of the JSON)\n",
               "| part of the JSON | bytes | % |", "|---|---|---|"]
        for part, n in self.parts.most_common():
            out.append(f"| {part} | {n:,} | {100 * n / total:.1f} |")
        ents = ", ".join(f"{t}: {n:,} entries, {self.by_type[t] / n:.1f} B/entry"
                         for t, n in self.entries.most_common())
        out.append(f"\nPer type: {ents}")
        return "\n".join(out)


# ---------------------------------------------------------------- W4 / W6


def section_w4(scale: float, top: int) -> str:
    from bench.syncpump import Net, Node

    W = workloads()
    ops = W.w1(scale)
    n = len(ops)
    per = -(-n // W.W4_BATCHES)

    def run(capture: list[bytes] | None) -> dict[str, Any]:
        with Replicas(MEMORY) as replicas:
            A, B = new_ops(replicas, 0), new_ops(replicas, 1)
            net = Net()
            na, nb = Node(A.replica, net), Node(B.replica, net)
            net.connect(na, nb)
            net.pump()
            a_commit = _Timed(A.replica, "commit")
            b_commit = _Timed(B.replica, "commit")
            t0 = time.perf_counter()
            t_pump = 0.0
            for start in range(0, n, per):
                stop = min(start + per, n)
                for a, b in W.batches(stop - start):
                    A.inc_batch(ops, start + a, start + b)
                if capture is not None:
                    capture += [d for _, _, d in net.queue]
                ts = time.perf_counter()
                net.pump()
                t_pump += time.perf_counter() - ts
            total = time.perf_counter() - t0
            return {"total": total, "a_commit": a_commit.seconds, "b_commit": b_commit.seconds,
                    "pump": t_pump, "a_writes": total - t_pump - a_commit.seconds,
                    "encode": na.encode_seconds + nb.encode_seconds,
                    "bytes": dict(na.sent_bytes + nb.sent_bytes),
                    "msgs": dict(na.sent_msgs + nb.sent_msgs),
                    "rids": {A.replica.replica_id, B.replica.replica_id}}

    frames: list[bytes] = []
    r = run(frames)
    anat = Anatomy(r["rids"])
    for f in frames:
        anat.add(f)
    by = ", ".join(f"{t} {b:,} B in {r['msgs'][t]:,} messages" for t, b in
                   sorted(r["bytes"].items(), key=lambda kv: -kv[1]))
    split = (f"- {n:,} ops in {r['total']:.3f} s: A's write calls {r['a_writes']:.3f} s; "
             f"A's commits {r['a_commit']:.3f} s (store transaction + delta-log entry + "
             f"`engine.logged` + encoding its Delta); pump {r['pump']:.3f} s (B decodes, "
             f"joins, commits {r['b_commit']:.3f} s, acks; A handles acks); encoding all "
             f"messages {r['encode']:.3f} s\n- bytes by message type: {by}")
    prof, _ = _profiled(lambda: run(None))
    return (f"### W4: replica A -> B over a persistent in-memory link\n\n{split}\n\n"
            f"Delta anatomy:\n\n{anat.table()}\n\nTop functions by own time (cProfile):\n\n"
            f"{_top(prof, top, r['total'])}\n")


def section_w6(scale: float, top: int) -> str:
    from bench.syncpump import Net, Node

    W = workloads()
    work = W.w6(scale)

    def run(frames: list[bytes] | None) -> tuple[float, dict[str, int], set[str]]:
        with Replicas(MEMORY) as replicas:
            A, B = new_ops(replicas, 0), new_ops(replicas, 1)
            net = Net()
            na, nb = Node(A.replica, net), Node(B.replica, net)
            w6_apart(W, A, B, work)
            t0 = time.perf_counter()
            net.connect(na, nb)
            while net.queue:
                node, link, data = net.queue.popleft()
                if frames is not None:
                    frames.append(data)
                node.deliver(link, data)
            total = time.perf_counter() - t0
            return (total, dict(na.sent_bytes + nb.sent_bytes),
                    {A.replica.replica_id, B.replica.replica_id})

    frames: list[bytes] = []
    total, by, rids = run(frames)
    anat = Anatomy(rids)
    for f in frames:
        anat.add(f)
    # Profile only the exchange: the partitioned local work runs before enabling it.
    prof = cProfile.Profile()
    _run_w6_profiled(prof, work)
    return (f"### W6: the reconnect exchange\n\n- {len(frames)} messages, "
            f"{sum(by.values()):,} B in {total:.3f} s; by type: {by}\n\n{anat.table()}\n\n"
            f"Top functions by own time (cProfile, the exchange only):\n\n"
            f"{_top(prof, top, total)}\n")


def _run_w6_profiled(prof: cProfile.Profile, work: Any) -> None:
    from bench.syncpump import Net, Node

    W = workloads()
    with Replicas(MEMORY) as replicas:
        A, B = new_ops(replicas, 0), new_ops(replicas, 1)
        net = Net()
        na, nb = Node(A.replica, net), Node(B.replica, net)
        w6_apart(W, A, B, work)
        prof.enable()
        try:
            net.connect(na, nb)
            net.pump()
        finally:
            prof.disable()


# ---------------------------------------------------------------- W5


def _delta_parts(group: Any, sender: str) -> list[tuple[int, int, int]]:
    """``(JSON bytes, entries of the sender, entries of other replicas)`` per key of a Delta's
    group and per column (a column names its replica once: all or none of it is the
    sender's)."""
    items, columns = (group["d"], group["c"]) if isinstance(group, dict) else (group, [])
    out = []
    for key, env in items:
        state = env[2]
        ents = state[0] if isinstance(state, list) else state
        mine = sum(1 for r in ents if r == sender)
        out.append((len(orjson.dumps([key, env])), mine, len(ents) - mine))
    for col in columns:
        n = len(col[3]) + len(col[4])
        out.append((len(orjson.dumps(col)), n if col[2] == sender else 0,
                    0 if col[2] == sender else n))
    return out


def section_w5(scale: float, top: int) -> str:
    import asyncio

    from bench.replica_common import replica_id
    from bench.w5 import _w5_crdtsync

    capture: list[tuple[str, bytes]] = []
    res = asyncio.run(_w5_crdtsync(MEMORY, scale, capture=capture))
    rids = {replica_id(i) for i in range(3)}
    own = fwd = 0.0
    own_entries = fwd_entries = 0
    kinds: Counter[str] = Counter()
    msgs: Counter[str] = Counter()
    per_sender: dict[str, Counter[str]] = defaultdict(Counter)
    anat = Anatomy(rids)
    for sender, frame in capture:
        raw = _json_of(frame)
        obj = orjson.loads(raw)
        kinds[obj["type"]] += len(frame)
        msgs[obj["type"]] += 1
        if obj["type"] != "delta":
            continue
        anat.add(frame)
        scale_wire = len(frame) / len(raw)  # share of the (compressed) frame per JSON byte
        for entry, mine, others in _delta_parts(obj["group"], sender):
            own_entries += mine
            fwd_entries += others
            share = mine / max(mine + others, 1)
            own += entry * share * scale_wire
            fwd += entry * (1 - share) * scale_wire
            per_sender[sender]["own"] += int(entry * share * scale_wire)
            per_sender[sender]["forwarded"] += int(entry * (1 - share) * scale_wire)
    by = ", ".join(f"{t} {b:,} B / {msgs[t]:,} msgs" for t, b in kinds.most_common())
    delta_total = own + fwd
    out = [f"### W5: three SyncServices over websockets (scale {scale})\n",
           f"- converged in {res['seconds']:.3f} s (CPU {res['cpu_seconds']:.3f} s), local work "
           f"done at {res['local_work_seconds']:.3f} s; `bytes` (services' bytes_sent) "
           f"{res['bytes']:,}, {res['commits']:,} commits over the 3 replicas",
           f"- frames captured on the wire during the timed phase: {by}",
           f"- Delta bytes on the wire: **own entries {own:,.0f} B "
           f"({100 * own / max(delta_total, 1):.0f}%)**, **forwarded entries of other "
           f"replicas {fwd:,.0f} B ({100 * fwd / max(delta_total, 1):.0f}%)** "
           f"({own_entries:,} own counter entries, {fwd_entries:,} forwarded)",
           "- per sender (own / forwarded Delta bytes): " + "; ".join(
               f"{who}: {c['own']:,} / {c['forwarded']:,}" for who, c in sorted(
                   per_sender.items())),
           "", anat.table(), ""]
    prof, res2 = _profiled(lambda: asyncio.run(_w5_crdtsync(MEMORY, scale)))
    out.append("Top functions by own time (cProfile, one more run, whole event loop):\n")
    out.append(_top(prof, top, res2["seconds"]))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--only", default="W1,W1-durable,W2,W3,W4,W5,W6")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    if not 0 < a.scale <= 1:
        ap.error("--scale must be in (0, 1]")
    only = [x.strip() for x in a.only.split(",") if x.strip()]
    from bench.drivers.crdtsync_types import commit

    stamp = datetime.now(UTC)
    parts = [f"## crdtsync profile ({stamp:%Y-%m-%d %H:%M} UTC, scale {a.scale}, commit "
             f"{commit()})\n"]
    makers: dict[str, Callable[[], str]] = {
        "W1": lambda: section_local("W1", MEMORY, a.scale, a.top),
        "W1-durable": lambda: section_local("W1", SQLITE_FULL, a.scale, a.top),
        "W2": lambda: section_local("W2", MEMORY, a.scale, a.top),
        "W3": lambda: section_local("W3", MEMORY, a.scale, a.top),
        "W4": lambda: section_w4(a.scale, a.top),
        "W5": lambda: section_w5(a.scale, a.top),
        "W6": lambda: section_w6(a.scale, a.top),
    }
    for name in only:
        if name not in makers:
            ap.error(f"unknown section {name!r}; known: {', '.join(makers)}")
        print(f"[profile] {name} ...", file=sys.stderr, flush=True)
        parts.append(makers[name]())
    text = "\n".join(parts)
    out = a.out or REPO / "bench" / "out" / f"profile-{stamp:%Y%m%d-%H%M%S}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
