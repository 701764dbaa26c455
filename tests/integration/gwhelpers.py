"""Helpers shared by the gateway acceptance tests (on top of ``tests.harness``)."""

from __future__ import annotations

import re
import time
from typing import Any, Final

import aiohttp
import orjson

from gateway.contract import StreamCheck
from gateway.emulator.server import RouterEmulator
from tests.harness import Gateway, receive, subscribe_answer

PRINT: Final = "/interface/print"
"""The one command the gateway sends each tick."""


def prints(emu: RouterEmulator) -> int:
    """How many ``/interface/print`` requests the emulated router has answered so far."""
    return emu.commands[PRINT]


async def send(ws: aiohttp.ClientWebSocketResponse, message: object) -> None:
    """Send one client message as a JSON text frame."""
    await ws.send_str(orjson.dumps(message).decode())


async def subscribe_also(
    ws: aiohttp.ClientWebSocketResponse, router: str, timeout: float
) -> tuple[Any, Any]:
    """Subscribe on a connection that may already stream other routers.

    Returns the router's status and history, which must come in that order, one right after
    the other (``gateway.contract``); messages about other routers on the way are skipped.
    """
    check = StreamCheck()
    check.subscribe(router, time.monotonic())
    await send(ws, {"type": "subscribe", "router": router})
    status, history = await subscribe_answer(ws, router, check, timeout, others=True)
    assert history["router"] == router, history
    return status, history


async def next_traffic(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> Any:
    """The next ``traffic`` message, failing on anything but heartbeats and status in between."""
    deadline = time.monotonic() + timeout
    while True:
        message = await receive(ws, max(deadline - time.monotonic(), 0.001))
        if message["type"] == "traffic":
            return message
        assert message["type"] in ("heartbeat", "status"), message


def metric(text: str, name: str, labels: str = "") -> float:
    """One sample's value from Prometheus text: ``metric(t, "gateway_viewers", 'router="a"')``."""
    braces = f"{{{labels}}}" if labels else ""
    match = re.search(rf"^{re.escape(name + braces)} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"no sample {name}{braces} in /metrics"
    return float(match.group(1))


def sample(gw: Gateway, name: str, **labels: str) -> float:
    """A metric's current value in the gateway's own registry (0 when never touched)."""
    value = gw.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def metrics_text(gw: Gateway) -> str:
    async with gw.http.get(gw.url("/metrics")) as response:
        assert response.status == 200
        return await response.text()


class PollClock:
    """One clock for an emulated router and the gateway that polls it, exact to the poll.

    Rates are counter deltas over the poller's sample times, and the emulator integrates its
    counters over its own clock. On a real clock the two read time a moment apart (the reply's
    trip back to the poller), which on a busy machine is several milliseconds of a few hundred:
    too much for a 0.5% check. This clock removes the gap: each time the router receives an
    ``/interface/print`` the clock takes the real time once, the router counts traffic up to that
    instant (``router``), and the poller's next reading (the sample time it takes on the reply)
    is that same instant (``gateway``). Otherwise the gateway sees real time, so its cadence,
    back-off and linger behave as in production; the router's time stands still between polls,
    so traffic set or added by a test between two polls belongs wholly to the next poll.
    """

    def __init__(self) -> None:
        # Attached once the emulator exists (its Device needs this clock first).
        self.emulator: RouterEmulator | None = None
        self._seen = -1
        self._now = time.monotonic()
        # True from a print's instant until the gateway has read it as its sample time.
        self._unread = False
        # The instant of each print, by its count: what a test divides added bytes by.
        self.instants: dict[int, float] = {}

    def _update(self) -> None:
        if self.emulator is None:
            return
        count = prints(self.emulator)
        if count != self._seen:
            self._seen = count
            self._now = time.monotonic()
            self.instants[count] = self._now
            self._unread = True

    def router(self) -> float:
        self._update()
        return self._now

    def gateway(self) -> float:
        self._update()
        if self._unread:
            self._unread = False
            return self._now
        return time.monotonic()
