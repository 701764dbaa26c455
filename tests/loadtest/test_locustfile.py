"""The Locust load test's verdict: short real runs of ``loadtest/locustfile.py`` in a subprocess.

A healthy gateway passes; a gateway frozen for a few seconds mid-run (SIGSTOP, then SIGCONT:
from a viewer's side the event loop stopped) fails the run, naming the silent frames and the
slow requests; a gateway that skips, repeats or loses frames across a reconnect fails it too.
Against three replicas in cluster mode (real processes, a real redis-server) the users spread
over them, and viewers whose replica shuts down resume on the next one without a gap; a seq
that jumps forward after a status (a takeover) passes only with ``--cluster``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
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
from tests.support.cluster import Timing, holders, replicas, write_config
from tests.support.gateway import PASSWORD, emulator, running
from tests.support.redis import redis_server
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


async def each_watched_and_up(urls: list[str], viewers: int) -> bool:
    """On every one of ``urls``, at least ``viewers`` viewers and the router up."""
    return all(await asyncio.gather(*(watched_and_up(url, viewers) for url in urls)))


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


async def test_viewers_spread_over_cluster_replicas_and_resume_on_the_next_one(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    """With ``--replicas`` and ``--cluster`` viewers spread over three replicas in cluster
    mode, and those of a replica that shuts down resume on the next one without a gap."""
    timing = Timing(interval=0.5, timeout=1.0, linger=1.0)
    emu = emulator()
    async with running(emu), redis_server() as redis:
        config = write_config(tmp_path / "gateway.toml", emu, redis.url, timing)
        control = await control_api(aiohttp_server, emu)
        async with replicas(config, 3) as group, aiohttp.ClientSession() as http:
            urls = [replica.url for replica in group]
            summary = tmp_path / "summary.json"
            locust = await start_locust(
                urls[0],
                "Viewer",  # REST readers and page visitors would fail on the stopped replica
                "--replicas",
                ",".join(urls),
                "--cluster",
                "--emulator-control",
                control,
                "--router-timeout",
                "1",
                "--summary-json",
                str(summary),
                users=USERS,
            )
            try:
                await eventually(
                    lambda: each_watched_and_up(urls, USERS // 3),
                    timeout=seconds(15),
                    message="every replica has its third of the viewers, router up",
                )
                # A replica that does not poll shuts down (its viewers get 1001, going away).
                held = await holders(http, group)
                stopped = next(r for i, r in enumerate(group) if i not in held)
                assert await stopped.stop() == 0
            finally:
                code, out = await finish(locust)
    assert code == 0, out
    assert "gateway checks: PASSED" in out
    verdict = json.loads(summary.read_text())
    connections = verdict["replicas"]
    assert list(connections) == urls
    assert all(connections[url] >= USERS // 3 for url in urls), connections
    # The stopped replica's viewers came back on the next one, resuming with since.
    assert verdict["viewers"]["closes"] == {"1001": USERS // 3}, verdict["viewers"]
    resumes = re.search(r"^WS\s+resume\s+(\d+)\s+0\(", out, re.M)
    assert resumes, out
    assert int(resumes.group(1)) == USERS // 3
    # One poller for the whole cluster (three would make it about 3; the window's ends blur it).
    assert verdict["router_requests"]["core-1"]["per_interval"] <= 1.2


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


async def _takeover(ws: web.WebSocketResponse, router: str, since: int | None) -> None:
    """Another replica takes over polling, as in cluster mode: a status, then seq jumps."""
    await _open(ws, router, [])
    for seq in (1, 2, 3):
        await ws.send_json(_traffic(router, seq))
        await asyncio.sleep(TICK)  # the fake router's poll interval
    await ws.send_json({"type": "status", "router": router, "state": "up", "error": None})
    await _stream(ws, router, [], then=1_764_377_000_000)


SCRIPTS: Final[dict[str, Script]] = {
    "gap": _gap,
    "duplicate": _duplicate,
    "resume": _resume,
    "reset": _reset,
}
FAKE_SCRIPTS: Final = web.AppKey("fake_scripts", dict[str, Script])


async def _fake_ws(request: web.Request) -> web.WebSocketResponse:
    scripts = request.app[FAKE_SCRIPTS]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    routers = [{"id": r, "name": r} for r in scripts]
    await ws.send_json({"type": "hello", "v": 1, "routers": routers, "heartbeat": 20})
    subscribe = await ws.receive_json(timeout=seconds(5))
    with contextlib.suppress(ConnectionError):  # the viewer left: the run ended
        await scripts[subscribe["router"]](ws, subscribe["router"], subscribe.get("since"))
    return ws


async def _fake_routers(request: web.Request) -> web.Response:
    routers = [{"id": r, "name": r} for r in request.app[FAKE_SCRIPTS]]
    return web.json_response({"routers": routers})


async def fake_gateway(aiohttp_server: AiohttpServer, scripts: dict[str, Script]) -> str:
    """A scripted gateway, one router per script (viewers take routers round robin); its URL."""
    app = web.Application()
    app[FAKE_SCRIPTS] = scripts
    app.router.add_get("/api/routers", _fake_routers)
    app.router.add_get("/ws", _fake_ws)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def test_seq_gaps_duplicates_and_lost_history_fail_the_run(
    aiohttp_server: AiohttpServer,
) -> None:
    """A gap, a duplicate and a resume that loses frames are failures; a good resume is not,
    its history in several messages included."""
    url = await fake_gateway(aiohttp_server, SCRIPTS)
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


@pytest.mark.parametrize("cluster", [True, False], ids=["cluster", "single"])
async def test_a_takeover_seq_jump_passes_only_in_cluster_mode(
    aiohttp_server: AiohttpServer, cluster: bool
) -> None:
    """Seq jumping forward right after a status (another replica took over) passes with
    ``--cluster`` and is a gap without it."""
    url = await fake_gateway(aiohttp_server, {"takeover": _takeover})
    flags = ["--cluster"] if cluster else []
    locust = await start_locust(url, "Viewer", *flags, users=1, run=4)
    code, out = await finish(locust, run=4)
    if cluster:
        assert code == 0, out
        assert "gateway checks: PASSED" in out
    else:
        assert code == 1, out
        assert "WS traffic takeover: seq gap: frames missing" in out, out
