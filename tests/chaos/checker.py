"""Check a recorded history and the replicas' final states (in the style of Jepsen's checkers).

A history is one :class:`Op` per client operation: when it was invoked, when it completed,
and how: ``ok`` (acknowledged: durable on the replica that answered), ``fail`` (refused
with an error code that means "not applied") or ``unknown`` (the connection died or the
answer did not come in time; ``timeout`` and ``internal`` errors too: the write may still
take effect). An unknown op has no completion time: it may take effect at any later moment.

Rules (each broken rule is an :class:`Anomaly`):

- **convergence**: after the final heal every replica reads the same value for every key
  within the bound, and the stores then hold byte-identical states (``divergence``);
- **sets** (Jepsen set-full): an element with an acknowledged add that no remove could have
  cancelled (no remove, acknowledged or unknown, that did not complete before the add was
  invoked) is present on every replica (``lost``); a present element had an add that was
  acknowledged or unknown (``phantom``);
- **counters** (Jepsen counter): the final value lies between the sum of acknowledged
  increments and the sum of acknowledged and unknown ones (``counter``);
- **registers** (LWW): the final value is a value some write wrote (acknowledged or
  unknown; ``lww-phantom``), the stored winner's replica and HLC timestamp match that write
  (the timestamp lies strictly between the ``clock.now`` its client read just before and
  just after it: ``lww-stamp``), and no acknowledged write has a timestamp certainly greater
  than the winner's (``lww-order``): certainly greater means either its exact stamp, read
  back from a store's log or delta chain when one still holds it, is greater than the
  winner's (timestamp, replica), or its "before" stamp is already >= the winner's timestamp;
  every exact stamp found must lie inside its write's clock stamps too (``lww-stamp``);
- **dots**: no dot tags two different elements of a set, and no (timestamp, replica) stamps
  two different register values, in any state, delta chain or log entry of any store
  (``dot-reuse``, ``stamp-reuse``): a replica re-issued an event id someone had seen.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from crdtsync.clock import unpack
from crdtsync.codec import decode

__all__ = ["Op", "Observation", "RegisterState", "Anomaly", "Report", "check", "classify",
           "OK", "FAIL", "UNKNOWN"]

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"

_NOT_APPLIED = frozenset({"bad_json", "bad_request", "unknown_op", "bad_argument",
                          "type_mismatch", "read_only"})


def classify(response: dict[str, Any]) -> tuple[str, str | None]:
    """Map a client-API response to ``(status, error code)``."""
    if response.get("ok"):
        return OK, None
    code = str((response.get("error") or {}).get("code", "?"))
    return (FAIL if code in _NOT_APPLIED else UNKNOWN), code


@dataclass
class Op:
    """One client operation. ``f``: incr / add / remove / assign; times in run seconds.

    For ``assign``, ``lo`` and ``hi`` are HLC stamps the same connection read from
    ``clock.now`` just before and just after the write (``hi`` None if not read).
    """

    process: int
    f: str
    key: str
    value: Any
    replica: str
    invoke: float
    complete: float | None = None
    status: str = UNKNOWN
    error: str | None = None
    lo: int | None = None
    hi: int | None = None

    def line(self) -> str:
        """One line for a report."""
        end = "?" if self.complete is None else f"{self.complete:.3f}"
        err = f" ({self.error})" if self.error else ""
        return (f"client {self.process} {self.f} {self.key} {self.value!r} on {self.replica} "
                f"[{self.invoke:.3f}, {end}] {self.status}{err}")


@dataclass(frozen=True)
class RegisterState:
    """A register's winning write as a store holds it."""

    timestamp: int | None
    writer: str | None
    value: Any


@dataclass
class Observation:
    """What the harness saw after the run (see :mod:`.stores` for where it comes from)."""

    values: dict[str, dict[str, Any]]
    states: dict[str, dict[str, bytes]]
    registers: dict[str, dict[str, RegisterState]]
    dots: dict[tuple[str, Any], set[Any]]
    stamps: dict[tuple[str, int, str], set[bytes]]
    converged_after: float | None
    read_divergence: str = ""
    offsets: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Anomaly:
    """One broken rule."""

    kind: str
    key: str
    detail: str

    def line(self) -> str:
        """One line for a report."""
        return f"{self.kind} {self.key}: {self.detail}"


@dataclass
class Report:
    """The checker's verdict."""

    anomalies: list[Anomaly]
    lost: int
    divergent: bool
    converged_after: float | None
    notes: list[str]
    counts: dict[str, int]
    overtaken: int = 0

    @property
    def ok(self) -> bool:
        """True if no rule was broken."""
        return not self.anomalies

    def text(self) -> str:
        """Several lines: the counts, the anomalies, the notes."""
        conv = ("not within the bound" if self.converged_after is None
                else f"{self.converged_after:.2f} s")
        head = (f"ops {self.counts.get(OK, 0)} ok / {self.counts.get(FAIL, 0)} fail / "
                f"{self.counts.get(UNKNOWN, 0)} unknown; heal->converged {conv}; "
                f"lost writes {self.lost}; divergent {self.divergent}")
        return "\n".join([head, *("ANOMALY " + a.line() for a in self.anomalies),
                          *("note: " + n for n in self.notes)])


def check(history: list[Op], obs: Observation) -> Report:
    """Apply every rule of the module docstring; return the report."""
    anomalies: list[Anomaly] = []
    notes: list[str] = []
    divergent = _check_convergence(obs, anomalies)
    lost = _check_sets(history, obs, anomalies)
    lost += _check_counters(history, obs, anomalies)
    overtaken = _check_registers(history, obs, anomalies, notes)
    _check_reuse(obs, anomalies)
    counts: dict[str, int] = defaultdict(int)
    for op in history:
        counts[op.status] += 1
    return Report(anomalies, lost, divergent, obs.converged_after, notes, dict(counts),
                  overtaken)


def _by_key(history: list[Op], f: str | tuple[str, ...]) -> dict[str, list[Op]]:
    fs = (f,) if isinstance(f, str) else f
    out: dict[str, list[Op]] = defaultdict(list)
    for op in history:
        if op.f in fs:
            out[op.key].append(op)
    return out


def _check_convergence(obs: Observation, anomalies: list[Anomaly]) -> bool:
    divergent = False
    if obs.converged_after is None:
        divergent = True
        anomalies.append(Anomaly("divergence", "*", "replicas did not read equal within the "
                                 f"bound after the final heal: {obs.read_divergence}"))
    replicas = sorted(obs.states)
    keys = sorted({k for states in obs.states.values() for k in states})
    for key in keys:
        blobs = {r: obs.states[r].get(key) for r in replicas}
        if len(set(blobs.values())) > 1:
            divergent = True
            shown = {r: obs.values[r].get(key) for r in replicas}
            anomalies.append(Anomaly("divergence", key, f"stores differ at the end: {shown}"))
    return divergent


def _cancellable(add: Op, removes: list[Op]) -> bool:
    """True if some remove may have observed (and so removed) ``add``'s element."""
    return any(r.status != FAIL and (r.complete is None or r.complete >= add.invoke)
               for r in removes)


def _check_sets(history: list[Op], obs: Observation, anomalies: list[Anomaly]) -> int:
    adds, removes = _by_key(history, "add"), _by_key(history, "remove")
    lost: set[tuple[str, Any]] = set()
    for key in sorted(set(adds) | {k for v in obs.values.values() for k in v if k in adds}):
        by_elem: dict[Any, list[Op]] = defaultdict(list)
        for op in adds[key]:
            by_elem[op.value].append(op)
        rm_by_elem: dict[Any, list[Op]] = defaultdict(list)
        for op in removes.get(key, []):
            rm_by_elem[op.value].append(op)
        required = {e for e, ops in by_elem.items()
                    if any(a.status == OK and not _cancellable(a, rm_by_elem[e]) for a in ops)}
        possible = {e for e, ops in by_elem.items() if any(a.status != FAIL for a in ops)}
        for replica, values in sorted(obs.values.items()):
            present = set(values.get(key) or ())
            for e in sorted(required - present):
                lost.add((key, e))
                witness = next(a for a in by_elem[e] if a.status == OK
                               and not _cancellable(a, rm_by_elem[e]))
                anomalies.append(Anomaly("lost", key, f"element {e!r} missing on {replica}; "
                                         f"acknowledged: {witness.line()}"))
            for e in sorted(present - possible, key=repr):
                anomalies.append(Anomaly("phantom", key, f"element {e!r} on {replica} was "
                                         "never added (acknowledged or unknown)"))
    return len(lost)


def _check_counters(history: list[Op], obs: Observation, anomalies: list[Anomaly]) -> int:
    lost = 0
    for key, ops in sorted(_by_key(history, "incr").items()):
        low = sum(op.value for op in ops if op.status == OK)
        high = low + sum(op.value for op in ops if op.status == UNKNOWN)
        worst = 0
        for replica, values in sorted(obs.values.items()):
            value = values.get(key) or 0
            if not low <= value <= high:
                anomalies.append(Anomaly("counter", key, f"{value} on {replica}, expected "
                                         f"{low}..{high} (acknowledged..attempted)"))
                worst = max(worst, low - value)
        lost += worst
    return lost


def _exact_stamps(obs: Observation) -> dict[tuple[str, str], tuple[int, str]]:
    """(key, repr(value)) -> (timestamp, replica id) of every write some store still holds."""
    out: dict[tuple[str, str], tuple[int, str]] = {}
    for (key, ts, rid), blobs in obs.stamps.items():
        for blob in blobs:
            out[(key, repr(decode(blob).value))] = (ts, rid)
    return out


def _check_registers(history: list[Op], obs: Observation, anomalies: list[Anomaly],
                     notes: list[str]) -> int:
    """Check every register; return how many acknowledged writes lost to an older one."""
    overtaken = 0
    exact = _exact_stamps(obs)
    for key, ops in sorted(_by_key(history, "assign").items()):
        holders: dict[RegisterState | None, list[str]] = defaultdict(list)
        for replica, regs in sorted(obs.registers.items()):
            holders[regs.get(key)].append(replica)
        for reg, replicas in holders.items():
            overtaken += _check_register(key, ops, "/".join(replicas), reg, obs, exact,
                                         anomalies, notes)
    return overtaken


def _check_register(key: str, ops: list[Op], where: str, reg: RegisterState | None,
                    obs: Observation, exact: dict[tuple[str, str], tuple[int, str]],
                    anomalies: list[Anomaly], notes: list[str]) -> int:
    acked = [op for op in ops if op.status == OK]
    if reg is None or reg.timestamp is None:
        if acked:
            anomalies.append(Anomaly("lww-phantom", key, f"empty on {where} after "
                                     f"{len(acked)} acknowledged writes"))
        return 0
    wins = [op for op in ops if op.value == reg.value and op.status != FAIL]
    if not wins:
        anomalies.append(Anomaly("lww-phantom", key, f"{reg.value!r} on {where} was never "
                                 "written (acknowledged or unknown)"))
        return 0
    win = wins[0]
    ts, writer = reg.timestamp, reg.writer or ""
    if writer.split(".")[0] != win.replica or not _in_bracket(win, ts):
        anomalies.append(Anomaly("lww-stamp", key, f"winner on {where} stamped {ts} by "
                                 f"{writer}, but written as {win.line()} between clock stamps "
                                 f"{win.lo} and {win.hi}"))
    known = _check_order(key, where, win, (ts, writer), acked, exact, anomalies)
    done = win.complete if win.complete is not None else win.invoke
    overtaken = sum(1 for op in acked if op is not win and op.invoke > done)
    notes.append(_winner_note(key, win, ts, writer, overtaken, obs)
                 + f"; {known} of {len(acked)} acknowledged writes' stamps read from stores")
    return overtaken


def _in_bracket(op: Op, ts: int) -> bool:
    return (op.lo is None or op.lo < ts) and (op.hi is None or ts < op.hi)


def _check_order(key: str, where: str, win: Op, stamp: tuple[int, str], acked: list[Op],
                 exact: dict[tuple[str, str], tuple[int, str]],
                 anomalies: list[Anomaly]) -> int:
    """No acknowledged write may stamp above the winner; return how many stamps were exact."""
    known = 0
    for op in acked:
        mine = exact.get((key, repr(op.value)))
        if mine is not None:
            known += 1
            if not _in_bracket(op, mine[0]):
                anomalies.append(Anomaly("lww-stamp", key, f"{op.line()} stamped {mine} "
                                         f"outside its clock stamps {op.lo}..{op.hi}"))
        if op is win:
            continue
        if mine is not None and mine > stamp:
            anomalies.append(Anomaly("lww-order", key, f"on {where} {win.value!r} {stamp} "
                                     f"beat {op.line()} stamped {mine}"))
        elif mine is None and op.lo is not None and op.lo >= stamp[0]:
            anomalies.append(Anomaly("lww-order", key, f"on {where} {win.value!r} {stamp} "
                                     f"beat {op.line()} whose stamp exceeds {op.lo}"))
    return known


def _winner_note(key: str, win: Op, ts: int, writer: str, overtaken: int,
                 obs: Observation) -> str:
    """Say which write won, and how many acknowledged writes made after it in real time lost."""
    offset = obs.offsets.get(win.replica, 0)
    skew = f", clock offset {offset:+d} ms" if offset else ""
    physical, logical = unpack(ts)
    return (f"{key}: {win.value!r} won ({win.status}, written on {win.replica}{skew}, "
            f"HLC {physical}.{logical} by {writer}); {overtaken} acknowledged writes "
            f"invoked after it completed lost to it")


def _check_reuse(obs: Observation, anomalies: list[Anomaly]) -> None:
    for (key, dot), payloads in sorted(obs.dots.items(), key=repr):
        if len(payloads) > 1:
            anomalies.append(Anomaly("dot-reuse", key, f"dot {dot} tags "
                                     f"{sorted(payloads, key=repr)}"))
    for (key, ts, rid), values in sorted(obs.stamps.items()):
        if len(values) > 1:
            anomalies.append(Anomaly("stamp-reuse", key, f"stamp ({ts}, {rid}) holds "
                                     f"{sorted(values)}"))
