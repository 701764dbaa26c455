"""Polling follows demand: nobody watching costs the router nothing; a REST read is demand."""

from __future__ import annotations

import contextlib
import time
from typing import Final

import aiohttp

from gateway.emulator.server import Fault
from tests.support.gateway import (
    emulator,
    gateway,
    gateway_settings,
    prints,
    receive_until,
    running,
    subscribe,
)
from tests.support.timing import eventually, seconds, stays, within

INTERVAL: Final = 0.2
LINGER: Final = 0.6
POLL: Final = {"interval": INTERVAL, "linger": LINGER}
FIRST_READ: Final = 1.0
"""The contract: a first REST read answers within this, whatever the router does."""


async def test_no_viewer_means_no_request() -> None:
    """A configured router that nobody watches is never logged in to or polled."""
    emu = emulator()
    async with running(emu), gateway(gateway_settings({"core": emu}, POLL)) as gw:
        status, body = await gw.get_json("/api/routers")
        assert status == 200
        assert body == {
            "routers": [
                {
                    "id": "core",
                    "name": "core",
                    "interval": INTERVAL,
                    "sources": ["interfaces", "queues", "hotspot"],
                    "state": "idle",
                    "viewers": 0,
                    "last_poll_ts": None,
                    "last_error": None,
                }
            ]
        }
        await stays(
            lambda: emu.connections_total == 0 and not emu.commands,
            duration=seconds(4 * INTERVAL),
            message="no connection to the router",
        )


async def test_polling_stops_linger_after_the_last_viewer_leaves() -> None:
    """When the last dashboard closes, the router stops being polled after the linger time."""
    emu = emulator()
    async with running(emu), gateway(gateway_settings({"core": emu}, POLL)) as gw:
        ws = await gw.viewer()
        await subscribe(ws, "core")
        await receive_until(ws, "traffic")
        await receive_until(ws, "traffic")
        _, body = await gw.get_json("/api/routers")
        [router] = body["routers"]
        assert router["state"] == "up"
        assert router["viewers"] == 1
        assert isinstance(router["last_poll_ts"], float)
        assert abs(router["last_poll_ts"] - time.time()) < seconds(2)
        await ws.close()
        left = time.monotonic()
        poller = gw.pollers["core"]
        await eventually(
            lambda: poller.state == "idle",
            timeout=seconds(LINGER + 3 * INTERVAL),
            message="poller idle after linger",
        )
        # Polling went on for the linger time (a reloading page finds the router warm)...
        assert time.monotonic() - left >= LINGER - INTERVAL
        # ...and then the router is left alone.
        stopped = prints(emu)
        await stays(
            lambda: prints(emu) == stopped,
            duration=seconds(4 * INTERVAL),
            message="no /interface/print while idle",
        )
        _, body = await gw.get_json("/api/routers")
        assert body["routers"][0]["state"] == "idle"
        assert body["routers"][0]["viewers"] == 0
        # A viewer coming back within the idle minute reuses the API session: no second login.
        ws = await gw.viewer()
        await subscribe(ws, "core")
        await receive_until(ws, "traffic")
        assert emu.logins == 1
        await ws.close()


async def test_idle_router_session_is_logged_out() -> None:
    """After the linger and a further idle period the gateway logs out of the router."""
    emu = emulator()
    poll = {**POLL, "idle_logout": 1.0}
    async with running(emu), gateway(gateway_settings({"core": emu}, poll)) as gw:
        ws = await gw.viewer()
        await subscribe(ws, "core")
        await receive_until(ws, "traffic")
        await ws.close()
        await eventually(
            lambda: emu.commands["/quit"] == 1 and emu.stats()["active_sessions"] == 0,
            timeout=seconds(LINGER + 1.0 + 2),
            message="logged out after idle",
        )
        # Demand returns: a fresh login, and frames again.
        ws = await gw.viewer()
        await subscribe(ws, "core")
        await receive_until(ws, "traffic")
        assert emu.logins == 2
        await ws.close()


async def test_rest_read_starts_polling_and_returns_a_frame() -> None:
    """A billing system's REST read gets a live frame at once and keeps the router polled."""
    emu = emulator()
    async with running(emu), gateway(gateway_settings({"core": emu}, POLL)) as gw:
        started = time.monotonic()
        status, frame = await gw.get_json("/api/routers/core/traffic")
        assert time.monotonic() - started < seconds(FIRST_READ)
        assert status == 200, frame
        assert frame["type"] == "traffic"
        assert frame["v"] == 1
        assert frame["router"] == "core"
        assert frame["seq"] >= 1
        assert frame["interval"] == INTERVAL
        assert frame["stale"] is False
        assert frame["state"] == "up"
        assert isinstance(frame["age_ms"], int)
        assert 0 <= frame["age_ms"] < seconds(1) * 1000
        names = {i["name"] for i in frame["interfaces"]}
        assert "ether1" in names
        # The read is demand: polling goes on without any viewer, then stops after the linger.
        await eventually(lambda: prints(emu) >= 3, timeout=seconds(2), message="polling")
        poller = gw.pollers["core"]
        await eventually(
            lambda: poller.state == "idle",
            timeout=seconds(LINGER + 3 * INTERVAL),
            message="poller idle after linger",
        )
        stopped = prints(emu)
        await stays(
            lambda: prints(emu) == stopped,
            duration=seconds(3 * INTERVAL),
            message="no /interface/print while idle",
        )
        # Once a frame exists, a read answers at once, marked stale while the router idles.
        started = time.monotonic()
        status, again = await gw.get_json("/api/routers/core/traffic")
        assert time.monotonic() - started < seconds(0.5)
        assert status == 200
        assert again["seq"] - poller.seq_base == stopped
        assert again["stale"] is True


async def test_first_read_of_a_hung_router_answers_within_a_second() -> None:
    """A REST read of a router that never answers gets a 503 with Retry-After within a second."""
    emu = emulator()
    async with running(emu), gateway(gateway_settings({"core": emu}, POLL)) as gw:
        await emu.set_fault(Fault("hang"))
        started = time.monotonic()
        async with gw.http.get(
            gw.url("/api/routers/core/traffic"), timeout=aiohttp.ClientTimeout(total=5)
        ) as response:
            elapsed = time.monotonic() - started
            body = await response.json()
        assert response.status == 503, body
        assert response.headers["Retry-After"].isdigit()
        assert elapsed < seconds(FIRST_READ + 0.4)
        assert body["error"] == "no_data"
        assert body["state"] in ("connecting", "down")


async def test_gateway_stops_at_once_while_a_poll_is_answered() -> None:
    """Stopping the gateway just as a router answers a poll finishes promptly, never hangs."""
    emu = emulator()
    async with running(emu), contextlib.AsyncExitStack() as stack:
        gw = await stack.enter_async_context(gateway(gateway_settings({"core": emu}, POLL)))
        await gw.get_json("/api/routers/core/traffic")
        poller = gw.pollers["core"]
        await eventually(lambda: poller.state == "idle", timeout=seconds(3), message="idle")
        # The API session is kept while idle: this read sends a poll on it, answered within
        # moments, and the gateway stops right then.
        await gw.get_json("/api/routers/core/traffic")
        await within(stack.aclose(), seconds(3))


async def test_unknown_router_is_404() -> None:
    """A REST read of a router the gateway does not know is a 404 naming the problem."""
    emu = emulator()
    async with running(emu), gateway(gateway_settings({"core": emu}, POLL)) as gw:
        status, body = await gw.get_json("/api/routers/nope/traffic")
        assert status == 404
        assert body["error"] == "unknown_router"
        assert not emu.commands
