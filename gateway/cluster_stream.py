"""The routers' streams into this replica's topics: one task, one ``XREAD BLOCK`` for them all.

``StreamReader`` reads every router's streams (one per source it serves) through the link
(``gateway.cluster_link.Link``) and feeds every topic of this replica, the holder's own
included: one path, one order everywhere. At start and after every reconnect it loads the
streams' tails first, so a subscriber on any replica finds a warm history ring. Frames reach
viewers as the holder encoded them (``frame_of``); statuses go to the router's lease, which
shows them in order (``RouterLease.offer_status``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Final

import orjson

from gateway.cluster_lease import RouterLease, publish_counted
from gateway.cluster_link import Link
from gateway.core.cluster import (
    Entry,
    EntryError,
    RedisUnavailable,
    StoredStatus,
    parse_entry,
    router_keys,
    status_mark,
    stream_maxlen,
)
from gateway.core.frames import rows_of
from gateway.core.once import FirstSeen
from gateway.core.sources import DEFAULT_SOURCE, Source
from gateway.history import Frame
from gateway.metrics import Metrics
from gateway.topic import Topic

__all__ = ["READ_COUNT", "StreamReader", "frame_of"]

# The cluster's log: its lines keep the one name operators filter on, whichever module logs.
logger = logging.getLogger("gateway.cluster")

READ_COUNT: Final = 64
"""Entries one read takes from each stream at most (a reader catching up reads again)."""


def frame_of(
    entry: Entry, router: str, source: str = DEFAULT_SOURCE, previous: Frame | None = None
) -> Frame:
    """A topic frame from a traffic entry of the stream of ``router``'s ``source``: its JSON as
    it is for viewers of every row, parsed once and encoded row by row for filtered viewers
    (``Frame.encode``; ``previous``: the topic's latest frame, whose row layout it shares while
    the set of rows is the same).

    Raises EntryError when the JSON is not a traffic frame of ``router`` and ``source`` with the
    entry's seq.
    """
    try:
        data = orjson.loads(entry.data)
    except orjson.JSONDecodeError as exc:
        raise EntryError(f"traffic entry is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("type") != "traffic":
        raise EntryError("traffic entry does not hold a traffic frame")
    if data.get("router") != router or data.get("seq") != entry.seq:
        raise EntryError("traffic entry's frame names another router or seq")
    if data.get("source", DEFAULT_SOURCE) != source:
        raise EntryError("traffic entry's frame is of another source than its stream's")
    ts = data.get("ts")
    try:
        rows_of(data)
    except TypeError:
        raise EntryError(f"traffic entry's frame has no list of {source}") from None
    if not isinstance(ts, float):
        raise EntryError("traffic entry's frame has no float ts")
    assert entry.seq is not None  # a traffic entry has one
    try:
        return Frame.encode(data, entry.data, previous)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise EntryError(f"traffic entry's frame cannot be encoded again: {exc}") from None


class StreamReader:
    """One task that feeds every topic of this replica from the routers' streams (one per router
    and source).

    Owned by ``Cluster``. The last entry id read from each stream is kept here; it is reset
    from the streams' tails at start and after every failed call (a reconnect: Redis may have
    restarted and lost the streams). Frames of a router whose lease polls for itself
    (``feeds_topic`` false) are passed over; its statuses go to the lease all the same, which
    keeps the newest for when it stops.
    """

    def __init__(
        self,
        link: Link,
        topics: Mapping[str, Mapping[Source, Topic]],
        leases: Mapping[str, RouterLease],
        metrics: Metrics,
        *,
        prefix: str,
        history: int,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._link = link
        self._topics = topics
        self._leases = leases
        self._metrics = metrics
        self._history = history
        self._wall = wall
        self._keys = {router: router_keys(prefix, router) for router in topics}
        # Each stream this replica reads: its key (as Redis returns it: bytes) to its router and
        # source, and its key to the last entry id read.
        self._streams: dict[bytes, tuple[str, Source]] = {
            self._keys[router].stream_of(source).encode(): (router, source)
            for router, by_source in topics.items()
            for source in by_source
        }
        self._ids: dict[str, bytes] = {key.decode(): b"0-0" for key in self._streams}
        self._lag = metrics.cluster_stream_lag
        # Routers whose malformed entries were logged (once per router).
        self._bad: FirstSeen[str] = FirstSeen(len(topics) + 1)

    async def run(self) -> None:
        link = self._link
        loaded = False
        while True:
            if not link.may_call():
                await asyncio.sleep(link.retry_in())
                continue
            try:
                if not loaded:
                    for router, source in self._streams.values():
                        await self._load(router, source)
                    loaded = True
                reply = await link.read(self._ids, READ_COUNT)
            except RedisUnavailable:
                loaded = False
                continue
            now = self._wall()
            for key, entries in reply:
                found = self._streams.get(key)
                if found is None:
                    continue
                router, source = found
                for entry_id, fields in entries:
                    self._ids[key.decode()] = entry_id
                    self._feed(router, source, entry_id, fields, now)

    async def _load(self, router: str, source: Source) -> None:
        """The stream's tail into the topic, in the stream's order: the status in force before
        its last ``history`` frames (the newest status entry before them, or the current one
        in ``meta`` when the tail holds none), then those frames (those the topic lacks) and
        the statuses among them. The lease shows a status only when it is newer than the one
        shown (a reload repeats what the topic had: nothing changes then)."""
        keys = self._keys[router]
        entries, current = await self._link.tail(keys, stream_maxlen(self._history), source)
        self._ids[keys.stream_of(source)] = entries[0][0] if entries else b"0-0"
        lease = self._leases[router]
        # Newest first: the last ``history`` frames and every status among or after them.
        replay: list[tuple[bytes, Entry]] = []
        before: StoredStatus | None = None
        frames = 0
        for entry_id, fields in entries:
            entry = self._parse(router, fields)
            if entry is None:
                continue
            if frames < self._history:
                replay.append((entry_id, entry))
                frames += entry.kind == "traffic"
            elif entry.kind == "status":
                before = self._status(router, entry_id, entry)
                break
        if before is None and not any(entry.kind == "status" for _, entry in replay):
            before = current  # every status entry trimmed away: meta's precedes the tail
        if before is not None:
            lease.offer_status(source, before)
        for entry_id, entry in reversed(replay):
            if entry.kind == "status":
                status = self._status(router, entry_id, entry)
                if status is not None:
                    lease.offer_status(source, status)
            elif lease.feeds_topic:
                self._traffic(router, source, entry)
        lease.reloaded(source)

    def _feed(
        self,
        router: str,
        source: Source,
        entry_id: bytes,
        fields: Mapping[bytes, bytes],
        now: float,
    ) -> None:
        entry = self._parse(router, fields)
        if entry is None:
            return
        lease = self._leases[router]
        if entry.kind == "status":
            status = self._status(router, entry_id, entry)
            if status is not None:
                lease.offer_status(source, status)
            return
        self._lag.observe(max(0.0, now - entry.published))
        if lease.feeds_topic:
            self._traffic(router, source, entry)

    def _status(self, router: str, entry_id: bytes, entry: Entry) -> StoredStatus | None:
        """A status entry with its mark (None, reported, when its id is not one)."""
        try:
            return StoredStatus(entry.data, status_mark(entry.seq, entry_id))
        except EntryError as exc:
            self._report(router, exc)
            return None

    def _traffic(self, router: str, source: Source, entry: Entry) -> None:
        topic = self._topics[router][source]
        latest = topic.latest
        if latest is not None and entry.seq is not None and entry.seq <= latest.seq:
            return  # had it already (a reload), or older than what viewers saw: never backwards
        try:
            frame = frame_of(entry, router, source, latest)
        except EntryError as exc:
            self._report(router, exc)
            return
        publish_counted(topic, self._metrics, frame)

    def _parse(self, router: str, fields: Mapping[bytes, bytes]) -> Entry | None:
        try:
            return parse_entry(fields)
        except EntryError as exc:
            self._report(router, exc)
            return None

    def _report(self, router: str, exc: EntryError) -> None:
        if self._bad.first(router):
            logger.warning("%s: skipped a stream entry this version cannot read: %s", router, exc)
