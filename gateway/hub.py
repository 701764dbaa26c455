"""The broadcast hub: every topic by router id and source, every connected viewer, and the
heartbeat.

Topics (``gateway.topic``) fan prebuilt frames out to their subscribers; sinks
(``gateway.sink``) write them without waiting. The hub is the one registry of connected
viewers, subscribed or not (``connect`` / ``disconnect``), as each topic is the one registry of
its subscribers. Keepalive costs the hot path nothing: see ``Hub.heartbeat``.

Both registries add and remove the sink itself rather than hand out an unsubscribe handle: a
handle (a ``functools.partial`` and its arguments) costs about 280 bytes per connection, 2% of
a viewer's whole footprint (about 14 KiB), and the sink already identifies its entry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from gateway.core.sources import DEFAULT_SOURCE, Source
from gateway.demand import Demand
from gateway.sink import Sink
from gateway.topic import Topic, encode_message
from gateway.wire import PING


class Hub:
    """Every topic, by router id and source; every connected viewer; the heartbeat that checks
    idle viewers and feeds their pages' watchdogs."""

    def __init__(
        self,
        routers: Iterable[str],
        history: int,
        *,
        sources: Mapping[str, Sequence[Source]] | None = None,
        demand: Callable[..., Demand] = Demand,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """One topic per router id and source it serves (``sources``: router id -> its sources;
        a router not in it serves ``interfaces`` only), each keeping ``history`` frames and its
        own ``demand(woken=...)``: the demands of one router's sources share one ``woken``
        event, as they have one producer.

        ``clock`` (monotonic seconds) times the heartbeat and the topics' writes, which it
        compares; ``wall`` (Unix seconds) is what a subscribe's ``history_seconds`` counts back
        from. The demand has a clock of its own: it is its producer's.
        """
        self._clock = clock
        served = sources or {}
        # Router id -> source -> topic, in the order of each router's sources.
        self.sources: dict[str, dict[Source, Topic]] = {}
        for router in routers:
            woken = asyncio.Event()
            self.sources[router] = {
                source: Topic(
                    router,
                    history,
                    source=source,
                    demand=demand(woken=woken),
                    clock=clock,
                    wall=wall,
                )
                for source in served.get(router, (DEFAULT_SOURCE,))
            }
        # Router id -> its interfaces topic (every router that serves them): what a client of
        # the protocol before sources existed subscribes to.
        self.topics: dict[str, Topic] = {
            router: by_source[DEFAULT_SOURCE]
            for router, by_source in self.sources.items()
            if DEFAULT_SOURCE in by_source
        }
        # Every connected viewer's sink, subscribed or not; heartbeat() looks at all of them.
        # A dict used as an ordered set (see topic._Bucket). Viewers join with connect() and
        # leave with disconnect(), from their connection's handler.
        self._sinks: dict[Sink, None] = {}
        # Monotonic time of the previous heartbeat() (of start-up, before the first one).
        self._last_beat = clock()

    def topic(self, router: str, source: str) -> Topic | None:
        """The topic of ``source`` of ``router``; None when there is no such router or it does
        not serve that source."""
        for served, topic in self.sources.get(router, {}).items():
            if served == source:
                return topic
        return None

    def every_topic(self) -> Iterator[Topic]:
        """Every topic, each once."""
        seen = {id(topic): topic for topic in self.topics.values()}
        for by_source in self.sources.values():
            for topic in by_source.values():
                seen.setdefault(id(topic), topic)
        return iter(seen.values())

    # -- connected viewers ----------------------------------------------------------------------

    def connect(self, sink: Sink) -> None:
        """Count a newly connected viewer in: the heartbeat, the connection limit and the
        shutdown see it until ``disconnect``."""
        self._sinks[sink] = None

    def disconnect(self, sink: Sink) -> None:
        """Count a viewer out (its connection ended); a sink not connected is ignored."""
        self._sinks.pop(sink, None)

    @property
    def connections(self) -> int:
        """How many viewers are connected."""
        return len(self._sinks)

    def connected(self) -> list[Sink]:
        """Every connected viewer, oldest first (a copy: safe to disconnect while iterating)."""
        return list(self._sinks)

    # -- keepalive ------------------------------------------------------------------------------

    def heartbeat(self, now: float) -> None:
        """Once per heartbeat period: check idle viewers are alive and feed their watchdogs.

        A viewer that was written a traffic frame within the last half period needs nothing:
        the frames feed its page's watchdog (two periods of silence), and its peer's liveness
        is the kernel's business (``TCP_USER_TIMEOUT`` on data we send anyway: a peer that
        stops acknowledging it is dropped), as stalling is the slow-consumer rule's. Keepalive
        thus costs nothing per traffic frame. Every other viewer gets one write, the same bytes
        for all: a websocket ping and the ``heartbeat`` message (``ts``: ``now``, Unix seconds).
        A viewer pinged at the previous beat that has sent nothing since (not even the pong) is
        dead and dropped. Each topic also drops the histories it kept encoded for a burst of
        subscribers.

        An exception from one viewer does not cost the others their heartbeat: the pass goes on,
        and the first such exception is raised at its end (for the caller to log).
        """
        for topic in self.every_topic():
            topic.forget_backfills()
        mono = self._clock()
        fresh_after = mono - (mono - self._last_beat) / 2
        self._last_beat = mono
        frame = PING + encode_message({"type": "heartbeat", "ts": round(now, 3)})
        failure: Exception | None = None
        for sink in list(self._sinks):
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
