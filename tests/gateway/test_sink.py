"""A viewer's sink: frames written without waiting; slow viewers cut off, never waited for."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

from gateway.sink import BEHIND_BYTES, BEHIND_SECONDS, SKIP_BYTES, Sink
from gateway.wire import text_frame
from tests.support.fakes import Clock, FakeTransport
from tests.support.timing import seconds, within


def test_viewer_behind_by_bytes_is_cut_off_once() -> None:
    """A viewer with 1 MiB unsent is reported behind once and gets nothing more."""
    calls: list[int] = []
    t = FakeTransport()
    sink = Sink(t, lambda: calls.append(1), clock=Clock())
    t.backlog = BEHIND_BYTES
    assert not sink.write(b"status", droppable=False)
    assert not sink.write(b"status", droppable=False)
    assert calls == [1]


def test_viewer_that_does_not_drain_for_ten_seconds_is_behind() -> None:
    """Unsent data that does not drain for 10 s marks the viewer behind."""
    clock = Clock()
    calls: list[int] = []
    t = FakeTransport()
    sink = Sink(t, lambda: calls.append(1), clock=clock)
    t.backlog = 10
    assert sink.write(b"a")
    clock.now = BEHIND_SECONDS
    assert sink.write(b"b")
    clock.now = BEHIND_SECONDS + 0.1
    assert not sink.write(b"c")
    assert calls == [1]


def test_draining_resets_the_stall_timer() -> None:
    """A viewer whose socket drains in between is never behind, however long it runs."""
    clock = Clock()
    t = FakeTransport()
    sink = Sink(t, lambda: None, clock=clock)
    for step in range(100):
        clock.now = step * 5.0
        t.backlog = 10 if step % 2 else 0
        assert sink.write(b"x")


def test_big_backfill_on_a_slow_link_is_not_a_stall() -> None:
    """A history larger than 1 MiB that keeps draining does not get its viewer cut off."""
    clock = Clock()
    t = FakeTransport()
    sink = Sink(t, lambda: None, clock=clock)
    history = b"h" * (5 * BEHIND_BYTES)
    assert sink.write(history, backfill=True)
    # The viewer reads 100 KiB a second; live frames keep coming once a second.
    for second in range(1, 40):
        clock.now = float(second)
        t.backlog = max(0, len(history) - second * 100 * 1024)
        assert sink.write(b"live frame", droppable=True) or t.backlog > SKIP_BYTES
        assert not sink.behind


def test_a_viewer_that_stops_reading_after_a_backfill_is_behind() -> None:
    """Once the backfill stops draining for 10 s the viewer is behind all the same."""
    clock = Clock()
    t = FakeTransport()
    sink = Sink(t, lambda: None, clock=clock)
    sink.write(b"h" * (3 * BEHIND_BYTES), backfill=True)
    t.backlog = 2 * BEHIND_BYTES
    for second in range(1, 13):
        clock.now = float(second)
        sink.write(b"live frame", droppable=True)
    assert sink.behind


# -- the direct send on a plain socket, over a real loopback connection ------------------------


class Counted:
    """Counts and keeps what goes through one real transport's ``write``."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self.calls: list[bytes] = []
        self._write = transport.write

    def __call__(self, data: bytes | bytearray | memoryview) -> None:
        self.calls.append(bytes(data))
        self._write(data)


@contextlib.asynccontextmanager
async def loopback() -> AsyncIterator[tuple[asyncio.WriteTransport, Counted, asyncio.StreamReader]]:
    """A real TCP connection on 127.0.0.1: the server side's transport (its ``write`` counted)
    and a reader on the client side."""
    accepted: asyncio.Future[asyncio.StreamWriter] = asyncio.get_running_loop().create_future()

    async def on_connect(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(writer)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, client = await within(asyncio.open_connection("127.0.0.1", port), seconds(5))
    writer = await within(accepted, seconds(5))
    transport = writer.transport
    assert isinstance(transport, asyncio.WriteTransport)
    # Small kernel buffers on both ends, so a frame well under the 1 MiB limit fills them.
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    client.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    counted = Counted(transport)
    transport.write = counted  # type: ignore[method-assign]
    try:
        yield transport, counted, reader
    finally:
        transport.abort()
        client.close()
        server.close()
        await server.wait_closed()


async def test_a_keeping_up_viewer_is_sent_to_on_its_socket_not_through_the_transport() -> None:
    """Frames to a viewer that keeps up go out by one send on its socket, the transport unused."""
    async with loopback() as (transport, counted, reader):
        sink = Sink(transport)
        frames = [text_frame(b'{"seq":%d}' % i) for i in range(50)]
        for f in frames:
            assert sink.write(f, True) is True
        received = await within(reader.readexactly(sum(map(len, frames))), seconds(5))
        assert received == b"".join(frames)
        assert counted.calls == []


async def test_what_a_full_socket_does_not_take_follows_through_the_transport_in_order() -> None:
    """A frame the socket takes only in part is finished by the transport, bytes in order."""
    async with loopback() as (transport, counted, reader):
        sink = Sink(transport)
        big = text_frame(b"x" * (BEHIND_BYTES // 2))  # far more than the kernel's buffers
        small = text_frame(b"after")
        assert sink.write(big, True) is True
        assert len(counted.calls) == 1
        assert 0 < len(counted.calls[0]) < len(big)  # the socket took the head of it
        assert big.endswith(counted.calls[0])
        assert sink.write(small) is True  # waits behind the rest, in the transport
        assert counted.calls[1] == small
        received = await within(reader.readexactly(len(big) + len(small)), seconds(10))
        assert received == big + small


async def test_a_tls_like_transport_without_a_socket_is_written_through() -> None:
    """A transport that offers no plain socket (TLS) gets every frame through its write."""
    t = FakeTransport()
    sink = Sink(t)
    assert sink.write(b"frame", True) is True
    assert t.writes == [b"frame"]
