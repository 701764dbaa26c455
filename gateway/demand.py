"""Demand for one topic (one source of a router): whether anyone wants its data now, and a
wake-up when that may change; ``RouterDemand`` is every source's of one router.

This is the one thing a topic's producer (the poller) reads to decide whether to poll, so the
web layer only ever tells a topic's ``Demand`` what happened (a subscriber joined or left, a
REST read came in) and never talks to the producer. A topic fed from elsewhere (another
replica's poller) can provide its own ``Demand`` without the web layer noticing.

The rule (README, "What the gateway does with a router"): a router is polled while it has a
websocket subscriber, or a REST read within the last ``linger`` seconds, and for ``linger``
seconds after the last subscriber left.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping


class Demand:
    """Subscribers and recent REST reads of one topic, and the producer's wake-up.

    ``wanted()`` is read by the producer alone, on its own clock: while there are subscribers
    each reading renews the linger, so the linger counts from the last reading that saw one.
    ``woken`` is set whenever demand may have appeared (a subscriber joined, a REST read came
    in); the producer waits on it while idle and clears it when it looks.
    """

    __slots__ = ("_clock", "_until", "linger", "subscribers", "woken")

    def __init__(
        self,
        linger: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        woken: asyncio.Event | None = None,
    ) -> None:
        self.linger = linger
        self._clock = clock
        # Websocket subscribers of the topic; the topic counts them (join/leave).
        self.subscribers = 0
        # Clock time until which demand lasts without a subscriber (REST reads, linger).
        self._until = -1.0
        # Set when demand may have appeared; cleared by the producer when it looks (it may also
        # set it itself, to look again after a failure). Never reset by anyone else. Shared by
        # the demands of one router's sources (``woken``): their producer is one poller.
        self.woken = asyncio.Event() if woken is None else woken

    def join(self) -> None:
        """A subscriber joined: demand now, and the producer wakes if it was idle."""
        self.subscribers += 1
        self.woken.set()

    def leave(self) -> None:
        """A subscriber left; demand lingers ``linger`` seconds past the last one."""
        self.subscribers -= 1

    def touch(self) -> None:
        """A REST read: demand now and for ``linger`` seconds more."""
        self._until = max(self._until, self._clock() + self.linger)
        self.woken.set()

    def wanted(self) -> bool:
        """Whether the producer should poll now."""
        now = self._clock()
        if self.subscribers:
            self._until = now + self.linger
            return True
        return now < self._until


class RouterDemand:
    """The demand for every source of one router: its poller polls while any source is wanted,
    and each tick polls exactly the sources that are (``wants``).

    ``woken`` is the one event all the sources' ``Demand``s share (``Hub`` makes them so), so
    the poller wakes whichever source a viewer joins.
    """

    __slots__ = ("by_source", "woken")

    def __init__(self, by_source: Mapping[str, Demand]) -> None:
        """``by_source`` maps each source the router serves to its topic's demand; every one
        must share one ``woken`` event (ValueError otherwise: a viewer of a source with an
        event of its own would never wake the poller)."""
        if not by_source:
            raise ValueError("a router serves at least one source")
        events = {id(demand.woken) for demand in by_source.values()}
        if len(events) != 1:
            raise ValueError("the demands of one router's sources must share one woken event")
        self.by_source = dict(by_source)
        self.woken = next(iter(by_source.values())).woken

    def wanted(self) -> bool:
        """Whether any source is wanted (each one's linger renewed while it has subscribers)."""
        # Every source is asked, not just until one says yes: asking renews its linger.
        return any([demand.wanted() for demand in self.by_source.values()])

    def wants(self, source: str) -> bool:
        """Whether ``source`` is wanted now (False for a source the router does not serve)."""
        demand = self.by_source.get(source)
        return demand is not None and demand.wanted()
