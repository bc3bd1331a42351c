"""Registry of benchmark drivers: library name -> module.

A driver module describes how one library (or one way of using crdtsync) runs the
workloads. It must define:

``LIBRARY``   the name used on the command line and in the results (``"loro"``)
``KIND``      ``"crdtsync"`` for a crdtsync variant, ``"peer"`` for another library; the
              summary compares every row with the best *peer*
``REQUIRES``  top-level modules that must be importable (``("loro",)``); if one is missing
              the library is reported as "skipped: not installed" and never started
``MODEL``     dict: how the library models counters / sets / LWW map / batches / sync
``WORKLOADS`` dict workload id -> ``fn(scale: float) -> dict`` returning the measured
              fields (see :mod:`bench.runners`; most drivers wrap the generic runners)
``PENDING``   dict workload id -> reason, for workloads the driver cannot run yet; the
              summary shows them as "not implemented yet" (never a made-up number)
``version()`` the version string reported with every result

Optional: ``WORKLOAD_REQUIRES`` dict workload id -> extra importable modules that one
workload needs (pycrdt's W5 needs ``pycrdt.websocket``); a missing one reports that
workload alone as "skipped: not installed".

The module must import its library lazily (inside functions), so that the registry can be
read, and unavailable libraries reported, without the optional packages installed.

To add a driver: write ``bench/drivers/<name>.py`` with the attributes above and add one
line to :data:`DRIVERS`. See ``bench/README.md``.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

DRIVERS: dict[str, str] = {
    "crdtsync-types": "bench.drivers.crdtsync_types",
    "crdtsync-replica": "bench.drivers.crdtsync_replica",
    "crdtsync-durable": "bench.drivers.crdtsync_durable",
    "crdtsync-durable-normal": "bench.drivers.crdtsync_durable_normal",
    "pycrdt": "bench.drivers.pycrdt_driver",
    "loro": "bench.drivers.loro_driver",
    "loro-rootctr": "bench.drivers.loro_rootctr_driver",
}

WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6")


def load(name: str) -> ModuleType:
    """Import and return the driver module registered under ``name``."""
    try:
        path = DRIVERS[name]
    except KeyError:
        raise KeyError(f"unknown library {name!r}; known: {', '.join(DRIVERS)}") from None
    return importlib.import_module(path)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a dotted name whose parent package is missing
        return False


def missing_requirements(driver: ModuleType, workload: str | None = None) -> list[str]:
    """Modules the driver (and, if given, that one workload) needs that are not importable."""
    needed = list(getattr(driver, "REQUIRES", ()))
    if workload is not None:
        needed += getattr(driver, "WORKLOAD_REQUIRES", {}).get(workload, ())
    return [m for m in needed if not _importable(m)]


def status(driver: ModuleType, workload: str) -> str | None:
    """None if ``driver`` can run ``workload``; else why not (for the summary table)."""
    if missing_requirements(driver):
        return "skipped: not installed"
    if workload in driver.WORKLOADS:
        missing = missing_requirements(driver, workload)
        if missing:
            return f"skipped: not installed ({', '.join(missing)})"
        return None
    pending = getattr(driver, "PENDING", {})
    if workload in pending:
        return f"not implemented yet: {pending[workload]}"
    return "not applicable"
