"""A big router's history reaches ordinary websocket clients, and a subscriber can ask for less.

One gateway for the whole module, in front of an emulated router with 300 PPPoE customers and a
full ring (``history = 300``): about 14 MB of history, which once went out as one message that
aiohttp's and python-websockets' default limits refuse. The ring is filled by polling as fast as
the router answers, then the poller goes back to an ordinary pace for the tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect

from gateway.contract import Phase, StreamCheck
from gateway.core.filters import InterfaceFilter
from gateway.core.frames import filter_traffic
from gateway.history import MESSAGE_LIMIT
from gateway.wire import Opcode, inflate, split_frames, split_messages
from gateway.wire import frame as ws_frame
from tests.support.gateway import (
    Gateway,
    emulator,
    gateway,
    gateway_settings,
    holds,
    merge_history,
    next_traffic,
    receive,
    running,
    send,
)
from tests.support.sansio import SansIOViewer
from tests.support.timing import eventually, seconds

pytestmark = pytest.mark.asyncio(loop_scope="module")

RING: Final = 300
CUSTOMERS: Final = 300
FILL_INTERVAL: Final = 0.001
"""Poll as fast as the router answers while the ring fills (a few hundred polls)."""
LIVE_INTERVAL: Final = 0.2
ONE_MIB: Final = 1024 * 1024

Message = dict[str, Any]


@dataclass
class Big:
    gw: Gateway

    @property
    def ws_url(self) -> str:
        return self.gw.url("/ws").replace("http://", "ws://", 1)

    async def viewer(self) -> aiohttp.ClientWebSocketResponse:
        """An aiohttp client that refuses messages of 1 MiB or more (its default is 4 MiB)."""
        return await self.gw.viewer(max_msg_size=ONE_MIB)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def big() -> AsyncIterator[Big]:
    emu = emulator(interfaces=8, pppoe=CUSTOMERS, pppoe_session=0.0)
    poll = {"interval": FILL_INTERVAL, "history": RING}
    async with running(emu), gateway(gateway_settings({"isp": emu}, poll)) as gw:
        # Demand for the router while the ring fills: a viewer of no interface at all.
        filler = await gw.viewer()
        await send(filler, {"type": "subscribe", "router": "isp", "interfaces": []})
        topic = gw.hub.topics["isp"]
        poller = gw.pollers["isp"]
        await eventually(
            lambda: poller.seq - poller.seq_base > RING,
            timeout=seconds(90),
            message="the ring filled",
        )
        poller.interval = LIVE_INTERVAL
        await filler.close()
        assert len(topic.history) == RING
        assert len(topic.history[-1].json) > 40_000  # ~150 bytes for each of 308 interfaces
        yield Big(gw)


def history_frames(chunks: list[Message]) -> list[Message]:
    """The frames of one subscribe's history messages (held to the contract as they came),
    which must not be marked ``reset``."""
    history = merge_history(chunks)
    assert history["reset"] is False
    frames: list[Message] = history["frames"]
    return frames


async def history_then_live(
    ws: aiohttp.ClientWebSocketResponse, live: int = 3
) -> tuple[list[Message], list[Message], list[Message]]:
    """After a subscribe: the history messages, their frames, then ``live`` traffic frames.

    Fails unless what comes holds to the contract (``gateway.contract``): the status first,
    then only history messages up to the one without ``more``, and the live frames continuing
    the history's ``seq`` with no gap.
    """
    check = StreamCheck()
    check.subscribe("isp", time.monotonic())
    chunks: list[Message] = []
    while check.phase("isp") is not Phase.LIVE:
        message = await receive(ws, seconds(10))
        holds(check.receive(message, time.monotonic()))
        if message["type"] == "history":
            chunks.append(message)
    frames = history_frames(chunks)
    live_frames = []
    for _ in range(live):
        frame = await next_traffic(ws, seconds(10))
        holds(check.receive(frame, time.monotonic()))
        live_frames.append(frame)
    return chunks, frames, live_frames


async def test_aiohttp_with_a_1_mib_limit_gets_the_whole_ring(big: Big) -> None:
    """aiohttp with max_msg_size = 1 MiB gets all 300 frames in marked messages, then live ones."""
    ws = await big.viewer()
    await send(ws, {"type": "subscribe", "router": "isp"})
    chunks, frames, _ = await history_then_live(ws)
    assert len(frames) == RING
    assert len(chunks) > 5  # about 14 MB
    for chunk in chunks:
        assert len(orjson.dumps(chunk)) < MESSAGE_LIMIT
    pppoe = [i for i in frames[0]["interfaces"] if i["name"].startswith("<pppoe-")]
    assert len(pppoe) == CUSTOMERS
    assert not ws.closed
    await ws.close()


async def test_python_websockets_with_its_default_limit_gets_the_whole_ring(big: Big) -> None:
    """python-websockets (max_size 1 MiB by default) gets the whole history, then live frames."""
    check = StreamCheck()
    async with asyncio.timeout(seconds(30)), connect(big.ws_url) as ws:
        assert ws.protocol.max_message_size == ONE_MIB
        hello = orjson.loads(await ws.recv())
        assert hello["type"] == "hello"
        await ws.send(orjson.dumps({"type": "subscribe", "router": "isp"}).decode())
        check.subscribe("isp", time.monotonic())
        messages: list[Message] = []
        while not [m for m in messages if m["type"] == "traffic"][2:]:
            raw = await ws.recv()
            assert len(raw) < MESSAGE_LIMIT
            messages.append(orjson.loads(raw))
            holds(check.receive(messages[-1], time.monotonic(), size=len(raw)))
    kinds = [m["type"] for m in messages if m["type"] not in ("status", "heartbeat")]
    assert messages[0]["type"] == "status"
    chunks = [m for m in messages if m["type"] == "history"]
    assert kinds == ["history"] * len(chunks) + ["traffic"] * 3
    frames = history_frames(chunks)
    assert len(frames) == RING
    live = [m["seq"] for m in messages if m["type"] == "traffic"]
    assert live == list(range(frames[-1]["seq"] + 1, frames[-1]["seq"] + 4))


async def test_a_compressed_history_is_in_messages_under_1_mib_inflated(big: Big) -> None:
    """A client that agreed to permessage-deflate gets the whole ring compressed on the wire,
    each history message under 1 MiB once inflated (its protocol refuses more), and the frames
    a plain client gets."""
    viewer = await SansIOViewer.connect(big.ws_url)
    assert viewer.extensions == "permessage-deflate; server_no_context_takeover"
    assert viewer.protocol.max_message_size == ONE_MIB
    plain = await big.viewer()
    await viewer.send({"type": "subscribe", "router": "isp"})
    await send(plain, {"type": "subscribe", "router": "isp"})
    _, reference, _ = await history_then_live(plain, live=0)
    chunks: list[Message] = []
    while not chunks or chunks[-1]["more"]:
        chunks.append(await viewer.receive_until("history", seconds(10)))
    await viewer.close()
    await plain.close()
    assert len(chunks) > 5
    frames = history_frames(chunks)
    assert len(frames) == RING
    # The two subscribes may straddle a poll: compare the frames both got.
    by_seq = {frame["seq"]: frame for frame in reference}
    assert [by_seq[f["seq"]] for f in frames if f["seq"] in by_seq] == [
        f for f in frames if f["seq"] in by_seq
    ]
    wire, _ = split_messages(viewer.wire, deflate=True)
    histories = [(sent, inflate(sent)) for op, packed, sent in wire if packed]
    histories = [(sent, text) for sent, text in histories if text.startswith(b'{"type":"history"')]
    assert len(histories) == len(chunks)
    for sent, text in histories:
        assert len(text) < MESSAGE_LIMIT
        assert len(sent) * 5 < len(text)


async def test_history_0_gets_an_empty_history_then_live_frames(big: Big) -> None:
    """``"history": 0``: one empty history message, then the live stream."""
    ws = await big.viewer()
    await send(ws, {"type": "subscribe", "router": "isp", "history": 0})
    chunks, frames, live = await history_then_live(ws, live=2)
    assert chunks == [
        {
            "type": "history",
            "router": "isp",
            "source": "interfaces",
            "reset": False,
            "more": False,
            "frames": [],
        }
    ]
    assert frames == []
    assert live[1]["seq"] == live[0]["seq"] + 1
    await ws.close()


@pytest.mark.parametrize("count", [1, 25, 120])
async def test_history_n_gets_the_last_n_frames(big: Big, count: int) -> None:
    """``"history": N``: the newest N frames of the ring, then live frames without a gap."""
    ws = await big.viewer()
    await send(ws, {"type": "subscribe", "router": "isp", "history": count})
    _, frames, _ = await history_then_live(ws)
    assert len(frames) == count
    await ws.close()


async def test_history_seconds_gets_the_frames_of_the_last_seconds(big: Big) -> None:
    """``"history_seconds": S``: every frame made in the last S seconds, and none older."""
    reference = await big.viewer()
    await send(reference, {"type": "subscribe", "router": "isp"})
    _, ring, _ = await history_then_live(reference, live=1)
    # A cut about 100 frames from the end of the ring, where frames are a few ms apart.
    window = time.time() - ring[-100]["ts"]
    ws = await big.viewer()
    before = time.time()
    await send(ws, {"type": "subscribe", "router": "isp", "history_seconds": window})
    _, frames, _ = await history_then_live(ws, live=1)
    after = time.time()
    assert 0 < len(frames) < RING
    ts = {f["seq"]: f["ts"] for f in ring}
    for frame in frames:
        assert frame["ts"] >= before - window
    # The frame just before the first one sent was older than the window.
    older = ts.get(frames[0]["seq"] - 1)
    assert older is not None
    assert older < after - window
    await ws.close()
    await reference.close()


@pytest.mark.parametrize(
    "globs", [["<pppoe-user00*>", "ether1"], ["<pppoe-user0123>"], ["no-such-interface"]]
)
async def test_a_filtered_history_is_the_full_history_filtered(big: Big, globs: list[str]) -> None:
    """A filtered subscriber's history is exactly the full history, each frame filtered."""
    full = await big.viewer()
    filtered = await big.viewer()
    await send(full, {"type": "subscribe", "router": "isp"})
    await send(filtered, {"type": "subscribe", "router": "isp", "interfaces": globs})
    _, whole, _ = await history_then_live(full, live=1)
    chunks, part, _ = await history_then_live(filtered, live=1)
    assert len(part) == RING
    flt = InterfaceFilter.of(globs)
    by_seq = {frame["seq"]: filter_traffic(frame, flt) for frame in whole}
    # The two subscribes may straddle a poll: compare every frame both got (all but one or two).
    common = [frame for frame in part if frame["seq"] in by_seq]
    assert len(common) >= RING - 2
    assert common == [by_seq[frame["seq"]] for frame in common]
    if globs == ["<pppoe-user00*>", "ether1"]:
        assert len(chunks) > 1  # ~100 interfaces a frame: several messages
    await full.close()
    await filtered.close()


async def test_a_client_that_only_knows_one_history_message_still_gets_every_frame(
    big: Big,
) -> None:
    """A client that ignores ``more`` sees several history messages, every frame once, in order."""
    ws = await big.viewer()
    await send(ws, {"type": "subscribe", "router": "isp", "history": 200})
    seen: list[int] = []
    while len([m for m in seen if m < 0]) < 2:  # two live frames, marked negative
        message = await receive(ws, seconds(10))
        if message["type"] == "history":
            seen.extend(frame["seq"] for frame in message["frames"])
        elif message["type"] == "traffic":
            seen.append(-message["seq"])
    seqs = [abs(s) for s in seen]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert len(seqs) == 202
    await ws.close()


async def test_resubscribing_faster_than_reading_does_not_stack_histories(big: Big) -> None:
    """A client that sends the same subscribe 25 times and reads nothing holds at most one
    history in the gateway's memory (not 25); once it reads, every answer comes, in order."""
    reader, writer = await asyncio.open_connection("127.0.0.1", big.gw.server.port, limit=64 * 1024)
    try:
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        writer.write(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        subscribe = orjson.dumps({"type": "subscribe", "router": "isp", "history": RING})
        writer.write(ws_frame(Opcode.TEXT, subscribe, mask=b"mask") * 25)
        await writer.drain()
        hub = big.gw.hub
        await eventually(lambda: len(list(hub.connected())) == 1, timeout=seconds(5))
        (viewer,) = hub.connected()
        ring = sum(len(frame.json) for frame in big.gw.hub.topics["isp"].history)
        # The first history is queued; the next subscribes wait in the client's own stream.
        await eventually(
            lambda: viewer.transport.get_write_buffer_size() > ONE_MIB,
            timeout=seconds(10),
            message="the first history queued",
        )
        most = 0
        deadline = time.monotonic() + seconds(2)
        while time.monotonic() < deadline:  # an observation window: nothing else is read
            most = max(most, viewer.transport.get_write_buffer_size())
            await asyncio.sleep(0.05)
        assert most < ring + 2 * ONE_MIB, (most, ring)
        # Now read: 25 answers, each a status and a whole history, in order.
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), seconds(10))
        assert head.startswith(b"HTTP/1.1 101"), head
        buffered, statuses, histories = b"", 0, 0
        while histories < 25:
            chunk = await asyncio.wait_for(reader.read(1 << 20), seconds(30))
            assert chunk, "the gateway closed the connection"
            frames, buffered = split_frames(buffered + chunk)
            for opcode, payload in frames:
                if opcode != Opcode.TEXT:
                    continue
                message = orjson.loads(payload)
                if message["type"] == "status":
                    statuses += 1
                elif message["type"] == "history" and not message["more"]:
                    histories += 1
                    assert histories == statuses  # each history follows its own status
    finally:
        writer.transport.abort()
