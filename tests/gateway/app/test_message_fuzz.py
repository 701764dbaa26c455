"""Whatever a client sends, it gets an error frame or a close code: never an escaped exception,
a stuck connection, or a missed frame for the well-behaved viewer next to it.

Hypothesis writes the client's messages: subscribes, unsubscribes, refreshes and auth messages
with fields of every shape, arbitrary JSON, text that is not JSON, binary frames and messages
too big. Each example opens a new connection, sends them, then a sentinel whose answer is known;
the gateway must answer it (or have closed with a documented code). Meanwhile one viewer,
subscribed since the start, must keep getting every traffic frame in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Final, get_args

import aiohttp
import orjson
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.messages import ErrorCode
from tests.support.gateway import (
    Gateway,
    emulator,
    gateway,
    gateway_settings,
    receive,
    running,
    send,
)
from tests.support.timing import eventually, seconds
from tests.support.tokens import hs256

pytestmark = pytest.mark.asyncio(loop_scope="module")

FUZZER: Final = "fuzzer"
"""The subject of the fuzzing client's tokens (the calm viewer has another)."""

KNOWN_TYPES: Final = frozenset(
    {"hello", "status", "history", "traffic", "heartbeat", "error", "refresh_needed", "refreshed"}
)
ERROR_CODES: Final = frozenset(get_args(ErrorCode))
CLOSE_CODES: Final = frozenset({1009})
"""The closes a fuzzing client may earn: a message over 64 KiB. (4429 needs more messages than
an example sends; 1011 would be a bug of ours.)"""

MAX_MESSAGES: Final = 12
"""Messages per example: with the sentinel, fewer than the message burst (20), so the rate limit
never answers the sentinel in the message's place."""


@dataclass
class Calm:
    """The well-behaved viewer: every traffic frame's seq it got, read by its own task."""

    ws: aiohttp.ClientWebSocketResponse
    seqs: list[int] = field(default_factory=list)
    odd: list[Any] = field(default_factory=list)

    async def read(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                self.odd.append(msg)
                return
            message = orjson.loads(msg.data)
            if message["type"] == "traffic":
                self.seqs.append(message["seq"])
            elif message["type"] not in ("status", "history", "heartbeat"):
                self.odd.append(message)


@dataclass
class Bench:
    gw: Gateway
    calm: Calm


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bench() -> AsyncIterator[Bench]:
    core = emulator()
    async with running(core):
        config = gateway_settings({"core": core}, {"interval": 0.1}, auth={})
        async with gateway(config) as gw:
            ws = await gw.viewer(protocols=("gateway.v1", f"bearer.{hs256(3600, sub='calm')}"))
            await send(ws, {"type": "subscribe", "router": "core", "history": 0})
            calm = Calm(ws)
            reader = asyncio.create_task(calm.read())
            try:
                await eventually(lambda: bool(calm.seqs), timeout=seconds(5), message="a frame")
                yield Bench(gw, calm)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
                await ws.close()


# -- what a client may send ------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=8,
)
routers = st.sampled_from(["core", "nope", "", "CORE", "core\x00"]) | json_values

TOKENS: Final = {
    "same": lambda: hs256(sub=FUZZER),
    "narrower": lambda: hs256(sub=FUZZER, interfaces={"core": ["ether1"]}),
    "wider": lambda: hs256(sub=FUZZER, routers="*"),
    "other subject": lambda: hs256(sub="someone-else"),
    "expired": lambda: hs256(lifetime=-120, sub=FUZZER),
    "bad signature": lambda: hs256(sub=FUZZER, secret="x" * 40),
}
tokens = st.sampled_from(sorted(TOKENS)).map(lambda kind: TOKENS[kind]()) | json_values

interfaces = (
    st.lists(
        st.text(max_size=20) | st.fixed_dictionaries({"exact": st.text(max_size=10)}) | scalars,
        max_size=6,
    )
    | json_values
)
counts = st.integers(min_value=-3, max_value=2**64 - 1) | json_values

subscribe = st.fixed_dictionaries(
    {"type": st.just("subscribe"), "router": routers},
    optional={
        "interfaces": interfaces,
        "since": counts,
        "history": counts,
        "history_seconds": st.floats() | json_values,
        "extra": json_values,
    },
)
unsubscribe = st.fixed_dictionaries(
    {"type": st.just("unsubscribe")}, optional={"router": routers, "extra": json_values}
)
with_token = st.fixed_dictionaries(
    {"type": st.sampled_from(["refresh", "auth"])},
    optional={"token": tokens, "extra": json_values},
)
objects = st.dictionaries(
    st.sampled_from(["type", "router", "token"]) | st.text(max_size=8), json_values
)

Message = tuple[str, str | bytes]
"""One websocket message: ("text", text) or ("binary", bytes)."""

as_json = (subscribe | unsubscribe | with_token | objects | json_values).map(
    lambda value: ("text", orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode())
)
SPECIAL_TEXT: Final = {
    "deep nesting": "[" * 5000 + "]" * 5000,
    "cut short": '{"type": "subscribe", "router": "co',
    "too big": '{"type": "subscribe", "router": "' + "x" * 70_000 + '"}',
    "huge integer": '{"type": "subscribe", "router": "core", "since": ' + "9" * 400 + "}",
    "huge float": '{"type": "subscribe", "router": "core", "history_seconds": 1e999}',
    "duplicate keys": '{"type": "subscribe", "router": "core", "router": "nope"}',
    "lone surrogate escape": '{"type": "subscribe", "router": "\\ud800"}',
    "empty object": "{}",
    "null": "null",
}
"""Texts a JSON encoder would not write, by name (so a failing example reads short)."""

raw_text = (
    st.text(max_size=200) | st.sampled_from(sorted(SPECIAL_TEXT)).map(SPECIAL_TEXT.__getitem__)
).map(lambda text: ("text", text))
binary = st.binary(max_size=100).map(lambda data: ("binary", data))
messages = st.lists(as_json | raw_text | binary, max_size=MAX_MESSAGES)


# -- the property ----------------------------------------------------------------------------

_sentinels = itertools.count()


async def send_all(ws: aiohttp.ClientWebSocketResponse, sent: list[Message]) -> None:
    """Send the messages, stopping quietly once the gateway has closed the connection."""
    for kind, data in sent:
        if ws.closed:
            return
        try:
            if kind == "text":
                assert isinstance(data, str)
                await ws.send_str(data)
            else:
                assert isinstance(data, bytes)
                await ws.send_bytes(data)
        except ConnectionResetError:
            return


async def answered(ws: aiohttp.ClientWebSocketResponse, sentinel: str) -> int | None:
    """Read every answer until the sentinel's (None) or the close (its code), checking each."""
    while True:
        msg = await ws.receive(timeout=seconds(5))
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return ws.close_code
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        message = orjson.loads(msg.data)
        assert isinstance(message, dict), message
        assert message.get("type") in KNOWN_TYPES, message
        if message["type"] == "error":
            assert message["code"] in ERROR_CODES, message
            assert isinstance(message["message"], str), message
            assert message["message"], message
            if message["code"] == "unknown_router" and sentinel in message["message"]:
                return None


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sent=messages)
async def test_any_client_messages_get_answers_and_harm_no_one(
    bench: Bench, caplog: pytest.LogCaptureFixture, sent: list[Message]
) -> None:
    """Every message sequence ends answered (the sentinel's error) or closed with 1009; no
    error is logged; the connection is released; the calm viewer misses no frame."""
    caplog.set_level(logging.ERROR, logger="gateway")
    gw, calm = bench.gw, bench.calm
    ws = await gw.http.ws_connect(
        gw.url("/ws"), protocols=("gateway.v1", f"bearer.{hs256(sub=FUZZER)}")
    )
    assert (await receive(ws))["type"] == "hello"
    sentinel = f"sentinel-{next(_sentinels)}"
    last = orjson.dumps({"type": "unsubscribe", "router": sentinel}).decode()
    await send_all(ws, [*sent, ("text", last)])
    code = await answered(ws, sentinel)
    assert code is None or code in CLOSE_CODES, f"closed with {code}"
    await ws.close()
    await eventually(lambda: len(gw.viewers()) == 1, timeout=seconds(5), message="released")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert calm.odd == []
    seqs = calm.seqs
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the calm viewer missed a frame"
    latest = gw.pollers["core"].seq
    await eventually(lambda: calm.seqs[-1] >= latest, timeout=seconds(2), message="calm live")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=as_json | raw_text | binary)
async def test_any_first_message_is_a_good_auth_or_a_4401(
    bench: Bench, caplog: pytest.LogCaptureFixture, first: Message
) -> None:
    """Without a token in the handshake, the first message is a good auth message (then the
    hello comes) or the connection is closed with 4401 (1009 when too big) before any data."""
    caplog.set_level(logging.ERROR, logger="gateway")
    gw = bench.gw
    ws = await gw.http.ws_connect(gw.url("/ws"))
    await send_all(ws, [first])
    msg = await ws.receive(timeout=seconds(5))
    if msg.type is aiohttp.WSMsgType.TEXT:
        assert orjson.loads(msg.data)["type"] == "hello"
        kind, text = first
        assert kind == "text"
        auth = orjson.loads(text)
        assert set(auth) == {"type", "token"}
        assert auth["type"] == "auth"
    else:
        assert msg.type is aiohttp.WSMsgType.CLOSE, msg
        assert ws.close_code in (4401, 1009), ws.close_code
    await ws.close()
    await eventually(lambda: len(gw.viewers()) == 1, timeout=seconds(5), message="released")
    assert gw.endpoint.admission.authenticating == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
