"""Websocket wire conformance: every frame the gateway writes, read by an independent
implementation over a real connection, through the close handshake of each close code.

The client is python-websockets' sans-I/O ``ClientProtocol`` driven over a plain asyncio
stream: it checks the handshake (the subprotocol answered is one offered, never the token), and
every frame as RFC 6455 demands (unmasked, no reserved bits, control frames final and at most
125 bytes, text valid UTF-8, close codes in the allowed ranges, nothing after a close). On any
violation it fails the connection and records why (``parser_exc``); each test ends by
checking there was none and that the close handshake completed: the gateway's close frame with
the expected code, our echo, then the gateway closing TCP.

Frames written by hand (``gateway.wire``): text (hello, status, history, traffic, errors,
heartbeat, refresh_needed), the heartbeat ping, and the pong to a client's ping. Close frames
come from aiohttp; they are checked here all the same. Every test runs twice: once plain, once
with permessage-deflate agreed (RFC 7692, as python-websockets offers it), where the gateway's
answer must carry ``server_no_context_takeover`` and its text frames of 512 bytes and more come
compressed (RSV1 set, inflated by the client's own extension), control frames never.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from websockets.client import ClientProtocol
from websockets.extensions.base import ClientExtensionFactory, Extension
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import ExtensionParameter, Origin, Subprotocol
from websockets.uri import parse_uri

from gateway.app import drain
from gateway.config import Settings
from gateway.emulator.server import RouterEmulator
from gateway.sink import Sink
from gateway.topic import Topic
from gateway.wire import DEFLATE_MIN, CloseCode
from tests.support.gateway import Gateway, emulator, gateway, gateway_settings, running
from tests.support.timing import eventually, seconds
from tests.support.tokens import hs256

KNOWN_TYPES = frozenset(
    {"hello", "status", "history", "traffic", "heartbeat", "error", "refresh_needed", "refreshed"}
)
DEFLATE_ANSWER = "permessage-deflate; server_no_context_takeover"


@pytest.fixture(params=[False, True], ids=["plain", "deflate"])
def deflate(request: pytest.FixtureRequest) -> bool:
    """Whether the test's clients offer permessage-deflate."""
    return bool(request.param)


class Inflated(Extension):
    """The agreed permessage-deflate extension, noting which data frames came compressed."""

    def __init__(self, inner: Extension) -> None:
        self.inner = inner
        self.name = inner.name
        # (opcode, compressed) of every frame the parser handed over, in order.
        self.seen: list[tuple[Opcode, bool]] = []

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        self.seen.append((frame.opcode, frame.rsv1))
        return self.inner.decode(frame, max_size=max_size)

    def encode(self, frame: Frame) -> Frame:
        return self.inner.encode(frame)


class InflatedFactory(ClientExtensionFactory):
    """python-websockets' permessage-deflate offer; what it agrees to is an ``Inflated``."""

    def __init__(self) -> None:
        self.inner = ClientPerMessageDeflateFactory()
        self.name = self.inner.name

    def get_request_params(self) -> Sequence[ExtensionParameter]:
        return self.inner.get_request_params()

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> Inflated:
        return Inflated(self.inner.process_response_params(params, accepted_extensions))


@dataclass
class Peer:
    """One websocket client: python-websockets' protocol over an asyncio stream."""

    protocol: ClientProtocol
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    # Every frame received, in order, and the text ones decoded.
    frames: list[Frame] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    # Events parsed but not yet taken by next_event.
    pending: collections.deque[Request | Response | Frame] = field(
        default_factory=collections.deque
    )
    eof: bool = False
    # The agreed permessage-deflate extension, when the client offered it.
    inflated: Inflated | None = None

    @classmethod
    async def connect(
        cls,
        gw: Gateway,
        token: str | None = None,
        *,
        origin: str | None = None,
        receive_buffer: int | None = None,
        deflate: bool = False,
    ) -> Peer:
        """Open ``/ws`` offering ``gateway.v1`` (and ``bearer.<token>``, and permessage-deflate
        if ``deflate``); the handshake must succeed, answered with ``gateway.v1`` (and deflate
        with ``server_no_context_takeover``)."""
        sock = socket.socket()
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        port = gw.server.port
        assert port is not None
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        offered = [Subprotocol("gateway.v1")]
        if token is not None:
            offered.append(Subprotocol(f"bearer.{token}"))
        protocol = ClientProtocol(
            parse_uri(f"ws://127.0.0.1:{port}/ws"),
            origin=Origin(origin) if origin is not None else None,
            subprotocols=offered,
            extensions=[InflatedFactory()] if deflate else None,
            max_size=None,
        )
        peer = cls(protocol, reader, writer)
        protocol.send_request(protocol.connect())
        peer.flush()
        while not isinstance(response := await peer.next_event(), Response):
            pass
        assert protocol.handshake_exc is None, protocol.handshake_exc
        assert response.status_code == 101
        assert response.headers["Sec-WebSocket-Protocol"] == "gateway.v1"
        if deflate:
            assert response.headers["Sec-WebSocket-Extensions"] == DEFLATE_ANSWER
            [agreed] = protocol.extensions
            assert isinstance(agreed, Inflated)
            peer.inflated = agreed
        else:
            assert "Sec-WebSocket-Extensions" not in response.headers
        return peer

    def flush(self) -> None:
        """Write what the protocol has to send (its answers to pings and closes included)."""
        for data in self.protocol.data_to_send():
            if data:
                self.writer.write(data)
            else:  # the protocol is done: half-close, unless the gateway closed already
                with contextlib.suppress(OSError):
                    self.writer.write_eof()

    async def next_event(self, timeout: float = 5) -> Request | Response | Frame:
        """The next handshake response or frame, reading the socket as needed."""
        deadline = time.monotonic() + seconds(timeout)
        while not self.pending:
            assert not self.eof, "the gateway closed the connection"
            await self.read(deadline)
            self.pending.extend(self.protocol.events_received())
        return self._record(self.pending.popleft())

    async def read(self, deadline: float) -> None:
        """Feed the protocol what the socket has (or its end), and send what it answers.

        A reset after the close frames went both ways counts as the end: a server may close
        TCP right after its close frame (RFC 6455 section 7.1.1), and our echo then meets a
        closed socket.
        """
        protocol = self.protocol
        try:
            data = await asyncio.wait_for(self.reader.read(1 << 16), deadline - time.monotonic())
        except ConnectionResetError:
            if protocol.close_rcvd is None or protocol.close_sent is None:
                raise
            data = b""
        if data:
            self.protocol.receive_data(data)
        else:
            self.eof = True
            self.protocol.receive_eof()
        self.flush()
        assert self.protocol.parser_exc is None, self.protocol.parser_exc

    def _record(self, event: Request | Response | Frame) -> Request | Response | Frame:
        if isinstance(event, Frame):
            self.frames.append(event)
            if event.opcode is Opcode.TEXT:
                message = orjson.loads(event.data)
                assert isinstance(message, dict)
                assert message["type"] in KNOWN_TYPES, message
                self.messages.append(message)
        return event

    async def next_message(self, timeout: float = 5) -> dict[str, Any]:
        """The next text message, decoded (control frames on the way are kept in ``frames``)."""
        while True:
            event = await self.next_event(timeout)
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                return self.messages[-1]
            assert not (isinstance(event, Frame) and event.opcode is Opcode.CLOSE), event

    async def until(self, kind: str, timeout: float = 5) -> dict[str, Any]:
        deadline = time.monotonic() + seconds(timeout)
        while (message := await self.next_message(deadline - time.monotonic()))["type"] != kind:
            pass
        return message

    def send(self, message: object) -> None:
        self.protocol.send_text(orjson.dumps(message))
        self.flush()

    async def closed_with(self, code: int, timeout: float = 5) -> str:
        """Read to the end: the gateway's close frame with ``code``, our echo, the gateway's
        TCP close; every frame on the way valid, nothing after the close. The close reason."""
        deadline = time.monotonic() + seconds(timeout)
        while not self.eof:
            await self.read(deadline)
        self.pending.extend(self.protocol.events_received())
        while self.pending:
            self._record(self.pending.popleft())
        protocol = self.protocol
        assert protocol.parser_exc is None, protocol.parser_exc
        assert protocol.state is State.CLOSED
        assert protocol.close_rcvd is not None, "no close frame from the gateway"
        assert protocol.close_rcvd.code == code, protocol.close_rcvd
        assert protocol.close_sent is not None
        assert protocol.close_sent.code == code, "the close was not echoed"
        assert self.frames[-1].opcode is Opcode.CLOSE, "a frame came after the close"
        self.writer.close()
        self.check_compression()
        return protocol.close_rcvd.reason

    def check_compression(self) -> None:
        """With deflate agreed: every text frame of DEFLATE_MIN bytes or more came compressed,
        every control frame plain. Without: nothing did."""
        texts = [f for f in self.frames if f.opcode is Opcode.TEXT]
        if self.inflated is None:
            return
        seen = self.inflated.seen
        assert all(not packed for opcode, packed in seen if opcode.value >= 8), seen
        packed = [p for opcode, p in seen if opcode is Opcode.TEXT]
        assert len(packed) == len(texts)
        for frame, was_packed in zip(texts, packed, strict=True):
            if len(frame.data) >= DEFLATE_MIN:
                assert was_packed, f"a {len(frame.data)}-byte frame came plain"


def jwt_settings(
    core: RouterEmulator,
    *,
    limits: dict[str, Any] | None = None,
    interval: float = 0.2,
    **server: Any,
) -> Settings:
    """jwt mode in front of one router; ``server`` and ``limits`` settings on top."""
    return gateway_settings(
        {"core": core}, {"interval": interval}, limits=limits, auth={"leeway": 0}, **server
    )


@contextlib.asynccontextmanager
async def jwt_gateway(heartbeat: float | None = None, **server: Any) -> AsyncIterator[Gateway]:
    core = emulator()
    async with running(core), gateway(jwt_settings(core, **server), heartbeat=heartbeat) as gw:
        yield gw


async def test_every_kind_of_frame_then_the_clients_close(deflate: bool) -> None:
    """Hello, heartbeat ping and text, a pong to our ping, status, history, traffic and an error
    all parse; a client's close 1000 is echoed and the gateway closes TCP."""
    async with jwt_gateway(heartbeat=0.2) as gw:
        peer = await Peer.connect(gw, hs256(), deflate=deflate)
        assert (await peer.next_message())["type"] == "hello"
        # Not subscribed: each heartbeat is a ping (answered by the protocol) and a text.
        await peer.until("heartbeat")
        assert any(f.opcode is Opcode.PING for f in peer.frames)
        peer.protocol.send_ping(b"are you there")
        peer.flush()
        while not any(f.opcode is Opcode.PONG for f in peer.frames):
            await peer.next_event()
        pong = next(f for f in peer.frames if f.opcode is Opcode.PONG)
        assert pong.data == b"are you there"
        peer.send({"type": "subscribe", "router": "core"})
        for kind in ("status", "history", "traffic"):
            await peer.until(kind)
        peer.send({"type": "subscribe", "router": "nope"})
        assert (await peer.until("error"))["code"] == "unknown_router"
        peer.protocol.send_close(1000, "bye")
        peer.flush()
        await peer.closed_with(1000)
        assert not peer.protocol.close_rcvd_then_sent
        if peer.inflated is not None:
            assert any(packed for _, packed in peer.inflated.seen), "nothing came compressed"


async def test_1001_when_the_gateway_drains(deflate: bool) -> None:
    """A drain closes a live viewer with 1001 after whatever it was sent."""
    async with jwt_gateway() as gw:
        peer = await Peer.connect(gw, hs256(), deflate=deflate)
        peer.send({"type": "subscribe", "router": "core"})
        await peer.until("traffic")
        draining = asyncio.create_task(drain(gw.app))
        assert await peer.closed_with(1001) == "server shutting down"
        await asyncio.wait_for(draining, seconds(5))


async def test_1008_for_a_page_of_another_origin(deflate: bool) -> None:
    """A browser page of a foreign origin is closed with 1008 before anything is sent."""
    async with jwt_gateway() as gw:
        peer = await Peer.connect(gw, hs256(), origin="https://evil.example", deflate=deflate)
        assert await peer.closed_with(1008) == "origin not allowed"
        assert peer.messages == []


async def test_1009_for_a_message_too_big(deflate: bool) -> None:
    """A client message over 64 KiB is answered with 1009."""
    async with jwt_gateway() as gw:
        peer = await Peer.connect(gw, hs256(), deflate=deflate)
        await peer.next_message()  # hello
        peer.send({"type": "subscribe", "router": "x" * 70_000})
        await peer.closed_with(1009)


async def test_1011_when_a_message_meets_a_bug(
    monkeypatch: pytest.MonkeyPatch, deflate: bool
) -> None:
    """A message that runs into a bug of ours is answered with 1011."""
    subscribe_for_real = Topic.subscribe

    def subscribe(self: Topic, sink: Sink, *args: Any, **kw: Any) -> bool:
        if kw.get("frames") == 13:  # the test's trigger: stands in for a bug of ours
            raise KeyError("a bug")
        return subscribe_for_real(self, sink, *args, **kw)

    monkeypatch.setattr(Topic, "subscribe", subscribe)
    async with jwt_gateway() as gw:
        peer = await Peer.connect(gw, hs256(), deflate=deflate)
        await peer.next_message()  # hello
        peer.send({"type": "subscribe", "router": "core", "history": 13})
        assert await peer.closed_with(1011) == "internal error"


async def test_1013_past_a_connection_limit(deflate: bool) -> None:
    """A subject past connections_per_subject is closed with 1013 before anything is sent."""
    async with jwt_gateway(limits={"connections_per_subject": 1}) as gw:
        first = await Peer.connect(gw, hs256(), deflate=deflate)
        await first.next_message()  # hello
        second = await Peer.connect(gw, hs256(), deflate=deflate)
        reason = await second.closed_with(1013)
        assert reason == "too many connections with this token's subject"
        assert second.messages == []


@pytest.mark.parametrize(
    ("token", "expect"),
    [
        pytest.param(lambda: hs256(secret="another-secret-" * 3), "signature", id="bad"),
        pytest.param(lambda: hs256(lifetime=1), "token expired", id="expired"),
    ],
)
async def test_4401_for_a_bad_or_expired_token(
    token: Callable[[], str], expect: str, deflate: bool
) -> None:
    """A bad token is closed with 4401 at once; a good one that runs out after refresh_needed
    goes unanswered is closed with 4401 then."""
    async with jwt_gateway() as gw:
        peer = await Peer.connect(gw, token(), deflate=deflate)
        reason = await peer.closed_with(4401)
        assert expect in reason
        if expect == "token expired":
            assert [m["type"] for m in peer.messages] == ["hello", "refresh_needed"]


async def test_4408_for_a_viewer_that_stops_reading(deflate: bool) -> None:
    """A viewer that takes nothing for slow_consumer_seconds, then reads again, finds every
    frame it was sent intact, then 4408."""
    core = emulator(interfaces=300)  # frames of ~45 KB fill a stalled socket in a moment
    async with running(core):
        settings = jwt_settings(core, interval=0.05, slow_consumer_seconds=0.5)
        async with gateway(settings) as gw:
            peer = await Peer.connect(gw, hs256(), receive_buffer=4096, deflate=deflate)
            peer.send({"type": "subscribe", "router": "core", "history": 0})
            await peer.until("traffic")
            peer.writer.transport.pause_reading()  # type: ignore[attr-defined]
            await eventually(
                lambda: gw.metrics.slow_consumer_closes._value.get() == 1,
                timeout=seconds(10),
                message="the slow-consumer close",
            )
            peer.writer.transport.resume_reading()  # type: ignore[attr-defined]
            assert await peer.closed_with(4408) == "slow consumer"
    seqs = [m["seq"] for m in peer.messages if m["type"] == "traffic"]
    assert seqs == sorted(seqs)
    assert len(seqs) > 2


async def test_4429_for_a_client_that_floods(deflate: bool) -> None:
    """A client that keeps sending past the message rate gets rate_limited, then 4429."""
    async with jwt_gateway(limits={"messages_per_second": 1, "message_burst": 3}) as gw:
        peer = await Peer.connect(gw, hs256(), deflate=deflate)
        await peer.next_message()  # hello
        for _ in range(6):
            peer.send({"type": "unsubscribe", "router": "core"})
        assert await peer.closed_with(4429) == "too many messages"
        assert [m.get("code") for m in peer.messages[1:]] == ["rate_limited"] * 3


def test_every_close_code_the_gateway_sends_is_covered_here() -> None:
    """A close code added to the enum gets its conformance test here."""
    covered = {1001, 1008, 1009, 1011, 1013, 4401, 4408, 4429}
    assert {int(code) for code in CloseCode} == covered
