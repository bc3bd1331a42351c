"""Coverage-guided fuzzing with atheris (optional: ``pip install atheris``).

``python -m tests.security.fuzz_atheris TARGET [libFuzzer flags, e.g. -runs=1000000]``

TARGET is ``message`` (crdtsync.sync.decode_message), ``group`` (crdtsync.codec.decode_group)
or ``client`` (the client API's parse_request and apply_write on an in-memory replica).
The contract is test_fuzz.py's: only the documented errors; whatever is accepted
round-trips through the canonical encoding, and what a client wrote, a peer can decode.
libFuzzer stops at the first broken contract and writes the input to ``crash-*``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["crdtsync", "crdtsync_server"]):
    from crdtsync_server.client_api import ClientError, apply_write, parse_request

    from crdtsync.codec import decode, decode_group, encode, encode_group
    from crdtsync.errors import DecodeError
    from crdtsync.replica import Replica
    from crdtsync.sync import decode_message, encode_message

_STATE = {"replica": Replica.open(None, name="us"), "runs": 0}


def message(data: bytes) -> None:
    try:
        msg = decode_message(data)
    except DecodeError:
        return
    assert encode_message(decode_message(encode_message(msg))) == encode_message(msg)


def group(data: bytes) -> None:
    try:
        g = decode_group(data)
    except DecodeError:
        return
    assert decode_group(encode_group(g)).keys() == g.keys()
    for value in g.values():
        assert encode(decode(encode(value))) == encode(value)


def client(data: bytes) -> None:
    _STATE["runs"] += 1
    if _STATE["runs"] % 2000 == 0:  # a fresh replica now and then: checks stay O(input)
        _STATE["replica"] = Replica.open(None, name="us")
    replica = _STATE["replica"]
    try:
        req = parse_request(data.decode("utf-8", "replace"))
    except ClientError:
        return
    key = req.get("key")
    key = key if isinstance(key, str) and key in replica else None
    before = encode(replica._live(key)) if key is not None else None
    try:
        apply_write(replica, req)
    except ClientError:
        after = encode(replica._live(key)) if key is not None else None
        assert after == before, "a refused write changed the state"
        return
    replica.commit()
    written = req.get("key")
    if isinstance(written, str) and written in replica:
        decode(encode(replica._live(written)))  # what a client wrote, every peer can decode


TARGETS = {"message": message, "group": group, "client": client}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.security.fuzz_atheris {{{','.join(TARGETS)}}} "
                 f"[libFuzzer flags]")
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
