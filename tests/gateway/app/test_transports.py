"""How a token reaches the websocket: the first message, a subprotocol, or (discouraged) the URL;
and that no transport puts it in a log."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.config import Settings, settings_from_dict
from gateway.emulator.server import RouterEmulator
from gateway.routeros import connect_librouteros
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
)
from tests.support.timing import seconds
from tests.support.tokens import hs256

PROTOCOL = "gateway.v1"


def jwt_settings(core: RouterEmulator, **auth: Any) -> Settings:
    return gateway_settings({"core": core}, {"interval": 0.3}, auth=auth)


@contextlib.asynccontextmanager
async def jwt_gateway(**auth: Any) -> AsyncIterator[Gateway]:
    core = emulator()
    async with running(core), gateway(jwt_settings(core, **auth)) as gw:
        yield gw


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    """The close code and reason, failing on any text frame before the close."""
    msg = await ws.receive(timeout=seconds(5))
    assert msg.type is aiohttp.WSMsgType.CLOSE, f"expected a close, got {msg.type} {msg.data}"
    return ws.close_code, str(msg.extra)


async def test_the_first_message_carries_the_token_and_nothing_comes_before_it() -> None:
    """Without a token in the handshake the server waits for {"type": "auth"}, says nothing
    until then, and then serves the connection as usual."""
    async with jwt_gateway() as gw:
        ws = await gw.http.ws_connect(gw.url("/ws"))
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.3)  # an observation window: the server stays silent
        await send(ws, {"type": "auth", "token": hs256()})
        hello = await receive(ws)
        assert hello["type"] == "hello"
        assert [r["id"] for r in hello["routers"]] == ["core"]
        status, _ = await subscribe(ws, "core")
        assert status["router"] == "core"
        await ws.close()


async def test_pings_before_the_auth_message_are_answered() -> None:
    """A client library that pings at once still gets its pong while the server waits."""
    async with jwt_gateway() as gw:
        ws = await gw.http.ws_connect(gw.url("/ws"), autoping=False)
        await ws.ping(b"early")
        msg = await ws.receive(timeout=seconds(5))
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.PONG, b"early")
        await send(ws, {"type": "auth", "token": hs256()})
        assert (await receive(ws))["type"] == "hello"
        await ws.close()


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        ({"type": "subscribe", "router": "core"}, "got a 'subscribe' message"),
        ({"type": "auth"}, 'a string "token" and nothing else'),
        ({"type": "auth", "token": 5}, 'a string "token"'),
        ({"type": "auth", "token": hs256(), "router": "core"}, "nothing else"),
        ({"type": "auth", "token": "garbage"}, "the token is invalid"),
        ({"type": "auth", "token": hs256(lifetime=-100)}, "the token has expired"),
        ([1, 2], "got something else"),
        ("not json", "not JSON"),
    ],
)
async def test_a_first_message_without_a_good_token_closes_with_4401(
    first: object, reason: str
) -> None:
    """Anything but a good auth message first is a 4401 saying what was expected."""
    async with jwt_gateway() as gw:
        ws = await gw.http.ws_connect(gw.url("/ws"))
        if isinstance(first, str):
            await ws.send_str(first)
        else:
            await send(ws, first)
        code, text = await closed_with(ws)
        assert code == 4401
        assert reason in text


async def test_a_binary_first_message_closes_with_4401() -> None:
    """The auth message is JSON text; bytes are refused like a missing token."""
    async with jwt_gateway() as gw:
        ws = await gw.http.ws_connect(gw.url("/ws"))
        await ws.send_bytes(b'{"type":"auth"}')
        code, text = await closed_with(ws)
        assert (code, text.startswith("no token")) == (4401, True)


async def test_no_auth_message_within_the_deadline_closes_with_4401() -> None:
    """A connection that never authenticates is closed after auth_timeout, not held open."""
    async with jwt_gateway(auth_timeout=0.5) as gw:
        ws = await gw.http.ws_connect(gw.url("/ws"))
        code, text = await closed_with(ws)
        assert code == 4401
        assert "within 0.5 s" in text
        assert not gw.endpoint.admission.authenticating


async def test_the_token_as_a_subprotocol_is_never_echoed() -> None:
    """Offering gateway.v1 and bearer.<token> authenticates the handshake; the server answers
    gateway.v1 alone and speaks first."""
    token = hs256()
    async with jwt_gateway() as gw:
        ws = await gw.http.ws_connect(gw.url("/ws"), protocols=(PROTOCOL, f"bearer.{token}"))
        assert ws.protocol == PROTOCOL
        assert (await receive(ws))["type"] == "hello"
        await ws.close()
        async with gw.http.get(
            gw.url("/ws"),
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Protocol": f"{PROTOCOL}, bearer.{token}",
            },
        ) as response:
            assert response.status == 101
            assert response.headers["Sec-WebSocket-Protocol"] == PROTOCOL
            assert token not in str(response.headers)


async def test_a_bad_token_as_a_subprotocol_closes_with_4401() -> None:
    """A forged or expired token in the subprotocol is refused like any other."""
    async with jwt_gateway() as gw:
        for token in ("garbage", hs256(secret="another-secret-of-32-bytes-or-more"), hs256(-99)):
            ws = await gw.http.ws_connect(gw.url("/ws"), protocols=(PROTOCOL, f"bearer.{token}"))
            code, _ = await closed_with(ws)
            assert code == 4401


async def test_a_token_in_the_url_still_works() -> None:
    """``?token=`` is discouraged but kept for old clients."""
    async with jwt_gateway() as gw:
        ws = await gw.http.ws_connect(gw.url(f"/ws?token={hs256()}"))
        assert (await receive(ws))["type"] == "hello"
        await ws.close()


async def test_a_second_auth_message_is_an_error_and_the_connection_stays() -> None:
    """Once authenticated, another auth message is answered with an error pointing at refresh."""
    async with jwt_gateway() as gw:
        ws = await gw.http.ws_connect(gw.url("/ws"))
        await send(ws, {"type": "auth", "token": hs256()})
        await receive_until(ws, "hello")
        await send(ws, {"type": "auth", "token": hs256()})
        error = await receive(ws)
        assert error["type"] == "error"
        assert error["code"] == "bad_request"
        assert '"refresh"' in error["message"]
        await subscribe(ws, "core")
        await ws.close()


async def test_in_mode_none_an_auth_message_is_ignored() -> None:
    """A page that has a token sends it even to a gateway without auth: no error, no harm."""
    core = emulator()
    settings = settings_from_dict(
        {
            "server": {"port": 0},
            "routers": [
                {"id": "core", "host": "127.0.0.1", "port": 1, "username": "a", "password": "p"}
            ],
        },
        source="test",
    )
    async with running(core), gateway(settings) as gw:
        ws = await gw.viewer()
        await send(ws, {"type": "auth", "token": "anything"})
        await send(ws, {"type": "unsubscribe", "router": "core"})
        await send(ws, {"type": "subscribe", "router": "nope"})
        error = await receive(ws)
        assert error["code"] == "unknown_router"  # the first answer: the auth got none
        await ws.close()


async def test_no_transport_puts_the_token_in_a_log(caplog: pytest.LogCaptureFixture) -> None:
    """The access log (even one that records the token-carrying headers) and aiohttp's own
    websocket log show every transport's token masked."""
    caplog.set_level(logging.DEBUG)
    core = emulator()
    tokens = {name: hs256(nonce=name) for name in ("query", "protocol", "only", "header")}
    async with running(core):
        app = create_app(jwt_settings(core), connect=connect_librouteros)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server(
            access_log_format='%a "%r" %s "%{Sec-WebSocket-Protocol}i" "%{Authorization}i"'
        )
        try:
            async with aiohttp.ClientSession() as http:
                url = str(server.make_url("/ws"))
                for ws in (
                    await http.ws_connect(f"{url}?token={tokens['query']}"),
                    await http.ws_connect(
                        url, protocols=(PROTOCOL, f"bearer.{tokens['protocol']}")
                    ),
                    # Without gateway.v1 aiohttp logs the protocols it was offered.
                    await http.ws_connect(url, protocols=(f"bearer.{tokens['only']}",)),
                ):
                    assert (await receive(ws))["type"] == "hello"
                    await ws.close()
                bearer = {"Authorization": f"Bearer {tokens['header']}"}
                async with http.get(str(server.make_url("/api/routers")), headers=bearer) as r:
                    assert r.status == 200
        finally:
            await server.close()
    text = "\n".join(
        f"{r.name} {r.getMessage()} {orjson.dumps(vars(r), default=str).decode()}"
        for r in caplog.records
    )
    assert "token=***" in text
    assert "bearer.***" in text
    assert "Bearer ***" in text
    assert "overlap" in text  # aiohttp's warning about the protocols was logged, masked
    for name, token in tokens.items():
        assert token not in text, name
        assert token.split(".")[2] not in text, name
