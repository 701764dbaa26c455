"""Viewers that stop reading are cut off with 4408; the ones that read never notice."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time

import orjson

from tests.support.gateway import (
    Gateway,
    emulator,
    gateway,
    gateway_settings,
    metric,
    receive,
    rss_kib,
    running,
    subscribe,
)
from tests.support.timing import eventually, seconds

INTERVAL = 0.25


def _masked_text(payload: bytes) -> bytes:
    """A client-to-server text frame (clients must mask)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    header = bytes((0x81, 0x80 | n)) if n < 126 else struct.pack("!BBH", 0x81, 0x80 | 126, n)
    return header + mask + body


async def stalled_viewer(
    gw: Gateway, router: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, socket.socket]:
    """A websocket client that subscribes and then never reads, with a small receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    port = gw.server.port
    assert port is not None
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), seconds(5))
    assert head.startswith(b"HTTP/1.1 101")
    subscribe_msg = orjson.dumps({"type": "subscribe", "router": router})
    writer.write(_masked_text(subscribe_msg))
    await writer.drain()
    # Stop reading: asyncio would otherwise keep draining the socket into its own buffer.
    writer.transport.pause_reading()  # type: ignore[attr-defined]
    return reader, writer, sock


async def test_stalled_viewers_are_closed_and_readers_are_unaffected() -> None:
    """50 viewers that never read are closed with 4408; 50 that read get every frame on time."""
    emu = emulator(interfaces=300)  # frames of ~45 KB fill a stalled socket in seconds
    poll = {"interval": INTERVAL, "linger": 30.0}
    async with running(emu), gateway(gateway_settings({"core": emu}, poll)) as gw:
        readers = [await gw.viewer() for _ in range(50)]
        for ws in readers:
            await subscribe(ws, "core")
        rss_before = rss_kib()
        stalled = [await stalled_viewer(gw, "core") for _ in range(50)]
        received: list[list[tuple[int, float]]] = [[] for _ in readers]

        async def read(i: int) -> None:
            ws = readers[i]
            while True:
                message = await receive(ws, timeout=seconds(5))
                if message["type"] == "traffic":
                    received[i].append((message["seq"], time.time() - message["ts"]))

        tasks = [asyncio.create_task(read(i)) for i in range(len(readers))]
        try:
            closes = gw.metrics.slow_consumer_closes
            # Behind = 10 s without the socket draining (or 1 MiB unsent): allow that plus slack.
            await eventually(
                lambda: closes._value.get() >= 50, timeout=seconds(25), message="50 slow closes"
            )
            # Each closed viewer leaves its topic from its own closing task, just after the count.
            topic = gw.hub.topics["core"]
            await eventually(lambda: topic.viewers == 50, timeout=seconds(5))
            await eventually(lambda: len(gw.viewers()) == 50, timeout=seconds(5))
            # The memory the stalled viewers held is freed with them.
            assert rss_kib() - rss_before < 64 * 1024
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for seen in received:
            seqs = [seq for seq, _ in seen]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a reader missed a frame"
            assert len(seqs) >= 10 / INTERVAL
            late = [delay for _, delay in seen if delay > seconds(1)]
            assert late == [], f"frames reached a reader late: {late[:5]}"
        for reader, writer, sock in stalled:
            # Each stalled socket was closed by the server (reset or close frame then FIN).
            reader._transport.resume_reading()  # type: ignore[attr-defined]
            try:
                while await asyncio.wait_for(reader.read(1 << 20), seconds(5)):
                    pass
            except ConnectionResetError:
                pass
            writer.close()
            sock.close()
        for ws in readers:
            await ws.close()


async def test_frames_skipped_for_a_backed_up_viewer_are_counted() -> None:
    """gateway_frames_dropped_total counts the live frames a viewer that stopped reading missed."""
    emu = emulator(interfaces=300)
    async with running(emu), gateway(gateway_settings({"core": emu}, {"interval": 0.1})) as gw:
        reader = await gw.viewer()
        await subscribe(reader, "core")
        _, writer, sock = await stalled_viewer(gw, "core")
        try:

            def dropped() -> float:
                value = gw.metrics.registry.get_sample_value("gateway_frames_dropped_total")
                return 0.0 if value is None else value

            await eventually(lambda: dropped() >= 3, timeout=seconds(10), message="3 drops")
            # The metric is the viewers' own tally, read in one go (no poll in between).
            assert dropped() == sum(v.dropped for v in gw.viewers())
            async with gw.http.get(gw.url("/metrics")) as response:
                text = await response.text()
            assert metric(text, "gateway_frames_dropped_total") >= 3
        finally:
            writer.close()
            sock.close()
            await reader.close()


async def test_slow_consumer_settings_take_effect() -> None:
    """server.slow_consumer_seconds = 1 closes a viewer that stopped reading within seconds (the
    default would wait 10 s); server.slow_consumer_bytes reaches every viewer's rule."""
    emu = emulator(interfaces=300)
    async with running(emu):
        settings = gateway_settings(
            {"core": emu},
            {"interval": 0.1},
            slow_consumer_seconds=1.0,
            slow_consumer_bytes=512 * 1024,
        )
        async with gateway(settings) as gw:
            started = time.monotonic()
            _, writer, sock = await stalled_viewer(gw, "core")
            try:
                (viewer,) = gw.viewers()
                assert viewer.limits.behind_bytes == 512 * 1024
                closes = gw.metrics.slow_consumer_closes
                await eventually(
                    lambda: closes._value.get() >= 1, timeout=seconds(8), message="a slow close"
                )
                assert time.monotonic() - started < 8  # well before the default 10 s
            finally:
                writer.transport.abort()
                sock.close()
