"""The broadcast hub: one topic per router, fanning prebuilt websocket frames out to viewers.

The hot path is ``Topic.publish``: it encodes a frame once per distinct interface filter
(orjson), wraps it in a websocket frame once, and writes the same bytes to every subscriber
without awaiting anything (straight to its socket while nothing waits in its transport). A
viewer that cannot keep up does not slow the others: while its socket is backed up, new traffic
frames for it are skipped (the latest wins), and one that stays behind is closed with 4408 and
its buffers are freed. Keepalive costs the hot path nothing: see ``Hub.heartbeat``.

No message is 1 MiB or larger (``MESSAGE_LIMIT``): a backfill arrives as several ``history``
messages (``history_chunks``), and a subscriber may ask for less of it (``Topic.subscribe``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import orjson

from gateway.core.frames import InterfaceFilter, filter_history, filter_traffic

logger = logging.getLogger(__name__)

# A subscriber is "behind" once this much of what we wrote is still unsent...
BEHIND_BYTES: Final = 1024 * 1024
# ...or once its socket has not drained for this long.
BEHIND_SECONDS: Final = 10.0
# Above this much unsent data, traffic frames for the subscriber are skipped (latest wins):
# the socket is backed up, so a newer frame will serve the viewer better than a queue of old ones.
SKIP_BYTES: Final = 256 * 1024

MESSAGE_LIMIT: Final = 1024 * 1024
"""Every message the gateway writes has a payload smaller than this (1 MiB), whatever the
history: client libraries refuse larger ones by default (python-websockets at 1 MiB, aiohttp
from exactly ``max_msg_size`` on). The one exception is a single traffic frame of this size or
more (about 6,400 interfaces at ~160 bytes a row), which is never split: see ``Topic.publish``."""

# Encoded histories kept per topic until the next frame, keyed by what they contain (see
# Topic._history_chunks): enough for the few distinct requests of a burst of subscribes.
_CHUNK_CACHE: Final = 4

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
    return _text_header(len(payload)) + payload


def _text_header(n: int) -> bytes:
    """The header of an unmasked, final websocket text frame with an ``n``-byte payload."""
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n)
    return struct.pack("!BBQ", 0x81, 127, n)


def encode_message(message: object) -> bytes:
    """One JSON message as a ready-to-write websocket frame."""
    return ws_text_frame(orjson.dumps(message))


def history_chunks(
    router: str, reset: bool, frames: Sequence[bytes], limit: int = MESSAGE_LIMIT
) -> list[bytes]:
    """The ``history`` messages carrying ``frames`` (encoded traffic frames, oldest first), as
    ready-to-write websocket frames, each with a JSON payload smaller than ``limit`` bytes.

    Each message is ``{"type":"history","router","reset","more","frames":[...]}``; ``more`` is
    true on every message but the last, and ``reset`` is the same on all. Frames stay in order
    and are never split: one that does not fit under ``limit`` by itself travels alone (and that
    message is larger than ``limit``). No frames gives one message with an empty list. The frames
    are spliced in as they are, never decoded and encoded again.
    """
    open_more, open_last = (
        orjson.dumps({"type": "history", "router": router, "reset": reset, "more": more})[:-1]
        + b',"frames":['
        for more in (True, False)
    )
    close = b"]}"
    # Sized with the longer opening ("false"), so a group fits whichever message it ends up in.
    room = limit - len(open_last) - len(close)
    groups: list[list[bytes]] = []
    group: list[bytes] = []
    size = 0
    for frame in frames:
        extra = len(frame) + (1 if group else 0)  # a comma between frames
        if group and size + extra >= room:
            groups.append(group)
            group, size, extra = [], 0, len(frame)
        group.append(frame)
        size += extra
    groups.append(group)
    last = len(groups) - 1
    return [_splice(open_last if i == last else open_more, g, close) for i, g in enumerate(groups)]


def _splice(head: bytes, parts: list[bytes], tail: bytes) -> bytes:
    """``ws_text_frame(head + b",".join(parts) + tail)``, copying the parts once, not twice."""
    size = len(head) + sum(map(len, parts)) + max(len(parts) - 1, 0) + len(tail)
    pieces = [_text_header(size), head]
    for i, part in enumerate(parts):
        if i:
            pieces.append(b",")
        pieces.append(part)
    pieces.append(tail)
    return b"".join(pieces)


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
    (``write(..., backfill=True)``, once per history message) may be much larger than 1 MiB in
    all; its bytes are allowed on top of the limit until they have drained, so a big history on
    a slow link is not mistaken for a stalled viewer while the viewer is still taking data.
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
        self,
        router: str,
        history: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.router = router
        # This router's id as a 1-tuple, for the viewers that watch only it to share.
        self.only = (router,)
        self._clock = clock
        # Unix time, as in a frame's ts: what a subscribe's "history_seconds" counts back from.
        self._wall = wall
        self.history: deque[Frame] = deque(maxlen=history)
        # Encoded history messages by (filter, index of the first frame, reset), so a burst of
        # subscribers asking for the same history (a reconnect storm) shares one encoding and
        # costs no copy each. Valid until the ring changes: cleared by publish(), and by
        # forget_backfills() at each heartbeat, so a router that stopped publishing does not
        # hold a copy of its ring; at most _CHUNK_CACHE entries (oldest dropped first).
        self._chunk_cache: dict[tuple[InterfaceFilter, int, bool], list[bytes]] = {}
        # Whether a frame too big for one message was logged (once per topic, not per tick).
        self._warned_size = False
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
        self._chunk_cache.clear()
        if len(payload) >= MESSAGE_LIMIT and not self._warned_size:
            # One poll is one message: splitting it would show viewers half a router. Only the
            # interface filters (the router's `interfaces` setting, a subscription's or a
            # token's) make such a frame smaller.
            self._warned_size = True
            logger.warning(
                "%s: a traffic frame of %d bytes (%d interfaces) is over the 1 MiB message "
                "limit of websocket clients; narrow the router's `interfaces` setting or "
                "subscribe with an `interfaces` filter",
                self.router,
                len(payload),
                len(data["interfaces"]) if isinstance(data["interfaces"], list) else 0,
            )
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

    def forget_backfills(self) -> None:
        """Drop the encoded histories kept for subscribers to share (see ``_chunk_cache``)."""
        self._chunk_cache.clear()

    async def wait_frame(self, timeout: float) -> Frame | None:
        """Wait up to ``timeout`` for the next traffic frame; None if none came."""
        event = self._new_frame
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()
        return self.latest

    # -- viewer side --------------------------------------------------------------------------

    def subscribe(
        self,
        sink: Sink,
        flt: InterfaceFilter,
        since: int | None = None,
        *,
        frames: int | None = None,
        seconds: float | None = None,
    ) -> None:
        """Add a subscriber: it gets the status, then the history, then live frames, in order.

        The history is the ring's frames (after ``since``, when given), of which only the last
        ``frames`` (a count; 0 for none) and only those made in the last ``seconds`` (by their
        ``ts``, against this topic's wall clock), when given; filtered by ``flt``. It goes out
        as one or more ``history`` messages (see ``history_chunks``), the last one with
        ``"more": false``. Everything is written before this returns (no await), so no live
        frame can slip in between the backfill's messages or before the live stream, and none
        is sent twice.
        """
        self.unsubscribe(sink)
        if self._status_frame is not None:
            sink.write(self._status_frame)
        start, reset = self._backfill(since, frames, seconds)
        for chunk in self._history_chunks(flt, start, reset):
            if sink.write(chunk, backfill=True) is False:
                break  # it takes nothing more (behind, or closing)
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

    def _backfill(
        self, since: int | None, frames: int | None, seconds: float | None
    ) -> tuple[int, bool]:
        """Which frames of the ring a subscriber gets: ``(index of the first one, reset)``.

        Always a tail of the ring (possibly empty: the index is then ``len(self.history)``).
        ``reset`` is true when ``since`` cannot be served (older than the ring, or unknown);
        the subscriber then gets the ring, as limited by ``frames`` and ``seconds``.
        """
        ring = self.history
        count = len(ring)
        start, reset = 0, False
        if since is not None:
            if not ring:
                reset = since != 0
            elif since > ring[-1].seq or since < ring[0].seq - 1:
                # Older than the ring (or from before a restart): everything we have, marked reset.
                reset = True
            else:
                start = count - _tail(ring, lambda f: f.seq > since)
        if frames is not None:
            start = max(start, count - frames)
        if seconds is not None:
            cutoff = self._wall() - seconds
            start = max(start, count - _tail(ring, lambda f: f.ts >= cutoff))
        return start, reset

    def _history_chunks(self, flt: InterfaceFilter, start: int, reset: bool) -> list[bytes]:
        """The history messages of the ring's frames from ``start`` on, filtered by ``flt``.

        Encoded once per distinct request per tick: unfiltered frames are spliced in from the
        ring's own encoding; a filtered history filters each frame, then encodes it, so its
        frames are exactly what that filter would have made of them live.
        """
        key = (flt, start, reset)
        chunks = self._chunk_cache.get(key)
        if chunks is None:
            frames = itertools.islice(self.history, start, None)
            if flt.is_all:
                parts = [f.json for f in frames]
            else:
                parts = [orjson.dumps(f) for f in filter_history((f.data for f in frames), flt)]
            chunks = history_chunks(self.router, reset, parts)
            if len(self._chunk_cache) >= _CHUNK_CACHE:
                del self._chunk_cache[next(iter(self._chunk_cache))]
            self._chunk_cache[key] = chunks
        return chunks


def _tail(ring: deque[Frame], keep: Callable[[Frame], bool]) -> int:
    """How many frames at the end of ``ring`` satisfy ``keep``, counted back from the newest."""
    n = 0
    for frame in reversed(ring):
        if not keep(frame):
            break
        n += 1
    return n


class Hub:
    """Every topic, by router id, and the heartbeat that checks idle viewers and feeds their
    pages' watchdogs."""

    def __init__(
        self,
        routers: Iterable[str],
        history: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self.topics: dict[str, Topic] = {
            r: Topic(r, history, clock=clock, wall=wall) for r in routers
        }
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
        Each topic also drops the histories it kept encoded for a burst of subscribers.

        An exception from one viewer does not cost the others their heartbeat: the pass goes on,
        and the first such exception is raised at its end (for the caller to log).
        """
        for topic in self.topics.values():
            topic.forget_backfills()
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
