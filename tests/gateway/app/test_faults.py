"""Router faults: viewers learn within the deadline, nothing hangs, polling recovers by itself."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from gateway.emulator.server import Fault, RouterEmulator
from tests.support.gateway import (
    Gateway,
    emulator,
    gateway,
    gateway_settings,
    open_fds,
    receive,
    receive_until,
    rss_kib,
    running,
    subscribe,
)
from tests.support.timing import eventually, seconds, stays

TIMEOUT = 1.0
BACKOFF_MAX = 1.5
POLL = {"interval": 0.25, "timeout": TIMEOUT, "backoff_initial": 0.2, "backoff_max": BACKOFF_MAX}


async def _limit_sessions(emu: RouterEmulator, over_limit: str) -> None:
    emu.max_sessions = 0
    emu.over_limit = over_limit  # type: ignore[assignment]
    await emu.drop_connections()


async def _unlimit_sessions(emu: RouterEmulator) -> None:
    emu.max_sessions = 20


# Each fault: how to switch it on, and how to clear it.
Action = Callable[[RouterEmulator], Awaitable[None]]
FAULTS: dict[str, tuple[Action, Action]] = {
    "hang": (lambda e: e.set_fault(Fault("hang")), lambda e: e.clear_fault()),
    "slow": (lambda e: e.set_fault(Fault("slow", delay=TIMEOUT * 2)), lambda e: e.clear_fault()),
    "drop": (lambda e: e.set_fault(Fault("drop")), lambda e: e.clear_fault()),
    "refuse": (lambda e: e.set_fault(Fault("refuse")), lambda e: e.clear_fault()),
    "trap": (lambda e: e.set_fault(Fault("trap", duration=60)), lambda e: e.clear_fault()),
    "fatal": (lambda e: e.set_fault(Fault("fatal", duration=60)), lambda e: e.clear_fault()),
    "limit-close": (lambda e: _limit_sessions(e, "close"), _unlimit_sessions),
    "limit-hang": (lambda e: _limit_sessions(e, "hang"), _unlimit_sessions),
    "limit-fatal": (lambda e: _limit_sessions(e, "fatal"), _unlimit_sessions),
}


async def _responsive(gw: Gateway, stop: asyncio.Event, failures: list[str]) -> None:
    """Probe /healthz and the REST snapshot until stopped; record any answer slower than 1 s."""
    while not stop.is_set():
        for path in ("/healthz", "/api/routers/core/traffic"):
            started = time.monotonic()
            try:
                async with gw.http.get(
                    gw.url(path), timeout=aiohttp.ClientTimeout(total=seconds(1))
                ) as response:
                    await response.read()
                    if response.status not in (200, 503):
                        failures.append(f"{path}: HTTP {response.status}")
            except TimeoutError:
                failures.append(f"{path}: no answer within 1 s")
            if time.monotonic() - started > seconds(1):
                failures.append(f"{path}: took {time.monotonic() - started:.2f} s")
        await asyncio.sleep(0.05)  # pacing of the probe loop, not synchronisation


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_fault_is_reported_and_recovers(fault: str) -> None:
    """A router fault reaches viewers as a status frame in time; probes never hang; it recovers."""
    switch_on, clear = FAULTS[fault]
    emu = emulator()
    async with running(emu), gateway(gateway_settings({"core": emu}, POLL)) as gw:
        ws = await gw.viewer()
        await subscribe(ws, "core")
        await receive_until(ws, "traffic")
        stop = asyncio.Event()
        failures: list[str] = []
        probe = asyncio.create_task(_responsive(gw, stop, failures))
        try:
            started = time.monotonic()
            await switch_on(emu)
            down = await receive_until(ws, "status", timeout=seconds(TIMEOUT + 2))
            while down["state"] != "down":
                down = await receive_until(ws, "status", timeout=seconds(TIMEOUT + 2))
            took = time.monotonic() - started
            # A poll may have just started when the fault began: allow one interval before it.
            assert took <= seconds(TIMEOUT + 0.5 + POLL["interval"]), f"status after {took:.2f} s"
            assert down["error"]
            assert "secret-pass" not in down["error"]
            await clear(emu)
            cleared = time.monotonic()
            frame = await receive_until(ws, "traffic", timeout=seconds(BACKOFF_MAX + TIMEOUT + 2))
            assert frame["stale"] is False
            assert time.monotonic() - cleared <= seconds(BACKOFF_MAX + TIMEOUT + 1)
        finally:
            stop.set()
            await probe
        assert failures == []
        await ws.close()


async def test_bad_password_backs_off_for_a_minute() -> None:
    """A refused login is reported as such and not retried within the minute."""
    emu = emulator()
    async with running(emu), gateway(gateway_settings({"core": emu}, POLL)) as gw:
        ws = await gw.viewer()
        await subscribe(ws, "core")
        await receive_until(ws, "traffic")
        await emu.set_fault(Fault("auth"))
        await emu.drop_connections()
        status = await receive_until(ws, "status", timeout=seconds(TIMEOUT + 2))
        while status["state"] != "down" or "refused" not in (status["error"] or ""):
            status = await receive_until(ws, "status", timeout=seconds(TIMEOUT + 2))
        assert "invalid user name or password" in status["error"]
        assert emu.login_failures == 1
        # Many backoff caps later there is still no second attempt (it waits at least 60 s).
        await stays(
            lambda: emu.login_failures == 1,
            duration=seconds(BACKOFF_MAX * 2),
            message="a single failed login",
        )
        assert emu.stats()["connections"] == 2
        await ws.close()


async def test_many_fault_cycles_leak_nothing() -> None:
    """200 fault cycles leave no extra task, file descriptor or memory behind."""
    poll = {"interval": 0.05, "timeout": 0.5, "backoff_initial": 0.01, "backoff_max": 0.05}
    emu = emulator()
    cycle_faults = [Fault("drop"), Fault("fatal"), Fault("trap"), Fault("refuse")]
    async with running(emu), gateway(gateway_settings({"core": emu}, poll)) as gw:
        ws = await gw.viewer()
        await subscribe(ws, "core")

        async def cycle(i: int) -> None:
            await emu.set_fault(cycle_faults[i % len(cycle_faults)])
            message = await receive(ws)
            while not (message["type"] == "status" and message["state"] == "down"):
                message = await receive(ws)
            await emu.clear_fault()
            await receive_until(ws, "traffic")

        for i in range(20):  # warm up: imports, caches, first-time allocations
            await cycle(i)
        gc.collect()
        tasks, fds, rss = len(asyncio.all_tasks()), open_fds(), rss_kib()
        for i in range(200):
            await cycle(i)
        gc.collect()
        await eventually(lambda: len(asyncio.all_tasks()) <= tasks, timeout=seconds(2))
        assert open_fds() <= fds + 2
        assert rss_kib() - rss < 8 * 1024, "memory grew by more than 8 MiB over 200 cycles"
        assert emu.stats()["active_sessions"] in (0, 1)
        await ws.close()


async def test_a_host_name_that_does_not_resolve_says_so() -> None:
    """A router whose host name has no address is down with "could not resolve the host name",
    not a bare resolver message (names under .invalid never resolve: RFC 2606)."""
    emu = emulator()
    async with running(emu):
        settings = gateway_settings({"core": emu}, POLL)
        unresolvable = dataclasses.replace(settings.routers[0], host="core-1.mgmt.invalid")
        async with gateway(dataclasses.replace(settings, routers=(unresolvable,))) as gw:
            ws = await gw.viewer()
            await subscribe(ws, "core")
            status = await receive_until(ws, "status", timeout=seconds(TIMEOUT + 2))
            while status["state"] != "down":
                status = await receive_until(ws, "status", timeout=seconds(TIMEOUT + 2))
            await ws.close()
    assert status["error"].startswith(
        f"core-1.mgmt.invalid:{emu.port}: could not resolve the host name ("
    ), status["error"]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: \x01bad\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
    ],
    ids=["control-byte", "bad-length", "header-too-long"],
)
async def test_a_malformed_http_request_costs_one_debug_line(
    caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    """A request aiohttp cannot parse is answered 400 and logged as one DEBUG line, not an
    ERROR with a traceback: anyone can send them, and they must not fill the log."""
    caplog.set_level(logging.DEBUG)
    core = emulator()
    async with running(core), gateway(gateway_settings({"core": core})) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.server.port)
        writer.write(request_bytes)
        status = await asyncio.wait_for(reader.readline(), seconds(5))
        writer.close()
        assert status.split()[1] == b"400", status
        await eventually(
            lambda: any(r.name == "gateway.http" for r in caplog.records),
            timeout=seconds(5),
            message="the bad request's line",
        )
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == []
    [line] = [r for r in caplog.records if r.name == "gateway.http"]
    assert line.levelno == logging.DEBUG
    assert line.getMessage().startswith("bad HTTP request from 127.0.0.1: ")
