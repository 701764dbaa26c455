"""Keepalive: idle viewers are pinged and fed a heartbeat, dead ones dropped, fed ones left alone.

Real websockets over loopback, to the gateway's own ``/ws`` endpoint; the hub runs on a clock
the test moves, and the test calls ``Hub.heartbeat`` itself where the app's timer would, so no
test waits for a heartbeat period to pass.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.auth import Verifier
from gateway.config import AuthSettings, ServerSettings
from gateway.hub import Hub
from gateway.lifecycle import Lifecycle
from gateway.metrics import Metrics
from gateway.sink import Limits
from gateway.topic import Topic
from gateway.ws import USER_TIMEOUT, WebSocketEndpoint
from gateway.ws_messages import Viewer
from gateway.ws_session import ViewerContext
from tests.support.fakes import Clock
from tests.support.timing import eventually, seconds

HEARTBEAT: Final = 20.0
WALL: Final = 1_764_377_000.0


@dataclass
class Rig:
    """The websocket endpoint in front of a hub on a test clock, and a client for it."""

    hub: Hub
    clock: Clock
    client: TestClient[web.Request, web.Application]

    @property
    def topic(self) -> Topic:
        return self.hub.topics["core"]

    async def connect(self, *, autoping: bool) -> aiohttp.ClientWebSocketResponse:
        """A viewer, past its hello; ``autoping`` False leaves answering pings to the test."""
        ws = await self.client.ws_connect(
            "/ws", autoping=autoping, timeout=aiohttp.ClientWSTimeout(5)
        )
        assert (await text(ws))["type"] == "hello"
        return ws

    def viewer(self) -> Viewer:
        [viewer] = self.hub.connected()
        assert isinstance(viewer, Viewer)
        return viewer

    def beat(self, after: float = HEARTBEAT) -> float:
        """Move the clock one period on and run the hub's heartbeat; returns its ``ts``."""
        self.clock.now += after
        now = WALL + self.clock.now
        self.hub.heartbeat(now)
        return now


@pytest.fixture
async def rig(aiohttp_client: AiohttpClient) -> Rig:
    """``/ws`` of a one-router hub on a test clock, served on loopback."""
    clock = Clock(1000.0)
    hub = Hub(["core"], history=10, clock=clock)
    context = ViewerContext(
        hub=hub,
        routers=(("core", "Core"),),
        heartbeat=HEARTBEAT,
        metrics=Metrics(),
        limits=Limits(),
        verifier=Verifier(AuthSettings()),
    )
    endpoint = WebSocketEndpoint(context, ServerSettings(), Lifecycle(ready=True))
    app = web.Application()
    app.router.add_get("/ws", endpoint.handle)
    return Rig(hub, clock, await aiohttp_client(app))


async def receive(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    return await ws.receive(timeout=seconds(5))


async def text(ws: aiohttp.ClientWebSocketResponse) -> Any:
    msg = await receive(ws)
    assert msg.type is WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


def traffic(seq: int) -> dict[str, object]:
    return {
        "type": "traffic",
        "v": 1,
        "router": "core",
        "seq": seq,
        "ts": WALL + seq,
        "interfaces": [],
    }


async def test_a_viewer_fed_traffic_gets_no_ping(rig: Rig) -> None:
    """A dashboard receiving frames gets no ping or heartbeat on top: frames are its heartbeat."""
    ws = await rig.connect(autoping=False)
    await ws.send_str('{"type":"subscribe","router":"core"}')
    assert (await text(ws))["type"] == "history"
    rig.clock.now += HEARTBEAT * 0.75  # fed within the last half period at the beat
    rig.topic.publish(traffic(1))
    rig.beat(HEARTBEAT * 0.25)
    rig.topic.publish_status({"type": "status", "router": "core", "state": "up"})
    # Writes are in order: the status right after the frame proves nothing came between.
    assert (await text(ws))["type"] == "traffic"
    assert (await text(ws))["type"] == "status"
    assert not rig.viewer().awaiting_pong
    rig.beat()  # a whole period without a frame: now it is idle
    assert (await receive(ws)).type is WSMsgType.PING
    await ws.close()


async def test_an_idle_viewer_gets_a_ping_and_a_heartbeat_message(rig: Rig) -> None:
    """A quiet dashboard gets a websocket ping and a heartbeat message it can see, each period."""
    ws = await rig.connect(autoping=False)
    ts = rig.beat()
    ping = await receive(ws)
    assert ping.type is WSMsgType.PING
    assert await text(ws) == {"type": "heartbeat", "ts": round(ts, 3)}
    await ws.close()


async def test_a_viewer_that_answers_nothing_is_dropped(rig: Rig) -> None:
    """A peer that answers no ping for a whole period is dropped, freeing its connection."""
    ws = await rig.connect(autoping=False)
    rig.beat()
    assert (await receive(ws)).type is WSMsgType.PING  # not answered
    assert (await text(ws))["type"] == "heartbeat"
    assert rig.hub.connections == 1
    rig.beat()
    end = await receive(ws)
    assert end.type in (WSMsgType.CLOSED, WSMsgType.ERROR), end
    await eventually(lambda: rig.hub.connections == 0, timeout=seconds(5), message="viewer dropped")


@pytest.mark.parametrize("answer", ["pong", "message"])
async def test_a_viewer_that_answers_is_kept(answer: str, rig: Rig) -> None:
    """A peer that answers each ping (or sends anything) stays connected, beat after beat."""
    ws = await rig.connect(autoping=False)
    for _ in range(3):
        rig.beat()
        ping = await receive(ws)
        assert ping.type is WSMsgType.PING
        assert (await text(ws))["type"] == "heartbeat"
        if answer == "pong":
            await ws.pong(ping.data)
        else:
            await ws.send_str('{"type":"unsubscribe","router":"core"}')
        await eventually(
            lambda: not rig.viewer().awaiting_pong, timeout=seconds(5), message="answer seen"
        )
    assert rig.hub.connections == 1
    assert not ws.closed
    await ws.close()


async def test_a_browser_answering_pings_by_itself_is_kept(rig: Rig) -> None:
    """A client library's automatic pongs keep an idle viewer connected."""
    ws = await rig.connect(autoping=True)
    for _ in range(3):
        rig.beat()
        assert (await text(ws))["type"] == "heartbeat"  # the ping was answered already
        await eventually(
            lambda: not rig.viewer().awaiting_pong, timeout=seconds(5), message="pong seen"
        )
    assert rig.hub.connections == 1
    await ws.close()


async def test_unacknowledged_data_drops_a_viewer_after_one_and_a_half_heartbeats(rig: Rig) -> None:
    """A peer that stops acknowledging the frames it is sent is dropped by the kernel in time."""
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if option is None:
        pytest.skip("TCP_USER_TIMEOUT is Linux only")
    ws = await rig.connect(autoping=True)
    transport = rig.viewer().transport
    assert isinstance(transport, asyncio.Transport)
    sock = transport.get_extra_info("socket")
    timeout_ms = sock.getsockopt(socket.IPPROTO_TCP, option)
    assert timeout_ms == int(HEARTBEAT * USER_TIMEOUT * 1000) == 30_000
    await ws.close()
