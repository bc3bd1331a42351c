"""The replica server as a real process: CLI, client API, health, metrics, shutdown, backup."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.integration.procs import Client, start_server


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crdtsync_server.cli", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--id", "us", "--data", "d", "--listen", "nohost"], "--listen"),
        (["--id", "us", "--data", "d", "--peer", "http://x"], "--peer"),
        (["--data", "d"], "--id"),
        (["--id", "us"], "--data"),
        (["--id", "u s", "--data", "d"], "--id"),
        (["--id", "us", "--data", "d", "--config", "/nonexistent.toml"], "--config"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(args: list[str], flag: str) -> None:
    res = _cli("serve", *args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], res.stderr


def test_bad_toml_value(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('id = "us"\ndata = "d"\ncommit_delay_ms = "soon"\n')
    res = _cli("serve", "--config", str(cfg))
    assert res.returncode == 2 and "commit-delay-ms" in res.stderr
    cfg.write_text('id = "us"\nbogus = 1\n')
    res = _cli("serve", "--config", str(cfg))
    assert res.returncode == 2 and "bogus" in res.stderr


def test_client_api_health_metrics_shutdown_backup(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "us", "us")
    try:
        asyncio.run(_exercise(srv.url))
        health = orjson.loads(urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/health").read())
        assert health["id"] == "us" and health["keys"] == 5 and health["peers"] == {}
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics").read().decode()
        assert 'crdtsync_writes_total{type="counter"} 3.0' in metrics
        assert 'crdtsync_rejected_total{reason="client_type_mismatch"}' in metrics
        assert "crdtsync_commit_seconds_bucket" in metrics
        assert "crdtsync_sync_entries_left_out 0.0" in metrics  # no peers: nothing to forward
        status = _cli("status", srv.url)
        assert status.returncode == 0 and "replica us" in status.stdout
        backup = tmp_path / "snap.db"
        assert _cli("backup", "--data", str(srv.data), "--out", str(backup)).returncode == 0
    finally:
        assert srv.stop(signal.SIGTERM) == 0
    restored = tmp_path / "restored"
    res = _cli("restore", "--data", str(restored), "--from", str(backup))
    assert res.returncode == 0 and "new id" in res.stdout, res.stderr
    again = start_server(tmp_path / "us", "us")
    copy = start_server(restored, "us")
    try:
        asyncio.run(_check_after_restart(again.url, copy.url))
    finally:
        again.stop()
        copy.stop()


async def _exercise(url: str) -> None:
    async with Client(url) as c:
        assert (await c.request("counter.increment", key="c", by=3))["value"] == 3
        assert (await c.request("counter.decrement", key="c"))["value"] == 2
        assert (await c.request("set.add", key="s", element=1))["value"] == [1]
        assert (await c.request("set.add", key="s", element="1"))["value"] == [1, "1"]
        err = await c.request("set.add", key="c", element="x")
        assert err["error"]["code"] == "type_mismatch"
        assert (await c.request("counter.increment", key="c", by=0))["error"][
            "code"
        ] == "bad_argument"
        assert (await c.request("counter.increment", key="c", by=True))["error"][
            "code"
        ] == "bad_request"
        assert (await c.request("set.add", key="s", element=1.5))["error"]["code"] == "bad_request"
        assert (await c.request("nope"))["error"]["code"] == "unknown_op"
        assert (await c.request("set.add", key="s"))["error"]["code"] == "bad_request"
        assert (await c.send_raw("{not json"))["error"]["code"] == "bad_json"
        assert (await c.send_raw(b"\x00"))["error"]["code"] == "bad_request"
        assert (await c.send_raw("[1]"))["error"]["code"] == "bad_request"
        assert (await c.request("watch", prefix="post:"))["ok"]
        res = await c.request(
            "batch",
            ops=[
                {"op": "map.register.assign", "key": "post:1", "field": "title", "value": "hi"},
                {"op": "map.set.add", "key": "post:1", "field": "likes", "element": "bob"},
                {"op": "register.assign", "key": "r", "value": {"a": [1, None]}},
            ],
        )
        assert res["ok"] and res["value"][2] == {"a": [1, None]}
        bad = await c.request(
            "batch",
            ops=[
                {"op": "counter.increment", "key": "z"},
                {"op": "set.add", "key": "c", "element": "x"},
            ],
        )
        assert bad["error"]["code"] == "type_mismatch" and "ops[1]" in bad["error"]["message"]
        assert (await c.request("get", key="z"))["value"] is None  # nothing of the batch applied
        got = await c.request("get", key="post:1")
        assert got["type"] == "ormap" and got["value"] == {"title": "hi", "likes": ["bob"]}
        assert (await c.request("keys", prefix=""))["value"] == ["c", "post:1", "r", "s"]
        res = await c.request("counter.increment", key="m", wait="majority", timeout_ms=2000)
        assert res["ok"]  # a lone replica is its own majority
        assert (await c.request("counter.increment", key="m", wait="most"))["error"][
            "code"
        ] == "bad_argument"
        for _ in range(50):
            if any(e.get("key") == "post:1" for e in c.events):
                break
            await asyncio.sleep(0.05)
        assert {
            "event": "change",
            "key": "post:1",
            "value": {"title": "hi", "likes": ["bob"]},
        } in c.events


async def _check_after_restart(url: str, restored_url: str) -> None:
    for u in (url, restored_url):
        async with Client(u) as c:
            assert (await c.request("get", key="c"))["value"] == 2
            assert (await c.request("get", key="s"))["value"] == [1, "1"]
