"""The security flags through the real CLI: validation (exit 2 naming the flag) and real
server processes with a shared secret, a token and limits."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.integration.procs import start_server
from tests.security.helpers import write_secret


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crdtsync_server.cli", *args],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("extra, flag", [
    (["--secret-file", "SHORT"], "--secret-file"),
    (["--secret-file", "/nonexistent"], "--secret-file"),
    (["--client-token-file", "SHORT"], "--client-token-file"),
    (["--protect-health"], "--protect-health"),
    (["--tls-cert", "x.pem"], "--tls-"),
    (["--member", "bad name"], "--member"),
    (["--allow-origin", "app.example"], "--allow-origin"),
    (["--allow-origin", "https://app.example/path"], "--allow-origin"),
    (["--client-max-frame-bytes", "10"], "--client-max-frame-bytes"),
    (["--max-frame-bytes", str(1 << 30)], "--max-frame-bytes"),
    (["--max-queue", "0"], "--max-queue"),
    (["--max-clients", "0"], "--max-clients"),
    (["--max-dot-seq", "0"], "--max-dot-seq"),
    (["--client-rate", "-1"], "--client-rate"),
    (["--sync-window", "0"], "--sync-window"),
    (["--sync-window", "65"], "--sync-window"),
    (["--sync-hot-log-mb", "-1"], "--sync-hot-log-mb"),
])
def test_bad_security_flags_exit_2_naming_the_flag(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], flag: str) -> None:
    from crdtsync_server.cli import main

    short = tmp_path / "short"
    short.write_text("tooshort")
    args = [a.replace("SHORT", str(short)) for a in extra]
    assert main(["serve", "--id", "us", "--data", str(tmp_path / "d"), *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], lines


def test_the_real_cli_exits_2_too(tmp_path: Path) -> None:
    res = _cli("serve", "--id", "us", "--data", str(tmp_path / "d"), "--max-queue", "0")
    assert res.returncode == 2 and "--max-queue" in res.stderr


def test_toml_security_settings(tmp_path: Path) -> None:
    from crdtsync_server.config import Config, load_config

    token = write_secret(tmp_path / "token", "a-client-token-of-some-length")
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text(f'id = "us"\ndata = "d"\nmembers = ["us", "eu"]\n'
                        f'allow_origins = ["https://App.Example/"]\nclient_rate = 50\n'
                        f'client_token_file = "{token}"\nprotect_health = true\n'
                        f'max_clients = 10\nmax_queue = 4\nsync_window = 3\n')
    cfg = load_config({}, str(cfg_file))
    assert cfg.members == ["us", "eu"] and cfg.allow_origins == ["https://app.example"]
    assert cfg.client_rate == 50.0 and cfg.protect_health and cfg.max_queue == 4
    assert cfg.sync_window == 3 and Config().sync_window == 1


def test_real_processes_with_secret_token_and_limits(tmp_path: Path) -> None:
    """Two servers with the secret converge; a third with another secret gets nothing;
    the client token is required; flags reach the server."""
    secret = write_secret(tmp_path / "secret")
    other = write_secret(tmp_path / "other", "not the cluster secret at all")
    token_file = write_secret(tmp_path / "token", "client-token-0123456789")
    common = ["--secret-file", secret, "--client-token-file", token_file,
              "--member", "us", "--member", "eu", "--member", "ap"]
    us = start_server(tmp_path / "us", "us", extra=common)
    eu = start_server(tmp_path / "eu", "eu", extra=[*common, "--peer", f"{us.url}/sync"])
    ap = start_server(tmp_path / "ap", "ap", extra=[
        "--secret-file", other, "--client-token-file", token_file,
        "--peer", f"{us.url}/sync", "--peer", f"{eu.url}/sync"])

    async def unauthorized() -> int:
        try:
            async with connect(f"{us.url}/client"):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    async def writes() -> None:
        for srv, n in ((us, 2), (eu, 3), (ap, 100)):
            async with connect(f"{srv.url}/client?token=client-token-0123456789") as ws:
                await ws.send(orjson.dumps({"id": 1, "op": "counter.increment", "key": "c",
                                            "by": n}).decode())
                assert orjson.loads(await ws.recv())["ok"]
        deadline = time.monotonic() + 20
        while True:
            values = []
            for srv in (us, eu, ap):
                async with connect(f"{srv.url}/client?token=client-token-0123456789") as ws:
                    await ws.send('{"id": 2, "op": "get", "key": "c"}')
                    values.append(orjson.loads(await ws.recv())["value"])
            if values == [5, 5, 100]:
                break
            assert time.monotonic() < deadline, values
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        for srv in (us, eu):
            async with connect(f"{srv.url}/client?token=client-token-0123456789") as ws:
                await ws.send('{"id": 3, "op": "get", "key": "c"}')
                assert orjson.loads(await ws.recv())["value"] == 5  # nothing of ap's

    try:
        assert asyncio.run(unauthorized()) == 401
        asyncio.run(asyncio.wait_for(writes(), 60))
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{us.port}/metrics").read().decode()
        assert 'crdtsync_rejected_total{reason="peer_auth"}' in metrics
        assert 'crdtsync_rejected_total{reason="client_unauthorized"}' in metrics
    finally:
        for srv in (ap, eu, us):
            srv.stop()


def test_status_presents_the_client_token(tmp_path: Path) -> None:
    """``crdtsync status`` on a server with --protect-health: refused (exit 1, a hint)
    without the token, served with --token-file."""
    token_file = write_secret(tmp_path / "token", "client-token-0123456789")
    srv = start_server(tmp_path / "us", "us", extra=[
        "--client-token-file", token_file, "--protect-health"])

    def status(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "crdtsync_server.cli", "status",
                               srv.url, *extra], capture_output=True, text=True, timeout=30)

    try:
        refused = status()
        assert refused.returncode == 1 and "401" in refused.stderr
        assert "--token-file" in refused.stderr
        wrong = write_secret(tmp_path / "wrong", "not-the-client-token-000")
        assert status("--token-file", wrong).returncode == 1
        ok = status("--token-file", token_file)
        assert ok.returncode == 0 and "replica us" in ok.stdout, ok.stderr
        missing = status("--token-file", str(tmp_path / "nope"))
        assert missing.returncode == 2 and "--token-file" in missing.stderr
    finally:
        srv.stop()


def test_sync_window_and_hot_log_reach_the_engine(tmp_path: Path) -> None:
    """The server builds its SyncService with the configured window (default 1) and
    decoded part of the log (default 4 MiB)."""
    from crdtsync_server.app import ReplicaServer
    from crdtsync_server.config import load_config

    async def main() -> None:
        for flags, window, hot in (({}, 1, 4 << 20),
                                   ({"sync_window": 5, "sync_hot_log_mb": 0}, 5, 0),
                                   ({"sync_hot_log_mb": 16}, 1, 16 << 20)):
            name = f"w{window}h{hot}"
            cfg = load_config({"id": name, "data": str(tmp_path / name), "listen": "127.0.0.1:0",
                               **flags})
            server = ReplicaServer(cfg)
            await server.start()
            try:
                assert server.sync.engine._config.window == window
                assert server.sync.engine._config.hot_log_bytes == hot
                assert server.sync.engine._log.hot_bytes == hot
            finally:
                await server.stop()

    asyncio.run(main())
