"""Abusive clients are limited while 100 well-behaved viewers keep receiving every frame.

Behind a trusted proxy (so each client has its own address, as on the Internet), three clients
misbehave at once for a few seconds: one floods messages (and reconnects to flood again), one
opens websockets in a loop, one holds as many subscriptions as it can. Each must meet its limit
(an error frame or a close code, counted in ``gateway_limit_hits_total``); every well-behaved
viewer must get every traffic frame, in order, on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import orjson

from gateway.config import settings_from_dict
from tests.support.gateway import PASSWORD, Gateway, emulator, gateway, running, sample, send
from tests.support.timing import eventually, seconds

VIEWERS: Final = 100
INTERVAL: Final = 0.2
"""Seconds between polls of the router the viewers watch."""
ABUSE: Final = 2.0
"""Seconds the abusers go on."""
EXTRA_ROUTERS: Final = 65
"""Routers for the subscription hog: one more than a connection may hold."""
HITS: Final = "gateway_limit_hits_total"

LIMITS: Final = {
    "messages_per_second": 50,
    "message_burst": 20,
    "connections_per_address": 8,
    "handshakes_per_second": 5,
    "handshake_burst": 10,
}


@dataclass
class Watcher:
    """A well-behaved viewer: every traffic frame's seq and delay (receipt minus ``ts``)."""

    ws: aiohttp.ClientWebSocketResponse
    seqs: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)

    async def read(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                return
            message = orjson.loads(msg.data)
            if message["type"] == "traffic":
                self.seqs.append(message["seq"])
                self.delays.append(time.time() - message["ts"])


def forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


@dataclass
class Tally:
    """What the abusers met."""

    closes: list[int | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refused_handshakes: int = 0
    admitted_handshakes: int = 0


async def flood(gw: Gateway, until: float, tally: Tally) -> None:
    """Send messages as fast as the socket takes them while reading the answers (as a browser
    would); when closed, reconnect and go on."""
    message = orjson.dumps({"type": "subscribe", "router": "nope"}).decode()

    async def send_all(ws: aiohttp.ClientWebSocketResponse) -> None:
        # At least one batch: more than the burst plus the burst of ignored ones, so every
        # connection ends in 4429 (or a reset once the gateway has closed it).
        with contextlib.suppress(ConnectionResetError):
            while True:
                for _ in range(50):
                    await ws.send_str(message)
                await asyncio.sleep(0)  # let the others run: this loop never waits otherwise
                if time.monotonic() >= until:
                    return

    while time.monotonic() < until:
        ws = await gw.http.ws_connect(gw.url("/ws"), headers=forwarded("203.0.113.1"))
        sender = asyncio.create_task(send_all(ws))
        try:
            while (msg := await ws.receive(timeout=seconds(5))).type is aiohttp.WSMsgType.TEXT:
                code = orjson.loads(msg.data).get("code")
                if code not in tally.errors:
                    tally.errors.append(code)
            tally.closes.append(ws.close_code)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            await ws.close()


async def loop_connections(gw: Gateway, until: float, tally: Tally) -> None:
    """Open websockets one after another without closing them."""
    held = []
    try:
        while time.monotonic() < until:
            ws = await gw.http.ws_connect(gw.url("/ws"), headers=forwarded("203.0.113.2"))
            msg = await ws.receive(timeout=seconds(5))
            if msg.type is aiohttp.WSMsgType.TEXT:
                tally.admitted_handshakes += 1
                held.append(ws)
            else:
                assert ws.close_code == 1013, (ws.close_code, msg.extra)
                tally.refused_handshakes += 1
                await ws.close()
    finally:
        for ws in held:
            await ws.close()


async def hog_subscriptions(gw: Gateway, tally: Tally) -> aiohttp.ClientWebSocketResponse:
    """Subscribe to every router on one connection (history 0 each)."""
    ws = await gw.http.ws_connect(gw.url("/ws"), headers=forwarded("203.0.113.3"))
    await ws.receive(timeout=seconds(5))  # hello
    for n in range(EXTRA_ROUTERS):
        await send(ws, {"type": "subscribe", "router": f"r{n}", "history": 0})
        if n % 10 == 9:
            # Kept well within the message rate: this client's abuse is the number it holds.
            await asyncio.sleep(15 / LIMITS["messages_per_second"])
    while True:
        message = orjson.loads((await ws.receive(timeout=seconds(5))).data)
        if message["type"] == "error":
            assert message["code"] == "too_many_subscriptions", message
            tally.errors.append(message["code"])
            return ws


async def test_abusers_are_limited_and_100_viewers_get_every_frame() -> None:
    """A flooder gets rate_limited then 4429 (and again after reconnecting), a connection loop
    gets 1013 past its address's limits, a subscription hog gets too_many_subscriptions; the
    100 viewers meanwhile get every frame in order, none late."""
    core = emulator()
    extra = [emulator(interfaces=1) for _ in range(EXTRA_ROUTERS)]
    async with running(core, *extra):

        def router(rid: str, port: int, interval: float) -> dict[str, Any]:
            return {
                "id": rid,
                "host": "127.0.0.1",
                "port": port,
                "username": "admin",
                "password": PASSWORD,
                "interval": interval,
            }

        settings = settings_from_dict(
            {
                "server": {"host": "127.0.0.1", "port": 0, "trusted_proxies": ["127.0.0.1"]},
                "limits": LIMITS,
                "poll": {"timeout": 1.0},
                "routers": [
                    router("core", core.port, INTERVAL),
                    *(router(f"r{n}", e.port, 1.0) for n, e in enumerate(extra)),
                ],
            },
            source="test",
        )
        async with gateway(settings) as gw:
            watchers = []
            for n in range(VIEWERS):
                ws = await gw.http.ws_connect(
                    gw.url("/ws"), headers=forwarded(f"198.51.100.{n + 1}")
                )
                await send(ws, {"type": "subscribe", "router": "core", "history": 0})
                watchers.append(Watcher(ws))
            readers = [asyncio.create_task(w.read()) for w in watchers]
            await eventually(
                lambda: all(w.seqs for w in watchers), timeout=seconds(5), message="all live"
            )
            started = gw.pollers["core"].seq
            tally = Tally()
            until = time.monotonic() + ABUSE  # an observation window, not a deadline
            hog, _, _ = await asyncio.gather(
                hog_subscriptions(gw, tally),
                flood(gw, until, tally),
                loop_connections(gw, until, tally),
            )
            ended = gw.pollers["core"].seq
            await eventually(
                lambda: all(w.seqs[-1] >= ended for w in watchers),
                timeout=seconds(2),
                message="every viewer caught up",
            )
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            await hog.close()
            for w in watchers:
                await w.ws.close()

            assert "too_many_subscriptions" in tally.errors
            assert "rate_limited" in tally.errors
            assert 4429 in tally.closes
            assert tally.refused_handshakes > 0
            assert tally.admitted_handshakes <= LIMITS["connections_per_address"]
            for limit in (
                "messages",
                "subscriptions",
                "handshakes_per_address",
                "connections_per_address",
            ):
                assert sample(gw, HITS, limit=limit) >= 1, limit
    assert ended - started >= ABUSE / INTERVAL / 2, "the router was polled as usual"
    for w in watchers:
        seqs = [s for s in w.seqs if s >= started]
        assert seqs == list(range(started, seqs[-1] + 1)), "a viewer missed a frame"
        late = [d for d in w.delays if d > seconds(1)]
        assert late == [], f"frames reached a viewer late: {late[:5]}"
