"""``gateway healthcheck``: which URL it probes, and its exit status."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from gateway.healthcheck import check, check_any, default_url, default_urls
from gateway.listen_file import health_url, listen_url, read_listen_file, write_listen_file

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


def test_listen_file_is_preferred_to_the_configuration(tmp_path: Path) -> None:
    """Where the process says it listens beats what the configuration says: a `serve --config`
    elsewhere or a `demo --port` the probe cannot see is still found."""
    config = tmp_path / "gateway.toml"
    config.write_text('[server]\nhost = "0.0.0.0"\nport = 9123\n' + ROUTER)
    listen = tmp_path / "gateway.listen"
    write_listen_file(listen, ["http://127.0.0.1:9500/"])
    env = {"GATEWAY_CONFIG": str(config), "GATEWAY_LISTEN_FILE": str(listen)}
    assert default_urls(env) == ["http://127.0.0.1:9500/healthz"]
    # No file yet (the process has not bound), or an empty one: the configuration's address.
    for text in (None, "", "\n"):
        listen.unlink(missing_ok=True)
        if text is not None:
            listen.write_text(text)
        assert default_urls(env) == ["http://127.0.0.1:9123/healthz"]


@pytest.mark.parametrize(
    ("bound", "probed"),
    [
        (("0.0.0.0", 8080), "http://127.0.0.1:8080/healthz"),
        (("::", 18486), "http://[::1]:18486/healthz"),
        (("127.0.0.1", 9000), "http://127.0.0.1:9000/healthz"),
        (("::1", 9001), "http://[::1]:9001/healthz"),
        (("192.0.2.10", 9002), "http://192.0.2.10:9002/healthz"),
        (("fd00::7", 9003), "http://[fd00::7]:9003/healthz"),
    ],
)
def test_a_wildcard_bind_is_probed_on_the_loopback_of_its_family(
    tmp_path: Path, bound: tuple[str, int], probed: str
) -> None:
    """0.0.0.0 is probed on 127.0.0.1 and :: (an IPv6-only listener) on ::1; an address of its
    own is probed as it is; IPv6 addresses are written in brackets."""
    listen = tmp_path / "gateway.listen"
    write_listen_file(listen, [listen_url(*bound)])
    assert read_listen_file({"GATEWAY_LISTEN_FILE": str(listen)}) == [listen_url(*bound)]
    assert default_urls({"GATEWAY_LISTEN_FILE": str(listen)}) == [probed]


def test_every_listening_address_is_a_candidate(tmp_path: Path) -> None:
    """A process bound on several addresses lists each, in order; a line that is no URL is
    skipped rather than failing the probe."""
    listen = tmp_path / "gateway.listen"
    listen.write_text("http://0.0.0.0:8080/\nnot a url\nhttp://[::]:8080/\n")
    assert default_urls({"GATEWAY_LISTEN_FILE": str(listen)}) == [
        "http://127.0.0.1:8080/healthz",
        "http://[::1]:8080/healthz",
    ]
    with pytest.raises(ValueError, match="not a listening URL"):
        health_url("not a url")


def test_the_listen_file_is_replaced_whole(tmp_path: Path) -> None:
    """Writing the file replaces it and leaves no partial file behind."""
    listen = tmp_path / "gateway.listen"
    listen.write_text("http://127.0.0.1:1/\n" * 100)
    write_listen_file(listen, ["http://127.0.0.1:2/", "http://[::1]:2/"])
    assert listen.read_text() == "http://127.0.0.1:2/\nhttp://[::1]:2/\n"
    assert [p.name for p in tmp_path.iterdir()] == ["gateway.listen"]


async def test_exit_status_follows_the_answer(aiohttp_server: AiohttpServer) -> None:
    """0 for a 200 answer; 1 for any other status and for nothing listening."""

    async def healthy(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def broken(request: web.Request) -> web.Response:
        return web.json_response({}, status=500)

    app = web.Application()
    app.router.add_get("/healthz", healthy)
    app.router.add_get("/broken", broken)
    server = await aiohttp_server(app)
    assert await asyncio.to_thread(check, str(server.make_url("/healthz")), 2.0) == 0
    assert await asyncio.to_thread(check, str(server.make_url("/broken")), 2.0) == 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/healthz"
    assert await asyncio.to_thread(check, closed, 2.0) == 1
    # Several candidates: healthy as soon as one answers.
    good = str(server.make_url("/healthz"))
    assert await asyncio.to_thread(check_any, [closed, good], 2.0) == 0
    assert await asyncio.to_thread(check_any, [closed, closed], 2.0) == 1
