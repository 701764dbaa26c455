"""The audit line of each websocket session: who, from where, what, how long, how it ended, and
never the token."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest

from tests.support.gateway import (
    emulator,
    gateway,
    gateway_settings,
    receive,
    running,
    send,
    subscribe,
    subscribe_also,
)
from tests.support.timing import eventually, seconds
from tests.support.tokens import hs256


def sessions(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The audit records so far, as their structured fields."""
    keys = {
        "subject": "subject",
        "client": "client",
        "token_via": "token_via",
        "routers": "routers",
        "close_code": "close_code",
        "reason": "reason",
        "in": "messages_in",
        "out": "messages_out",
        "duration": "duration_s",
    }
    return [
        {key: getattr(r, field, None) for key, field in keys.items()}
        for r in caplog.records
        if r.name == "gateway.audit"
    ]


async def test_each_session_ends_with_one_audit_line(caplog: pytest.LogCaptureFixture) -> None:
    """An admitted session and refused ones each leave one line: subject, client address
    (through a trusted proxy, the forwarded one), routers, close code, messages each way."""
    caplog.set_level(logging.INFO, logger="gateway.audit")
    core, edge = emulator(), emulator()
    token = hs256(routers=["core", "edge"])
    async with running(core, edge):
        proxies = ["127.0.0.0/8"]
        settings = gateway_settings(
            {"core": core, "edge": edge}, auth={"leeway": 0}, trusted_proxies=proxies
        )
        async with gateway(settings) as gw:
            forwarded = {"X-Forwarded-For": "198.51.100.23"}
            ws = await gw.http.ws_connect(gw.url("/ws"), headers=forwarded)
            await send(ws, {"type": "auth", "token": token})
            assert (await receive(ws))["type"] == "hello"
            await subscribe(ws, "core")
            await subscribe_also(ws, "edge", seconds(5))
            await send(ws, {"type": "unsubscribe", "router": "edge"})
            await ws.close()
            bad = await gw.http.ws_connect(gw.url("/ws"), protocols=("bearer.garbage",))
            msg = await bad.receive(timeout=seconds(5))
            assert msg.type is aiohttp.WSMsgType.CLOSE
            gone = await gw.http.ws_connect(gw.url(f"/ws?token={hs256(lifetime=1)}"))
            while (await gone.receive(timeout=seconds(5))).type is aiohttp.WSMsgType.TEXT:
                pass  # hello, refresh_needed, then the close at expiry
            assert gone.close_code == 4401
            await eventually(lambda: len(sessions(caplog)) == 3, timeout=seconds(5))
    admitted, refused, expired = sessions(caplog)
    assert admitted["subject"] == "cust-1"
    assert admitted["client"] == "198.51.100.23"
    assert admitted["token_via"] == "message"
    assert admitted["routers"] == ["core", "edge"]
    assert admitted["close_code"] == 1000
    assert admitted["in"] == 3  # the auth message aside: two subscribes, an unsubscribe
    assert admitted["out"] >= 5  # hello, two statuses, two histories, maybe frames
    assert admitted["duration"] > 0
    assert refused["close_code"] == 4401
    assert refused["subject"] is None
    assert refused["token_via"] == "protocol"
    assert refused["client"] == "127.0.0.1"
    assert "malformed" in refused["reason"]
    assert expired["close_code"] == 4401
    assert expired["token_via"] == "query"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert token not in text
    assert "garbage" not in text


@pytest.mark.parametrize("compress", [0, 15], ids=["plain", "deflate"])
async def test_a_session_closed_for_a_protocol_fault_is_audited_with_its_code(
    caplog: pytest.LogCaptureFixture, compress: int
) -> None:
    """A client closed with 1009 (a message over 64 KiB, plain or compressed) is audited with
    1009, the code it was sent, not as a dropped connection (1006)."""
    caplog.set_level(logging.INFO, logger="gateway.audit")
    core = emulator()
    async with running(core), gateway(gateway_settings({"core": core}, auth={})) as gw:
        ws = await gw.http.ws_connect(gw.url("/ws"), compress=compress)
        await send(ws, {"type": "auth", "token": hs256()})
        assert (await receive(ws))["type"] == "hello"
        await send(ws, {"type": "subscribe", "router": "x" * 70_000})
        while (await ws.receive(timeout=seconds(5))).type is aiohttp.WSMsgType.TEXT:
            pass
        assert ws.close_code == 1009
        await eventually(lambda: len(sessions(caplog)) == 1, timeout=seconds(5))
    [session] = sessions(caplog)
    assert session["close_code"] == 1009
