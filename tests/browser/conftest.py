"""Browser fixtures: headless Chromium (the system's, driven by Playwright), the sandbox, the whole stack.

Chromium is Debian's package (``apt-get install chromium``); Playwright never downloads a browser
here. ``CHROMIUM_PATH`` points at another executable. A missing browser fails the tests: they
are part of the suite, not optional extras.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright

from config.settings import ENV_MAP, SandboxSettings
from sandbox.server import SandboxServer, run_sandbox
from sandbox.world import DEMO_WORLD
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}
BOT_TOKEN = "1000000001:sandbox-local-bot"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install it (apt-get install chromium) or set CHROMIUM_PATH")
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS,
                                                    headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page; any uncaught script error on it fails the test."""
    context = await browser.new_context(viewport=VIEWPORT, locale="en-US")
    context.set_default_timeout(10_000)
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield tab
    finally:
        await context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    """The sandbox alone, seeded with the demo world, on a free port."""
    server = await run_sandbox(SandboxSettings(host="127.0.0.1", port=0, rate_limits=False), DEMO_WORLD)
    try:
        yield server
    finally:
        await server.close()


# ---------------------------------------------------------------- the whole stack


@dataclass
class Stack:
    """``python app.py`` with ROLE=all, its sandbox at ``url``."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_tail(self, lines: int = 80) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def stack_env(database_url: str, redis_url: str, data_dir: Path, sandbox_port: int) -> dict[str, str]:
    # the project's own settings from the caller's environment must not leak in (a real BOT_TOKEN ...)
    env = {k: v for k, v in os.environ.items() if k not in ENV_MAP}
    env.update(
        PYTHONUNBUFFERED="1",
        ROLE="all",
        LOG_LEVEL="INFO",
        DATA_DIR=str(data_dir),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SANDBOX_ENABLED="1",
        SANDBOX_HOST="127.0.0.1",
        SANDBOX_PORT=str(sandbox_port),
        # not the default 8082: another run of the suite on this machine may hold it; data centre 4
        # takes the port after it
        SANDBOX_MTPROTO_PORT=str(free_port(span=2)),
        BOT_TOKEN=BOT_TOKEN,
        # the test clicks faster than a person; past the per-chat rate the bot's replies get 429
        SANDBOX_RATE_LIMITS="0",
        APP_PORT=str(free_port()),
        METRICS_PORT="0",
        # seconds instead of minutes, so the first round's posts land within the test
        INTERVAL_MIN_SECONDS="60",
        GAP_MIN="1",
        GAP_MAX="1.5",
        SCHEDULER_TICK="0.5",
    )
    return env


async def _wait_for_bot(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:  # noqa: ASYNC109
    """Until the bot's first getUpdates reached the sandbox."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the stack exited with {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(f"{url}/sandbox/api/events") as response:
                    events: list[dict[str, Any]] = await response.json()
                    if any(e["method"] == "getUpdates" for e in events):
                        return
            await asyncio.sleep(0.2)
    raise TimeoutError("the bot did not start polling the sandbox")


def _spawn(env: dict[str, str], workdir: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        # started outside the checkout, so that a developer's .env is not read
        return subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=workdir, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture
async def stack(empty_db_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """The supervisor with every role and the seeded sandbox, against the test PostgreSQL and Redis."""
    port = free_port()
    log = tmp_path / "stack.log"
    process = _spawn(stack_env(empty_db_url, redis_url, tmp_path / "data", port), tmp_path, log)
    running = Stack(process, f"http://127.0.0.1:{port}", log)
    try:
        try:
            await _wait_for_bot(running.url, process, timeout=60)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{exc}\n{running.log_tail()}") from exc
        yield running
    finally:
        await asyncio.to_thread(_stop, process)
        print(running.log_tail())  # shown by pytest when the test failed
    assert process.returncode == 0, f"the stack exited with {process.returncode}\n{running.log_tail()}"


@pytest.fixture
def screenshot_path(tmp_path: Path) -> Iterator[Path]:
    """Where the journey's screenshot goes: the test's temp directory, or ``SCREENSHOT_PATH`` (``make
    screenshot`` points it at docs/screenshot.png, the README's picture)."""
    path = Path(os.environ.get("SCREENSHOT_PATH") or tmp_path / "screenshot.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    yield path
