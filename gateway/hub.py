"""The broadcast hub: one topic per router, fanning prebuilt websocket frames out to viewers.

The hot path is ``Topic.publish``: it encodes a frame once per distinct interface filter
(orjson), wraps it in a websocket frame once, and writes the same bytes to every subscriber
without awaiting anything (straight to its socket while nothing waits in its transport). A
viewer that cannot keep up does not slow the others: while its socket is backed up, new traffic
frames for it are skipped (the latest wins), and one that stays behind is closed with 4408 and
its buffers are freed. Keepalive costs the hot path nothing: see ``Hub.heartbeat``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
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

# A final, unmasked websocket ping with no payload (server to client).
PING: Final = b"\x89\x00"
# Sink.fed_at of a viewer never fed (one shared float, not one per viewer).
_NEVER: Final = float("-inf")
# The filter of a whole-router subscription (equal to, and hashing as, any other such filter).
_EVERY: Final = InterfaceFilter.all()


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


def _plain_socket(transport: Transport) -> socket.socket | None:
    """The socket of a plain (not TLS) asyncio selector transport, or None.

    ``_sock`` is asyncio's own attribute (private, but the same from 3.4 to 3.14); TLS and other
    transports have none, and their sinks write through the transport. Sending on this socket
    object (never on a copy of its file descriptor) cannot reach another connection: once the
    transport closes it, a send fails with EBADF.
    """
    sock = getattr(transport, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


class Sink:
    """One viewer's outgoing side: writes prebuilt frames and watches for falling behind.

    Every write is synchronous; the sink never awaits. When the viewer falls behind,
    ``fell_behind()`` is called once (the viewer closes the websocket with 4408 from its own
    task). When it is found dead (a ping of ``Hub.heartbeat`` unanswered for a whole period),
    ``died()`` is called once instead (the viewer drops the connection: no close handshake with
    a dead peer). Both call the callbacks given here; the websocket viewer, one object per
    connection, is a subclass that overrides them instead.

    "Behind" is DESIGN.md's rule: more than 1 MiB unsent, or nothing accepted for 10 s. A backfill
    (``write(..., backfill=True)``) may be larger than 1 MiB on its own; those bytes are allowed
    on top of the limit until they have drained, so a big history on a slow link is not mistaken
    for a stalled viewer while the viewer is still taking data.
    """

    __slots__ = (
        "_allowance",
        "_callbacks",
        "_clock",
        "_sock",
        "_unsent_after",
        "awaiting_pong",
        "behind",
        "dropped",
        "fed_at",
        "stuck_since",
        "transport",
    )

    def __init__(
        self,
        transport: Transport,
        on_behind: Callable[[], None] | None = None,
        *,
        on_dead: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        # The transport's own socket, to send on directly while nothing waits in the transport
        # (see write()); None when that is not known to be safe.
        self._sock = _plain_socket(transport)
        # (on_behind, on_dead), or None when a subclass overrides fell_behind() and died().
        self._callbacks = None if on_behind is on_dead is None else (on_behind, on_dead)
        self._clock = clock
        # Monotonic time of the last traffic frame written; set by Topic.publish. A viewer fed
        # recently needs no heartbeat: the frames are its heartbeat (see Hub.heartbeat).
        self.fed_at = _NEVER
        # True from a heartbeat ping until the viewer sends anything (its pong); still True at
        # the next heartbeat means the peer is dead. Cleared by the viewer's read loop.
        self.awaiting_pong = False
        # Since when the viewer has accepted nothing while data waited; None while it takes data.
        self.stuck_since: float | None = None
        # Unsent bytes right after our previous write: less than that now means it read some.
        self._unsent_after = 0
        # Backfill bytes still allowed above the limit; shrinks as the backlog drains.
        self._allowance = 0
        self.behind = False
        # Traffic frames skipped for this viewer while its socket was backed up.
        self.dropped = 0

    def write(self, frame: bytes, droppable: bool = False, backfill: bool = False) -> bool | None:
        """Write one frame. Returns True if it was written, None if it was skipped (a droppable
        frame while the socket is backed up; counted in ``dropped``), False if the sink takes
        nothing more (behind, or its transport is closing).

        ``droppable`` frames (live traffic) are skipped while the socket is backed up (the next
        frame will be newer); others (status, history, errors) are always queued, as a viewer
        needs them to make sense of what follows.
        """
        transport = self.transport
        if self.behind or transport.is_closing():
            return False
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
                return None
        else:
            if self._allowance or self._unsent_after or self.stuck_since is not None:
                self.stuck_since = None  # it drained: whatever was waiting has gone
                self._allowance = self._unsent_after = 0
            if not backfill:
                # The socket keeps up: the hot path, kept short. What a partial send leaves
                # queued is not measured (0 is assumed): the next write sees a backlog it cannot
                # credit as progress and starts the stall clock then, one write early at worst.
                sock = self._sock
                if sock is None:
                    transport.write(frame)
                    return True
                # Nothing waits in the transport, so sending on its socket keeps the byte order,
                # and skips transport.write()'s own checks (4% of a frame's cost at 10,000).
                try:
                    sent = sock.send(frame)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    transport.write(frame)  # the transport meets the error and closes itself
                    return True
                if sent != len(frame):
                    transport.write(frame[sent:])  # the rest waits in the transport, in order
                return True
        transport.write(frame)
        if backfill:
            self._allowance += len(frame)
        self._unsent_after = transport.get_write_buffer_size()
        return True

    def _fall_behind(self) -> None:
        self.behind = True
        self.fell_behind()

    def dead(self) -> None:
        """The peer did not answer a ping for a whole heartbeat period: stop writing, drop it."""
        if not self.behind:
            self.behind = True
            self.died()

    def fell_behind(self) -> None:
        """Called once when the viewer falls behind (while the hub iterates its subscribers)."""
        if self._callbacks is not None and self._callbacks[0] is not None:
            self._callbacks[0]()

    def died(self) -> None:
        """Called once when the peer is found dead; ``on_dead``, else ``on_behind``."""
        if self._callbacks is not None:
            callback = self._callbacks[1] or self._callbacks[0]
            if callback is not None:
                callback()


@dataclass(frozen=True, slots=True)
class Frame:
    """One traffic frame as kept in the history ring: the data and its JSON, encoded once."""

    seq: int
    ts: float
    data: dict[str, object]
    json: bytes


class Topic:
    """One router's channel: the latest frame, a history ring, the status, the subscribers."""

    def __init__(
        self, router: str, history: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.router = router
        # This router's id as a 1-tuple, for the viewers that watch only it to share.
        self.only = (router,)
        self._clock = clock
        self.history: deque[Frame] = deque(maxlen=history)
        # The current status message, encoded; sent to each new subscriber before the history.
        self.status: dict[str, object] | None = None
        self._status_frame: bytes | None = None
        # Subscribers grouped by filter so each distinct filter is encoded once per frame.
        # Owned by this topic; viewers join and leave through subscribe()/unsubscribe(). Each
        # group is a dict used as an ordered set: a dense table is about half the memory of a
        # set's sparse one at 10,000 members, and quicker to walk.
        self._groups: dict[InterfaceFilter, dict[Sink, None]] = {}
        # The filter of each subscriber that has one. A subscriber to every interface (most
        # viewers) is only in its group: at 15,000 viewers a dict entry each is worth saving.
        self._filters: dict[Sink, InterfaceFilter] = {}
        self._count = 0
        # Woken by every traffic frame; REST reads wait on it for the first poll.
        self._new_frame = asyncio.Event()
        # Running totals since start, read by the poller for the frame metrics after each publish.
        self.encodes = 0
        self.frames_sent = 0
        self.frames_dropped = 0

    @property
    def latest(self) -> Frame | None:
        return self.history[-1] if self.history else None

    @property
    def viewers(self) -> int:
        return self._count

    def __contains__(self, sink: Sink) -> bool:
        return sink in self._filters or sink in self._groups.get(_EVERY, ())

    # -- producer side ------------------------------------------------------------------------

    def publish(self, data: dict[str, object]) -> int:
        """Publish a traffic frame to every subscriber; returns how many frames were written.

        Frames skipped for backed-up subscribers are added to ``frames_dropped``.
        """
        payload = orjson.dumps(data)
        self.encodes += 1
        seq = data["seq"]
        ts = data["ts"]
        assert isinstance(seq, int)
        assert isinstance(ts, float)
        self.history.append(Frame(seq, ts, data, payload))
        written = dropped = 0
        now = self._clock()
        # Iterate over snapshots: a sink's on_behind callback may end a subscription.
        for flt, sinks in tuple(self._groups.items()):
            if flt.is_all:
                body = payload
            else:
                body = orjson.dumps(filter_traffic(data, flt))
                self.encodes += 1
            frame = ws_text_frame(body)
            for sink in tuple(sinks):
                # Droppable; positional: this loop is the hot path. A written frame (nearly
                # every one) costs one local store more than a plain `if sink.write(...)`.
                result = sink.write(frame, True)
                if result:
                    sink.fed_at = now
                    written += 1
                elif result is None:
                    dropped += 1
        self.frames_sent += written
        self.frames_dropped += dropped
        self._new_frame.set()
        self._new_frame = asyncio.Event()
        return written

    def publish_status(self, status: dict[str, object]) -> None:
        """Record the router's new status and send it to every subscriber."""
        self.status = status
        frame = self._status_frame = encode_message(status)
        for group in tuple(self._groups.values()):
            for sink in tuple(group):
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
        if not flt.is_all:
            self._filters[sink] = flt
        self._groups.setdefault(flt, {})[sink] = None
        self._count += 1

    def unsubscribe(self, sink: Sink) -> bool:
        flt = self._filters.pop(sink, None)
        if flt is None:
            flt = _EVERY
            group = self._groups.get(flt)
            if group is None or sink not in group:
                return False
        else:
            group = self._groups[flt]
        del group[sink]
        if not group:
            del self._groups[flt]
        self._count -= 1
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
    """Every topic, by router id, and the heartbeat that checks idle viewers and feeds their
    pages' watchdogs."""

    def __init__(
        self, routers: Iterable[str], history: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self.topics: dict[str, Topic] = {r: Topic(r, history, clock=clock) for r in routers}
        # Every connected viewer's sink, subscribed or not; heartbeat() looks at all of them.
        # A dict used as an ordered set (see Topic._groups); the viewer adds and removes itself.
        self.sinks: dict[Sink, None] = {}
        # Monotonic time of the previous heartbeat() (of start-up, before the first one).
        self._last_beat = clock()

    def heartbeat(self, now: float) -> None:
        """Once per heartbeat period: check idle viewers are alive and feed their watchdogs.

        A viewer that was written a traffic frame within the last half period needs nothing:
        the frames feed its page's watchdog (two periods of silence), and its peer's liveness
        is the kernel's business (``TCP_USER_TIMEOUT`` on data we send anyway: a peer that
        stops acknowledging it is dropped), as stalling is the slow-consumer rule's. Keepalive
        thus costs nothing per traffic frame. Every other viewer gets one write, the same bytes
        for all: a websocket ping and the ``heartbeat`` message. A viewer pinged at the
        previous beat that has sent nothing since (not even the pong) is dead and dropped.

        An exception from one viewer does not cost the others their heartbeat: the pass goes on,
        and the first such exception is raised at its end (for the caller to log).
        """
        mono = self._clock()
        fresh_after = mono - (mono - self._last_beat) / 2
        self._last_beat = mono
        frame = PING + encode_message({"type": "heartbeat", "ts": round(now, 3)})
        failure: Exception | None = None
        for sink in list(self.sinks):
            try:
                if sink.awaiting_pong:
                    sink.dead()
                elif sink.fed_at <= fresh_after and sink.write(frame):
                    sink.awaiting_pong = True
            except Exception as exc:  # noqa: BLE001 - raised after the pass, see above
                if failure is None:
                    failure = exc
        if failure is not None:
            raise failure
