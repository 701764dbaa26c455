"""Names with glob characters, charted in a real browser: a picked name means that interface."""

from __future__ import annotations

import contextlib
import importlib.util
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from gateway.demo import DEMO_PASSWORD
from gateway.emulator.device import Device, DeviceConfig, NamedInterface
from gateway.emulator.server import RouterEmulator
from tests.support.gateway import receive, subscribe
from tests.support.timing import seconds
from tests.support.web import Dashboard, Routers, ms

if importlib.util.find_spec("playwright") is not None:
    # Without Playwright the `chromium` fixture skips (or, in CI, fails) every test here.
    from playwright.async_api import expect

RATE = re.compile(r"^\d[\d.]* (bps|kbps|Mbps|Gbps)$")
WAN = "ether1 [WAN]"
# What "ether1 [WAN]" matches when read as a glob: one of W, A or N after "ether1 ".
LOOK_ALIKES = ("ether1 W", "ether1 A", "ether1 N")


@pytest.fixture
async def routers() -> AsyncIterator[Routers]:
    """One router whose uplink is named ``ether1 [WAN]``, beside names its glob would match."""
    named = tuple(NamedInterface(name) for name in (WAN, *LOOK_ALIKES))
    config = DeviceConfig(ethernet=2, sfp=0, bridge=False, non_ascii_name=False, named=named)
    emulator = RouterEmulator(Device(config), password=DEMO_PASSWORD)
    async with emulator:
        yield {"lab": ("Lab router", emulator)}


async def test_a_name_with_brackets_is_charted_from_history(dashboard: Dashboard) -> None:
    """Opening a view of ``ether1 [WAN]`` charts that interface at once with the history the
    gateway kept (the window is not empty), and charts none of its look-alikes."""
    page, gateway = dashboard.page, dashboard.gateway
    async with contextlib.AsyncExitStack() as stack:
        # Someone already watches the router, so the gateway keeps history for it.
        http = await stack.enter_async_context(aiohttp.ClientSession())
        ws = await http.ws_connect(f"{gateway.url}ws")
        stack.push_async_callback(ws.close)
        await receive(ws)  # hello
        await subscribe(ws, "lab")
        traffic: list[dict[str, Any]] = []
        while len(traffic) < 6:
            message = await receive(ws, seconds(5))
            if message["type"] == "traffic":
                traffic.append(message)
        oldest = traffic[1]["ts"]  # the first frame with rates (the first sample has none)

        await page.goto(f"{gateway.url}?view=lab~1m~{quote(WAN, safe='')}")
        # Points from before the page existed, with rates for the interface, came from history.
        await page.wait_for_function(
            "([name, oldest]) => (window.gatewayDashboard?.feed.routers.get('lab')?.series"
            ".points ?? []).some((p) => p.ts <= oldest && p.rates.get(name)?.[0] != null)",
            arg=[WAN, oldest],
            timeout=ms(10),
        )
        view = dashboard.view(0)
        row = view.locator(".stats tbody tr")
        await expect(row).to_have_count(1)
        await expect(row).to_have_attribute("data-name", WAN)
        await expect(row.locator("td.now").first).to_have_text(RATE, timeout=ms(10))
        charted: list[str] = await page.evaluate(
            "() => [...new Set(window.gatewayDashboard.feed.routers.get('lab').series.points"
            ".flatMap((p) => [...p.rates.keys()]))]"
        )
        assert charted == [WAN]
