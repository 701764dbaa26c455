"""A holder's outbox: what it appends to its router's streams at its next tick.

While this replica holds a router's lease its poller's frames and statuses wait here, oldest
first, for the lease's next tick (``TICK`` appends them). Each status carries its position
among its source's frames (see ``gateway.core.cluster.StatusMark``): the seq the next frame of
that source gets, from the takeover's floor (``takeover_seq``) or past the last frame appended.
The lease (``gateway.cluster_lease.RouterLease``) decides what may be published; this keeps
the entries. No Redis client and no task here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Final

import orjson

from gateway.core.cluster import Entry
from gateway.core.messages import status_frame
from gateway.core.sources import Source
from gateway.metrics import Metrics

__all__ = ["PENDING", "Outbox"]

PENDING: Final = 32
"""Entries a holder keeps for its next tick. Normally one or two wait; more means Redis is not
answering, and the lease runs out before this fills (the oldest are dropped first)."""


class Outbox:
    """A holder's entries for its next tick (``pending``) and the positions of its statuses.
    ``metrics`` counts the frames it encodes; ``wall`` (Unix time) stamps each entry."""

    __slots__ = ("_appended", "_metrics", "_wall", "pending", "seq_floor")

    def __init__(self, metrics: Metrics, wall: Callable[[], float]) -> None:
        self._metrics = metrics
        self._wall = wall
        # The first seq after the takeover (``takeover_seq``); the poller's next_seq uses it.
        # Set by the lease when it takes the lease.
        self.seq_floor = 0
        # The seq of the last frame of each source this replica appended as holder: with the
        # floor, the position of its next status (``position``).
        self._appended: dict[Source, int] = {}
        # What the poller published since the last tick, oldest first: sent by the next tick
        # (and kept when it fails), cleared by the lease when it is lost or released.
        self.pending: deque[Entry] = deque(maxlen=PENDING)

    def traffic(self, frame: dict[str, object], source: Source) -> None:
        """A frame of ``source`` the poller made, encoded once, for the next tick."""
        seq = frame["seq"]
        assert isinstance(seq, int)
        self._appended[source] = seq
        self._metrics.frame_encode.inc()
        data = orjson.dumps(frame)
        self.pending.append(Entry("traffic", data, self._wall(), seq, source))

    def status(self, status: dict[str, object], source: Source) -> None:
        """A status of ``source`` for the next tick, at its position."""
        data = orjson.dumps(status)
        entry = Entry("status", data, self._wall(), self.position(source), source)
        self.pending.append(entry)

    def sent(self, entries: Iterable[Entry]) -> None:
        """``entries`` (what a tick took from ``pending``) reached the streams: those still
        waiting go (a full queue dropped its oldest meanwhile)."""
        for entry in entries:
            if self.pending and self.pending[0] is entry:
                self.pending.popleft()

    def idle(self, router: str, sources: Iterable[Source]) -> list[Entry]:
        """An ``idle`` status of each of ``sources`` of ``router``, at its position: what a
        holder that nobody needs any more appends as it gives the lease up."""
        now = self._wall()
        return [
            Entry(
                "status",
                orjson.dumps(status_frame(router, "idle", None, now, source=source)),
                now,
                self.position(source),
                source,
            )
            for source in sources
        ]

    def position(self, source: Source) -> int:
        """The position of this holder's next status of ``source``: the seq its next frame
        gets (the takeover floor, or past the last frame it appended)."""
        return max(self.seq_floor, self._appended.get(source, -1) + 1)
