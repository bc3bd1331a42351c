"""Build the golden encodings of the lattice core and write them to ``core.json``.

Run from the repository root after a *deliberate* change of the wire format (which also
needs a new ``FORMAT_VERSION``)::

    .venv/bin/python -m tests.vectors.make_vectors

``tests/unit/test_vectors.py`` rebuilds the same states and checks that they still encode to
exactly the stored bytes, and that the stored bytes decode to equal states. The states are
built by fixed ops only (no clock, no randomness), so the file is reproducible.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crdtsync.clock import HLCTimestamp, pack
from crdtsync.codec import encode
from crdtsync.types import (
    AWORSet,
    EWFlag,
    GCounter,
    LWWRegister,
    MVRegister,
    ORMap,
    PNCounter,
    RWORSet,
    join,
)

PATH = Path(__file__).with_name("core.json")


def _gcounter() -> GCounter:
    a, b = GCounter(), GCounter()
    a.increment("a", 3)
    a.increment("a")
    b.increment("b", 2**40)
    return join(a, b)


def _pncounter() -> PNCounter:
    c = PNCounter()
    c.increment("a", 10)
    c.decrement("b", 3)
    c.decrement("a")
    return c


def _aworset() -> AWORSet:
    a, b = AWORSet(), AWORSet()
    for e in [1, "1", "x", -5, "é"]:
        a.add("a", e)
    b.merge(a)
    b.remove("b", "x")
    a.add("a", "x")  # concurrent with b's remove: wins
    b.remove("b", -5)
    return join(a, b)


def _aworset_cloud() -> AWORSet:
    """A context with a gap: b's 2nd dot seen, not its 1st."""
    a, b = AWORSet(), AWORSet()
    b.add("b", "early")
    delta = b.add("b", "late")
    a.add("a", 0)
    a.merge(delta)
    return a


def _aworset_remove_delta() -> AWORSet:
    s = AWORSet()
    s.add("a", "gone")
    s.add("c", "gone")
    return s.remove("a", "gone")


def _rworset() -> RWORSet:
    a, b = RWORSet(), RWORSet()
    a.add("a", "x")
    a.add("a", 2)
    b.merge(a)
    b.remove("b", "x")
    a.add("a", "x")  # concurrent with b's remove: loses
    return join(a, b)


def _lww_int() -> LWWRegister:
    r = LWWRegister()
    r.assign("a", {"title": "hi", "tags": [1, "1", True, None, 1.5]}, 1_000)
    return r


def _lww_hlc_tie() -> LWWRegister:
    a, b = LWWRegister(), LWWRegister()
    a.assign("a", "from a", HLCTimestamp(1_700_000_000_000, 2))
    b.assign("b", "from b", pack(1_700_000_000_000, 2))
    return join(a, b)


def _mvregister() -> MVRegister:
    regs = [MVRegister() for _ in range(4)]
    for reg, replica, value in zip(regs, "abcd", [1, True, 1.0, "1"], strict=True):
        reg.assign(replica, value)
    out = MVRegister()
    for reg in regs:
        out.merge(reg)
    return out


def _mvregister_collapsed() -> MVRegister:
    r = _mvregister()
    r.assign("a", [{"k": "v"}])
    return r


def _ewflag(enable_last: bool) -> Callable[[], EWFlag]:
    def build() -> EWFlag:
        a, b = EWFlag(), EWFlag()
        b.merge(a.enable("a"))
        b.disable("b")
        if enable_last:
            a.enable("a")
        return join(a, b)

    return build


def _ormap() -> ORMap:
    m = ORMap()
    m.update("a", "set", AWORSet, lambda s: s.add("a", "alice"))
    m.update("a", 1, RWORSet, lambda s: s.remove("a", "bob"))
    m.update("a", "1", PNCounter, lambda c: c.increment("a", 5))
    m.update("b", "1", PNCounter, lambda c: c.decrement("b", 2))
    m.update("a", "g", GCounter, lambda c: c.increment("a", 7))
    m.update("a", "title", LWWRegister, lambda r: r.assign("a", "hello", 42))
    m.update("b", "title", LWWRegister, lambda r: r.assign("b", "older", 41))
    m.update("a", "mv", MVRegister, lambda r: r.assign("a", [1, 2]))
    m.update("a", "flag", EWFlag, lambda f: f.enable("a"))
    m.update("a", "nested", ORMap,
             lambda inner: inner.update("a", "deep", AWORSet, lambda s: s.add("a", 3)))
    return m


def _ormap_remove_vs_update() -> ORMap:
    a, b = ORMap(), ORMap()
    b.merge(a.update("a", "likes", AWORSet, lambda s: s.add("a", "seen")))
    a.update("a", "likes", AWORSet, lambda s: s.add("a", "unseen"))
    b.merge(a.update("a", "n", PNCounter, lambda c: c.increment("a", 4)))
    b.remove("b", "likes")
    b.remove("b", "n")
    return join(a, b)


def _ormap_type_conflict() -> ORMap:
    a, b = ORMap(), ORMap()
    a.update("a", "k", AWORSet, lambda s: s.add("a", "x"))
    b.update("b", "k", PNCounter, lambda c: c.increment("b", 2))
    return join(a, b)


BUILDERS: dict[str, Callable[[], Any]] = {
    "gcounter_bottom": GCounter,
    "gcounter": _gcounter,
    "pncounter_bottom": PNCounter,
    "pncounter": _pncounter,
    "aworset_bottom": AWORSet,
    "aworset": _aworset,
    "aworset_cloud": _aworset_cloud,
    "aworset_remove_delta": _aworset_remove_delta,
    "rworset": _rworset,
    "lww_bottom": LWWRegister,
    "lww": _lww_int,
    "lww_hlc_tie": _lww_hlc_tie,
    "mvregister": _mvregister,
    "mvregister_collapsed": _mvregister_collapsed,
    "ewflag_off": _ewflag(False),
    "ewflag_on": _ewflag(True),
    "ormap_bottom": ORMap,
    "ormap": _ormap,
    "ormap_remove_vs_update": _ormap_remove_vs_update,
    "ormap_type_conflict": _ormap_type_conflict,
}


def build_states() -> dict[str, Any]:
    """Return every golden state by name, freshly built."""
    return {name: build() for name, build in BUILDERS.items()}


def render(states: dict[str, Any]) -> str:
    """Return the text of ``core.json``: name -> canonical encoding (UTF-8 text)."""
    vectors = {name: encode(x).decode("utf-8") for name, x in states.items()}
    return json.dumps(vectors, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    PATH.write_text(render(build_states()), encoding="utf-8")
    print(f"wrote {len(BUILDERS)} vectors to {PATH}")


if __name__ == "__main__":
    main()
