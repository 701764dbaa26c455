"""Queues and hotspot users in a real browser, against a real gateway process and the demo's
emulated routers: the source switch, the queues table with its plan bars, search by comment,
sorting, and charting a queue or a hotspot user."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT
from tests.support.web import ConfigExtras, Dashboard, ms

if importlib.util.find_spec("playwright") is not None:
    # Without Playwright the `chromium` fixture skips (or, in CI, fails) every test here.
    from playwright.async_api import expect

SCREENSHOT = ROOT / "docs" / "queues.png"
"""The README's screenshot of the queues view: rewritten only by ``make screenshot``
(GATEWAY_UPDATE_SCREENSHOT=1), so a test run never changes the checkout."""
RATE = re.compile(r"^\d[\d.]* (bps|kbps|Mbps|Gbps)$")
PLAN = re.compile(r"^[\d.]+ [kMG]bps / [\d.]+ [kMG]bps$")

# The demo's ISP router numbers its static queues cust0001... with comments CID-100001...: every
# tenth is unlimited (accounting only), every 25th suspended (disabled).
LIMITED, UNLIMITED = "cust0007", "cust0010"


@pytest.fixture
def extras() -> ConfigExtras:
    """The flaky tower router serves interfaces only (no queues, no hotspot)."""
    return ConfigExtras(routers={"tower-3": 'sources = ["interfaces"]'})


def _badge(view: Any) -> Any:
    return view.locator(".view-badge .badge-text")


def _sent(dashboard: Dashboard) -> list[dict[str, Any]]:
    """Every message the page sends on its websockets, from now on (a list that grows)."""
    sent: list[dict[str, Any]] = []

    def on_socket(ws: Any) -> None:
        ws.on("framesent", lambda payload: sent.append(json.loads(payload)))

    dashboard.page.on("websocket", on_socket)
    return sent


async def test_queues_table_shows_each_customer_against_its_plan(
    dashboard: Dashboard, tmp_path: Path
) -> None:
    """The queues view lists the router's queues, busiest of their plans first, each rate with
    a bar to 100 % of its plan (unlimited said in words); a search by comment finds a customer;
    a column sorts; clicking a row charts that queue with its plan; only what is shown is asked
    for (the charted queue's history, the rest's latest frame)."""
    page, url = dashboard.page, dashboard.gateway.url
    sent = _sent(dashboard)
    await page.goto(f"{url}?view=isp-bras~queues~5m")
    view = dashboard.view(0)
    await expect(_badge(view)).to_have_text("Live", timeout=ms(10))
    await expect(view.get_by_role("button", name="Queues")).to_have_attribute(
        "aria-pressed", "true"
    )
    rows = view.locator(".rows-table tbody tr")
    await expect(rows.first).to_be_visible(timeout=ms(10))
    assert 40 <= await rows.count() <= 100
    await expect(view.locator(".rows-note")).to_have_text(
        re.compile(r"^(Showing 100 of \d+; type to narrow the list|\d+ of \d+ queues)\.")
    )
    # Opened by use of the plan, highest first (the top queue is charted by itself).
    await expect(view.locator(".rows-table th[aria-sort=descending]")).to_have_text("Use ▾")
    await expect(page).to_have_url(re.compile(r"\?view=isp-bras~queues~5m~[^,&~]+$"))

    # Search by the customer id in the comment: that customer alone, with its plan bars.
    search = view.get_by_label("Find queue")
    await search.fill("CID-100007")
    await expect(rows).to_have_count(1)
    row = rows.first
    await expect(row).to_have_attribute("data-name", LIMITED)
    await expect(row.locator(".comment")).to_have_text(re.compile(r"^CID-100007"))
    await expect(row.locator(".plan")).to_have_text(PLAN)
    for cell in (row.locator(".rate-cell").nth(0), row.locator(".rate-cell").nth(1)):
        await expect(cell.locator(".rate")).to_have_text(RATE, timeout=ms(5))
        await expect(cell.locator(".meter")).to_be_visible()
        await expect(cell.locator(".use")).to_have_text(re.compile(r"^[\d.]+ %$"))
    fill = await row.locator(".rate-cell .meter").first.evaluate(
        "(m) => Number(m.style.getPropertyValue('--fill'))"
    )
    assert 0 <= fill <= 1

    # An unlimited plan says so, and has no bar.
    await search.fill("CID-100010")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-name", UNLIMITED)
    await expect(rows.first.locator(".plan")).to_have_text("unlimited")
    await expect(rows.first.locator(".rate-cell .use").first).to_have_text("unlimited")
    await expect(rows.first.locator(".rate-cell .meter").first).to_be_hidden()

    # Sorting by download: the table's order is the latest frame's, largest first.
    await search.fill("cust")
    await view.get_by_role("button", name="Download").click()
    await expect(view.locator(".rows-table th[aria-sort=descending]")).to_have_text("Download ▾")
    await page.wait_for_function(
        """() => {
          const topic = window.gatewayDashboard.feed.get("isp-bras", "queues");
          const down = new Map(topic.rows().map((q) => [q.name, q.down_bps ?? -1]));
          const shown = [...document.querySelectorAll(".rows-table tbody tr")]
            .map((tr) => down.get(tr.dataset.name));
          return shown.length > 1 && shown.every((v, i) => i === 0 || shown[i - 1] >= v);
        }""",
        timeout=ms(10),
    )

    # Clicking a row charts that queue, with its plan, and keeps it in the URL.
    await search.fill("CID-100007")
    await rows.first.click()
    charted = view.locator(f'.stats tbody tr[data-name="{LIMITED}"]')
    await expect(charted).to_have_count(1)
    await expect(charted.locator(".note")).to_have_text(re.compile(r"plan [\d.]+ [kMG]bps / "))
    await expect(charted.locator("td.now").first).to_have_text(RATE, timeout=ms(10))
    await expect(view.locator(".readout")).to_have_text(re.compile(r"plan dotted"))
    await expect(page).to_have_url(re.compile(rf"~queues~5m~[^&]*{LIMITED}"))
    await page.wait_for_function(
        """(name) => {
          const series = window.gatewayDashboard.feed.get("isp-bras", "queues").series;
          const [xs, up, down, planUp, planDown] = series.columns([name], 0, { plan: true });
          return xs.length > 1 && planUp.some((v) => v > 0) && planDown.some((v) => v > 0)
            && up.some((v) => v !== null) && down.some((v) => v !== null);
        }""",
        arg=LIMITED,
        timeout=ms(10),
    )

    # What the page asked for: queues only; the charted ones by exact name with the window's
    # history, the rest from the latest frame on.
    subscribes = [m for m in sent if m["type"] == "subscribe"]
    assert subscribes
    assert all(m.get("source") == "queues" for m in subscribes), subscribes
    chart_steps = [m for m in subscribes if "names" in m]
    assert {"exact": LIMITED} in [entry for m in chart_steps for entry in m["names"]]
    for m in chart_steps:
        assert m.get("history_seconds") == 300 or m.get("history") == 1, m
        assert all(set(entry) == {"exact"} for entry in m["names"]), m
    for m in subscribes:
        if "names" not in m:
            assert isinstance(m.get("since"), int), m
            assert m.get("history_seconds") == 300, m

    # The screenshot for the README: the business customers (found by their comments) by use of
    # their plans, one charted with its plan, a one-minute window with some history in it.
    await view.get_by_role("button", name="1 min").click()
    others = await page.evaluate("() => window.gatewayDashboard.views[0].names")
    for name in others:
        if name != LIMITED:
            await view.get_by_role("button", name=f"Stop charting {name}").click()
    await expect(view.locator(".stats tbody tr")).to_have_count(1)
    await search.fill("CID-")
    await view.get_by_role("button", name="Use", exact=True).click()
    await expect(view.locator(".rows-table th[aria-sort=descending]")).to_have_text("Use ▾")
    await search.blur()
    await page.mouse.move(0, 0)
    screenshot = tmp_path / "queues.png"
    if os.environ.get("GATEWAY_UPDATE_SCREENSHOT"):
        screenshot = SCREENSHOT
        await page.wait_for_function(
            """() => { const p = window.gatewayDashboard.feed.get("isp-bras", "queues")
                 .series.points; return p.length > 0 && p[p.length - 1].ts - p[0].ts >= 20; }""",
            timeout=ms(40),
        )
    await page.screenshot(path=screenshot, full_page=True)


async def test_the_switch_offers_what_each_router_serves(dashboard: Dashboard) -> None:
    """The switch moves a view between interfaces, queues and hotspot users of its router (the
    URL follows); a hotspot user's row shows its address and MAC and charts it; a router that
    serves interfaces only gets no switch, and a view of it falls back to interfaces."""
    page, url = dashboard.page, dashboard.gateway.url
    await page.goto(f"{url}?view=office~5m")
    view = dashboard.view(0)
    await expect(_badge(view)).to_have_text("Live", timeout=ms(10))
    switch = view.get_by_role("group", name="What to watch")
    await expect(switch).to_be_visible(timeout=ms(10))
    await expect(switch.get_by_role("button")).to_have_text(["Interfaces", "Queues", "Hotspot"])

    # Interfaces show their comments, and a search finds one by it.
    await view.get_by_label("Find interface").fill("uplink")
    await expect(view.locator(".picker-list li")).to_have_count(1)
    await expect(view.locator(".picker-list .comment")).to_have_text("uplink")

    await switch.get_by_role("button", name="Hotspot").click()
    await expect(page).to_have_url(re.compile(r"\?view=office~hotspot~5m"))
    rows = view.locator(".rows-table tbody tr")
    await expect(rows.first).to_be_visible(timeout=ms(10))
    head = view.locator(".rows-table thead th")
    await expect(head).to_have_text(
        ["#", "User", "Address", "MAC", "Uptime", "Upload", "Download ▾"]
    )
    # The busiest user is charted by itself; another one is charted by a click on its row.
    await expect(page).to_have_url(re.compile(r"\?view=office~hotspot~5m~guest\d{4}$"))
    user = rows.nth(1)
    name = await user.get_attribute("data-name")
    assert name is not None
    assert re.fullmatch(r"guest\d{4}", name)
    await expect(user.locator("td").nth(1)).to_have_text(re.compile(r"^10\.5\.50\.\d+$"))
    await expect(user.locator("td").nth(2)).to_have_text(re.compile(r"^3C:2E:FF(:[0-9A-F]{2}){3}$"))
    # By its name: the table reorders with every frame, so `nth(1)` may be another row by now.
    await view.locator(f'.rows-table tbody tr[data-name="{name}"] button').click()
    charted = view.locator(f'.stats tbody tr[data-name="{name}"]')
    await expect(charted).to_have_count(1)
    await expect(charted.locator("td.now").first).to_have_text(RATE, timeout=ms(10))
    await expect(page).to_have_url(re.compile(rf"~hotspot~5m~guest\d{{4}},{name}$"))

    # The office's queues: the hotspot users' dynamic queues, each with its plan.
    await switch.get_by_role("button", name="Queues").click()
    await expect(page).to_have_url(re.compile(r"\?view=office~queues~5m"))
    await expect(view.locator(".rows-table tbody tr").first).to_have_attribute(
        "data-name", re.compile(r"^<hotspot-guest\d{4}>$"), timeout=ms(10)
    )

    # A router that serves interfaces only: back to interfaces, and nothing to switch.
    await view.get_by_label("Router").select_option("tower-3")
    await expect(page).to_have_url(re.compile(r"\?view=tower-3~5m"))
    await expect(_badge(view)).to_have_text("Live", timeout=ms(10))
    await expect(switch).to_be_hidden()
    await expect(view.locator(".talkers tbody tr").first).to_be_visible()
