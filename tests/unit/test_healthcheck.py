"""``gateway healthcheck``: which URL it probes, and its exit status."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.healthcheck import check, default_url

ROUTER = """
[[routers]]
id = "a"
host = "192.0.2.1"
username = "monitor"
password = "x"
"""


def test_url_follows_the_configuration(tmp_path: Path) -> None:
    """The probe goes to the configured port, on 127.0.0.1 when the gateway listens on all."""
    config = tmp_path / "gateway.toml"
    config.write_text('[server]\nhost = "0.0.0.0"\nport = 9123\n' + ROUTER)
    assert default_url({"GATEWAY_CONFIG": str(config)}) == "http://127.0.0.1:9123/healthz"
    env = {"GATEWAY_CONFIG": str(config), "GATEWAY_SERVER_PORT": "9200"}
    assert default_url(env) == "http://127.0.0.1:9200/healthz"
    config.write_text('[server]\nhost = "::1"\nport = 9124\n' + ROUTER)
    assert default_url({"GATEWAY_CONFIG": str(config)}) == "http://[::1]:9124/healthz"


def test_url_without_a_configuration_file() -> None:
    """`gateway demo` reads no file: the probe follows GATEWAY_SERVER_HOST/PORT, else :8080."""
    missing = {"GATEWAY_CONFIG": "/nonexistent/gateway.toml"}
    assert default_url(missing) == "http://127.0.0.1:8080/healthz"
    assert default_url({**missing, "GATEWAY_SERVER_PORT": "9001"}) == (
        "http://127.0.0.1:9001/healthz"
    )
    env = {"GATEWAY_SERVER_HOST": "127.0.0.2", "GATEWAY_SERVER_PORT": "9002"}
    assert default_url(env) == "http://127.0.0.2:9002/healthz"


def test_broken_configuration_probes_the_default(tmp_path: Path) -> None:
    """A configuration the server would refuse does not crash the probe."""
    config = tmp_path / "gateway.toml"
    config.write_text("[server\n")
    assert default_url({"GATEWAY_CONFIG": str(config)}) == "http://127.0.0.1:8080/healthz"


async def test_exit_status_follows_the_answer() -> None:
    """0 for a 200 answer; 1 for any other status and for nothing listening."""

    async def healthy(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def broken(request: web.Request) -> web.Response:
        return web.json_response({}, status=500)

    app = web.Application()
    app.router.add_get("/healthz", healthy)
    app.router.add_get("/broken", broken)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        assert await asyncio.to_thread(check, str(server.make_url("/healthz")), 2.0) == 0
        assert await asyncio.to_thread(check, str(server.make_url("/broken")), 2.0) == 1
    finally:
        await server.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert await asyncio.to_thread(check, f"http://127.0.0.1:{closed}/healthz", 2.0) == 1
