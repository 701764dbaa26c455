"""The dashboard page as HTTP serves it (no browser needed): self-contained and cache-safe."""

from __future__ import annotations

import dataclasses
import json
import re

from tests.support.gateway import emulator, gateway, gateway_settings, running


async def test_page_loads_only_hashed_files_from_the_gateway() -> None:
    """GET / names only content-hashed files on the gateway itself (all served), under a
    Content-Security-Policy that lets the browser load nothing from anywhere else."""
    emu = emulator()
    async with running(emu), gateway(gateway_settings({"core-1": emu})) as gw:
        async with gw.http.get(gw.url("/")) as response:
            assert response.status == 200
            html = await response.text()
            csp = response.headers["Content-Security-Policy"]
            assert response.headers["Cache-Control"] == "no-cache"
        for directive in ("default-src 'none'", "connect-src 'self'", "style-src 'self'"):
            assert directive in csp
        nonce = re.search(r"'nonce-([^']+)'", csp)
        assert nonce
        assert html.count(f'nonce="{nonce.group(1)}"') == 2
        assert "http://" not in html
        assert "https://" not in html
        assert '{"embedders": [], "tokenUrl": ""}' in html

        importmap = re.search(r'<script type="importmap"[^>]*>(.*?)</script>', html, re.S)
        assert importmap
        modules: dict[str, str] = json.loads(importmap.group(1))["imports"]
        assert "/static/js/socket.js" in modules
        assert "/static/vendor/uplot/uPlot.esm.js" in modules
        linked = re.findall(r'(?:href|src)="([^"]+)"', html)
        assert len(linked) == 4  # icon, two stylesheets, the entry module
        for url in [*linked, *modules.values()]:
            assert re.fullmatch(r"/static/[\w/.-]+\?v=[\w%-]+", url), url
            async with gw.http.get(gw.url(url)) as response:
                assert response.status == 200, url


async def test_customer_view_is_a_page_of_its_own_under_the_same_policy() -> None:
    """GET /customer (what a billing portal embeds) is served like the dashboard: hashed files
    of the gateway only, the same Content-Security-Policy, no router name and no token in it."""
    emu = emulator()
    async with running(emu), gateway(gateway_settings({"hidden-bras-7": emu})) as gw:
        async with gw.http.get(gw.url("/")) as response:
            page_csp = response.headers["Content-Security-Policy"]
        async with gw.http.get(gw.url("/customer?router=hidden-bras-7&queue=c1")) as response:
            assert response.status == 200
            html = await response.text()
            csp = response.headers["Content-Security-Policy"]
            assert response.headers["Cache-Control"] == "no-cache"
        # The same policy but for its nonce.
        assert re.sub(r"'nonce-[^']+'", "", csp) == re.sub(r"'nonce-[^']+'", "", page_csp)
        nonce = re.search(r"'nonce-([^']+)'", csp)
        assert nonce
        assert html.count(f'nonce="{nonce.group(1)}"') == 2
        assert "hidden-bras-7" not in html
        assert "http://" not in html
        assert "https://" not in html
        entry = re.search(r'<script type="module" src="([^"]+)"', html)
        assert entry
        assert re.fullmatch(r"/static/js/customer-main\.js\?v=[\w%-]+", entry.group(1))
        for url in re.findall(r'(?:href|src)="([^"]+)"', html):
            async with gw.http.get(gw.url(url)) as response:
                assert response.status == 200, url


async def test_page_lists_no_routers() -> None:
    """Router names are not in the page: it learns them from the websocket hello, which shows
    a viewer only the routers its token allows."""
    emu = emulator()
    async with running(emu), gateway(gateway_settings({"hidden-bras-7": emu})) as gw:
        async with gw.http.get(gw.url("/")) as response:
            html = await response.text()
        assert "hidden-bras-7" not in html


async def test_page_tells_where_new_tokens_come_from() -> None:
    """The page learns the portal's token URL and the origins that may frame it, and its
    policy lets it fetch from that URL's origin and nowhere else."""
    emu = emulator()
    token_url = "https://portal.example.net/gw-token"
    async with running(emu):
        settings = gateway_settings(
            {"core-1": emu}, allowed_frame_ancestors=["https://portal.example.net"]
        )
        settings = dataclasses.replace(
            settings, auth=dataclasses.replace(settings.auth, token_url=token_url)
        )
        async with gateway(settings) as gw, gw.http.get(gw.url("/")) as response:
            html = await response.text()
            csp = response.headers["Content-Security-Policy"]
    data = re.search(r'<script type="application/json" id="gateway-config">(.*?)</script>', html)
    assert data
    assert json.loads(data.group(1)) == {
        "tokenUrl": "https://portal.example.net/gw-token",
        "embedders": ["https://portal.example.net"],
    }
    assert "connect-src 'self' https://portal.example.net;" in csp
