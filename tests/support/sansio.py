"""A websocket viewer made of python-websockets' sans-I/O protocol over a real socket.

An implementation independent of the gateway's own framing (``gateway.wire``) and of aiohttp
reads the gateway's frames, inflates the compressed ones (permessage-deflate, as its
``ClientPerMessageDeflateFactory`` negotiates it) and compresses what it sends, keeping its own
compression context from message to message, as browsers may. It also keeps every byte the
gateway sent after the handshake, so a test can look at the wire itself.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from websockets.client import ClientProtocol
from websockets.extensions.base import ClientExtensionFactory
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from tests.support.timing import seconds


class SansIOViewer:
    """One connection: the protocol, the socket, the handshake answer, the bytes received."""

    def __init__(
        self, protocol: ClientProtocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.protocol = protocol
        self.reader = reader
        self.writer = writer
        self.response: Response | None = None
        # Everything read from the socket, the handshake answer included.
        self.received = bytearray()
        self._frames: list[Frame] = []

    @classmethod
    async def connect(
        cls, url: str, *, extensions: list[ClientExtensionFactory] | None = None
    ) -> SansIOViewer:
        """Connect to ``url`` (``ws://``) offering ``extensions`` (default: permessage-deflate
        as python-websockets offers it) and read the handshake answer and the hello."""
        if extensions is None:
            extensions = [ClientPerMessageDeflateFactory()]
        uri = parse_uri(url)
        protocol = ClientProtocol(uri, extensions=extensions)
        reader, writer = await asyncio.open_connection(uri.host, uri.port)
        viewer = cls(protocol, reader, writer)
        protocol.send_request(protocol.connect())
        await viewer._flush()
        hello = await viewer.receive()
        assert hello["type"] == "hello", hello
        return viewer

    @property
    def extensions(self) -> str | None:
        """The ``Sec-WebSocket-Extensions`` the gateway answered with (None: none)."""
        assert self.response is not None
        return self.response.headers.get("Sec-WebSocket-Extensions")

    @property
    def wire(self) -> bytes:
        """The bytes the gateway sent after its handshake answer: its frames as they came."""
        data = bytes(self.received)
        return data[data.index(b"\r\n\r\n") + 4 :]

    async def send(self, message: object) -> None:
        """One JSON text message (compressed by the protocol when deflate was agreed)."""
        self.protocol.send_text(orjson.dumps(message))
        await self._flush()

    async def receive(self, timeout: float | None = None) -> Any:
        """The next text message, decoded as JSON (a deadline always applies)."""
        deadline = time.monotonic() + (timeout if timeout is not None else seconds(5))
        while True:
            while self._frames:
                frame = self._frames.pop(0)
                if frame.opcode is Opcode.TEXT:
                    return orjson.loads(frame.data)
                assert frame.opcode in (Opcode.PING, Opcode.PONG), frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no message in time")
            async with asyncio.timeout(left):
                data = await self.reader.read(65536)
            assert data, "the gateway closed the connection"
            self.received += data
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if isinstance(event, Response):
                    assert event.status_code == 101, event
                    self.response = event
                elif isinstance(event, Frame):
                    self._frames.append(event)
            if self.protocol.handshake_exc is not None:
                raise self.protocol.handshake_exc
            await self._flush()  # pongs the protocol owes

    async def receive_until(self, kind: str, timeout: float | None = None) -> Any:
        """Skip messages until one of type ``kind``."""
        deadline = time.monotonic() + (timeout if timeout is not None else seconds(5))
        while True:
            message = await self.receive(max(deadline - time.monotonic(), 0.001))
            if message["type"] == kind:
                return message

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()

    async def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.writer.write(data)
        await self.writer.drain()
