"""Fixtures of the browser tests: Debian's Chromium, the demo's routers on the test's loop, a
real ``gateway serve`` process in front of them, and a watched page (see ``tests.support.web``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from gateway.demo import demo_emulators
from tests.support.needs import missing
from tests.support.web import (
    CHROMIUM,
    LAUNCH_ARGS,
    VIEWPORT,
    ConfigExtras,
    Dashboard,
    GatewayProcess,
    Routers,
    Watch,
    browser_missing,
    free_port,
    gateway_config,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium for this test."""
    reason = browser_missing()
    if reason is not None:
        missing(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def routers() -> AsyncIterator[Routers]:
    """The demo's routers (office, ISP access with 300 PPPoE customers, tower), without the
    demo's random faults: tests inject their own."""
    emulators = demo_emulators()
    async with contextlib.AsyncExitStack() as stack:
        for _, emulator in emulators.values():
            await stack.enter_async_context(emulator)
        yield emulators


@pytest.fixture
def extras() -> ConfigExtras:
    """What a test module adds to the gateway's configuration (override it there): nothing."""
    return ConfigExtras()


@pytest.fixture
async def gateway(
    routers: Routers, extras: ConfigExtras, tmp_path: Path
) -> AsyncIterator[GatewayProcess]:
    """A running gateway process in front of ``routers``; killed at the end."""
    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_config(routers, port, extras))
    served = GatewayProcess(config, tmp_path / "gateway.log", port)
    await served.start()
    try:
        yield served
    finally:
        await served.kill()


@pytest.fixture
async def dashboard(chromium: Browser, gateway: GatewayProcess) -> AsyncIterator[Dashboard]:
    """A fresh browser page (not yet navigated), checked for console errors and foreign requests
    when the test ends."""
    context = await chromium.new_context(viewport=VIEWPORT, color_scheme="light")
    page = await context.new_page()
    watch = Watch(gateway.url.rstrip("/"))
    page.on("console", watch.on_console)
    page.on("pageerror", watch.on_page_error)
    page.on("request", watch.on_request)
    try:
        yield Dashboard(page, watch, gateway)
        watch.check()
    finally:
        await context.close()
