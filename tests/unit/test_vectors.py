"""Golden encodings: the wire format of the lattice core must not drift unnoticed.

A failure here means the canonical encoding changed. If that was deliberate, bump
``crdtsync.codec.FORMAT_VERSION`` and regenerate with ``python -m tests.vectors.make_vectors``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from crdtsync.codec import decode, encode
from tests.vectors.make_vectors import BUILDERS, PATH, build_states, render

STORED: dict[str, str] = json.loads(PATH.read_text(encoding="utf-8"))
STATES = build_states()


def test_every_vector_is_stored_and_no_stale_one_remains() -> None:
    assert set(STORED) == set(BUILDERS)


def test_the_stored_file_is_what_the_generator_writes() -> None:
    assert PATH.read_text(encoding="utf-8") == render(STATES)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_encoding_matches_the_stored_bytes(name: str) -> None:
    assert encode(STATES[name]) == STORED[name].encode("utf-8")


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_stored_bytes_decode_to_the_state(name: str) -> None:
    decoded: Any = decode(STORED[name].encode("utf-8"))
    assert type(decoded) is type(STATES[name])
    assert decoded == STATES[name]
    assert decoded.value == STATES[name].value


def test_vectors_cover_every_registered_type() -> None:
    from crdtsync.types.base import REGISTRY

    assert {json.loads(v)[0] for v in STORED.values()} == set(REGISTRY)


LIST_FORM: dict[str, str] = json.loads(
    (PATH.parent / "core_list_form.json").read_text(encoding="utf-8"))
"""The vectors whose encoding changed with protocol version 2 (OR-set stores by replica, see
docs/protocol.md, "Set stores"), as crdtsync wrote them before: stores hold them."""


@pytest.mark.parametrize("name", sorted(LIST_FORM))
def test_the_list_form_of_before_still_decodes_to_the_state(name: str) -> None:
    decoded: Any = decode(LIST_FORM[name].encode("utf-8"))
    assert decoded == STATES[name] and decoded.value == STATES[name].value
    assert encode(decoded) == STORED[name].encode("utf-8")  # and re-encodes in the new form
