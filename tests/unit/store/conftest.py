"""Fixtures: every contract test runs against both stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crdtsync.store import Store

from .helpers import Kind


@pytest.fixture(params=["sqlite", "memory"])
def kind(request: pytest.FixtureRequest, tmp_path: Path) -> Kind:
    return Kind(request.param, tmp_path)


@pytest.fixture
def store(kind: Kind) -> Iterator[Store]:
    s = kind.open()
    yield s
    s.close()
