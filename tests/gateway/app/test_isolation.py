"""A router that hangs harms nobody else: healthy routers, probes and listings stay prompt."""

from __future__ import annotations

import itertools
import time
from typing import Final

import aiohttp
import pytest

from gateway.emulator.server import Fault, FaultMode
from tests.support.gateway import (
    Gateway,
    emulator,
    gateway,
    gateway_settings,
    receive,
    running,
    subscribe,
    subscribe_also,
)
from tests.support.timing import eventually, seconds

INTERVAL: Final = 0.3
TIMEOUT: Final = 1.0
POLL: Final = {
    "interval": INTERVAL,
    "timeout": TIMEOUT,
    "backoff_initial": 0.2,
    "backoff_max": 0.5,
}
SLACK: Final = 0.15
"""How late a healthy router's frame may be on top of the interval."""
PROMPT: Final = 0.5
"""How long a probe or listing may take while a router hangs (it waits on none)."""


async def watch_both(
    ws: aiohttp.ClientWebSocketResponse, *, healthy: int, since: float
) -> tuple[list[float], float | None, str | None]:
    """Read until ``healthy`` frames of "good" came; returns their arrival times and when (and
    with what error) "hung" was first reported down, counted from ``since``."""
    arrivals: list[float] = []
    down_after: float | None = None
    error: str | None = None
    while len(arrivals) < healthy:
        message = await receive(ws, seconds(5))
        now = time.monotonic()
        if message["type"] == "traffic" and message["router"] == "good":
            arrivals.append(now)
        elif down_after is None and is_down(message, "hung"):
            down_after, error = now - since, message["error"]
    return arrivals, down_after, error


def is_down(message: dict[str, object], router: str) -> bool:
    """Whether ``message`` reports ``router`` down."""
    return (message["type"], message.get("router"), message.get("state")) == (
        "status",
        router,
        "down",
    )


def assert_cadence(arrivals: list[float]) -> None:
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert max(gaps) < seconds(INTERVAL + SLACK), [round(g, 3) for g in gaps]


async def timed_json(gw: Gateway, path: str) -> tuple[int, object, float]:
    started = time.monotonic()
    status, body = await gw.get_json(path)
    return status, body, time.monotonic() - started


async def test_router_hanging_at_login_does_not_delay_a_healthy_one() -> None:
    """One router that never answers: the other's chart keeps its beat, this one shows down."""
    good, hung = emulator(), emulator()
    async with running(good, hung):
        await hung.set_fault(Fault("hang"))
        settings = gateway_settings({"good": good, "hung": hung}, POLL)
        async with gateway(settings) as gw:
            ws = await gw.viewer()
            await subscribe(ws, "good")
            status, _ = await subscribe_also(ws, "hung", seconds(5))
            assert status["state"] in ("idle", "connecting")
            since = time.monotonic()
            # About three login attempts on the hung router, each one a full timeout.
            arrivals, down_after, error = await watch_both(ws, healthy=12, since=since)
            assert down_after is not None, "the hung router was never reported down"
            assert down_after < seconds(TIMEOUT + 0.5)
            assert error
            assert "login" in error
            assert_cadence(arrivals)
            # Every timed-out login attempt was hung up: the router's API sessions do not pile up.
            assert hung.connections_total >= 2
            assert hung.stats()["active_sessions"] in (0, 1)
            await ws.close()


async def test_router_hanging_mid_session_does_not_delay_a_healthy_one() -> None:
    """A router that stops answering shows down within its timeout; the other keeps its beat."""
    good, hung = emulator(), emulator()
    async with running(good, hung):
        settings = gateway_settings({"good": good, "hung": hung}, POLL)
        async with gateway(settings) as gw:
            ws = await gw.viewer()
            await subscribe(ws, "good")
            await subscribe_also(ws, "hung", seconds(5))
            while True:
                message = await receive(ws, seconds(5))
                if message["type"] == "traffic" and message["router"] == "hung":
                    break
            await hung.set_fault(Fault("hang"))
            # The next poll of the hung router is at most an interval away.
            since = time.monotonic()
            arrivals, down_after, error = await watch_both(ws, healthy=10, since=since)
            assert down_after is not None, "the hung router was never reported down"
            assert down_after < seconds(INTERVAL + TIMEOUT + 0.5)
            assert error
            assert "no reply" in error
            assert_cadence(arrivals)
            await ws.close()


@pytest.mark.parametrize("fault", ["hang", "refuse"])
async def test_probes_and_listing_answer_while_a_router_fails(fault: FaultMode) -> None:
    """Probes, router list and a healthy router's snapshot never wait on a hung or refusing one."""
    good, hung = emulator(), emulator()
    async with running(good, hung):
        await hung.set_fault(Fault(fault))
        settings = gateway_settings({"good": good, "hung": hung}, POLL)
        async with gateway(settings) as gw:
            ws = await gw.viewer()
            await subscribe(ws, "hung")
            await subscribe_also(ws, "good", seconds(5))
            # The failing router's poller is now waiting on a login that will not come (hang),
            # or failing to connect and backing off, again and again (refuse).
            status, body, took = await timed_json(gw, "/healthz")
            assert (status, body) == (200, {"status": "ok"})
            assert took < seconds(PROMPT)
            status, body, took = await timed_json(gw, "/readyz")
            assert status == 200
            assert body == {"status": "ready"}
            assert took < seconds(PROMPT)
            status, frame, took = await timed_json(gw, "/api/routers/good/traffic")
            assert status == 200
            assert isinstance(frame, dict)
            assert frame["router"] == "good"
            assert took < seconds(1)
            status, body, took = await timed_json(gw, "/api/routers")
            assert status == 200
            assert took < seconds(PROMPT)
            assert isinstance(body, dict)
            listing = {r["id"]: r for r in body["routers"]}
            assert list(listing) == ["good", "hung"]
            for router in listing.values():
                assert list(router) == [
                    "id",
                    "name",
                    "interval",
                    "sources",
                    "state",
                    "viewers",
                    "last_poll_ts",
                    "last_error",
                ]
                assert router["viewers"] == 1
            assert listing["good"]["state"] == "up"
            assert listing["good"]["last_error"] is None
            assert isinstance(listing["good"]["last_poll_ts"], float)
            assert listing["hung"]["last_poll_ts"] is None

            async def hung_shown_down() -> bool:
                # Asked of the listing, not the viewer: a refused connection may have been
                # reported down already, in a status frame skipped while subscribing to "good".
                _, body, _ = await timed_json(gw, "/api/routers")
                assert isinstance(body, dict)
                hung_entry = body["routers"][1]
                return hung_entry["state"] == "down" and bool(hung_entry["last_error"])

            await eventually(
                hung_shown_down, timeout=seconds(TIMEOUT + 2), message="the failing router down"
            )
            await ws.close()
