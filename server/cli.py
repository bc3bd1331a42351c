"""The ``crdtsync`` command: serve, status, backup, restore."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse

import orjson

from .config import ConfigError, load_config

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crdtsync", description="crdtsync replica server and tools")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run one replica")
    s.add_argument("--id", help="replica name, e.g. us")
    s.add_argument("--listen", help="HOST:PORT to listen on (default 127.0.0.1:7000)")
    s.add_argument("--data", help="data directory")
    s.add_argument("--peer", dest="peers", action="append", default=[], metavar="URL",
                   help="peer replica ws:// or wss:// URL (repeatable)")
    s.add_argument("--cluster", help="cluster name (peers must match)")
    s.add_argument("--secret-file", help="file holding the cluster's shared secret")
    s.add_argument("--config", help="TOML file; flags override it")
    s.add_argument("--follower", action="store_true", default=None,
                   help="read-only replica: receive only, refuse local writes")
    s.add_argument("--clock-offset-ms", type=int, help="add this to the wall clock (testing)")
    s.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    s.add_argument("--sync-window", type=int, help="unacked deltas in flight per peer "
                   "(default 1; more sends sooner on slow links, in more, smaller messages)")
    s.add_argument("--sync-hot-log-mb", type=int, help="MiB of the newest sync-log entries "
                   "kept decoded for peers (default 4; older entries are kept encoded)")
    _security_flags(s)
    st = sub.add_parser("status", help="show a running replica's peers and lag")
    st.add_argument("url", help="the replica's ws:// or http:// URL")
    st.add_argument("--token-file", help="file holding the client token (for a server started "
                    "with --protect-health)")
    st.add_argument("--tls-cert", help="client certificate (PEM), for a server with mutual TLS")
    st.add_argument("--tls-key", help="the private key of --tls-cert (PEM)")
    st.add_argument("--tls-ca", help="the CA (PEM) that signs the server's certificate")
    b = sub.add_parser("backup", help="write a consistent snapshot of a (running) replica")
    b.add_argument("--data", required=True, help="the replica's data directory")
    b.add_argument("--out", required=True, help="snapshot file to write")
    r = sub.add_parser("restore", help="restore a data directory from a snapshot")
    r.add_argument("--data", required=True, help="data directory to restore into")
    r.add_argument("--from", dest="source", required=True, help="snapshot file")
    r.add_argument("--force", action="store_true", help="replace an existing store")
    return p


def _security_flags(s: argparse.ArgumentParser) -> None:
    """The flags of docs/security.md."""
    g = s.add_argument_group("security (see docs/security.md)")
    g.add_argument("--tls-cert", help="this replica's certificate (PEM); turns on mutual TLS")
    g.add_argument("--tls-key", help="the private key of --tls-cert (PEM)")
    g.add_argument("--tls-ca", help="the cluster's private CA (PEM) that signs every certificate")
    g.add_argument("--member", dest="members", action="append", default=[], metavar="NAME",
                   help="a replica name of the cluster (repeatable); deltas naming others are "
                        "rejected")
    g.add_argument("--max-dot-seq", type=int, help="reject deltas with dots beyond this "
                   "sequence number (default 2^48)")
    g.add_argument("--max-frame-bytes", type=int, help="largest peer frame (default 4 MiB)")
    g.add_argument("--client-max-frame-bytes", type=int,
                   help="largest client API frame (default 1 MiB)")
    g.add_argument("--max-queue", type=int, help="incoming frames buffered per connection "
                   "(default 16)")
    g.add_argument("--client-token-file", help="file holding the bearer token /client requires")
    g.add_argument("--protect-health", action="store_true", default=None,
                   help="require the client token on /health and /metrics too")
    g.add_argument("--allow-origin", dest="allow_origins", action="append", default=[],
                   metavar="ORIGIN", help="browser origin allowed on /client (repeatable)")
    g.add_argument("--client-rate", type=float, help="client requests per second per "
                   "connection (token bucket; default 0: unlimited)")
    g.add_argument("--client-burst", type=int, help="token bucket size (default: the rate)")
    g.add_argument("--max-clients", type=int, help="concurrent client connections (default 1024)")


_SERVE_FLAGS = ("id", "listen", "data", "peers", "cluster", "secret_file", "follower",
                "clock_offset_ms", "log_level", "tls_cert", "tls_key", "tls_ca", "members",
                "max_dot_seq", "max_frame_bytes", "client_max_frame_bytes", "max_queue",
                "client_token_file", "protect_health", "allow_origins", "client_rate",
                "client_burst", "max_clients", "sync_window", "sync_hot_log_mb")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``crdtsync`` console script."""
    args = _parser().parse_args(argv)
    try:
        return int(_COMMANDS[args.command](args) or 0)
    except ConfigError as exc:
        print(f"crdtsync: error: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    from .app import run_server

    flags = {k: getattr(args, k) for k in _SERVE_FLAGS}
    cfg = load_config(flags, args.config)
    logging.basicConfig(level=cfg.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run_server(cfg))
    return 0


def _status(args: argparse.Namespace) -> int:
    parsed = urlparse(args.url)
    if parsed.scheme not in ("ws", "wss", "http", "https") or not parsed.netloc:
        raise ConfigError(f"status: expected a ws:// or http:// URL, got {args.url!r}")
    scheme = "https" if parsed.scheme in ("wss", "https") else "http"
    request = urllib.request.Request(f"{scheme}://{parsed.netloc}/health")
    if args.token_file:
        from crdtsync.transport.auth import load_secret
        try:
            token = load_secret(args.token_file)
        except ValueError as exc:
            raise ConfigError(f"--token-file: {exc}") from exc
        request.add_header("Authorization", f"Bearer {token.decode('utf-8', 'replace')}")
    context = None
    if scheme == "https" and (args.tls_ca or args.tls_cert):
        import ssl
        context = ssl.create_default_context(cafile=args.tls_ca)
        context.check_hostname = False  # replicas are named by certificate, not host
        if args.tls_cert:
            if not args.tls_key:
                raise ConfigError("--tls-cert needs --tls-key")
            context.load_cert_chain(args.tls_cert, args.tls_key)
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as resp:
            doc: dict[str, Any] = orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        hint = " (pass --token-file)" if exc.code == 401 else ""
        print(f"crdtsync: {args.url} answered {exc.code} {exc.reason}{hint}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"crdtsync: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    print(f"replica {doc['id']} ({doc.get('replica_id')}): {doc.get('keys')} keys, "
          f"log at {doc.get('log_seq')}")
    for peer, info in sorted(doc.get("peers", {}).items()):
        state = "connected" if info.get("connected") else "DISCONNECTED"
        relayed = info.get("relayed") or []
        via = f", relaying {', '.join(relayed)} (it does not reach them)" if relayed else ""
        catching = ", catching it up from state" if info.get("catching_up") else ""
        print(f"  {peer:<20} {state:<13} lag {info.get('lag_batches')} batches, "
              f"{info.get('lag_seconds', 0):.3f} s{catching}{via}")
    return 0


def _backup(args: argparse.Namespace) -> int:
    import sqlite3

    from crdtsync.errors import StoreError
    from crdtsync.store import SQLiteStore

    db = os.path.join(args.data, "replica.db")
    if not os.path.isfile(db):
        print(f"crdtsync: backup failed: no store at {db}", file=sys.stderr)
        return 1
    tmp = f"{args.out}.partial"
    try:
        # A read-only connection beside the running server: SQLite's online backup copies a
        # consistent snapshot (WAL readers never block the writer).
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        SQLiteStore.verify(tmp)  # a complete store, left as it is (version 1 stays 1)
        os.replace(tmp, args.out)
    except (sqlite3.Error, StoreError, OSError) as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        print(f"crdtsync: backup of {db} failed: {exc}", file=sys.stderr)
        return 1
    print(f"crdtsync: wrote snapshot of {db} to {args.out}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    """Copy the snapshot into the data directory, check the copy, then put it in place.

    The snapshot itself is only read: the check (and a write-ahead log beside it, replayed,
    and an older schema, upgraded) happen on the copy, so the snapshot still restores with
    the crdtsync that wrote it.
    """
    from crdtsync.errors import StoreError
    from crdtsync.replica import Replica
    from crdtsync.store import SQLiteStore

    db = os.path.join(args.data, "replica.db")
    if os.path.exists(db) and not args.force:
        print(f"crdtsync: {db} exists; pass --force to replace it", file=sys.stderr)
        return 1
    if not os.path.isfile(args.source):
        print(f"crdtsync: restore failed: snapshot {args.source!r} is not a file",
              file=sys.stderr)
        return 1
    os.makedirs(args.data, exist_ok=True)
    tmp = db + ".restoring"
    _remove_store_files(tmp)
    try:
        shutil.copyfile(args.source, tmp)
        if os.path.exists(args.source + "-wal"):  # commits not yet checkpointed into it
            shutil.copyfile(args.source + "-wal", tmp + "-wal")
        SQLiteStore(tmp, create=False).close()  # replays a copied -wal; upgrades the copy
    except (OSError, StoreError) as exc:
        _remove_store_files(tmp)
        print(f"crdtsync: restore failed: snapshot {args.source!r}: "
              f"{str(exc).replace(f'store file {tmp!r}', 'it')}", file=sys.stderr)
        return 1
    _remove_store_files(db)
    os.replace(tmp, db)
    with Replica.open(args.data) as replica:
        print(f"crdtsync: restored {args.source} into {args.data}; replica {replica.name} "
              f"continues as new id {replica.replica_id}")
    return 0


def _remove_store_files(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


_COMMANDS = {"serve": _serve, "status": _status, "backup": _backup, "restore": _restore}

if __name__ == "__main__":
    sys.exit(main())
