"""The websocket protocol as a dashboard sees it: shapes, filters, resume, and bad messages."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import aiohttp
import pytest

from gateway.contract import StreamCheck
from gateway.core.filters import MAX_GLOB_CHARACTERS, MAX_STARS
from tests.support.gateway import (
    Gateway,
    emulator,
    gateway,
    gateway_settings,
    holds,
    next_traffic,
    receive,
    running,
    sample,
    send,
    subscribe,
)
from tests.support.timing import seconds, within

INTERVAL: Final = 0.2
ENCODES: Final = "gateway_frame_encode_total"
CUSTOMERS: Final = ("<pppoe-user0001>", "<pppoe-user0002>", "<pppoe-user0003>")

Message = dict[str, Any]


@contextlib.asynccontextmanager
async def isp_gateway(
    history: int = 300, limits: dict[str, object] | None = None
) -> AsyncIterator[Gateway]:
    """A gateway in front of one router with four ports and three PPPoE customers online."""
    emu = emulator(interfaces=4, pppoe=3, pppoe_session=0.0)
    poll = {"interval": INTERVAL, "history": history}
    async with running(emu):
        settings = gateway_settings({"isp": emu}, poll, limits=limits)
        async with gateway(settings) as gw:
            yield gw


class Tracker:
    """A viewer whose messages are held to the contract (``gateway.contract``): among others,
    traffic frames in order, none missing or twice."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, check: StreamCheck, history: Message):
        self.ws = ws
        self.check = check
        self.seqs: list[int] = [frame["seq"] for frame in history["frames"]]

    def note(self, message: Message) -> None:
        holds(self.check.receive(message, time.monotonic()))
        if message["type"] == "traffic":
            self.seqs.append(message["seq"])

    async def until(self, kind: str) -> Message:
        """The next message of type ``kind``; traffic on the way is checked and noted."""
        while True:
            message: Message = await receive(self.ws, seconds(5))
            self.note(message)
            if message["type"] == kind:
                return message

    async def reach(self, seq: int) -> None:
        """Wait until the traffic frame ``seq`` has arrived."""
        while not self.seqs or self.seqs[-1] < seq:
            await self.until("traffic")

    async def frames(self, count: int) -> None:
        """Wait for ``count`` more traffic frames."""
        for _ in range(count):
            await self.until("traffic")


async def tracked(gw: Gateway, router: str = "isp") -> Tracker:
    ws = await gw.viewer()
    check = StreamCheck()
    _, history = await subscribe(ws, router, check=check)
    return Tracker(ws, check, history)


async def test_hello_status_history_and_traffic_shapes() -> None:
    """A dashboard gets hello, then status and history on subscribe, then well-formed frames."""
    async with isp_gateway() as gw:
        ws = await gw.http.ws_connect(gw.url("/ws"))
        hello = await receive(ws)
        assert hello == {
            "type": "hello",
            "v": 1,
            "routers": [{"id": "isp", "name": "isp"}],
            "heartbeat": 20.0,
        }
        status, history = await subscribe(ws, "isp")
        assert list(status) == ["type", "router", "source", "state", "error", "since"]
        assert status["router"] == "isp"
        assert status["state"] in ("idle", "connecting", "up")
        assert history == {
            "type": "history",
            "router": "isp",
            "source": "interfaces",
            "reset": False,
            "more": False,
            "frames": [],
        }
        frame = await next_traffic(ws, seconds(5))
        assert list(frame) == [
            "type",
            "v",
            "router",
            "source",
            "seq",
            "ts",
            "interval",
            "stale",
            "interfaces",
        ]
        assert frame["v"] == 1
        assert frame["interval"] == INTERVAL
        assert frame["stale"] is False
        assert isinstance(frame["ts"], float)
        for item in frame["interfaces"]:
            assert list(item)[:9] == [
                "id",
                "name",
                "type",
                "running",
                "disabled",
                "rx_bps",
                "tx_bps",
                "rx_pps",
                "tx_pps",
            ]
            # Then the interface's comment, and a PPP customer's session, when it has them.
            assert list(item)[9:] in ([], ["comment"], ["session"], ["comment", "session"])
        names = [i["name"] for i in frame["interfaces"]]
        assert set(CUSTOMERS) <= set(names)
        await ws.close()


BAD_MESSAGES: Final[list[tuple[str, str]]] = [
    ("{not json", "bad_request"),
    ("", "bad_request"),
    ("[1, 2]", "bad_request"),
    ('"subscribe"', "bad_request"),
    ("42", "bad_request"),
    ("null", "bad_request"),
    ("[" * 2000 + "]" * 2000, "bad_request"),
    ('{"type": "bogus", "router": "isp"}', "bad_request"),
    ('{"router": "isp"}', "bad_request"),
    ('{"type": "subscribe"}', "bad_request"),
    ('{"type": "subscribe", "router": 7}', "bad_request"),
    ('{"type": "subscribe", "router": "nope"}', "unknown_router"),
    ('{"type": "unsubscribe", "router": "nope"}', "unknown_router"),
    ('{"type": "subscribe", "router": "isp", "since": "7"}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "since": -1}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "since": true}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "since": 1.5}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "since": 1e30}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "interfaces": "ether1"}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "interfaces": [1]}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "interfaces": [""]}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "interfaces": {"a": 1}}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "extra": 1}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "history": -1}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "history": "5"}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "history": true}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "history": 1.5}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "history_seconds": -0.5}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "history_seconds": "60"}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "history_seconds": false}', "bad_request"),
    ('{"type": "subscribe", "router": "isp", "history_seconds": [60]}', "bad_request"),
]


async def test_bad_messages_get_an_error_and_the_stream_goes_on() -> None:
    """A buggy client gets an error per bad message and keeps its live chart; others see nothing."""
    # Three dozen messages back to back: more than the message rate allows (test_limits.py).
    async with isp_gateway(limits={"messages_per_second": 0}) as gw:
        bystander = await tracked(gw)
        probe = await tracked(gw)
        await probe.frames(1)
        for text, code in BAD_MESSAGES:
            await probe.ws.send_str(text)
            error = await probe.until("error")
            assert error["code"] == code, (text[:60], error)
            assert isinstance(error["message"], str)
            assert error["message"]
        await probe.ws.send_bytes(b'{"type": "subscribe", "router": "isp"}')
        error = await probe.until("error")
        assert error["code"] == "bad_request"
        # A message just under the size limit is read (and refused for what it says).
        await send(probe.ws, {"type": "bogus", "pad": "x" * (60 * 1024)})
        assert (await probe.until("error"))["code"] == "bad_request"
        # The old subscription (unfiltered) is untouched by the refused ones.
        await probe.frames(2)
        frame = await probe.until("traffic")
        assert set(CUSTOMERS) <= {i["name"] for i in frame["interfaces"]}
        # The bystander got every frame meanwhile, in order, none missing.
        await bystander.reach(probe.seqs[-1])
        assert not probe.ws.closed
        await probe.ws.close()
        await bystander.ws.close()


async def test_oversized_message_closes_1009_and_others_go_on() -> None:
    """A client sending more than 64 KiB is closed with 1009; other dashboards keep streaming."""
    async with isp_gateway() as gw:
        bystander = await tracked(gw)
        probe = await tracked(gw)
        await probe.frames(1)
        await send(probe.ws, {"type": "subscribe", "router": "isp", "pad": "x" * (65 * 1024)})
        while True:
            message = await probe.ws.receive(timeout=seconds(5))
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
        assert probe.ws.close_code == 1009
        first = len(bystander.seqs)
        await bystander.frames(3)
        assert len(bystander.seqs) == first + 3
        # The gateway has forgotten the closed viewer.
        _, body = await gw.get_json("/api/routers")
        assert body["routers"][0]["viewers"] == 1
        await bystander.ws.close()


async def test_interface_globs_narrow_frames_encoded_once_per_filter() -> None:
    """A customer portal watching `<pppoe-*>` gets only PPPoE lines; equal filters share a frame."""
    async with isp_gateway() as gw:
        customers = await gw.viewer()
        _, history = await subscribe(customers, "isp", interfaces=["<pppoe-*>"])
        assert history["frames"] == []
        # The same filter written another way, another filter, and a viewer with no filter.
        same = await gw.viewer()
        await subscribe(same, "isp", interfaces=["<pppoe-*>", "<pppoe-*>"])
        pair = await gw.viewer()
        await subscribe(pair, "isp", interfaces=["ether1", "<pppoe-user0002>"])
        everything = await gw.viewer()
        await subscribe(everything, "isp")
        frame = await next_traffic(customers, seconds(5))
        assert sorted(i["name"] for i in frame["interfaces"]) == list(CUSTOMERS)
        frame = await next_traffic(same, seconds(5))
        assert sorted(i["name"] for i in frame["interfaces"]) == list(CUSTOMERS)
        frame = await next_traffic(pair, seconds(5))
        assert sorted(i["name"] for i in frame["interfaces"]) == ["<pppoe-user0002>", "ether1"]
        poller = gw.pollers["isp"]
        # Encodes per tick: the full frame (shared by the unfiltered viewer) and one per
        # distinct filter, of which there are two.
        seq, encodes = poller.seq, sample(gw, ENCODES)
        while (await next_traffic(everything, seconds(5)))["seq"] < seq + 3:
            pass
        ticks = poller.seq - seq
        assert sample(gw, ENCODES) - encodes == 3 * ticks
        # A late subscriber with a filter gets history filtered the same way.
        late = await gw.viewer()
        _, history = await subscribe(late, "isp", interfaces=["<pppoe-user0003>"])
        assert history["frames"]
        for old in history["frames"]:
            assert [i["name"] for i in old["interfaces"]] == ["<pppoe-user0003>"]
        for ws in (customers, same, pair, everything, late):
            await ws.close()


async def test_equal_filters_are_encoded_once() -> None:
    """Many viewers with the same filter, in any order, cost one encode per tick between them."""
    async with isp_gateway() as gw:
        viewers = []
        for globs in (["ether1", "<pppoe-*>"], ["<pppoe-*>", "ether1"], ["ether1", "<pppoe-*>"]):
            ws = await gw.viewer()
            await subscribe(ws, "isp", interfaces=globs)
            viewers.append(ws)
        await next_traffic(viewers[0], seconds(5))
        poller = gw.pollers["isp"]
        seq, encodes = poller.seq, sample(gw, ENCODES)
        while True:
            frame = await next_traffic(viewers[-1], seconds(5))
            assert len(frame["interfaces"]) == 1 + len(CUSTOMERS)
            if frame["seq"] >= seq + 3:
                break
        ticks = poller.seq - seq
        # The full frame for the history ring, plus one for the shared filter.
        assert sample(gw, ENCODES) - encodes == 2 * ticks
        for ws in viewers:
            await ws.close()


async def test_resume_since_gets_only_newer_frames() -> None:
    """A dashboard that reconnects with the last seq it saw gets exactly the frames it missed."""
    async with isp_gateway() as gw:
        first = await tracked(gw)
        await first.frames(4)
        seen = first.seqs[-3]
        await first.ws.close()
        ws = await gw.viewer()
        check = StreamCheck()
        _, history = await subscribe(ws, "isp", check=check, since=seen)
        assert history["reset"] is False
        resumed = Tracker(ws, check, history)
        assert resumed.seqs[0] == seen + 1
        await resumed.frames(2)
        assert resumed.seqs[0] == seen + 1
        # Resuming from the newest frame: nothing to backfill, and no reset.
        latest = resumed.seqs[-1]
        again = await gw.viewer()
        _, history = await subscribe(again, "isp", since=gw.pollers["isp"].seq)
        assert history["reset"] is False
        assert history["frames"] == []
        frame = await next_traffic(again, seconds(5))
        assert frame["seq"] > latest
        await ws.close()
        await again.close()


@pytest.mark.parametrize(
    ("since", "why"), [(1, "older than the ring"), (10**15, "from the future")]
)
async def test_resume_outside_the_ring_is_marked_reset(since: int, why: str) -> None:
    """A resume the ring cannot serve gets what there is, marked reset, so the chart redraws."""
    async with isp_gateway(history=3) as gw:
        watcher = await tracked(gw)
        poller = gw.pollers["isp"]
        while poller.seq - poller.seq_base < 6:
            await watcher.until("traffic")
        ws = await gw.viewer()
        _, history = await subscribe(ws, "isp", since=since)
        assert history["reset"] is True, why
        seqs = [f["seq"] for f in history["frames"]]
        assert len(seqs) == 3
        assert seqs == list(range(seqs[0], seqs[0] + 3))
        frame = await next_traffic(ws, seconds(5))
        assert frame["seq"] == seqs[-1] + 1
        await ws.close()
        await watcher.ws.close()


async def test_unsubscribe_stops_frames() -> None:
    """After unsubscribing, a dashboard gets no more frames of that router."""
    async with isp_gateway() as gw:
        other = await tracked(gw)
        viewer = await tracked(gw)
        await viewer.frames(1)
        await send(viewer.ws, {"type": "unsubscribe", "router": "isp"})
        # Messages are handled in order: once this error is back, the unsubscribe is done.
        await send(viewer.ws, {"type": "ping"})
        await viewer.until("error")
        done = gw.pollers["isp"].seq
        await other.reach(done + 2)
        # Published after the unsubscribe: none of them reached the viewer, whose next message
        # is the answer to its next request.
        await send(viewer.ws, {"type": "ping"})
        message = await receive(viewer.ws, seconds(5))
        assert message["type"] == "error", message
        assert viewer.seqs[-1] <= done
        _, body = await gw.get_json("/api/routers")
        assert body["routers"][0]["viewers"] == 1
        await viewer.ws.close()
        await other.ws.close()


# 256 globs of 250 characters with 125 "*" each (just under the 64 KiB message limit): about a
# third of a second to compile, once.
STALLING: Final = ["*a" * 125 for _ in range(256)]


async def timed_healthz(gw: Gateway) -> float:
    started = time.monotonic()
    status, _ = await gw.get_json("/healthz")
    assert status == 200
    return time.monotonic() - started


async def test_costly_filters_cannot_stall_the_gateway() -> None:
    """A client that keeps sending subscribes with costly globs gets bad_request naming the
    limit for each, subscribes at the limits are taken in stride, and /healthz stays prompt."""
    async with isp_gateway() as gw:
        probe = await tracked(gw)
        slowest = 0.0
        for _ in range(10):
            await send(probe.ws, {"type": "subscribe", "router": "isp", "interfaces": STALLING})
            slowest = max(slowest, await timed_healthz(gw))
            error = await within(probe.until("error"), seconds(5))
            assert error["code"] == "bad_request"
            assert f'at most {MAX_STARS} "*"' in error["message"]
        assert slowest < seconds(0.2), slowest
        # At every limit, and different each time (nothing cached): still prompt.
        flood = await gw.viewer()
        for n in range(20):
            globs: list[object] = [
                f"{n:02d}{k:02d}" + "*x" * MAX_STARS for k in range(MAX_GLOB_CHARACTERS // 12)
            ]
            exact: list[object] = [
                {"exact": f"{n}-{k}-" + "n" * 200} for k in range(256 - len(globs))
            ]
            await send(flood, {"type": "subscribe", "router": "isp", "interfaces": globs + exact})
            slowest = max(slowest, await timed_healthz(gw))
            while (message := await receive(flood, seconds(5)))["type"] != "history" or message[
                "more"
            ]:
                assert message["type"] != "error", message
        assert slowest < seconds(0.2), slowest
        await flood.close()
        await probe.ws.close()
