"""The real ``gateway serve`` process: start-up, a broken config, and the SIGTERM drain."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import orjson

from gateway import process
from gateway.emulator.server import RouterEmulator
from tests.support.gateway import PASSWORD, emulator, receive, running, subscribe
from tests.support.timing import eventually, seconds

GRACE = 5.0


def _config(path: Path, emu: RouterEmulator, server: str = f"shutdown_grace = {GRACE}") -> Path:
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = 0
{server}

[poll]
interval = 0.5
timeout = 1.0

# Hundreds of viewers from 127.0.0.1: the per-address limits are for the Internet.
[limits]
connections_per_address = 0
handshakes_per_second = 0

[[routers]]
id = "core-1"
name = "Core router"
host = "127.0.0.1"
port = {emu.port}
username = "admin"
password_env = "CORE1_PASSWORD"
"""
    )
    return path


@asynccontextmanager
async def gateway_process(
    config: Path, env: Mapping[str, str] | None = None, before: list[bytes] | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """``gateway serve --config config`` with ``env`` added; yields it and its base URL once it
    printed where it listens. The lines it wrote before that go to ``before``."""
    async with process.started(
        process.command("serve", "--config", str(config)),
        ready=process.GATEWAY_READY,
        deadline=seconds(10),
        env={"CORE1_PASSWORD": PASSWORD, **(env or {})},
        merged=True,
    ) as child:
        if before is not None:
            assert child.ready is not None
            lines = child.lines["stdout"]
            before += [line.encode() + b"\n" for line in lines[: lines.index(child.ready.string)]]
        yield child.proc, child.url


async def test_sigterm_drains_viewers_and_exits_cleanly(tmp_path: Path) -> None:
    """On SIGTERM: /readyz 503 at once, every viewer gets 1001, exit 0 within the grace."""
    emu = emulator()
    async with running(emu), gateway_process(_config(tmp_path / "gw.toml", emu)) as (proc, url):
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.get(f"{url}/readyz") as response:
                assert response.status == 200
            viewers = []
            for _ in range(200):
                ws = await http.ws_connect(f"{url}/ws", timeout=aiohttp.ClientWSTimeout(5))
                assert (await receive(ws))["type"] == "hello"
                await subscribe(ws, "core-1")
                viewers.append(ws)

            async def close_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
                while True:
                    msg = await ws.receive(timeout=seconds(GRACE))
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        return ws.close_code
                    assert msg.type is aiohttp.WSMsgType.TEXT

            codes = asyncio.gather(*(close_code(ws) for ws in viewers))
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            async with aiohttp.ClientSession() as fresh, fresh.get(f"{url}/readyz") as response:
                assert response.status == 503
                assert (await response.json())["status"] == "draining"
            assert await codes == [1001] * 200
            assert await asyncio.wait_for(proc.wait(), seconds(GRACE + 1)) == 0
            assert time.monotonic() - started <= seconds(GRACE)
        # The gateway logged out of the router on its way out.
        assert emu.commands["/quit"] == 1


async def test_drain_hold_keeps_answering_not_ready_before_the_port_closes(
    tmp_path: Path,
) -> None:
    """After SIGTERM, /readyz keeps answering 503 for server.drain_hold before the process ends,
    so a load balancer polling readiness sees the replica leave rather than a closed port."""
    hold = seconds(1.5)
    # A grace of at least four holds: the hold is capped at a quarter of it.
    server = f"shutdown_grace = {4 * hold + seconds(2)}\ndrain_hold = {hold}"
    emu = emulator()
    async with (
        running(emu),
        gateway_process(_config(tmp_path / "gw.toml", emu, server)) as (proc, url),
    ):
        async with aiohttp.ClientSession() as http:

            async def ready() -> int:
                async with http.get(f"{url}/readyz") as response:
                    return response.status

            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            await eventually(lambda: _is(ready(), 503), timeout=seconds(5), message="503")
            # The hold began after that first 503: probes in a shorter window all get answers.
            draining = time.monotonic()
            answers = [await ready()]
            while time.monotonic() - draining < hold * 0.8:
                answers.append(await ready())
        assert set(answers) == {503}
        assert await asyncio.wait_for(proc.wait(), seconds(10) + 4 * hold) == 0
        assert time.monotonic() - started >= hold


async def _is(status: Awaitable[int], expected: int) -> bool:
    return await status == expected


async def test_broken_config_names_file_and_key(tmp_path: Path) -> None:
    """A config error stops start-up with one line naming the file, the key and the expectation."""
    config = tmp_path / "broken.toml"
    config.write_text('[poll]\ninterval = "fast"\n\n[[routers]]\nid = "a"\nhost = "h"\n')
    done = await process.run(process.command("serve", "--config", str(config)), timeout=seconds(10))
    assert done.returncode == 2
    message = done.stderr
    assert "broken.toml" in message
    assert "poll.interval" in message
    assert "fast" in message


async def test_running_process_serves_frames(tmp_path: Path) -> None:
    """The real process polls the router and serves a REST snapshot with rates."""
    emu = emulator()
    async with (
        running(emu),
        gateway_process(_config(tmp_path / "gw.toml", emu)) as (_, url),
        aiohttp.ClientSession() as http,
    ):
        deadline = time.monotonic() + seconds(10)
        body: dict[str, object] = {}
        while time.monotonic() < deadline:
            async with http.get(f"{url}/api/routers/core-1/traffic") as response:
                if response.status == 200:
                    body = orjson.loads(await response.read())
                    if body["seq"] >= 2:  # type: ignore[operator]
                        break
            await asyncio.sleep(0.1)  # pacing between polls of the REST endpoint
        assert body["state"] == "up"
        assert body["router"] == "core-1"


async def _probe(env: Mapping[str, str]) -> int:
    """``python -m gateway.healthcheck`` (the image's HEALTHCHECK) with ``env``: its exit code."""
    done = await process.run(
        [sys.executable, "-m", "gateway.healthcheck"], timeout=seconds(10), env=env
    )
    return done.returncode


async def test_the_process_tells_the_health_probe_where_it_listens(tmp_path: Path) -> None:
    """With GATEWAY_LISTEN_FILE set, `serve` writes the URL it really bound (here a port the OS
    picked, which no configuration names) and the health probe finds it there; the file is
    gone once the process has exited."""
    listen = tmp_path / "gateway.listen"
    emu = emulator()
    env = {"GATEWAY_LISTEN_FILE": str(listen)}
    async with running(emu):
        config = _config(tmp_path / "gw.toml", emu)
        async with gateway_process(config, env) as (proc, url):
            assert listen.read_text() == f"{url}/\n"
            assert await _probe({**env, "GATEWAY_CONFIG": str(config)}) == 0
            # Without the file the probe guesses from the configuration (port 0): it fails.
            assert await _probe({"GATEWAY_CONFIG": str(config)}) == 1
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), seconds(GRACE + 1)) == 0
    assert not listen.exists()


async def test_an_unwritable_listen_file_costs_one_warning(tmp_path: Path) -> None:
    """A GATEWAY_LISTEN_FILE that cannot be written is one warning at start-up, naming it;
    the gateway serves all the same."""
    listen = tmp_path / "missing-folder" / "gateway.listen"
    before: list[bytes] = []
    emu = emulator()
    async with (
        running(emu),
        gateway_process(
            _config(tmp_path / "gw.toml", emu), {"GATEWAY_LISTEN_FILE": str(listen)}, before
        ) as (_, url),
        aiohttp.ClientSession() as http,
        http.get(f"{url}/healthz") as response,
    ):
        assert response.status == 200
    [warning] = before
    assert b" WARNING gateway: cannot write GATEWAY_LISTEN_FILE=" in warning
    assert str(listen).encode() in warning
