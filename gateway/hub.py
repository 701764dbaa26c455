"""The broadcast hub: one topic per router, fanning prebuilt websocket frames out to viewers.

The hot path is ``Topic.publish``: it encodes a frame once per distinct interface filter
(orjson), wraps it in a websocket frame once, and writes the same bytes to every subscriber's
transport without awaiting anything. A viewer that cannot keep up does not slow the others:
while its socket is backed up, new traffic frames for it are skipped (the latest wins), and one
that stays behind is closed with 4408 and its buffers are freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Protocol

import orjson

from gateway.core.frames import InterfaceFilter, filter_traffic

logger = logging.getLogger(__name__)

# A subscriber is "behind" once this much of what we wrote is still unsent...
BEHIND_BYTES: Final = 1024 * 1024
# ...or once its socket has not drained for this long.
BEHIND_SECONDS: Final = 10.0
# Above this much unsent data, traffic frames for the subscriber are skipped (latest wins):
# the socket is backed up, so a newer frame will serve the viewer better than a queue of old ones.
SKIP_BYTES: Final = 256 * 1024

CLOSE_SLOW_CONSUMER: Final = 4408
CLOSE_GOING_AWAY: Final = 1001


def ws_text_frame(payload: bytes) -> bytes:
    """A complete, unmasked, final websocket text frame carrying ``payload`` (server to client)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def encode_message(message: object) -> bytes:
    """One JSON message as a ready-to-write websocket frame."""
    return ws_text_frame(orjson.dumps(message))


class Transport(Protocol):
    """The part of ``asyncio.WriteTransport`` the hub uses (a seam for unit tests)."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...


class Sink:
    """One viewer's outgoing side: writes prebuilt frames and watches for falling behind.

    Every write is synchronous; the sink never awaits. When the viewer falls behind, ``on_behind``
    is called once (the viewer closes the websocket with 4408 from its own task).

    "Behind" is DESIGN.md's rule: more than 1 MiB unsent, or nothing accepted for 10 s. A backfill
    (``write(..., backfill=True)``) may be larger than 1 MiB on its own; those bytes are allowed
    on top of the limit until they have drained, so a big history on a slow link is not mistaken
    for a stalled viewer while the viewer is still taking data.
    """

    __slots__ = (
        "_allowance",
        "_clock",
        "_on_behind",
        "_unsent_after",
        "behind",
        "dropped",
        "sent",
        "stuck_since",
        "transport",
    )

    def __init__(
        self,
        transport: Transport,
        on_behind: Callable[[], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self._on_behind = on_behind
        self._clock = clock
        # Since when the viewer has accepted nothing while data waited; None while it takes data.
        self.stuck_since: float | None = None
        # Unsent bytes right after our previous write: less than that now means it read some.
        self._unsent_after = 0
        # Backfill bytes still allowed above the limit; shrinks as the backlog drains.
        self._allowance = 0
        self.behind = False
        self.sent = 0
        self.dropped = 0

    def write(self, frame: bytes, *, droppable: bool = False, backfill: bool = False) -> bool:
        """Write one frame. Returns True if it was written.

        ``droppable`` frames (live traffic) are skipped while the socket is backed up (the next
        frame will be newer); others (status, history, errors) are always queued, as a viewer
        needs them to make sense of what follows.
        """
        if self.behind or self.transport.is_closing():
            return False
        transport = self.transport
        unsent = transport.get_write_buffer_size()
        if unsent:
            if unsent < self._unsent_after:
                self.stuck_since = None  # it accepted some data since our last write
            elif self.stuck_since is None:
                self.stuck_since = self._clock()
            elif self._clock() - self.stuck_since > BEHIND_SECONDS:
                self._fall_behind()
                return False
            self._allowance = min(self._allowance, unsent)
            excess = unsent - self._allowance
            if excess + len(frame) > BEHIND_BYTES and not backfill:
                self._fall_behind()
                return False
            if droppable and excess > SKIP_BYTES:
                self.dropped += 1
                self._unsent_after = unsent
                return False
        else:
            self.stuck_since = None
            self._allowance = 0
        transport.write(frame)
        if backfill:
            self._allowance += len(frame)
        self._unsent_after = transport.get_write_buffer_size()
        self.sent += 1
        return True

    def _fall_behind(self) -> None:
        self.behind = True
        self._on_behind()


@dataclass(frozen=True, slots=True)
class Frame:
    """One traffic frame as kept in the history ring: the data and its JSON, encoded once."""

    seq: int
    ts: float
    data: dict[str, object]
    json: bytes


class Topic:
    """One router's channel: the latest frame, a history ring, the status, the subscribers."""

    def __init__(self, router: str, history: int) -> None:
        self.router = router
        self.history: deque[Frame] = deque(maxlen=history)
        # The current status message, encoded; sent to each new subscriber before the history.
        self.status: dict[str, object] | None = None
        self._status_frame: bytes | None = None
        # Subscribers grouped by filter so each distinct filter is encoded once per frame.
        # Owned by this topic; viewers join and leave through subscribe()/unsubscribe().
        self._groups: dict[InterfaceFilter, set[Sink]] = {}
        self._filters: dict[Sink, InterfaceFilter] = {}
        # Woken by every traffic frame; REST reads wait on it for the first poll.
        self._new_frame = asyncio.Event()
        self.encodes = 0
        self.frames_sent = 0

    @property
    def latest(self) -> Frame | None:
        return self.history[-1] if self.history else None

    @property
    def viewers(self) -> int:
        return len(self._filters)

    def __contains__(self, sink: Sink) -> bool:
        return sink in self._filters

    # -- producer side ------------------------------------------------------------------------

    def publish(self, data: dict[str, object]) -> int:
        """Publish a traffic frame to every subscriber; returns how many frames were written."""
        payload = orjson.dumps(data)
        self.encodes += 1
        seq = data["seq"]
        ts = data["ts"]
        assert isinstance(seq, int)
        assert isinstance(ts, float)
        self.history.append(Frame(seq, ts, data, payload))
        written = 0
        # Iterate over snapshots: a sink's on_behind callback may end a subscription.
        for flt, sinks in tuple(self._groups.items()):
            if flt.is_all:
                body = payload
            else:
                body = orjson.dumps(filter_traffic(data, flt))
                self.encodes += 1
            frame = ws_text_frame(body)
            for sink in tuple(sinks):
                if sink.write(frame, droppable=True):
                    written += 1
        self.frames_sent += written
        self._new_frame.set()
        self._new_frame = asyncio.Event()
        return written

    def publish_status(self, status: dict[str, object]) -> None:
        """Record the router's new status and send it to every subscriber."""
        self.status = status
        frame = self._status_frame = encode_message(status)
        for sink in tuple(self._filters):
            sink.write(frame)

    async def wait_frame(self, timeout: float) -> Frame | None:
        """Wait up to ``timeout`` for the next traffic frame; None if none came."""
        event = self._new_frame
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()
        return self.latest

    # -- viewer side --------------------------------------------------------------------------

    def subscribe(self, sink: Sink, flt: InterfaceFilter, since: int | None = None) -> None:
        """Add a subscriber: it gets the status, then the history, then live frames, in order.

        All three are written before this returns (no await), so no live frame can slip in
        between the backfill and the live stream, and none is sent twice.
        """
        self.unsubscribe(sink)
        if self._status_frame is not None:
            sink.write(self._status_frame)
        frames, reset = self._backfill(since)
        sink.write(self._history_message(frames, flt, reset), backfill=True)
        if sink.behind:
            return  # cut off already; its viewer is closing
        self._filters[sink] = flt
        self._groups.setdefault(flt, set()).add(sink)

    def unsubscribe(self, sink: Sink) -> bool:
        flt = self._filters.pop(sink, None)
        if flt is None:
            return False
        group = self._groups[flt]
        group.discard(sink)
        if not group:
            del self._groups[flt]
        return True

    def _backfill(self, since: int | None) -> tuple[Iterable[Frame], bool]:
        frames = self.history
        if since is None:
            return frames, False
        if not frames:
            return (), since != 0
        first, last = frames[0].seq, frames[-1].seq
        if since > last or since < first - 1:
            # Older than the ring (or from before a restart): everything we have, marked reset.
            return frames, True
        return (f for f in frames if f.seq > since), False

    def _history_message(self, frames: Iterable[Frame], flt: InterfaceFilter, reset: bool) -> bytes:
        if flt.is_all:
            parts = [f.json for f in frames]
        else:
            parts = [orjson.dumps(filter_traffic(f.data, flt)) for f in frames]
        head = orjson.dumps({"type": "history", "router": self.router, "reset": reset})
        # Splice the already-encoded frames in, rather than decoding and encoding them again.
        body = head[:-1] + b',"frames":[' + b",".join(parts) + b"]}"
        return ws_text_frame(body)


class Hub:
    """Every topic, by router id, and the heartbeat that keeps idle viewers' watchdogs fed."""

    def __init__(self, routers: Iterable[str], history: int) -> None:
        self.topics: dict[str, Topic] = {r: Topic(r, history) for r in routers}
        # Every connected viewer's sink, subscribed or not; heartbeats go to all of them.
        self.sinks: set[Sink] = set()

    def heartbeat(self, now: float) -> None:
        """Send one heartbeat message to every viewer (one encode for all)."""
        frame = encode_message({"type": "heartbeat", "ts": round(now, 3)})
        for sink in list(self.sinks):
            sink.write(frame)
