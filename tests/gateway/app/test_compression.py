"""permessage-deflate over real sockets: agreed on the gateway's terms, compressed once for every
viewer that agreed, plain for the others, read by independent implementations."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Final

import orjson
import pytest
import pytest_asyncio
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from gateway.contract import StreamCheck
from gateway.wire import Opcode, inflate, split_messages
from gateway.ws_messages import DeflateViewer, Viewer
from tests.support.gateway import (
    Gateway,
    emulator,
    gateway,
    gateway_settings,
    holds,
    next_traffic,
    receive_until,
    running,
    subscribe,
)
from tests.support.sansio import SansIOViewer
from tests.support.timing import eventually, seconds

pytestmark = pytest.mark.asyncio(loop_scope="module")

CUSTOMERS: Final = 300
"""An ISP router: 8 ports and 300 PPPoE customers, frames of about 45 KB."""
ANSWER: Final = "permessage-deflate; server_no_context_takeover"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gw() -> AsyncIterator[Gateway]:
    emu = emulator(interfaces=8, pppoe=CUSTOMERS, pppoe_session=0.0)
    async with running(emu):
        settings = gateway_settings({"isp": emu}, {"interval": 0.2, "history": 5})
        async with gateway(settings) as gw:
            yield gw


def ws_url(gw: Gateway) -> str:
    return gw.url("/ws").replace("http://", "ws://", 1)


def traffic_on_the_wire(wire: bytes) -> list[tuple[bool, bytes, bytes]]:
    """Each traffic message the gateway wrote: (compressed?, its payload as sent, the JSON)."""
    frames, _ = split_messages(wire, deflate=True)
    out = []
    for opcode, packed, sent in frames:
        if opcode != Opcode.TEXT:
            continue
        text = inflate(sent) if packed else sent
        if text.startswith(b'{"type":"traffic"'):
            out.append((packed, sent, text))
    return out


async def test_an_independent_client_reads_the_compressed_frames() -> None:
    """python-websockets' protocol, offering deflate as it does, is answered with
    server_no_context_takeover; traffic arrives compressed to under a fifth and inflates to
    the frames a plain viewer gets, byte for byte."""
    emu = emulator(interfaces=8, pppoe=CUSTOMERS, pppoe_session=0.0)
    async with running(emu), gateway(gateway_settings({"isp": emu}, {"interval": 0.2})) as gw:
        compressed = await SansIOViewer.connect(ws_url(gw))
        assert compressed.extensions == ANSWER
        plain = await gw.viewer(compress=0)
        await compressed.send({"type": "subscribe", "router": "isp", "history": 0})
        await subscribe(plain, "isp", history=0)
        seen: dict[int, Any] = {}
        while len(seen) < 3:
            frame = await next_traffic(plain, seconds(5))
            seen[frame["seq"]] = frame
        got: list[Any] = []
        while len(got) < 3 or got[-1]["seq"] < max(seen):
            got.append(await compressed.receive_until("traffic"))
        await compressed.close()
        await plain.close()
    wire = traffic_on_the_wire(compressed.wire)
    assert len(wire) == len(got)
    for (packed, sent, text), message in zip(wire, got, strict=True):
        assert packed, "a 45 KB frame went plain to a viewer that agreed to deflate"
        assert orjson.loads(text) == message
        assert len(sent) * 5 < len(text)
        if message["seq"] in seen:
            assert message == seen[message["seq"]]


async def test_compressed_and_plain_viewers_share_a_topic(gw: Gateway) -> None:
    """Viewers that agreed to deflate and viewers that did not watch one router: each gets
    every frame in its own form, and the topic deflates each frame once for all of them."""
    packed = [await gw.viewer(compress=15) for _ in range(3)]
    plain = [await gw.viewer(compress=0) for _ in range(2)]
    assert [ws.compress for ws in packed + plain] == [15, 15, 15, 0, 0]
    for ws in packed + plain:
        await subscribe(ws, "isp", history=0)
    viewers = gw.viewers()
    assert sum(type(v) is DeflateViewer for v in viewers) == 3
    assert sum(type(v) is Viewer for v in viewers) == 2
    topic = gw.hub.topics["isp"]
    await eventually(lambda: topic.latest is not None, timeout=seconds(5), message="a frame")
    first = topic.latest
    deflates = topic.deflates
    frames = [[await next_traffic(ws, seconds(5)) for _ in range(3)] for ws in packed + plain]
    last = topic.latest
    assert first is not None
    assert last is not None
    by_seq = {f["seq"]: f for f in frames[-1]}
    for received in frames:
        for frame in received:
            if frame["seq"] in by_seq:
                assert frame == by_seq[frame["seq"]]
    # One deflate per frame published in between, however many viewers took it compressed.
    assert topic.deflates - deflates == last.seq - first.seq
    for ws in packed + plain:
        await ws.close()


async def test_what_compressing_clients_send_is_understood(gw: Gateway) -> None:
    """Clients that compress their own messages, with and without keeping their compression
    context from one message to the next, are understood, message after message."""
    for factory in (
        ClientPerMessageDeflateFactory(),
        ClientPerMessageDeflateFactory(client_no_context_takeover=True),
    ):
        viewer = await SansIOViewer.connect(ws_url(gw), extensions=[factory])
        for _ in range(3):
            message = {"type": "subscribe", "router": "isp", "history": 0, "interfaces": ["*"]}
            await viewer.send(message)
            # (A frame of the previous subscription may still come first.)
            await viewer.receive_until("status")
            assert (await viewer.receive())["type"] == "history"
            await viewer.send({"type": "unsubscribe", "router": "isp"})
        await viewer.send({"type": "no such thing", "padding": "x" * 2000})
        error = await viewer.receive_until("error")
        assert "unknown message type" in error["message"]
        await viewer.close()
    # aiohttp's client compresses every message it sends once deflate is agreed.
    ws = await gw.viewer(compress=15)
    await subscribe(ws, "isp", history=0, interfaces=["<pppoe-*>"])
    assert (await next_traffic(ws, seconds(5)))["type"] == "traffic"
    await ws.close()


async def test_an_offer_the_gateway_cannot_honour_gets_plain_frames(gw: Gateway) -> None:
    """A client asking for a smaller server window than the gateway deflates with is answered
    without the extension, and gets plain frames."""
    factory = ClientPerMessageDeflateFactory(server_max_window_bits=10)
    viewer = await SansIOViewer.connect(ws_url(gw), extensions=[factory])
    assert viewer.extensions is None
    await viewer.send({"type": "subscribe", "router": "isp", "history": 0})
    frame = await viewer.receive_until("traffic")
    wire = traffic_on_the_wire(viewer.wire)
    assert wire[-1][0] is False
    assert orjson.loads(wire[-1][2]) == frame
    await viewer.close()


async def test_a_compressed_viewer_is_held_to_the_contract(gw: Gateway) -> None:
    """Status, history and live frames reach a compressing client in the contract's order and
    shape, each message under 1 MiB once inflated (aiohttp refuses larger ones here)."""
    ws = await gw.viewer(compress=15, max_msg_size=1024 * 1024)
    check = StreamCheck()
    status, history = await subscribe(ws, "isp", check=check)
    assert status["type"] == "status"
    assert history["frames"]
    for _ in range(3):
        message = await receive_until(ws, "traffic", seconds(5))
        holds(check.receive(message, time.monotonic()))
    await ws.close()
    await eventually(lambda: not gw.viewers(), timeout=seconds(5))


async def test_a_viewer_that_agreed_costs_no_more_per_connection(gw: Gateway) -> None:
    """The compressed flag is the viewer's class, not a field: the object is the same size."""
    assert DeflateViewer.__slots__ == ()
    assert DeflateViewer.deflate is True
    assert Viewer.deflate is False
    assert DeflateViewer.__basicsize__ == Viewer.__basicsize__
