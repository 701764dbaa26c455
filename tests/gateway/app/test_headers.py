"""Security headers on every response the gateway writes: no sniffing, no referrer, no framing
(unless an embedder is allowed), HSTS when TLS is declared, no caching of a viewer's data."""

from __future__ import annotations

import pytest
from multidict import CIMultiDictProxy

from tests.support.gateway import Gateway, emulator, gateway, gateway_settings, running

PATHS = ("/", "/healthz", "/readyz", "/metrics", "/api/routers", "/nowhere", "/static/favicon.svg")


async def headers_of(gw: Gateway, path: str) -> CIMultiDictProxy[str]:
    async with gw.http.get(gw.url(path)) as response:
        return response.headers


async def handshake_headers(gw: Gateway) -> CIMultiDictProxy[str]:
    """The headers of a websocket handshake's 101 answer."""
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    async with gw.http.get(gw.url("/ws"), headers=headers) as response:
        assert response.status == 101
        return response.headers


async def test_every_response_denies_sniffing_referrers_and_framing() -> None:
    """Pages, probes, metrics, API answers, errors, static files and the websocket handshake
    all carry the headers; the page keeps its own fuller policy, which denies framing too."""
    core = emulator()
    async with running(core), gateway(gateway_settings({"core": core})) as gw:
        everything = {path: await headers_of(gw, path) for path in PATHS}
        everything["/ws"] = await handshake_headers(gw)
    for path, headers in everything.items():
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "no-referrer", path
        assert headers["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert "Strict-Transport-Security" not in headers, path
    assert "script-src 'self' 'nonce-" in everything["/"]["Content-Security-Policy"]
    assert everything["/healthz"]["Content-Security-Policy"].startswith("default-src 'none'")
    assert everything["/api/routers"]["Cache-Control"] == "no-store"
    assert everything["/"]["Cache-Control"] == "no-cache"


async def test_an_allowed_embedder_may_frame_the_dashboard() -> None:
    """With allowed_frame_ancestors, exactly those origins may frame the page: the policy names
    them, and X-Frame-Options (which cannot) is left out."""
    core = emulator()
    portals = ["https://portal.example.net", "https://my.example.com"]
    async with running(core):
        settings = gateway_settings({"core": core}, allowed_frame_ancestors=portals)
        async with gateway(settings) as gw:
            page, probe = await headers_of(gw, "/"), await headers_of(gw, "/healthz")
    for headers in (page, probe):
        assert "X-Frame-Options" not in headers
        assert (
            "frame-ancestors https://portal.example.net https://my.example.com"
            in headers["Content-Security-Policy"]
        )


@pytest.mark.parametrize("tls_proxy", [True, False])
async def test_hsts_only_when_tls_is_declared(tls_proxy: bool) -> None:
    """HSTS is sent when server.tls_proxy says viewers come over HTTPS, and only then."""
    core = emulator()
    async with running(core):
        settings = gateway_settings({"core": core}, tls_proxy=tls_proxy)
        async with gateway(settings) as gw:
            headers = await headers_of(gw, "/")
            ws_headers = await handshake_headers(gw)
    for h in (headers, ws_headers):
        assert (h.get("Strict-Transport-Security") == "max-age=31536000") is tls_proxy


async def test_an_api_error_carries_the_headers_too() -> None:
    """An API call refused for an unknown router answers with the same headers, uncached."""
    core = emulator()
    async with (
        running(core),
        gateway(gateway_settings({"core": core})) as gw,
        gw.http.get(gw.url("/api/routers/nope/traffic")) as response,
    ):
        assert response.status == 404
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
