"""Layering: the lattice core and the sync protocol do no I/O and read no clock.

They must run with no event loop, no socket, no disk and no wall clock, so that the
deterministic simulation can drive them (DESIGN.md, "Layers"). This test parses their
imports and fails on any module that would give them one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "crdtsync"

FORBIDDEN = frozenset({
    "asyncio", "websockets", "sqlite3", "time", "random", "logging", "socket", "threading",
    "os",
})


def pure_modules() -> list[Path]:
    files = [PACKAGE / n for n in ("causal.py", "clock.py", "codec.py", "group.py")]
    files += sorted((PACKAGE / "types").glob("*.py"))
    if (PACKAGE / "sync").is_dir():
        files += sorted((PACKAGE / "sync").rglob("*.py"))
    return files


def forbidden_imports(source: str) -> list[str]:
    """Return the forbidden modules that ``source`` imports, with their line numbers."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Name) and node.func.id == "__import__")
                   or (isinstance(node.func, ast.Attribute)
                       and node.func.attr == "import_module"))):
            names = [node.args[0].value]
        for name in names:
            if name.split(".")[0] in FORBIDDEN:
                found.append(f"line {node.lineno}: {name}")
    return found


def test_the_checked_modules_exist() -> None:
    names = {p.name for p in pure_modules()}
    assert {"causal.py", "clock.py", "codec.py", "group.py", "orset.py", "ormap.py"} <= names


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_pure_layer_imports_no_io_clock_or_randomness(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("source", [
    "import time", "import os.path", "from asyncio import sleep", "import json, logging",
    "from random import Random as R", "def f():\n    import sqlite3",
    "import importlib\nimportlib.import_module('socket')", "__import__('threading')",
    "from websockets.asyncio.client import connect",
])
def test_the_checker_catches_forbidden_imports(source: str) -> None:
    assert forbidden_imports(source)


@pytest.mark.parametrize("source", [
    "import json", "from . import time", "from .random import x", "import timeit",
    "from typing import Any", "import ostree",
])
def test_the_checker_allows_other_imports(source: str) -> None:
    assert forbidden_imports(source) == []
