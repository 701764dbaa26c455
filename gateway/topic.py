"""One router's source's channel: the latest frame, the history ring, the status, the
subscribers.

The hot path is ``Topic.publish``: it encodes a frame once, noting where each row lies
(``Frame.encode``), builds the frame of each distinct selection of rows by splicing those rows
(``Rows.splice``: no filter is matched against every interface each tick, and viewers whose
filters select the same rows share one frame), wraps it in a websocket frame once (and deflates
it once, when some of its subscribers agreed to permessage-deflate), and writes the same bytes
to every subscriber without awaiting anything (each ``Sink`` sends straight to its socket while
nothing waits in its transport). The topic is the only registry of its subscribers (filed by the
rows they get in ``gateway.topic_subscribers.Subscribers``); they join with ``subscribe`` and
leave with ``unsubscribe``, and its ``Demand`` counts them for the producer.
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

from gateway.core.filters import InterfaceFilter
from gateway.core.messages import public_status
from gateway.core.rows import Layout, Selection
from gateway.core.sources import DEFAULT_SOURCE, Source
from gateway.demand import Demand
from gateway.history import MESSAGE_LIMIT, Frame, backfill_start, history_messages
from gateway.sink import Sink
from gateway.topic_subscribers import Bucket, Subscribers
from gateway.wire import TextMessage

logger = logging.getLogger(__name__)

# Encoded histories kept per topic until the next frame, keyed by what they contain (see
# Topic._history_chunks): enough for the few distinct requests of a burst of subscribes.
_CHUNK_CACHE: Final = 4


def encode_message(message: object, compressed: bool = False) -> bytes:
    """One JSON message as a ready-to-write websocket frame; deflated when ``compressed`` (the
    viewer agreed to permessage-deflate) and worth it (see ``TextMessage``)."""
    return TextMessage(orjson.dumps(message)).frame(compressed)


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
        # History messages by (filter, index of the first frame, reset), so a burst of
        # subscribers asking for the same history (a reconnect storm) shares one encoding and
        # costs no copy each. Valid until the ring changes: cleared by publish(), and by
        # forget_backfills() at each heartbeat, so a router that stopped publishing does not
        # hold a copy of its ring; at most _CHUNK_CACHE entries (oldest dropped first).
        self._chunk_cache: dict[tuple[InterfaceFilter, int, bool], list[TextMessage]] = {}
        # Whether a frame too big for one message was logged (once per topic, not per tick).
        self._warned_size = False
        # The current status message, encoded; sent to each new subscriber before the history.
        self.status: dict[str, object] | None = None
        self._status_message: TextMessage | None = None
        # The same for viewers shown a customer's share only (``public_status``).
        self._public_status_message: TextMessage | None = None
        self._public_status_json: bytes | None = None
        # Cluster mode (set by the router's lease): a subscribe replays the status in order
        # with the history's frames (see ``subscribe``). Then ``_status_at_latest`` is the
        # status (full, public) in force when the latest frame was published, and
        # ``_status_since_latest`` whether the current one came after that frame.
        self.status_in_order = False
        self._status_at_latest: tuple[TextMessage | None, TextMessage | None] = (None, None)
        self._status_since_latest = False
        # The subscribers, owned by this topic, filed by the rows they get (a bucket per
        # distinct selection); viewers join and leave through subscribe() and unsubscribe().
        self._subscribers = Subscribers()
        # The latest frame's parsed form, for REST reads: (frame, data). Set by publish() from
        # the poller's dict, else decoded on the first read of a frame (see frame_data).
        self._parsed: tuple[Frame, dict[str, object]] | None = None
        # Woken by every traffic frame; REST reads wait on it for the first poll.
        self._new_frame = asyncio.Event()
        # Running totals since start, read by the poller for the frame metrics after each publish.
        # ``deflates``: messages deflated (once each, for every viewer that agreed to deflate).
        self.deflates = 0
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
        return sink in self._subscribers

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
        latest = self.latest
        if latest is not None and latest.rows.layout is not rows.layout:
            # The interface set changed: the old layout now only serves backfills.
            latest.rows.layout.forget()
        self.history.append(kept)
        self._chunk_cache.clear()
        self._status_at_latest = (self._status_message, self._public_status_message)
        self._status_since_latest = False
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
        subscribers = self._subscribers
        if rows.layout is not subscribers.layout:
            subscribers.rebucket(rows.layout)
        # Every bucket's frame, spliced once (distinct filters that select the same rows
        # share a bucket); the whole router's is the frame as it is.
        messages: list[tuple[TextMessage, Bucket]] = [
            (TextMessage(rows.splice(selection)), bucket)
            for selection, bucket in subscribers.buckets.items()
        ]
        self.encodes += len(messages)
        if subscribers.every:
            messages.append((TextMessage(payload), subscribers.every))
        for message, bucket in messages:
            # Written twice over (plain, then compressed frames), inline: this is the hot path.
            # Iterate over snapshots: a sink's on_behind callback may end a subscription.
            if bucket.plain:
                frame = message.plain
                for sink in tuple(bucket.plain):
                    # Droppable; positional. A written frame (nearly every one) costs one local
                    # store more than a plain `if sink.write(...)`.
                    result = sink.write(frame, True)
                    if result:
                        sink.fed_at = now
                        written += 1
                    elif result is None:
                        dropped += 1
            packed = bucket.packed
            if packed:
                frame = self._frame(message, True)
                for sink in tuple(packed):
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
        """Record the router's new status and send it to every subscriber, whatever its filter
        and whether or not a frame has come yet (a filtered subscriber is filed in a bucket
        only once a frame tells which rows it selects). Restricted ones see it without the
        error text (``public_status``), so a change of that text alone (the router down for
        another reason) would tell them nothing new: they are not sent it."""
        self.status = status
        self._status_since_latest = True
        message = self._status_message = TextMessage(orjson.dumps(status))
        public_json = orjson.dumps(public_status(status))
        public: TextMessage | None = None
        if public_json != self._public_status_json:
            public = self._public_status_message = TextMessage(public_json)
            self._public_status_json = public_json
        every = self._subscribers.every
        for sink in (*every.plain, *(every.packed or ()), *self._subscribers.filters):
            shown = public if sink.restricted else message
            if shown is not None:
                sink.write(self._frame(shown, sink.deflate))

    def _frame(self, message: TextMessage, compressed: bool) -> bytes:
        """``message`` framed for a sink that agreed to deflate (``compressed``) or not,
        counting in ``deflates`` the deflate this costs (none when made before: shared)."""
        if not compressed:
            return message.plain
        made = message.deflated
        frame = message.packed
        if not made and message.deflated:
            self.deflates += 1
        return frame

    def forget_backfills(self) -> None:
        """Drop the encoded histories kept for subscribers to share (see ``_chunk_cache``)."""
        self._chunk_cache.clear()

    def frame_data(self, frame: Frame, flt: InterfaceFilter) -> dict[str, object]:
        """``frame`` (this topic's) as a new dict holding the rows ``flt`` lets through: what
        a REST read answers. The latest frame's parsed form is kept (one decode per frame at
        most); a filtered read decodes only the rows it gets."""
        if not flt.is_all:
            rows = frame.rows
            selection = rows.layout.select(flt, remember=frame is self.latest)
            return dict(orjson.loads(rows.splice(selection)))
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
        It goes out as one or more ``history`` messages (see ``history_messages``), the last
        one with ``"more": false``; compressed for a sink that agreed to permessage-deflate
        (``Sink.deflate``), each message deflated once for all such subscribers of the tick.
        Everything is written before this returns (no await), so no
        live frame can slip in between the backfill's messages or before the live stream, and
        none is sent twice. Subscribing again replaces the earlier subscription.

        With ``status_in_order`` (cluster mode), when the current status came after the latest
        frame and the history replays frames, the status first is the one in force at that
        frame, and the current one follows the history, as it followed that frame live: a
        status a takeover published before its first frame (whose seq jumps) comes right
        before it, after the older frames, and every status comes once, in order.

        Returns whether the sink is subscribed: False when it fell behind or closed on the way
        (its viewer is closing). ``unsubscribe`` ends the subscription.
        """
        self.unsubscribe(sink)
        compressed = sink.deflate
        status = self._public_status_message if sink.restricted else self._status_message
        now = self._wall() if seconds is not None else 0.0
        start, reset = backfill_start(self.history, since, frames, seconds, now)
        after: TextMessage | None = None
        if self.status_in_order and self._status_since_latest and start < len(self.history):
            full, public = self._status_at_latest
            before = public if sink.restricted else full
            if before is not None:
                status, after = before, status
        if status is not None:
            sink.write(self._frame(status, compressed))
        for chunk in self._history_chunks(flt, start, reset):
            if sink.write(self._frame(chunk, compressed), backfill=True) is False:
                break  # it takes nothing more (behind, or closing)
        if after is not None and not sink.behind:
            sink.write(self._frame(after, compressed))
        if sink.behind:
            return False  # cut off already; its viewer is closing
        self._subscribers.join(sink, flt)
        self.demand.join()
        return True

    def unsubscribe(self, sink: Sink) -> bool:
        """End a subscription; False if ``sink`` was not subscribed."""
        if not self._subscribers.leave(sink):
            return False
        self.demand.leave()
        return True

    def narrow(self, sink: Sink, flt: InterfaceFilter) -> bool:
        """Narrow a subscriber's filter to what also passes ``flt`` (its token was refreshed
        with a narrower scope), without a new status or history: its next live frame is
        filtered the new way. False if ``sink`` is not subscribed."""
        return self._subscribers.narrow(sink, flt)

    def _history_chunks(self, flt: InterfaceFilter, start: int, reset: bool) -> list[TextMessage]:
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
            if flt.is_all or not self.history:
                parts = [f.json for f in frames]
            else:
                # Each layout's selection once per backfill; remembered for the current one.
                current = self.history[-1].rows.layout
                chosen: dict[Layout, Selection] = {}
                parts = []
                for f in frames:
                    layout = f.rows.layout
                    selection = chosen.get(layout)
                    if selection is None:
                        remember = layout is current
                        selection = chosen[layout] = layout.select(flt, remember=remember)
                    parts.append(f.rows.splice(selection))
            chunks = history_messages(self.router, reset, parts, source=self.source)
            if len(self._chunk_cache) >= _CHUNK_CACHE:
                del self._chunk_cache[next(iter(self._chunk_cache))]
            self._chunk_cache[key] = chunks
        return chunks
