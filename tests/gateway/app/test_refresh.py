"""In-band token refresh: asked for before expiry, answered without a reconnect; a wider scope,
another subject or a bad token is refused and changes nothing; silence ends in 4401."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from gateway.auth import refresh_times
from gateway.config import Settings
from gateway.emulator.server import RouterEmulator
from tests.support.gateway import (
    Gateway,
    emulator,
    gateway,
    gateway_settings,
    receive,
    receive_until,
    running,
    send,
    subscribe,
    subscribe_also,
)
from tests.support.timing import seconds
from tests.support.tokens import hs256

LIFETIME = seconds(4)
"""A token's life in these tests; refresh_needed comes half-way (refresh_before is longer)."""


def settings(emulators: dict[str, RouterEmulator]) -> Settings:
    auth = {"leeway": 0, "refresh_before": 60}
    return gateway_settings(emulators, {"interval": 0.2}, auth=auth)


@contextlib.asynccontextmanager
async def two_routers() -> AsyncIterator[Gateway]:
    core = emulator(interfaces=4, pppoe=3, pppoe_session=0)
    edge = emulator(interfaces=2)
    async with running(core, edge), gateway(settings({"core": core, "edge": edge})) as gw:
        yield gw


async def connect(gw: Gateway, token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await gw.http.ws_connect(gw.url("/ws"))
    await send(ws, {"type": "auth", "token": token})
    assert (await receive(ws))["type"] == "hello"
    return ws


async def until(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float) -> Any:
    """The next message of ``kind``; traffic, status and heartbeats on the way are skipped."""
    return await receive_until(ws, kind, timeout)


async def closed(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> int | None:
    """Read until the close; its code."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return ws.close_code


def test_refresh_is_asked_for_before_expiry_and_the_close_comes_after_the_leeway() -> None:
    """refresh_before seconds ahead, or half-way through a short life; close at exp + leeway."""
    assert refresh_times(1000.0, 0.0, 60.0, 30.0) == (940.0, 1030.0)
    assert refresh_times(40.0, 0.0, 60.0, 30.0) == (20.0, 70.0)
    assert refresh_times(-10.0, 0.0, 60.0, 30.0) == (0.0, 20.0)
    assert refresh_times(10.0, 0.0, 5.0, 0.0) == (5.0, 10.0)


async def test_a_same_scope_refresh_extends_the_connection_without_a_gap() -> None:
    """The page answers refresh_needed with a new token and keeps receiving every frame, well
    past the first token's expiry, on the same connection."""
    async with two_routers() as gw:
        ws = await connect(gw, hs256(LIFETIME, routers=["core"]))
        await subscribe(ws, "core")
        asked = await until(ws, "refresh_needed", LIFETIME)
        first_exp = asked["exp"]
        assert first_exp > time.time()
        await send(ws, {"type": "refresh", "token": hs256(LIFETIME * 3, routers=["core"])})
        refreshed = await until(ws, "refreshed", seconds(5))
        assert refreshed["exp"] > first_exp
        assert refreshed["routers"] == [{"id": "core", "name": "core"}]
        assert refreshed["unsubscribed"] == []
        # Frames keep coming, in sequence, past the old expiry.
        seqs: list[int] = []
        while time.time() < first_exp + seconds(1):
            message = await receive(ws)
            assert message["type"] in ("traffic", "heartbeat", "status"), message
            if message["type"] == "traffic":
                seqs.append(message["seq"])
        assert len(seqs) >= 3
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert not ws.closed
        await ws.close()


async def test_a_narrower_refresh_narrows_what_the_connection_receives() -> None:
    """A new token for fewer routers and one interface: the other router is unsubscribed and the
    remaining stream carries only that interface, without a reconnect."""
    async with two_routers() as gw:
        ws = await connect(gw, hs256(LIFETIME * 3, routers=["core", "edge"]))
        await subscribe(ws, "core")
        await subscribe_also(ws, "edge", seconds(5))
        narrower = hs256(
            LIFETIME * 3, routers=["core"], interfaces={"core": [{"exact": "<pppoe-user0002>"}]}
        )
        await send(ws, {"type": "refresh", "token": narrower})
        refreshed = await until(ws, "refreshed", seconds(5))
        assert refreshed["routers"] == [{"id": "core", "name": "core"}]
        assert refreshed["unsubscribed"] == ["edge"]
        for _ in range(4):
            frame = await until(ws, "traffic", seconds(5))
            assert frame["router"] == "core"
            assert [i["name"] for i in frame["interfaces"]] == ["<pppoe-user0002>"]
        await send(ws, {"type": "subscribe", "router": "edge"})
        error = await until(ws, "error", seconds(5))
        assert error["code"] == "unknown_router"
        await ws.close()


REFUSED: list[tuple[str, Any, str]] = [
    ("every router", lambda: hs256(LIFETIME * 3, routers="*"), "covers more than"),
    ("one router more", lambda: hs256(LIFETIME * 3, routers=["core", "edge"]), "covers more"),
    ("another subject", lambda: hs256(LIFETIME * 3, routers=["core"], sub="c2"), "subject"),
    (
        "forged",
        lambda: hs256(LIFETIME * 3, secret="another-secret-of-32-bytes-or-more"),
        "signature",
    ),
    ("expired", lambda: hs256(-60), "expired"),
    ("not a token", lambda: "garbage", "malformed"),
]


async def test_a_refused_refresh_changes_nothing_and_expiry_still_applies() -> None:
    """A wider scope, another subject or a bad token each get refresh_refused; the connection
    goes on as it was and still ends with 4401 when its own token expires."""
    async with two_routers() as gw:
        ws = await connect(gw, hs256(LIFETIME, routers=["core"]))
        await subscribe(ws, "core")
        for name, token, reason in REFUSED:
            await send(ws, {"type": "refresh", "token": token()})
            error = await until(ws, "error", seconds(5))
            assert error["code"] == "refresh_refused", name
            assert reason in error["message"], name
            assert "keeps its current token until it expires" in error["message"]
            frame = await until(ws, "traffic", seconds(5))
            assert frame["router"] == "core"
        assert await closed(ws, LIFETIME + seconds(3)) == 4401


async def test_without_a_refresh_the_connection_ends_with_4401_after_being_asked() -> None:
    """refresh_needed comes first, and 4401 at expiry when nothing answers it."""
    async with two_routers() as gw:
        started = time.time()
        token = hs256(LIFETIME, routers=["core"])
        ws = await connect(gw, token)
        await subscribe(ws, "core")
        asked = await until(ws, "refresh_needed", LIFETIME)
        assert time.time() < asked["exp"]
        assert await closed(ws, LIFETIME + seconds(3)) == 4401
        assert time.time() >= asked["exp"] - 0.5
        assert time.time() - started < LIFETIME + seconds(3)


async def test_a_malformed_refresh_is_a_bad_request() -> None:
    """A refresh without a token string is a bad request; the connection stays."""
    async with two_routers() as gw:
        ws = await connect(gw, hs256(LIFETIME * 3, routers=["core"]))
        for message in ({"type": "refresh"}, {"type": "refresh", "token": 1, "x": 2}):
            await send(ws, message)
            error = await until(ws, "error", seconds(5))
            assert error["code"] == "bad_request"
        await subscribe(ws, "core")
        await ws.close()
