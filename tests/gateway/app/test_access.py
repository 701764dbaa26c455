"""Who may connect and what they see: tokens, origins and the connection limit."""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
import jwt
import orjson
import pytest

from gateway.config import Settings
from gateway.core.messages import PUBLIC_ERROR
from gateway.core.once import FirstSeen
from gateway.emulator.server import Fault, RouterEmulator
from tests.support.gateway import (
    emulator,
    gateway,
    gateway_settings,
    receive,
    receive_until,
    running,
    subscribe,
)
from tests.support.timing import seconds
from tests.support.tokens import SECRET


def jwt_settings(emulators: dict[str, RouterEmulator]) -> Settings:
    # A connection without a token is closed once auth_timeout passes: well inside the tests'
    # waits for a close (5 s and more), however slow the machine.
    auth = {"leeway": 0, "auth_timeout": 1.0}
    return gateway_settings(emulators, {"interval": 0.3}, auth=auth)


def token(lifetime: float = 300, **claims: Any) -> str:
    body = {"sub": "cust-1", "exp": int(time.time() + lifetime), "routers": ["core"], **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


async def close_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    msg = await ws.receive(timeout=seconds(5))
    while msg.type is aiohttp.WSMsgType.TEXT:
        msg = await ws.receive(timeout=seconds(5))
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
    return ws.close_code


async def test_websocket_needs_a_valid_token() -> None:
    """Without a good token the websocket is closed with 4401, saying why."""
    core = emulator()
    async with running(core), gateway(jwt_settings({"core": core})) as gw:
        for query in ("", "?token=garbage", f"?token={token(lifetime=-5)}"):
            ws = await gw.http.ws_connect(gw.url("/ws") + query)
            assert await close_code(ws) == 4401


async def test_a_long_refusal_reason_still_closes_with_4401() -> None:
    """A token refused with a long reason (a long router id in a bad claim) still closes with
    4401: the reason is cut to what a close frame can carry, not sent as an invalid frame."""
    core = emulator()
    bad = token(interfaces={"r" * 300: "not a list"})
    async with running(core), gateway(jwt_settings({"core": core})) as gw:
        ws = await gw.http.ws_connect(gw.url(f"/ws?token={bad}"))
        msg = await ws.receive(timeout=seconds(5))
        assert msg.type is aiohttp.WSMsgType.CLOSE, msg
        assert msg.data == 4401
        reason = str(msg.extra)
        assert 0 < len(reason.encode()) <= 123
        assert reason.startswith('token claim "interfaces.rrr')


async def test_customer_sees_only_its_router_and_interface() -> None:
    """A customer token shows one router and only that customer's PPPoE interface."""
    core = emulator(interfaces=4, pppoe=5, pppoe_session=0)
    edge = emulator()
    customer = token(interfaces={"core": ["<pppoe-user0002>"]})
    async with running(core, edge), gateway(jwt_settings({"core": core, "edge": edge})) as gw:
        ws = await gw.http.ws_connect(gw.url(f"/ws?token={customer}"))
        hello = await receive(ws)
        assert [r["id"] for r in hello["routers"]] == ["core"]
        await ws.send_str(orjson.dumps({"type": "subscribe", "router": "edge"}).decode())
        error = await receive(ws)
        # Answered as a router that does not exist: the token does not reveal "edge".
        assert (error["code"], error["message"]) == ("unknown_router", "no router with id 'edge'")
        await subscribe(ws, "core", interfaces=["<pppoe-*>", "ether1"])
        frame = await receive_until(ws, "traffic")
        assert [i["name"] for i in frame["interfaces"]] == ["<pppoe-user0002>"]
        await ws.close()

        bearer = {"Authorization": f"Bearer {customer}"}
        async with gw.http.get(gw.url("/api/routers"), headers=bearer) as response:
            assert [r["id"] for r in (await response.json())["routers"]] == ["core"]
        async with gw.http.get(gw.url("/api/routers/core/traffic"), headers=bearer) as response:
            body = await response.json()
            assert [i["name"] for i in body["interfaces"]] == ["<pppoe-user0002>"]
        async with gw.http.get(gw.url("/api/routers/edge/traffic"), headers=bearer) as response:
            assert response.status == 404
            assert await response.json() == {
                "error": "unknown_router",
                "message": "no router 'edge'",
            }
        async with gw.http.get(gw.url("/api/routers")) as response:
            assert response.status == 401
            assert "token is required" in (await response.json())["message"]


async def test_expired_token_ends_the_connection() -> None:
    """A connection outlives its token by no more than a moment: 4401 at expiry."""
    core = emulator()
    async with running(core), gateway(jwt_settings({"core": core})) as gw:
        ws = await gw.http.ws_connect(gw.url(f"/ws?token={token(lifetime=1.5)}"))
        await receive(ws)
        await subscribe(ws, "core")
        started = time.monotonic()
        assert await close_code(ws) == 4401
        assert time.monotonic() - started < seconds(3)


async def test_foreign_origin_is_refused_and_scripts_are_not() -> None:
    """A browser page from another origin gets 1008; a client without Origin is served."""
    core = emulator()
    origins = ["https://noc.example.net"]
    async with (
        running(core),
        gateway(gateway_settings({"core": core}, allowed_origins=origins)) as gw,
    ):
        ws = await gw.http.ws_connect(gw.url("/ws"), origin="https://evil.example.com")
        assert await close_code(ws) == 1008
        ws = await gw.http.ws_connect(gw.url("/ws"), origin="https://noc.example.net")
        assert (await receive(ws))["type"] == "hello"
        await ws.close()
        ws = await gw.viewer()
        await ws.close()


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The gateway's warnings about refused websocket origins, as logged."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "gateway.ws" and r.levelno == logging.WARNING
    ]


async def test_origins_are_normalised_and_each_refusal_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Origins match however they are written; each refused origin is one warning, not one a try."""
    caplog.set_level(logging.DEBUG, logger="gateway.ws")
    core = emulator()
    origins = ["https://noc.example.net:443", "HTTP://Dash.Example.NET:80/"]
    async with (
        running(core),
        gateway(gateway_settings({"core": core}, allowed_origins=origins)) as gw,
    ):
        # What browsers send: lower case, no default port.
        for origin in ("https://noc.example.net", "http://dash.example.net"):
            ws = await gw.http.ws_connect(gw.url("/ws"), origin=origin)
            assert (await receive(ws))["type"] == "hello", origin
            await ws.close()
        for _ in range(3):
            ws = await gw.http.ws_connect(gw.url("/ws"), origin="https://evil.example.com")
            assert await close_code(ws) == 1008
        ws = await gw.http.ws_connect(gw.url("/ws"), origin="HTTPS://Evil.Example.com:443")
        assert await close_code(ws) == 1008
        [warning] = refusals(caplog)
        assert "origin https://evil.example.com" in warning
        assert "server.allowed_origins" in warning
        assert "https://noc.example.net, http://dash.example.net" in warning

        # A client inventing origins cannot grow the memory (or the log) without bound.
        gw.endpoint.admission.refused_origins = FirstSeen(3)
        for i in range(6):
            ws = await gw.http.ws_connect(gw.url("/ws"), origin=f"https://x{i}.example.com")
            assert await close_code(ws) == 1008
        later = refusals(caplog)[1:]
        assert [("x0" in m, "x1" in m, "x2" in m) for m in later[:3]] == [
            (True, False, False),
            (False, True, False),
            (False, False, True),
        ]
        assert len(later) == 4
        assert "further new ones are logged at DEBUG only" in later[3]


async def test_same_origin_behind_a_tls_proxy() -> None:
    """With no allowlist, the page's own site may connect whether or not the proxy sends :443."""
    core = emulator()
    async with running(core), gateway(gateway_settings({"core": core})) as gw:
        for host in ("noc.example.net", "noc.example.net:443", "NOC.example.net"):
            ws = await gw.http.ws_connect(
                gw.url("/ws"), origin="https://noc.example.net", headers={"Host": host}
            )
            assert (await receive(ws))["type"] == "hello", host
            await ws.close()
        refused: list[tuple[str, dict[str, str]]] = [
            # A plain-http page is another origin than the https site on 443.
            ("http://noc.example.net", {"Host": "noc.example.net:443"}),
            ("https://noc.example.net:8443", {"Host": "noc.example.net:443"}),
            # Forwarded headers are anyone's to send: they never make an origin "same".
            (
                "https://evil.example.com",
                {
                    "Host": "noc.example.net",
                    "X-Forwarded-Host": "evil.example.com",
                    "X-Forwarded-Proto": "https",
                    "Forwarded": "host=evil.example.com;proto=https",
                },
            ),
            ("null", {"Host": "noc.example.net"}),
        ]
        for origin, headers in refused:
            ws = await gw.http.ws_connect(gw.url("/ws"), origin=origin, headers=headers)
            assert await close_code(ws) == 1008, origin


async def test_connection_limit_answers_1013() -> None:
    """Past max_connections a new websocket is closed with 1013 (try again later)."""
    core = emulator()
    async with running(core), gateway(gateway_settings({"core": core}, max_connections=2)) as gw:
        first, second = await gw.viewer(), await gw.viewer()
        third = await gw.http.ws_connect(gw.url("/ws"))
        assert await close_code(third) == 1013
        await first.close()
        await second.close()


async def test_a_customer_is_not_shown_the_routers_error_text() -> None:
    """A router that refuses the gateway's login: an operator's viewer and /api/routers name
    the router's address, port and API user; a customer's token (scoped to its interface) gets
    only "the router is unavailable", live, on a later subscribe and over REST."""
    core = emulator()
    async with running(core), gateway(jwt_settings({"core": core})) as gw:
        operator = await gw.viewer(protocols=("gateway.v1", f"bearer.{token()}"))
        customer_token = token(interfaces={"core": ["ether1"]})
        customer = await gw.viewer(protocols=("gateway.v1", f"bearer.{customer_token}"))
        for ws in (operator, customer):
            await subscribe(ws, "core")
            await receive_until(ws, "traffic")
        await core.set_fault(Fault("auth"))
        await core.drop_connections()

        async def down(ws: aiohttp.ClientWebSocketResponse, saying: str) -> Any:
            status = await receive_until(ws, "status", timeout=seconds(5))
            while status["state"] != "down" or saying not in status["error"]:
                status = await receive_until(ws, "status", timeout=seconds(5))
            return status

        full = (await down(operator, "refused"))["error"]
        assert f"127.0.0.1:{core.port}" in full
        assert "'admin'" in full
        assert (await down(customer, ""))["error"] == PUBLIC_ERROR
        # A new subscription is sent the status the subscriber may see.
        await customer.send_json({"type": "subscribe", "router": "core"})
        assert (await receive_until(customer, "status"))["error"] == PUBLIC_ERROR
        for bearer, expected in ((token(), full), (customer_token, PUBLIC_ERROR)):
            response = await gw.http.get(
                gw.url("/api/routers"), headers={"Authorization": f"Bearer {bearer}"}
            )
            assert (await response.json())["routers"][0]["last_error"] == expected
        for ws in (operator, customer):
            await ws.close()
