"""The sync layer is sans-I/O: it imports no clock, socket, disk, thread or randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import crdtsync.sync

FORBIDDEN = {"asyncio", "websockets", "sqlite3", "time", "random", "logging", "socket",
             "threading", "os", "subprocess", "selectors", "datetime"}
SYNC_DIR = Path(crdtsync.sync.__file__).parent


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_sync_imports_no_io() -> None:
    files = sorted(SYNC_DIR.glob("*.py"))
    assert len(files) >= 5
    bad = {f.name: sorted(_imports(f) & FORBIDDEN) for f in files if _imports(f) & FORBIDDEN}
    assert not bad, f"I/O imports in crdtsync/sync: {bad}"


def test_sync_modules_stay_small() -> None:
    long = {f.name: n for f in SYNC_DIR.glob("*.py")
            if (n := len(f.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"
