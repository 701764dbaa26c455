"""Limits per connection, per client address and per token subject: past each, an error frame
or a close code (and a count in gateway_limit_hits_total), never a wait for anyone else."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import orjson
import pytest

from tests.support.gateway import (
    Gateway,
    emulator,
    gateway,
    gateway_settings,
    receive,
    receive_until,
    running,
    sample,
    send,
    subscribe,
)
from tests.support.timing import seconds
from tests.support.tokens import hs256

HITS = "gateway_limit_hits_total"


async def close_code(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> int | None:
    """Read (skipping text) until the close; its code."""
    while True:
        msg = await ws.receive(timeout=seconds(timeout))
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return ws.close_code
        assert msg.type is aiohttp.WSMsgType.TEXT, msg


async def refused(gw: Gateway, **kw: Any) -> tuple[int | None, str]:
    """Open a websocket that must be refused at once: its close code and reason."""
    ws = await gw.http.ws_connect(gw.url("/ws"), **kw)
    msg = await ws.receive(timeout=seconds(5))
    assert msg.type is aiohttp.WSMsgType.CLOSE, msg
    return ws.close_code, str(msg.extra)


async def test_a_flooding_client_is_answered_then_closed_with_4429() -> None:
    """Past the message rate each message gets rate_limited and is not acted on; a client that
    keeps going is closed with 4429, while its neighbour is served as usual."""
    core = emulator()
    limits = {"messages_per_second": 2, "message_burst": 5}
    async with running(core), gateway(gateway_settings({"core": core}, limits=limits)) as gw:
        calm = await gw.viewer()
        await subscribe(calm, "core")
        flood = await gw.viewer()
        for _ in range(5):  # the burst: acted on (each answered: no such router)
            await send(flood, {"type": "subscribe", "router": "nope"})
        for _ in range(5):  # past it: ignored and answered rate_limited, then closed
            await send(flood, {"type": "subscribe", "router": "nope"})
        codes = []
        while True:
            msg = await flood.receive(timeout=seconds(5))
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            codes.append(orjson.loads(msg.data)["code"])
        assert codes == ["unknown_router"] * 5 + ["rate_limited"] * 5
        assert flood.close_code == 4429
        assert sample(gw, HITS, limit="messages") == 1
        frame = await receive_until(calm, "traffic", seconds(5))
        assert frame["router"] == "core"
        await calm.close()


async def test_a_client_that_slows_down_is_served_again() -> None:
    """Ignored messages are not held against a client that keeps to the rate afterwards."""
    core = emulator()
    limits = {"messages_per_second": 50, "message_burst": 3}
    async with running(core), gateway(gateway_settings({"core": core}, limits=limits)) as gw:
        ws = await gw.viewer()
        for _ in range(4):
            await send(ws, {"type": "unsubscribe", "router": "core"})
        error = await receive(ws)
        assert error["code"] == "rate_limited"
        # A tenth of a second later the bucket has refilled: the next subscribe is served.
        await receive_until_quiet(ws, 0.1)
        status, _ = await subscribe(ws, "core")
        assert status["router"] == "core"
        await ws.close()


async def receive_until_quiet(ws: aiohttp.ClientWebSocketResponse, quiet: float) -> None:
    """Read until nothing arrives for ``quiet`` seconds (an observation window)."""
    while True:
        try:
            await ws.receive(timeout=quiet)
        except TimeoutError:
            return


async def test_connections_per_address_and_the_handshake_rate() -> None:
    """An address opening too many websockets, or too many too fast, gets 1013; a closed one
    frees its place."""
    core = emulator()
    limits = {"connections_per_address": 3, "handshakes_per_second": 0.001, "handshake_burst": 5}
    async with running(core), gateway(gateway_settings({"core": core}, limits=limits)) as gw:
        held = [await gw.viewer() for _ in range(3)]
        assert await refused(gw) == (1013, "too many connections from your address")
        assert sample(gw, HITS, limit="connections_per_address") == 1
        await held.pop().close()
        held.append(await gw.viewer())  # the fifth handshake: still within the burst
        assert await refused(gw) == (1013, "too many new connections from your address")
        assert sample(gw, HITS, limit="handshakes_per_address") == 1
        for ws in held:
            await ws.close()


async def test_trusted_proxies_tell_clients_apart(caplog: pytest.LogCaptureFixture) -> None:
    """Behind a trusted proxy each forwarded client has its own limit; the header from an
    untrusted peer is ignored, and said once."""
    core = emulator()
    limits = {"connections_per_address": 1}
    async with running(core):
        behind = gateway_settings({"core": core}, limits=limits, trusted_proxies=["127.0.0.1"])
        async with gateway(behind) as gw:
            a = await gw.viewer(headers={"X-Forwarded-For": "198.51.100.1"})
            b = await gw.viewer(headers={"X-Forwarded-For": "198.51.100.2"})
            code, _ = await refused(gw, headers={"X-Forwarded-For": "198.51.100.1"})
            assert code == 1013
            await a.close()
            await b.close()
        caplog.set_level(logging.WARNING, logger="gateway.ws")
        direct = gateway_settings({"core": core}, limits=limits)
        async with gateway(direct) as gw:
            a = await gw.viewer(headers={"X-Forwarded-For": "198.51.100.1"})
            code, _ = await refused(gw, headers={"X-Forwarded-For": "198.51.100.2"})
            assert code == 1013
            await a.close()
            await (await gw.viewer(headers={"X-Forwarded-For": "198.51.100.3"})).close()
    warnings = [r.getMessage() for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert len(warnings) == 1
    assert "not in server.trusted_proxies" in warnings[0]


async def test_connections_per_token_subject() -> None:
    """One customer's token opens at most connections_per_subject websockets; others are not
    affected."""
    core = emulator()
    async with running(core):
        settings = gateway_settings({"core": core}, limits={"connections_per_subject": 2}, auth={})
        async with gateway(settings) as gw:
            mine = [await gw.viewer(protocols=("gateway.v1", f"bearer.{hs256()}")) for _ in "ab"]
            code, reason = await refused(gw, protocols=("gateway.v1", f"bearer.{hs256()}"))
            assert (code, reason) == (1013, "too many connections with this token's subject")
            other = await gw.viewer(protocols=("gateway.v1", f"bearer.{hs256(sub='cust-2')}"))
            assert sample(gw, HITS, limit="connections_per_subject") == 1
            await mine.pop().close()
            mine.append(await gw.viewer(protocols=("gateway.v1", f"bearer.{hs256()}")))
            for ws in (*mine, other):
                await ws.close()


async def test_subscriptions_past_the_limit_are_counted() -> None:
    """The 65th router on one connection is refused with too_many_subscriptions, counted."""
    routers = {f"r{n}": emulator(interfaces=1) for n in range(65)}
    async with running(*routers.values()):
        # 65 subscribes at once: more than the message rate allows by default.
        settings = gateway_settings(routers, limits={"messages_per_second": 0})
        async with gateway(settings) as gw:
            ws = await gw.viewer()
            for n in range(65):
                await send(ws, {"type": "subscribe", "router": f"r{n}", "history": 0})
            error = await receive_until(ws, "error", seconds(10))
            assert error["code"] == "too_many_subscriptions"
            assert sample(gw, HITS, limit="subscriptions") == 1
            await ws.close()


async def test_every_limit_is_listed_in_the_metrics_from_the_start() -> None:
    """A scraper sees gateway_limit_hits_total for each limit at 0 before any is hit."""
    core = emulator()
    async with running(core), gateway(gateway_settings({"core": core})) as gw:
        text = await (await gw.http.get(gw.url("/metrics"))).text()
    for limit in (
        "connections",
        "connections_per_address",
        "connections_per_subject",
        "handshakes_per_address",
        "messages",
        "subscriptions",
    ):
        assert f'{HITS}{{limit="{limit}"}} 0.0' in text
