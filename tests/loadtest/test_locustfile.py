"""The Locust load test's verdict: short real runs of ``loadtest/locustfile.py`` in a subprocess.

A healthy gateway passes; a gateway frozen for a few seconds mid-run (SIGSTOP, then SIGCONT:
from a viewer's side the event loop stopped) fails the run, naming the silent frames and the
slow requests; a gateway that skips, repeats or loses frames across a reconnect fails it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from gateway import process
from gateway.emulator.control import create_control_app
from gateway.emulator.server import RouterEmulator
from tests.support import ROOT
from tests.support.gateway import PASSWORD, emulator, running
from tests.support.timing import eventually, seconds

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None or importlib.util.find_spec("websocket") is None,
    reason="needs the load extra (locust, websocket-client)",
)

LOCUSTFILE: Final = ROOT / "loadtest" / "locustfile.py"
USERS: Final = 30
"""24 viewers, 3 REST readers, 3 page visitors (the locustfile's weights 8:1:1)."""
RUN_SECONDS: Final = 12
FREEZE: Final = 4.0
"""Longer than the frame gap bound (2 x 0.5 s + 1 s) and than the 2 s request timeout plus the
1.5 s a REST reader may wait between requests, so every kind of user meets the freeze."""


def _config(path: Path, emu: RouterEmulator) -> Path:
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = 0
shutdown_grace = 2.0

# Every load generator here connects from 127.0.0.1: the per-address limits are for the Internet.
[limits]
connections_per_address = 0
handshakes_per_second = 0

[poll]
interval = 0.5
timeout = 1.0

[[routers]]
id = "core-1"
host = "127.0.0.1"
port = {emu.port}
username = "admin"
password_env = "CORE1_PASSWORD"
"""
    )
    return path


@asynccontextmanager
async def gateway_process(tmp_path: Path, emu: RouterEmulator) -> AsyncIterator[tuple[int, str]]:
    """``gateway serve`` in its own process; yields its PID and base URL."""
    config = _config(tmp_path / "gateway.toml", emu)
    async with process.started(
        process.command("serve", "--config", str(config)),
        ready=process.GATEWAY_READY,
        deadline=seconds(10),
        env={"CORE1_PASSWORD": PASSWORD},
        log=tmp_path / "gateway.log",
    ) as child:
        yield child.pid, child.url  # killed at the end: SIGKILL ends a stopped process too


async def control_api(aiohttp_server: AiohttpServer, emu: RouterEmulator) -> str:
    """The emulator's control API (``/stats``) on loopback, until the test ends."""
    server = await aiohttp_server(create_control_app(emu))
    return str(server.make_url("")).rstrip("/")


async def start_locust(
    url: str, *args: str, users: int = USERS, run: int = RUN_SECONDS
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{run}s",
        "--host",
        url,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def finish(proc: asyncio.subprocess.Process, run: int = RUN_SECONDS) -> tuple[int, str]:
    """Locust's exit code and output, within a deadline past its run time."""
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), seconds(run + 30))
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def watched_and_up(url: str, viewers: int) -> bool:
    """At least ``viewers`` websocket viewers are subscribed and the router is up."""
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{url}/api/routers", timeout=aiohttp.ClientTimeout(total=2)) as response,
        ):
            (router,) = (await response.json())["routers"]
    except (aiohttp.ClientError, TimeoutError):
        return False
    return bool(router["state"] == "up" and router["viewers"] >= viewers)


async def test_healthy_gateway_passes(tmp_path: Path, aiohttp_server: AiohttpServer) -> None:
    """Against a healthy gateway every check holds and Locust exits 0."""
    emu = emulator()
    async with running(emu), gateway_process(tmp_path, emu) as gw:
        control = await control_api(aiohttp_server, emu)
        _, url = gw
        locust = await start_locust(url, "--emulator-control", control, "--router-timeout", "1")
        code, out = await finish(locust)
    assert code == 0, out
    assert "gateway checks: PASSED" in out
    assert "router requests per interval {'core-1'" in out


async def test_gateway_frozen_mid_run_fails_the_run(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    """A gateway frozen for 4 s mid-run fails it, naming the silent frames and slow requests."""
    emu = emulator()
    async with running(emu), gateway_process(tmp_path, emu) as gw:
        control = await control_api(aiohttp_server, emu)
        pid, url = gw
        locust = await start_locust(url, "--emulator-control", control, "--router-timeout", "1")
        try:
            # The freeze starts once the load is in full swing: most viewers subscribed, and
            # told the router is up (a router still connecting owes them no frames yet).
            await eventually(
                lambda: watched_and_up(url, 20), timeout=seconds(15), message="20 viewers, up"
            )
            os.kill(pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(FREEZE)  # the fault itself: how long the gateway is frozen
            finally:
                os.kill(pid, signal.SIGCONT)
        finally:
            code, out = await finish(locust)
    assert code == 1, out
    gate = [line for line in out.splitlines() if "gateway check FAILED" in line]
    assert any("frame silence: silence core-1" in line for line in gate), out
    assert any("/api/routers/[id]/traffic" in line for line in gate), out


# -- a scripted fake gateway, for the frame checks --------------------------------------------

TICK: Final = 0.2
"""Seconds between the fake gateway's frames."""

Script = Callable[[web.WebSocketResponse, str, int | None], Awaitable[None]]


def _traffic(router: str, seq: int) -> dict[str, object]:
    return {
        "type": "traffic",
        "v": 1,
        "router": router,
        "seq": seq,
        "ts": time.time(),
        "interval": TICK,
        "stale": False,
        "interfaces": [],
    }


async def _open(
    ws: web.WebSocketResponse, router: str, history: list[int], *, reset: bool = False
) -> None:
    """The status, then the history as the gateway sends a big one: a message per frame (one
    message when empty), each but the last with ``"more": true``."""
    await ws.send_json({"type": "status", "router": router, "state": "up", "error": None})
    for i, part in enumerate([history[i : i + 1] for i in range(len(history))] or [[]]):
        more = i + 1 < len(history)
        frames = [_traffic(router, seq) for seq in part]
        await ws.send_json(
            {"type": "history", "router": router, "reset": reset, "more": more, "frames": frames}
        )


async def _stream(ws: web.WebSocketResponse, router: str, seqs: list[int], then: int) -> None:
    """Send ``seqs``, then ``then``, ``then + 1``, ... one per tick until the viewer leaves."""
    seq = then
    for item in [*seqs, None]:
        await ws.send_json(_traffic(router, item if item is not None else seq))
        await asyncio.sleep(TICK)  # the fake router's poll interval
    while not ws.closed:
        seq += 1
        await ws.send_json(_traffic(router, seq))
        await asyncio.sleep(TICK)  # the fake router's poll interval


async def _gap(ws: web.WebSocketResponse, router: str, since: int | None) -> None:
    await _open(ws, router, [])
    await _stream(ws, router, [1, 2, 4], then=5)


async def _duplicate(ws: web.WebSocketResponse, router: str, since: int | None) -> None:
    await _open(ws, router, [])
    await _stream(ws, router, [1, 2, 2], then=3)


async def _resume(ws: web.WebSocketResponse, router: str, since: int | None) -> None:
    """A slow-consumer close, then a resume whose history fills the gap exactly."""
    if since is None:
        await _open(ws, router, [1, 2])
        await ws.send_json(_traffic(router, 3))
        await ws.close(code=4408, message=b"slow consumer")
        return
    await _open(ws, router, [since + 1, since + 2])
    await _stream(ws, router, [], then=since + 3)


async def _reset(ws: web.WebSocketResponse, router: str, since: int | None) -> None:
    """A close, then a resume whose history no longer reaches back to ``since``."""
    if since is None:
        await _open(ws, router, [1, 2, 3])
        await ws.close(code=4408, message=b"slow consumer")
        return
    await _open(ws, router, [since + 10], reset=True)
    await _stream(ws, router, [], then=since + 11)


SCRIPTS: Final[dict[str, Script]] = {
    "gap": _gap,
    "duplicate": _duplicate,
    "resume": _resume,
    "reset": _reset,
}


async def _fake_ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    routers = [{"id": r, "name": r} for r in SCRIPTS]
    await ws.send_json({"type": "hello", "v": 1, "routers": routers, "heartbeat": 20})
    subscribe = await ws.receive_json(timeout=seconds(5))
    with contextlib.suppress(ConnectionError):  # the viewer left: the run ended
        await SCRIPTS[subscribe["router"]](ws, subscribe["router"], subscribe.get("since"))
    return ws


async def _fake_routers(request: web.Request) -> web.Response:
    return web.json_response({"routers": [{"id": r, "name": r} for r in SCRIPTS]})


async def test_seq_gaps_duplicates_and_lost_history_fail_the_run(
    aiohttp_server: AiohttpServer,
) -> None:
    """A gap, a duplicate and a resume that loses frames are failures; a good resume is not,
    its history in several messages included."""
    app = web.Application()
    app.router.add_get("/api/routers", _fake_routers)
    app.router.add_get("/ws", _fake_ws)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    # One viewer per scripted router (viewers take routers round robin).
    locust = await start_locust(url, "Viewer", users=len(SCRIPTS), run=5)
    code, out = await finish(locust, run=5)
    assert code == 1, out
    errors = out[out.index("Error report") :]
    assert "WS traffic gap: seq gap: frames missing" in errors, out
    assert "WS traffic duplicate: seq duplicate or out of order" in errors, out
    assert "WS resume: resume: history reset, frames lost" in errors, out
    assert "closed by the server with code 4408" in errors, out
    assert "traffic resume" not in errors, out
    # Both resumes were made; only the one whose history was reset failed.
    resumes = re.search(r"^WS\s+resume\s+(\d+)\s+(\d+)\(", out, re.M)
    assert resumes, out
    assert int(resumes.group(1)) >= 2
    assert int(resumes.group(1)) > int(resumes.group(2))
