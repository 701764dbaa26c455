"""The dashboard in a real browser, against a real gateway process and emulated routers."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp

from gateway.emulator.server import Fault
from tests.support import ROOT
from tests.support.gateway import receive_until, subscribe
from tests.support.timing import eventually, seconds, stays
from tests.support.web import POLL, Dashboard, Routers, ms, watching

if importlib.util.find_spec("playwright") is not None:
    # Without Playwright the `chromium` fixture skips (or, in CI, fails) every test here.
    from playwright.async_api import expect

SCREENSHOT = ROOT / "docs" / "dashboard.png"
"""The README's screenshot: rewritten only by ``make screenshot`` (GATEWAY_UPDATE_SCREENSHOT=1), so
a test run never changes the checkout."""
RATE = re.compile(r"^\d[\d.]* (bps|kbps|Mbps|Gbps)$")
INTERVAL = POLL["interval"]

# Records, from inside the page, when each websocket was created and when it closed.
SOCKET_LOG = """
(() => {
  const Native = window.WebSocket;
  const log = (window.socketLog = []);
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      const entry = { created: performance.now(), closed: null, code: null };
      log.push(entry);
      this.addEventListener("close", (event) => {
        entry.closed = performance.now();
        entry.code = event.code;
      });
    }
  };
})();
"""


async def _viewers(url: str, router: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{url}api/routers") as response:
        body = await response.json()
    return next(int(r["viewers"]) for r in body["routers"] if r["id"] == router)


async def _interface_count(url: str, router: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}api/routers/{router}/traffic") as response,
    ):
        body = await response.json()
    return len(body["interfaces"])


def _badge(view: Any) -> Any:
    return view.locator(".view-badge .badge-text")


async def test_opens_live_on_the_first_router_and_charts_a_chosen_interface(
    dashboard: Dashboard, tmp_path: Path
) -> None:
    """The page opens live on the first router with its busiest interfaces charted; a chosen
    interface shows its rates; the view is kept in the URL; works in dark and at phone width."""
    async with watching(dashboard.gateway, "isp-bras"):
        # Someone already watches the ISP router: the screenshot below has history to show.
        await _opens_and_charts(dashboard, tmp_path / "dashboard.png")


async def _opens_and_charts(dashboard: Dashboard, screenshot: Path) -> None:
    page, url = dashboard.page, dashboard.gateway.url
    await page.goto(url)
    view = dashboard.view(0)
    await expect(_badge(view)).to_have_text("Live", timeout=ms(10))
    await expect(page.locator("#connection .badge-text")).to_have_text("Live")
    await expect(view.get_by_label("Router")).to_have_value("office")
    await expect(page).to_have_url(re.compile(r"\?view=office~5m~[^,&]+,[^,&]+,[^,&]+$"))
    await expect(view.locator(".stats tbody tr")).to_have_count(3)

    # Live frames reach the chart, and every interface is in the top-talkers table.
    before = len(await dashboard.point_times("office"))
    await dashboard.wait_points("office", before + 2)
    assert await view.locator(".chart canvas").count() >= 1
    total = await _interface_count(url, "office")
    await expect(view.locator(".talkers tbody tr")).to_have_count(total)

    # Another router: its busiest interfaces, then one PPPoE customer found by search.
    await view.get_by_label("Router").select_option("isp-bras")
    await expect(page).to_have_url(re.compile(r"\?view=isp-bras~5m~[^,&]+,[^,&]+,[^,&]+$"))
    await view.get_by_label("Find interface").fill("pppoe-user01")
    listed = view.locator(".picker-list .name")
    await expect(listed.first).to_have_text(re.compile(r"^<pppoe-user01"))
    assert all("pppoe-user01" in n for n in await listed.all_text_contents())
    choice = view.get_by_role("checkbox", name=re.compile(r"^<pppoe-user01\d\d>")).first
    name = await choice.get_attribute("value")
    assert name is not None
    await choice.check()
    row = view.locator(f'.stats tbody tr[data-name="{name}"]')
    # (A customer may be between sessions: the emulator re-dials within 7.5 s.)
    await expect(row.locator("td.now").first).to_have_text(RATE, timeout=ms(15))
    await expect(row.locator("td.now").last).to_have_text(RATE)
    await expect(row.locator("td.peak").first).to_have_text(RATE)
    assert name.replace("<", "%3C").replace(">", "%3E") in page.url

    # Charting from the top-talkers table: two busy customers instead of the uplink.
    await view.get_by_role("button", name=f"Stop charting {name}").click()
    await view.get_by_role("button", name="Stop charting sfp-sfpplus1").click()
    talkers = view.locator(".talkers tbody th button", has_text="<pppoe-")
    for _ in range(2):
        customer = talkers.and_(view.locator('[aria-pressed="false"]')).first
        picked = await customer.text_content()
        # By its name: the table reorders with every frame, so `.first` may be another by now.
        await view.locator(f'.talkers tbody th button[data-name="{picked}"]').click()
        await expect(view.locator(f'.stats tbody tr[data-name="{picked}"]')).to_have_count(1)
    await expect(view.locator(".stats tbody tr")).to_have_count(4)

    # The screenshot for the README: a one-minute window with some history in it.
    await view.get_by_role("button", name="1 min").click()
    await view.get_by_label("Find interface").fill("")
    await view.get_by_label("Find interface").blur()
    await page.wait_for_function(
        "(r) => { const p = window.gatewayDashboard.feed.routers.get(r).series.points;"
        " return p.length > 0 && p[p.length - 1].ts - p[0].ts >= 15; }",
        arg="isp-bras",
        timeout=ms(40),
    )
    await page.mouse.move(0, 0)
    await page.set_viewport_size({"width": 1440, "height": 600})
    if os.environ.get("GATEWAY_UPDATE_SCREENSHOT"):
        screenshot = SCREENSHOT
    await page.screenshot(path=screenshot, full_page=True)

    # Every control has a name a screen reader can say.
    unlabelled = await page.evaluate(
        """() => [...document.querySelectorAll("button, select, input")]
             .filter((el) => !el.closest("template"))
             .filter((el) => !(el.labels?.length || el.getAttribute("aria-label")
                               || el.textContent.trim()))
             .map((el) => el.outerHTML)"""
    )
    assert unlabelled == []

    # Dark theme, chosen by the user, kept for the next visit.
    await page.get_by_label("Theme").select_option("dark")
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"

    # A phone: nothing sticks out sideways.
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.wait_for_function("() => document.documentElement.scrollWidth <= 390", timeout=ms(5))


async def test_the_page_asks_only_for_the_history_its_window_shows(dashboard: Dashboard) -> None:
    """Every subscribe the page sends asks for no more history than its window (5 min at first,
    15 min once chosen, for the charted names again), and no message it gets is 1 MiB or more."""
    page, url = dashboard.page, dashboard.gateway.url
    sent: list[dict[str, Any]] = []
    sizes: list[int] = []

    def on_socket(ws: Any) -> None:
        ws.on("framesent", lambda payload: sent.append(json.loads(payload)))
        ws.on("framereceived", lambda payload: sizes.append(len(payload)))

    page.on("websocket", on_socket)
    await page.goto(url)
    view = dashboard.view(0)
    await expect(_badge(view)).to_have_text("Live", timeout=ms(10))
    await expect(view.locator(".stats tbody tr")).to_have_count(3)
    subscribes = [m for m in sent if m["type"] == "subscribe"]
    assert subscribes
    for message in subscribes:
        assert message.get("history") == 1 or message.get("history_seconds") == 300, message
    charted = {entry["exact"] for m in subscribes for entry in m.get("interfaces", [])}
    assert len(charted) == 3

    def widened() -> bool:
        return any(
            m.get("history_seconds") == 900
            and {entry["exact"] for entry in m.get("interfaces", [])} == charted
            for m in sent
        )

    await view.get_by_role("button", name="15 min").click()
    await eventually(widened, timeout=seconds(5), message="a 15-minute backfill of the chart")
    await expect(_badge(view)).to_have_text("Live", timeout=ms(10))
    # The chart step's answer is followed by the full step's subscribe: let both be answered.
    await page.wait_for_function(
        "() => [...window.gatewayDashboard.feed.routers.values()].every((f) => f.pending === 0)",
        timeout=ms(10),
    )
    count = len(sent)
    await view.get_by_role("button", name="1 min").click()
    await stays(
        lambda: len(sent) == count, duration=seconds(1), message="no new subscribe for 1 min"
    )
    assert max(sizes) < 1024 * 1024


async def test_survives_a_gateway_crash_without_a_reload(dashboard: Dashboard) -> None:
    """The gateway process is killed: the page says it is reconnecting, with a countdown, and
    retries with growing, jittered, capped delays; once the gateway is back the page is live
    again without a reload, its chart filled from history with no gap beyond the outage."""
    page, gateway = dashboard.page, dashboard.gateway
    await page.add_init_script(SOCKET_LOG)
    await page.goto(gateway.url)
    view = dashboard.view(0)
    await expect(_badge(view)).to_have_text("Live", timeout=ms(10))
    await dashboard.wait_points("office", 3)
    await page.evaluate("window.pageId = 'first load'")

    with dashboard.watch.outage():
        killed = time.time()
        await gateway.kill()
        countdown = re.compile(r"^Reconnecting in \d+ s$")
        await expect(page.locator("#connection .badge-text")).to_have_text(countdown)
        await expect(_badge(view)).to_have_text(re.compile(r"^Reconnecting"))

        # Five tries after the crash, timed by the page itself.
        await page.wait_for_function("() => window.socketLog.length >= 6", timeout=ms(40))
        log = await page.evaluate("window.socketLog")
        delays = [(log[i + 1]["created"] - log[i]["closed"]) / 1000 for i in range(5)]
        bounds = [min(20.0, 0.5 * 2**i) for i in range(5)]
        for i, (delay, bound) in enumerate(zip(delays, bounds, strict=True)):
            # A little slack for the page's own timer and event latency on a busy machine.
            assert 0 <= delay <= bound + seconds(0.25), f"try {i + 1}: {delay:.3f} s, bound {bound}"
        assert max(delays[1:]) > bounds[0], f"delays do not grow: {delays}"
        ratios = [d / b for d, b in zip(delays, bounds, strict=True)]
        assert max(ratios) - min(ratios) > 0.05, f"delays are not jittered: {delays}"

        # The gateway comes back, and a viewer elsewhere has it polling before the page returns.
        await gateway.start()
        restarted = time.time()
        async with aiohttp.ClientSession() as http:
            other = await http.ws_connect(f"{gateway.url}ws")
            await receive_until(other, "hello")
            await subscribe(other, "office")
            for _ in range(6):
                await receive_until(other, "traffic")
            # The browser regains the network: it tries at once rather than at its next turn.
            returned = time.time()
            await page.evaluate("window.dispatchEvent(new Event('online'))")
            await expect(_badge(view)).to_have_text("Live", timeout=ms(25))
            await expect(page.locator("#connection .badge-text")).to_have_text("Live")
            await other.close()

    assert await page.evaluate("window.pageId") == "first load", "the page was reloaded"
    await dashboard.wait_points("office", len(await dashboard.point_times("office")))
    times = await dashboard.point_times("office")
    assert all(b > a for a, b in itertools.pairwise(times)), "duplicate points"
    before = [t for t in times if t < killed]
    after = [t for t in times if t > restarted]
    assert before
    assert after
    assert any(t < returned - 1 for t in after), "the new process's history was not backfilled"
    outage = after[0] - before[-1]
    assert outage <= restarted - killed + 2.0, f"gap of {outage:.1f} s beyond the outage"
    gaps = [b - a for a, b in itertools.pairwise(times) if a > restarted]
    assert max(gaps) <= 2.5 * INTERVAL, f"gap after the restart: {max(gaps):.2f} s"
    assert dashboard.watch.tolerated > 0


async def test_a_hung_router_shows_down_and_recovers_while_others_stay_live(
    dashboard: Dashboard, routers: Routers
) -> None:
    """A router that hangs: its view says it is down, since when and why, keeps its chart, and
    comes back by itself; the other router's view stays live throughout."""
    page = dashboard.page
    await page.goto(f"{dashboard.gateway.url}?view=tower-3~1m&view=office~1m")
    tower, office = dashboard.view(0), dashboard.view(1)
    await expect(_badge(tower)).to_have_text("Live", timeout=ms(10))
    await expect(_badge(office)).to_have_text("Live", timeout=ms(10))
    await expect(tower.locator(".stats tbody tr")).to_have_count(3, timeout=ms(5))
    tower_points = len(await dashboard.point_times("tower-3"))

    await routers["tower-3"][1].set_fault(Fault("hang", duration=seconds(4)))
    since = re.compile(r"^Router down since \d\d:\d\d:\d\d$")
    await expect(_badge(tower)).to_have_text(since, timeout=ms(10))
    await expect(tower.locator(".view-badge .badge-detail")).to_have_text(
        re.compile(r"^127\.0\.0\.1:\d+: no (reply|answer) .* within 1 s$")
    )
    # The failing router blanks nothing: its own chart and figures stay, the other goes on.
    assert len(await dashboard.point_times("tower-3")) >= tower_points
    await expect(tower.locator(".stats tbody tr")).to_have_count(3)
    await expect(_badge(office)).to_have_text("Live")
    await dashboard.wait_points("office", len(await dashboard.point_times("office")) + 2)

    await expect(_badge(tower)).to_have_text("Live", timeout=ms(20))
    await dashboard.wait_points("tower-3", len(await dashboard.point_times("tower-3")) + 1)


async def test_a_frozen_gateway_shows_stale_data(dashboard: Dashboard) -> None:
    """A gateway that stops sending (frozen, its connection still open) turns the view's badge
    to stale data with the age of the last update; it is live again when frames resume."""
    page, gateway = dashboard.page, dashboard.gateway
    await page.goto(gateway.url)
    view = dashboard.view(0)
    await expect(_badge(view)).to_have_text("Live", timeout=ms(10))
    assert gateway.proc is not None
    os.kill(gateway.proc.pid, signal.SIGSTOP)
    try:
        await expect(_badge(view)).to_have_text("Stale data", timeout=ms(10))
        detail = view.locator(".view-badge .badge-detail")
        await expect(detail).to_have_text(re.compile(r"^last update \d+ s ago$"))
        # The connection itself is not blamed: nothing says it was lost.
        await expect(page.locator("#connection .badge-text")).to_have_text("Live")
    finally:
        os.kill(gateway.proc.pid, signal.SIGCONT)
    await expect(_badge(view)).to_have_text("Live", timeout=ms(10))


async def test_stop_unsubscribes_and_start_backfills(dashboard: Dashboard) -> None:
    """Stop monitor unsubscribes (the router is no longer polled for this page); Start monitor
    resumes with the history of the pause. Views can be added and removed."""
    page, url = dashboard.page, dashboard.gateway.url
    await page.goto(url)
    view = dashboard.view(0)
    await expect(_badge(view)).to_have_text("Live", timeout=ms(10))
    await dashboard.wait_points("office", 2)
    assert await _viewers(url, "office") == 1

    async with aiohttp.ClientSession() as http:
        # Someone else keeps watching, so the gateway has history for the pause.
        other = await http.ws_connect(f"{url}ws")
        await receive_until(other, "hello")
        await subscribe(other, "office")
        await view.get_by_role("button", name="Stop monitor").click()
        await expect(_badge(view)).to_have_text("Stopped")

        async def only_the_other_viewer() -> bool:
            return await _viewers(url, "office") == 1

        await eventually(only_the_other_viewer, timeout=seconds(5), interval=0.05)
        held = len(await dashboard.point_times("office"))
        for _ in range(4):
            await receive_until(other, "traffic")
        assert len(await dashboard.point_times("office")) == held, "frames after Stop"

        await view.get_by_role("button", name="Start monitor").click()
        await expect(_badge(view)).to_have_text("Live", timeout=ms(10))
        await dashboard.wait_points("office", held + 4)
        await other.close()
    times = await dashboard.point_times("office")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) <= 2.5 * INTERVAL, f"the pause left a gap of {max(gaps):.2f} s"

    await page.get_by_role("button", name="Add view").click()
    await expect(page.locator("section.view")).to_have_count(2)
    await expect(dashboard.view(1).get_by_label("Router")).to_have_value("isp-bras")
    both = re.compile(r"view=office~5m~.*&view=isp-bras~5m~")
    await expect(page).to_have_url(both, timeout=ms(10))
    await dashboard.view(1).get_by_role("button", name="Remove this view").click()
    await expect(page.locator("section.view")).to_have_count(1)
    await expect(page).to_have_url(re.compile(r"\?view=office~5m~[^&]+$"))
