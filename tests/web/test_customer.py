"""The customer view (``/customer``) in a real browser, against a real gateway in ``jwt`` mode
and an emulated access router: a customer's token shows that customer and nothing else."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.demo import DEMO_PASSWORD
from gateway.emulator.config import sized_config
from gateway.emulator.device import Device
from gateway.emulator.server import RouterEmulator
from tests.support import ROOT
from tests.support.tokens import SECRET, hs256
from tests.support.web import ConfigExtras, Dashboard, Routers, free_port, ms

if importlib.util.find_spec("playwright") is not None:
    # Without Playwright the `chromium` fixture skips (or, in CI, fails) every test here.
    from playwright.async_api import expect

RATE = re.compile(r"^\d[\d.]* (bps|kbps|Mbps|Gbps)")
ROUTER = "bras"
CUSTOMER = "<pppoe-user0002>"


@pytest.fixture
async def routers() -> AsyncIterator[Routers]:
    """An access router with three PPPoE customers who stay connected (each with the dynamic
    queue of its plan and its PPP session) and two business customers on static queues."""
    config = sized_config(4, 3, pppoe_session=0.0, queues=2, seed=5)
    emulator = RouterEmulator(Device(config), password=DEMO_PASSWORD)
    async with emulator:
        yield {ROUTER: ("Access router", emulator)}


@pytest.fixture
def portal_port() -> int:
    """Where the billing portal of the embedding test listens (another origin)."""
    return free_port()


@pytest.fixture
def extras(tmp_path: Path, portal_port: int) -> ConfigExtras:
    """Tokens required, HS256 with the tests' secret; the portal may frame the pages."""
    secret = tmp_path / "jwt-secret"
    secret.write_text(SECRET)
    return ConfigExtras(
        server=f'allowed_frame_ancestors = ["http://127.0.0.1:{portal_port}"]',
        sections=f'[auth]\nmode = "jwt"\njwt_secret_file = "{secret}"\n',
    )


def _customer_token() -> str:
    """A customer's token: its own PPPoE interface and queue on the router, nothing else."""
    return hs256(
        sub="customer-2",
        routers=[ROUTER],
        interfaces={ROUTER: [{"exact": CUSTOMER}]},
        queues={ROUTER: [{"exact": CUSTOMER}]},
    )


def _readme_embedding() -> str:
    """The HTML block of the README's "The customer view" section: how a portal embeds it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### The customer view") :]
    section = section[: section.index("\n## ")]
    return section.split("```html\n", 1)[1].split("```", 1)[0]


def _record(dashboard: Dashboard) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """What the page sends and receives on its websockets, and every URL it requests."""
    sent: list[dict[str, Any]] = []
    received: list[str] = []
    urls: list[str] = []

    def on_socket(ws: Any) -> None:
        urls.append(ws.url)
        ws.on("framesent", lambda payload: sent.append(json.loads(payload)))
        ws.on("framereceived", lambda payload: received.append(payload))

    dashboard.page.on("websocket", on_socket)
    dashboard.page.on("request", lambda request: urls.append(request.url))
    return sent, received, urls


async def test_a_customer_token_shows_that_customer_alone(dashboard: Dashboard) -> None:
    """A customer's token (its interface and its queue) opens the customer view: the login,
    plan, session uptime, address and caller id, a live chart with the plan; every row the page
    receives is that customer's, only its sources are asked for, and the token never appears
    in a URL (it leaves the address bar at once)."""
    page, url = dashboard.page, dashboard.gateway.url
    sent, received, urls = _record(dashboard)
    token = _customer_token()
    await page.goto(f"{url}customer#token={token}")
    await expect(page).to_have_url(f"{url}customer")
    await expect(page.locator("#connection .badge-text")).to_have_text("Live", timeout=ms(10))
    await expect(page.locator(".customer-title")).to_have_text("user0002", timeout=ms(10))
    plan = re.compile(r"^[\d.]+ Mbps / [\d.]+ Mbps$")
    await expect(page.locator(".fact-plan")).to_have_text(plan)
    await expect(page.locator(".fact-login")).to_have_text("user0002 (pppoe)")
    await expect(page.locator(".fact-address")).to_have_text(re.compile(r"^100\.64\.\d+\.\d+$"))
    await expect(page.locator(".fact-caller")).to_have_text(
        re.compile(r"^48:A9:8A(:[0-9A-F]{2}){3}$")
    )
    await expect(page.locator(".fact-uptime")).to_have_text(re.compile(r"^\d+ (s|min)"))
    await expect(page.locator(".fact-down")).to_have_text(RATE, timeout=ms(10))
    await expect(page.locator(".fact-down")).to_have_text(re.compile(r"% of plan\)$"))
    # Its queue and its interface, the queue charted (with its plan).
    chips = page.get_by_role("group", name="What the chart shows").get_by_role("button")
    await expect(chips).to_have_text([f"queue {CUSTOMER}", f"interface {CUSTOMER}"])
    await expect(chips.first).to_have_attribute("aria-pressed", "true")
    await expect(page.locator(".readout")).to_have_text(re.compile(r"plan dotted"))
    await page.wait_for_function(
        """(name) => {
          const series = window.gatewayCustomer.feed.get("bras", "queues")?.series;
          const columns = series?.columns([name], 0, { plan: true }) ?? [[]];
          return columns[0].length > 2 && columns[1].some((v) => v !== null)
            && columns[3].every((v) => v > 0);
        }""",
        arg=CUSTOMER,
        timeout=ms(10),
    )
    await chips.nth(1).click()
    await expect(chips.nth(1)).to_have_attribute("aria-pressed", "true")
    await expect(page.locator(".readout")).not_to_have_text(re.compile(r"plan"))

    # Everything received is this customer's: no other customer, no static queue.
    frames = [json.loads(text) for text in received]
    rows = [
        row["name"]
        for message in frames
        for frame in ([message] if message["type"] == "traffic" else message.get("frames", []))
        for source in ("interfaces", "queues", "hotspot")
        for row in frame.get(source, [])
    ]
    assert rows
    assert set(rows) == {CUSTOMER}
    assert not any("user0001" in text or "cust0001" in text for text in received)
    # The sources the token names, with the window's history and no row filter of its own.
    subscribes = [m for m in sent if m["type"] == "subscribe"]
    assert sorted(m.get("source", "interfaces") for m in subscribes) == ["interfaces", "queues"]
    for m in subscribes:
        assert m["router"] == ROUTER
        assert m["history_seconds"] == 300
        assert "names" not in m
        assert "interfaces" not in m
    # The token went in the first message, never in a URL.
    assert sent[0] == {"type": "auth", "token": token}
    assert urls
    assert not any(token in u or "token=" in u for u in urls), urls


async def test_the_customer_view_never_pulls_a_whole_router(dashboard: Dashboard) -> None:
    """Opened with a token that shows the router whole (an operator's) and no customer named,
    the view says to name one and subscribes to nothing; naming one in the address (a static
    queue) shows that customer's plan, comment and address, and only its rows are asked for."""
    page, url = dashboard.page, dashboard.gateway.url
    sent, _, _ = _record(dashboard)
    token = hs256(sub="noc", routers=[ROUTER])
    await page.goto(f"{url}customer#token={token}")
    note = page.locator(".customer-note")
    await expect(note).to_have_text(re.compile(r"one customer"), timeout=ms(10))
    await expect(page.locator("#connection .badge-text")).to_have_text("Live")
    assert [m for m in sent if m["type"] == "subscribe"] == []

    await page.goto(f"{url}customer?router={ROUTER}&queue=cust0001&window=1#token={token}")
    await expect(page.locator(".customer-title")).to_have_text("cust0001", timeout=ms(10))
    await expect(page.locator(".customer-comment")).to_have_text(re.compile(r"^CID-100001"))
    await expect(note).to_be_hidden()
    await expect(page.locator(".fact-plan")).to_have_text(re.compile(r" / "))
    await expect(page.locator(".fact-down")).to_have_text(RATE, timeout=ms(10))
    # No PPP session: its address is its queue's target, and what it does not have is left out.
    await expect(page.locator(".fact-address")).to_have_text(re.compile(r"^10\.20\.\d+\.\d+/32$"))
    await expect(page.locator(".fact-caller")).to_be_hidden()
    await expect(page.locator(".fact-uptime")).to_be_hidden()
    await expect(page.get_by_role("button", name="1 min")).to_have_attribute("aria-pressed", "true")
    subscribes = [m for m in sent if m["type"] == "subscribe"]
    assert subscribes == [
        {
            "type": "subscribe",
            "router": ROUTER,
            "source": "queues",
            "names": [{"exact": "cust0001"}],
            "history_seconds": 60,
        }
    ]


async def test_a_portal_embeds_the_customer_view_as_the_readme_shows(
    dashboard: Dashboard, portal_port: int
) -> None:
    """The README's embedding code, on a portal of another origin that the gateway lets frame
    it: the framed customer view asks the portal for its token and shows the customer live."""
    gateway_origin = dashboard.gateway.url.rstrip("/")
    embed = _readme_embedding().replace("https://gateway.example.net", gateway_origin)
    # The portal's own minting, for its logged-in customer (here: a token made in advance).
    mint = (
        "<script>async function mintTokenForTheLoggedInCustomer() {"
        f" return {json.dumps(_customer_token())}; }}</script>"
    )
    html = f"<!doctype html><title>Portal</title>{mint}{embed}"

    async def portal(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    async def no_icon(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/", portal)
    app.router.add_get("/favicon.ico", no_icon)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", portal_port).start()
        # A page of its own: the fixture's page counts the portal's origin as foreign.
        page = await dashboard.page.context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(f"http://127.0.0.1:{portal_port}/")
        frame = page.frame_locator("#traffic")
        await expect(frame.locator("#connection .badge-text")).to_have_text("Live", timeout=ms(10))
        await expect(frame.locator(".customer-title")).to_have_text("user0002", timeout=ms(10))
        await expect(frame.locator(".fact-plan")).to_have_text(re.compile(r" / "))
        await expect(frame.get_by_role("button", name="15 min")).to_have_attribute(
            "aria-pressed", "true"
        )
        framed = [f.url for f in page.frames if f.url.startswith(gateway_origin)]
        assert framed == [f"{gateway_origin}/customer?window=15"]
        assert errors == [], errors
        await page.close()
    finally:
        await runner.cleanup()
