"""What viewers are told of a router and its sources: the router's state and each source's
status, published and logged when they change, never when they repeat.

``RouterStatus`` holds the router's state (its session: ``connecting``, ``up``, ``down``,
``idle``), its error and since when; each source's status follows it, except that a source
nobody watches is ``idle`` and a source the router refuses is ``down`` with the router's
message. A source's status goes to its topic or, in cluster mode, to the ``Publisher`` (the
router's lease). The poller (``gateway.poller.Poller``) is a ``RouterStatus``: it sets the
state as its requests go.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from gateway.config import RouterSettings
from gateway.core.messages import status_frame
from gateway.core.model import RouterState
from gateway.core.sources import Source
from gateway.metrics import Metrics
from gateway.topic import Topic

__all__ = ["Publisher", "RouterStatus"]

# The poller's log: its lines keep the one name operators filter on, whichever module logs.
logger = logging.getLogger("gateway.poller")


class Publisher(Protocol):
    """Where frames go instead of the topics (cluster mode: ``gateway.cluster_lease.RouterLease``,
    which appends them to Redis, publishes them locally, or drops them). Each frame and status
    names its source."""

    def traffic(self, frame: dict[str, object]) -> None:
        """A traffic frame of this poll."""
        ...

    def status(self, status: dict[str, object]) -> None:
        """A status change of one source."""
        ...

    def next_seq(self, seq: int, source: str) -> int:
        """The seq of ``source``'s frame after one numbered ``seq``."""
        ...


class RouterStatus:
    """One router's state and its sources' statuses, as its viewers are told them.

    ``state``, ``error`` and ``since`` are the router's (its session: ``connecting``, ``up``,
    ``down``, ``idle``); each source's status, published on its topic, follows them, except
    that a source nobody watches is ``idle`` and a source the router refuses is ``down``.
    ``topics`` is the router's topics by source; in cluster mode ``publisher`` takes the
    statuses instead. Every source's status is published once on construction.
    """

    def __init__(
        self,
        router: RouterSettings,
        topics: dict[Source, Topic],
        metrics: Metrics,
        *,
        wall: Callable[[], float],
        publisher: Publisher | None,
    ) -> None:
        self.router = router
        self.topics = topics
        # In cluster mode, where frames and statuses go instead of the topics.
        self._publisher = publisher
        self._wall = wall
        self.state: RouterState = "idle"
        self.error: str | None = None
        self.since = wall()
        # Each source's failure of its own in the last tick it was polled (a trap: the router
        # refused that request), None when it answered. Cleared when the source goes unwatched.
        self._refused: dict[Source, str | None] = dict.fromkeys(self.topics)
        # Each source's published status as (state, error, since): sources follow the router's
        # state, see source_status().
        self._statuses: dict[Source, tuple[RouterState, str | None, float]] = {}
        # Which sources the current tick polls (the ones wanted when it began).
        self._polled: frozenset[Source] = frozenset()
        self._up = metrics.router_up.labels(router.id)
        self._up.set(0)
        for source in self.topics:
            self._publish_source_status(source, force=True, since=self.since)

    def _fail(self, error: str) -> None:
        self._set_state("down", error)

    def _refuse(self, source: Source, error: str) -> None:
        """The router refused ``source``'s request alone: that source is ``down``."""
        if self._refused.get(source) != error:
            logger.warning("%s: %s: down: %s", self.router.id, source, error)
        self._refused[source] = error
        self._publish_source_status(source)

    def _set_state(self, state: RouterState, error: str | None) -> None:
        """Publish and log a change of the router's state; repeating it does nothing."""
        if (state, error) == (self.state, self.error):
            return
        if state != self.state:
            self.since = self._wall()  # a new reason for the same state keeps its "since"
        self.state, self.error = state, error
        self._up.set(1 if state == "up" else 0)
        if state == "down":
            logger.warning("%s: down: %s", self.router.id, error)
        else:
            logger.info("%s: %s", self.router.id, state)
        for source in self.topics:
            self._publish_source_status(source, since=self.since)

    def source_status(self, source: Source) -> tuple[RouterState, str | None]:
        """What viewers of ``source`` are told: the router's state, except ``idle`` for a source
        nobody watches (while the router is polled for others), and ``down`` with the router's
        message for a source whose request it refuses."""
        if self.state == "idle" or source not in self._polled:
            return "idle", None
        refused = self._refused.get(source)
        if self.state == "up" and refused is not None:
            return "down", refused
        return self.state, self.error

    def statuses(self) -> list[dict[str, object]]:
        """The current status message of every source (what a new holder of the router's lease
        shows before its first frames)."""
        return [self._status_message(source) for source in self.topics]

    def _status_message(self, source: Source) -> dict[str, object]:
        state, error, since = self._statuses[source]
        return status_frame(self.router.id, state, error, since, source=source)

    def _publish_source_status(
        self, source: Source, *, force: bool = False, since: float | None = None
    ) -> None:
        """Publish ``source``'s status when it changed. A new state's ``since`` is ``since``
        when given (the router's, when its change caused this one), else now; a new reason
        for the same state keeps its ``since``."""
        state, error = self.source_status(source)
        current = self._statuses.get(source)
        if not force and current is not None and current[:2] == (state, error):
            return
        if current is not None and current[0] == state:
            since = current[2]
        elif since is None:
            since = self._wall()
        self._statuses[source] = (state, error, since)
        status = self._status_message(source)
        if self._publisher is None:
            self.topics[source].publish_status(status)
        else:
            self._publisher.status(status)
