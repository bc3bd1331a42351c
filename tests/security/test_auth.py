"""The challenge-response of crdtsync.transport.auth, sans-I/O: frames in, frames out."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from crdtsync.transport.auth import (
    MAX_AUTH_FRAME,
    Authenticator,
    AuthError,
    is_auth_frame,
    load_secret,
    proof,
)

SECRET = b"a shared secret of enough bytes"


def pair(secret_a: bytes = SECRET, secret_b: bytes = SECRET, **kw: object
         ) -> tuple[Authenticator, Authenticator]:
    a = Authenticator(secret_a, cluster="feed", replica="us.00000001", role="dial", **kw)  # type: ignore[arg-type]
    b = Authenticator(secret_b, cluster="feed", replica="eu.00000002", role="accept")
    return a, b


def run(a: Authenticator, b: Authenticator) -> None:
    """Deliver frames both ways until both are done (or one raises)."""
    to_b, to_a = [a.start()], [b.start()]
    for _ in range(4):
        if to_b:
            to_a += b.receive(to_b.pop(0))
        if to_a:
            to_b += a.receive(to_a.pop(0))
    assert not to_a and not to_b


def test_same_secret_authenticates_both_sides() -> None:
    a, b = pair()
    run(a, b)
    assert a.done and b.done
    assert a.peer == "eu.00000002" and b.peer == "us.00000001"


def test_secret_never_crosses_the_wire() -> None:
    a, b = pair()
    frames = [a.start(), b.start()]
    frames += b.receive(frames[0]) + a.receive(frames[1])
    for frame in frames:
        assert SECRET not in frame and SECRET.hex().encode() not in frame


def test_wrong_secret_is_refused() -> None:
    a, b = pair(secret_b=b"another secret, also long enough")
    with pytest.raises(AuthError, match="does not verify"):
        run(a, b)


def test_other_cluster_is_refused() -> None:
    a = Authenticator(SECRET, cluster="feed", replica="us.1", role="dial")
    b = Authenticator(SECRET, cluster="other", replica="eu.1", role="accept")
    a.start()
    with pytest.raises(AuthError, match="cluster"):
        b.start() and b.receive(a.start())


def test_replayed_handshake_is_refused() -> None:
    """A recorded dialler's challenge and proof, replayed to a fresh acceptor, fail."""
    a, b = pair()
    challenge = a.start()
    b_challenge = b.start()
    recorded_proof = a.receive(b_challenge)[0]
    b.receive(challenge)
    b.receive(recorded_proof)
    assert b.done  # the original handshake worked
    fresh = Authenticator(SECRET, cluster="feed", replica="eu.00000002", role="accept")
    fresh.start()  # a new nonce
    fresh.receive(challenge)
    with pytest.raises(AuthError, match="does not verify"):
        fresh.receive(recorded_proof)


def test_reflected_answer_is_refused() -> None:
    """An attacker without the secret sends the victim's own proof back as its answer."""
    victim = Authenticator(SECRET, cluster="feed", replica="eu.00000002", role="accept")
    victim_challenge = orjson.loads(victim.start())
    attacker_challenge = orjson.dumps({
        "type": "auth.challenge", "v": 1, "cluster": "feed", "replica": "us.00000001",
        "role": "dial", "nonce": "11" * 32})
    victim_proof = victim.receive(attacker_challenge)[0]
    with pytest.raises(AuthError, match="does not verify"):
        victim.receive(victim_proof)
    assert victim_challenge["nonce"] != "11" * 32


def test_reflected_challenge_is_refused() -> None:
    """The victim's own challenge echoed back: its role and nonce give it away."""
    victim = Authenticator(SECRET, cluster="feed", replica="eu.00000002", role="accept")
    own = victim.start()
    with pytest.raises(AuthError):
        victim.receive(own)
    victim = Authenticator(SECRET, cluster="feed", replica="eu.00000002", role="accept")
    own = orjson.loads(victim.start())
    own.update(role="dial", replica="us.1")
    with pytest.raises(AuthError, match="echoed"):
        victim.receive(orjson.dumps(own))


def test_same_role_on_both_sides_is_refused() -> None:
    a = Authenticator(SECRET, cluster="feed", replica="us.1", role="dial")
    b = Authenticator(SECRET, cluster="feed", replica="eu.1", role="dial")
    b.start()
    with pytest.raises(AuthError, match="role"):
        b.receive(a.start())


def test_proof_depends_on_direction_ids_and_nonces() -> None:
    base = {"cluster": "c", "dial_id": "a.1", "accept_id": "b.1",
            "dial_nonce": b"\x01" * 32, "accept_nonce": b"\x02" * 32}
    p = proof(SECRET, prover="dial", **base)  # type: ignore[arg-type]
    assert p != proof(SECRET, prover="accept", **base)  # type: ignore[arg-type]
    for name, other in [("cluster", "d"), ("dial_id", "x.1"), ("accept_id", "x.1"),
                        ("dial_nonce", b"\x03" * 32), ("accept_nonce", b"\x03" * 32)]:
        assert p != proof(SECRET, prover="dial", **{**base, name: other})  # type: ignore[arg-type]


@pytest.mark.parametrize("frame, match", [
    (b"not json", "not JSON"),
    (b"[]", "object"),
    ("text", "text frame"),
    (b"x" * (MAX_AUTH_FRAME + 1), "exceeds"),
    (orjson.dumps({"type": "hello", "version": 1}), "before authenticating"),
    (orjson.dumps({"type": "auth.proof", "mac": "00" * 32}), "expected an auth.challenge"),
    (orjson.dumps({"type": "auth.challenge", "v": 1, "cluster": "feed", "replica": "x.1",
                   "role": "dial", "nonce": "zz" * 32}), "nonce"),
    (orjson.dumps({"type": "auth.challenge", "v": True, "cluster": "feed", "replica": "x.1",
                   "role": "dial", "nonce": "00" * 32}), "version"),
    (orjson.dumps({"type": "auth.challenge", "v": 1, "cluster": "feed", "replica": "x.1",
                   "role": "dial", "nonce": "00" * 32, "extra": 1}), "fields"),
    (orjson.dumps({"type": "auth.challenge", "v": 1, "cluster": "feed", "replica": "",
                   "role": "dial", "nonce": "00" * 32}), "replica id"),
])
def test_malformed_frames_are_refused(frame: bytes, match: str) -> None:
    b = Authenticator(SECRET, cluster="feed", replica="eu.1", role="accept")
    b.start()
    with pytest.raises(AuthError, match=match):
        b.receive(frame)


def test_frames_after_done_and_bad_proof_shape() -> None:
    a, b = pair()
    run(a, b)
    with pytest.raises(AuthError, match="after the handshake"):
        a.receive(b"{}")
    a, b = pair()
    b.start()
    b.receive(a.start())
    with pytest.raises(AuthError, match="mac"):
        b.receive(orjson.dumps({"type": "auth.proof", "mac": "00"}))


def test_load_secret_and_is_auth_frame(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("tooshort\n")
    with pytest.raises(ValueError, match="at least"):
        load_secret(short)
    good = tmp_path / "good"
    good.write_text("  " + SECRET.decode() + "\n")
    assert load_secret(good) == SECRET
    with pytest.raises(ValueError, match="cannot read"):
        load_secret(tmp_path / "missing")
    with pytest.raises(ValueError):
        Authenticator(b"short", cluster="c", replica="a.1", role="dial")
    with pytest.raises(ValueError):
        Authenticator(SECRET, cluster="c", replica="a.1", role="sideways")
    a = Authenticator(SECRET, cluster="c", replica="a.1", role="dial")
    assert is_auth_frame(a.start())
    assert not is_auth_frame(b'{"type": "hello"}') and not is_auth_frame(b"\xff")
