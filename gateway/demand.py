"""Demand for one topic: whether anyone wants its data now, and a wake-up when that may change.

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
from collections.abc import Callable


class Demand:
    """Subscribers and recent REST reads of one topic, and the producer's wake-up.

    ``wanted()`` is read by the producer alone, on its own clock: while there are subscribers
    each reading renews the linger, so the linger counts from the last reading that saw one.
    ``woken`` is set whenever demand may have appeared (a subscriber joined, a REST read came
    in); the producer waits on it while idle and clears it when it looks.
    """

    __slots__ = ("_clock", "_until", "linger", "subscribers", "woken")

    def __init__(self, linger: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.linger = linger
        self._clock = clock
        # Websocket subscribers of the topic; the topic counts them (join/leave).
        self.subscribers = 0
        # Clock time until which demand lasts without a subscriber (REST reads, linger).
        self._until = -1.0
        # Set when demand may have appeared; cleared by the producer when it looks (it may also
        # set it itself, to look again after a failure). Never reset by anyone else.
        self.woken = asyncio.Event()

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
