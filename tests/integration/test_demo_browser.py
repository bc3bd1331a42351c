"""The social-feed demo in headless Chromium (Debian's chromium, driven by playwright).

Like in one region and see it in another; cut a region off, like in both, heal, and see
both show the converged count; comments in the same order in every region; cut one link
alone, and a post still reaches the far region through the third, which says it relays it.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.procs import free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

import playwright.async_api as playwright_api  # noqa: E402 - in the test extra


@pytest.fixture()
def demo(tmp_path: Path):  # type: ignore[no-untyped-def]
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: scripts/install-browser.sh installs it")
    web_port = free_port()
    base = free_port()
    while any(_busy(base + i) for i in range(3)):
        base = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "examples.social_feed",
            "--data",
            str(tmp_path / "data"),
            "--port",
            str(web_port),
            "--replica-port",
            str(base),
            "--seconds",
            "170",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    urls: dict[str, str] = {}
    for _ in range(200):
        line = proc.stdout.readline()
        if not line:
            break
        m = re.match(r"\s+(us|eu|ap): (http://\S+)", line)
        if m:
            urls[m.group(1)] = m.group(2)
        if len(urls) == 3:
            break
    assert len(urls) == 3, "demo did not start"
    yield urls
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out[-2000:]
    assert "stopped; data kept in" in out


def _busy(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_like_partition_heal_and_comment_order(demo: dict[str, str]) -> None:
    asyncio.run(asyncio.wait_for(_scenario(demo), 150))


async def _count(page, key: str) -> str:  # type: ignore[no-untyped-def]
    return await page.inner_text(f'article[data-key="{key}"] .count')


async def _wait_count(page, key: str, want: str) -> None:  # type: ignore[no-untyped-def]
    await page.wait_for_function(
        '([k, w]) => { const el = document.querySelector(`article[data-key="${k}"] .count`);'
        " return el && el.textContent === w; }",
        arg=[key, want],
        timeout=20000,
    )


async def _scenario(urls: dict[str, str]) -> None:
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pages = {}
        for region, url in urls.items():
            page = await browser.new_page(viewport={"width": 1200, "height": 900})
            await page.goto(url)
            await page.wait_for_selector("#conn-state:has-text('connected')")
            pages[region] = page
        us, eu, ap = pages["us"], pages["eu"], pages["ap"]
        await eu.select_option("#user", "bob")
        await us.select_option("#user", "alice")
        # wait until the links are up, then post in US
        await us.wait_for_selector("#peers li .pill.up >> nth=1", timeout=20000)
        await us.fill("#post-text", "Hello from US")
        await us.click("#post-button")
        post = await eu.wait_for_selector("article.post", timeout=20000)
        key = await post.get_attribute("data-key")
        assert key and key.endswith(":us")
        # like in US, see it in EU
        await us.click(f'article[data-key="{key}"] .like')
        await _wait_count(eu, key, "1")
        # cut US off; like in both regions while apart
        await us.click("#partition")
        await us.wait_for_selector("#partition.cut")
        await us.wait_for_selector("#peers li .pill.down >> nth=1", timeout=20000)
        await us.select_option("#user", "carol")
        await us.click(f'article[data-key="{key}"] .like')
        await eu.click(f'article[data-key="{key}"] .like')  # bob likes in EU
        await _wait_count(us, key, "2")
        await _wait_count(eu, key, "2")
        await asyncio.sleep(1.0)
        assert await _count(us, key) == "2" and await _count(eu, key) == "2"  # still apart
        # heal: both converge on three likes (alice, bob, carol)
        await us.click("#partition")
        await us.wait_for_selector("#partition:not(.cut)")
        for page in (us, eu, ap):
            await _wait_count(page, key, "3")
        likers = await ap.inner_text(f'article[data-key="{key}"] .likers')
        assert likers == "liked by alice, bob, carol"
        # comments from every region: the same order everywhere
        for region, page in pages.items():
            await page.fill(f'article[data-key="{key}"] .comment-input', f"comment from {region}")
            await page.click(f'article[data-key="{key}"] .comment-form button')
        orders = []
        for page in pages.values():
            await page.wait_for_function(
                'k => document.querySelectorAll(`article[data-key="${k}"] .comment`).length === 3',
                arg=key,
                timeout=20000,
            )
            orders.append(
                await page.eval_on_selector_all(
                    f'article[data-key="{key}"] .comment', "els => els.map(e => e.dataset.cid)"
                )
            )
        assert orders[0] == orders[1] == orders[2]
        assert orders[0] == sorted(orders[0])
        # cut the US-AP link alone: AP still gets US's post, through EU, whose page says so
        await us.click('#peers li[data-peer="ap"] .link-switch')
        await us.wait_for_selector('#peers li[data-peer="ap"] .link-switch.cut')
        await us.wait_for_selector('#peers li[data-peer="ap"] .pill.down', timeout=20000)
        await ap.wait_for_selector('#peers li[data-peer="us"] .pill.down', timeout=20000)
        await us.wait_for_selector('#peers li[data-peer="eu"] .pill.up')
        await us.fill("#post-text", "Through EU")
        await us.click("#post-button")
        await ap.wait_for_selector("article.post:has-text('Through EU')", timeout=20000)
        relay = await eu.wait_for_selector('#peers li[data-peer="ap"] .pill.relay',
                                           timeout=20000)
        assert (await relay.inner_text()).startswith("relaying US")
        await us.click('#peers li[data-peer="ap"] .link-switch')  # heal the link
        await us.wait_for_selector('#peers li[data-peer="ap"] .pill.up', timeout=20000)
        await browser.close()
