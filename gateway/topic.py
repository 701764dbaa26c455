"""One router's source's channel: the latest frame, the history ring, the status, the
subscribers.

The hot path is ``Topic.publish``: it encodes a frame once, row by row (``Frame.encode``), builds
the frame of each distinct selection of rows by splicing those rows (``Rows.splice``: no filter is
matched against every interface each tick, and viewers whose filters select the same rows share
one frame), wraps it in a websocket frame once, and writes the same bytes to every subscriber
without awaiting anything (each ``Sink`` sends straight to its socket while nothing waits in
its transport). The topic is the only registry of its subscribers; they join with
``subscribe`` and leave with ``unsubscribe``, and its ``Demand`` counts them for the producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Final

import orjson

from gateway.core.frames import InterfaceFilter, public_status
from gateway.core.rows import Layout, Selection
from gateway.core.sources import DEFAULT_SOURCE, Source
from gateway.demand import Demand
from gateway.history import MESSAGE_LIMIT, Frame, backfill_start, history_chunks
from gateway.sink import Sink
from gateway.wire import text_frame

logger = logging.getLogger(__name__)

# Encoded histories kept per topic until the next frame, keyed by what they contain (see
# Topic._history_chunks): enough for the few distinct requests of a burst of subscribes.
_CHUNK_CACHE: Final = 4

# The filter of a whole-router subscription (equal to, and hashing as, any other such filter).
_EVERY: Final = InterfaceFilter.all()


def encode_message(message: object) -> bytes:
    """One JSON message as a ready-to-write websocket frame."""
    return text_frame(orjson.dumps(message))


class _Group:
    """The subscribers of one filter, and which rows it selects in the current layout."""

    __slots__ = ("filter", "layout", "selection", "sinks")

    def __init__(self, flt: InterfaceFilter) -> None:
        # The filter, one object for every subscriber of it (each subscribe made its own equal
        # one; a portal's viewers of one customer keep one between them).
        self.filter = flt
        # A dict used as an ordered set: a dense table is about half the memory of a set's
        # sparse one at 10,000 members, and quicker to walk.
        self.sinks: dict[Sink, None] = {}
        # The layout the selection was made in; a frame with another (the interface set
        # changed) makes the next tick select again. None until the first frame.
        self.layout: Layout | None = None
        self.selection: Selection | None = None


class Topic:
    """One source of one router (``interfaces`` unless told): the latest frame, a history
    ring, the status, the subscribers."""

    def __init__(
        self,
        router: str,
        history: int,
        *,
        source: Source = DEFAULT_SOURCE,
        demand: Demand | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.router = router
        self.source: Source = source
        # This topic as a 1-tuple, for the viewers that watch only it to share.
        self.only: tuple[Topic, ...] = (self,)
        # Who wants this topic's frames; read by its producer. Counts the subscribers.
        self.demand = demand if demand is not None else Demand()
        # Monotonic time of a write, as Sink.fed_at records it (the hub's heartbeat compares).
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
        self._public_status_frame: bytes | None = None
        # Subscribers grouped by filter, so each filter's selection is looked up once per frame
        # (and each distinct selection spliced once). Owned by this topic; viewers join and
        # leave through subscribe()/unsubscribe(); a group goes with its last subscriber.
        self._groups: dict[InterfaceFilter, _Group] = {}
        # The filter of each subscriber that has one. A subscriber to every interface (most
        # viewers) is only in its group: at 15,000 viewers a dict entry each is worth saving.
        self._filters: dict[Sink, InterfaceFilter] = {}
        # The latest frame's parsed form, for REST reads: (frame, data). Set by publish() from
        # the poller's dict, else decoded on the first read of a frame (see frame_data).
        self._parsed: tuple[Frame, dict[str, object]] | None = None
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
        """This process's subscribers of the topic."""
        return self.demand.subscribers

    def __contains__(self, sink: Sink) -> bool:
        if sink in self._filters:
            return True
        group = self._groups.get(_EVERY)
        return group is not None and sink in group.sinks

    # -- producer side ------------------------------------------------------------------------

    def publish(self, data: dict[str, object]) -> int:
        """Publish a traffic frame to every subscriber; returns how many frames were written.

        Frames skipped for backed-up subscribers are added to ``frames_dropped``.
        """
        frame = Frame.encode(data, previous=self.latest)
        self.encodes += 1
        written = self._fan_out(frame)
        self._parsed = (frame, data)
        return written

    def publish_frame(self, frame: Frame) -> int | None:
        """Publish a traffic frame encoded elsewhere (cluster mode: by the replica that polls
        the router; ``frame.json`` goes to viewers of every row as it is).

        A frame whose seq is not above the latest one's is skipped (None): a viewer never sees
        seq go backwards or repeat, whoever published what before. Otherwise as ``publish``.
        """
        latest = self.latest
        if latest is not None and frame.seq <= latest.seq:
            return None
        return self._fan_out(frame)

    def _fan_out(self, kept: Frame) -> int:
        """Keep a frame in the ring and write it to every subscriber (see ``publish``)."""
        payload, rows = kept.json, kept.rows
        self.history.append(kept)
        self._chunk_cache.clear()
        if len(payload) >= MESSAGE_LIMIT and not self._warned_size:
            # One poll is one message: splitting it would show viewers half a router. Only the
            # interface filters (the router's `interfaces` setting, a subscription's or a
            # token's) make such a frame smaller.
            self._warned_size = True
            logger.warning(
                "%s: a traffic frame of %d bytes (%d %s) is over the 1 MiB message limit of "
                "websocket clients; narrow the router's `%s` setting or subscribe with a "
                "`names` filter",
                self.router,
                len(payload),
                len(rows),
                self.source,
                self.source,
            )
        written = dropped = 0
        now = self._clock()
        layout = rows.layout
        # This tick's websocket frame of each distinct selection (filters that select the same
        # rows share it), keyed by the Selection object itself.
        spliced: dict[Selection, bytes] = {}
        whole: bytes | None = None
        # Iterate over snapshots: a sink's on_behind callback may end a subscription.
        for flt, group in tuple(self._groups.items()):
            if flt.is_all:
                if whole is None:
                    whole = text_frame(payload)
                frame = whole
            else:
                if group.layout is not layout:
                    # First frame of this group, or the interface set changed: select again.
                    group.selection = layout.select(flt)
                    group.layout = layout
                selection = group.selection
                assert selection is not None  # set with the layout
                cached = spliced.get(selection)
                if cached is None:
                    cached = spliced[selection] = text_frame(rows.splice(selection))
                    self.encodes += 1
                frame = cached
            for sink in tuple(group.sinks):
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
        """Record the router's new status and send it to every subscriber (restricted ones
        see it without the error text: ``public_status``)."""
        self.status = status
        frame = self._status_frame = encode_message(status)
        public = self._public_status_frame = encode_message(public_status(status))
        for group in tuple(self._groups.values()):
            for sink in tuple(group.sinks):
                sink.write(public if sink.restricted else frame)

    def forget_backfills(self) -> None:
        """Drop the encoded histories kept for subscribers to share (see ``_chunk_cache``)."""
        self._chunk_cache.clear()

    def frame_data(self, frame: Frame, flt: InterfaceFilter) -> dict[str, object]:
        """``frame`` (this topic's) as a new dict holding the rows ``flt`` lets through: what
        a REST read answers. The latest frame's parsed form is kept (one decode per frame at
        most); a filtered read decodes only the rows it gets."""
        if not flt.is_all:
            rows = frame.rows
            return dict(orjson.loads(rows.splice(rows.layout.select(flt))))
        parsed = self._parsed
        if parsed is None or parsed[0] is not frame:
            parsed = (frame, orjson.loads(frame.json))
            if frame is self.latest:
                self._parsed = parsed
        return dict(parsed[1])

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
    ) -> bool:
        """Add a subscriber: it gets the status, then the history, then live frames, in order.

        The history is the ring's frames chosen by ``since``, ``frames`` and ``seconds`` (see
        ``backfill_start``; ``seconds`` against this topic's wall clock), filtered by ``flt``.
        It goes out as one or more ``history`` messages (see ``history_chunks``), the last one
        with ``"more": false``. Everything is written before this returns (no await), so no
        live frame can slip in between the backfill's messages or before the live stream, and
        none is sent twice. Subscribing again replaces the earlier subscription.

        Returns whether the sink is subscribed: False when it fell behind or closed on the way
        (its viewer is closing). ``unsubscribe`` ends the subscription.
        """
        self.unsubscribe(sink)
        status_frame = self._public_status_frame if sink.restricted else self._status_frame
        if status_frame is not None:
            sink.write(status_frame)
        now = self._wall() if seconds is not None else 0.0
        start, reset = backfill_start(self.history, since, frames, seconds, now)
        for chunk in self._history_chunks(flt, start, reset):
            if sink.write(chunk, backfill=True) is False:
                break  # it takes nothing more (behind, or closing)
        if sink.behind:
            return False  # cut off already; its viewer is closing
        group = self._groups.get(flt)
        if group is None:
            group = self._groups[flt] = _Group(flt)
        if not flt.is_all:
            self._filters[sink] = group.filter
        group.sinks[sink] = None
        self.demand.join()
        return True

    def unsubscribe(self, sink: Sink) -> bool:
        """End a subscription; False if ``sink`` was not subscribed."""
        flt = self._filters.pop(sink, None)
        if flt is None:
            flt = _EVERY
            group = self._groups.get(flt)
            if group is None or sink not in group.sinks:
                return False
        else:
            group = self._groups[flt]
        del group.sinks[sink]
        if not group.sinks:
            del self._groups[flt]
        self.demand.leave()
        return True

    def narrow(self, sink: Sink, flt: InterfaceFilter) -> bool:
        """Narrow a subscriber's filter to what also passes ``flt`` (its token was refreshed
        with a narrower scope), without a new status or history: its next live frame is
        filtered the new way. False if ``sink`` is not subscribed."""
        current = self._filters.get(sink)
        if current is None:
            if sink not in self:
                return False
            current = _EVERY
        narrowed = current.intersect(flt)
        if narrowed == current:
            return True
        old = self._groups[current]
        del old.sinks[sink]
        if not old.sinks:
            del self._groups[current]
        group = self._groups.get(narrowed)
        if group is None:
            group = self._groups[narrowed] = _Group(narrowed)
        if narrowed.is_all:
            self._filters.pop(sink, None)
        else:
            self._filters[sink] = group.filter
        group.sinks[sink] = None
        return True

    def _history_chunks(self, flt: InterfaceFilter, start: int, reset: bool) -> list[bytes]:
        """The history messages of the ring's frames from ``start`` on, filtered by ``flt``.

        Encoded once per distinct request per tick: unfiltered frames are spliced in from the
        ring's own encoding; a filtered one's frames are spliced from the rows each selects,
        exactly as that filter's frames were made live (``Rows.splice``): a filter's selection
        is made once per layout (interface set), not once per frame.
        """
        key = (flt, start, reset)
        chunks = self._chunk_cache.get(key)
        if chunks is None:
            frames = itertools.islice(self.history, start, None)
            if flt.is_all:
                parts = [f.json for f in frames]
            else:
                parts = [f.rows.splice(f.rows.layout.select(flt)) for f in frames]
            chunks = history_chunks(self.router, reset, parts, source=self.source)
            if len(self._chunk_cache) >= _CHUNK_CACHE:
                del self._chunk_cache[next(iter(self._chunk_cache))]
            self._chunk_cache[key] = chunks
        return chunks
