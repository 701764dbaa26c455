"""Many viewers, one router: one request per tick, one encode per tick, every frame to everyone."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from tests.support.gateway import (
    Gateway,
    emulator,
    gateway,
    gateway_settings,
    metric,
    metrics_text,
    next_traffic,
    prints,
    running,
    sample,
    subscribe,
)
from tests.support.timing import seconds, within

VIEWERS = 500
TICKS = 10
INTERVAL = 0.4
# How many websocket handshakes may be in progress at once while the viewers connect.
CONNECTING = 50
ENCODES = "gateway_frame_encode_total"
SENT = "gateway_frames_sent_total"


class Watcher:
    """One viewer: connects, subscribes, then reads traffic until told which seq ends the run."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def join(self, gw: Gateway, limit: asyncio.Semaphore) -> None:
        async with limit:
            self.ws = await gw.viewer()
            _, history = await subscribe(self.ws, "core")
        self.seqs = [frame["seq"] for frame in history["frames"]]

    async def watch(self, last: int) -> None:
        assert self.ws is not None
        while not self.seqs or self.seqs[-1] < last:
            frame = await next_traffic(self.ws, seconds(5))
            self.seqs.append(frame["seq"])


async def test_500_viewers_cost_one_request_and_one_encode_per_tick() -> None:
    """500 dashboards on one router: one login, one request and one encode per tick, no gaps."""
    emu = emulator()
    async with running(emu), gateway(gateway_settings({"core": emu}, {"interval": INTERVAL})) as gw:
        poller = gw.pollers["core"]
        watchers = [Watcher() for _ in range(VIEWERS)]
        limit = asyncio.Semaphore(CONNECTING)
        await within(asyncio.gather(*(w.join(gw, limit) for w in watchers)), seconds(20))
        assert gw.hub.topics["core"].viewers == VIEWERS

        # From here on, every viewer must see the next TICKS frames. The poller advances seq,
        # encodes and sends in one step, so those agree at any await (prints may be one ahead,
        # with a poll in flight).
        first_seq = poller.seq
        first_prints = prints(emu)
        first_encodes = sample(gw, ENCODES)
        first_sent = sample(gw, SENT)
        started = time.monotonic()
        last = first_seq + TICKS
        await within(asyncio.gather(*(w.watch(last) for w in watchers)), seconds(TICKS * 1.5))
        elapsed = time.monotonic() - started

        # One request per tick, whatever the number of viewers.
        assert TICKS - 1 <= prints(emu) - first_prints <= TICKS + 1
        assert emu.logins == 1
        ticks = poller.seq - first_seq
        assert ticks >= TICKS
        assert elapsed >= (TICKS - 1.5) * INTERVAL, "polled faster than the interval"
        # One JSON encoding per tick, shared by every viewer.
        assert sample(gw, ENCODES) - first_encodes == ticks
        # ...and written to each of the viewers.
        assert sample(gw, SENT) - first_sent == ticks * VIEWERS
        assert sample(gw, "gateway_viewers", router="core") == VIEWERS
        text = await metrics_text(gw)
        assert metric(text, ENCODES) == poller.seq - poller.seq_base
        # Every viewer got every frame, in order, none twice, from the first one on.
        for watcher in watchers:
            seqs = watcher.seqs
            assert seqs == list(range(seqs[0], seqs[-1] + 1)), seqs
            assert seqs[0] == poller.seq_base + 1
            assert seqs[-1] >= last
        await asyncio.gather(*(w.ws.close() for w in watchers if w.ws is not None))
