"""What one router's topics show of its statuses on a replica in cluster mode.

Statuses from Redis reach the topics in order (``StatusMark``), whichever path brings them:
the stream (in its order) or a ``meta`` snapshot (a stream loaded again, a lease call's
answer). One is shown only when its mark is above that of the last one shown, so an older one
(a snapshot taken before the stream's last entry, a Redis that restarted from an older save)
never follows a newer one. While this replica polls for itself its own statuses are shown
instead, and the newest status Redis gives meanwhile is kept: when it stops, that one is shown
if it came after the last one shown (the holder's news), else its own stays, unmarked.

``ShownStatuses`` owns that record for one router; its lease (``gateway.cluster_lease``) says
when the stream feeds the topics and when this replica polls for itself. The decisions (which
status is newer, which one a message shows) are the pure core's (``gateway.core.cluster``).
No Redis client and no task here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from gateway.core.cluster import (
    EntryError,
    StatusMark,
    StoredStatus,
    follows,
    status_shown,
    supersedes,
)
from gateway.core.messages import status_frame
from gateway.core.sources import DEFAULT_SOURCE, Source
from gateway.topic import Topic

__all__ = ["ShownStatuses"]

# The lease's log: these lines are the router's lease's, under the name operators filter on.
logger = logging.getLogger("gateway.cluster_lease")


class ShownStatuses:
    """The statuses one router's topics show on this replica (``topics``: by source), in
    order. Shows each topic ``idle`` on construction, until a status from Redis comes, and
    makes a subscribe replay statuses in order with the frames (``Topic.status_in_order``)."""

    def __init__(
        self, router: str, topics: Mapping[Source, Topic], wall: Callable[[], float]
    ) -> None:
        self.router = router
        self.topics = topics
        self._wall = wall
        # Per source: the mark of the last status from Redis its topic showed (None: none
        # yet, or one from a replica that gives none: any status from Redis follows it); the
        # sources whose topic shows a status of this replica's own instead (degraded); and the
        # newest status Redis gave, shown or not. Written only by the methods below (the
        # stream's reader reaches them through the lease's ``offer_status``).
        self._shown: dict[str, StatusMark | None] = {}
        self._own: set[str] = set()
        self._stored: dict[str, StoredStatus] = {}
        # Until the stream's reader finds the router's status in Redis, viewers see it idle. A
        # subscribe replays statuses in order with the frames (a takeover's status comes
        # before its first frame, after the older ones).
        for source, topic in topics.items():
            topic.status_in_order = True
            topic.publish_status(status_frame(router, "idle", None, wall(), source=source))

    def topic_of(self, message: Mapping[str, object]) -> Topic:
        """The topic of the source a status or frame names (interfaces when it names none)."""
        source = message.get("source", DEFAULT_SOURCE)
        for served, topic in self.topics.items():
            if served == source:
                return topic
        raise KeyError(f"{self.router} does not serve {source!r}")

    # -- statuses from Redis ------------------------------------------------------------------

    def offer(self, source: str, stored: StoredStatus, *, fed: bool) -> None:
        """A status of ``source`` from Redis: kept when it is the newest Redis gave, and, when
        the stream feeds the topic (``fed``), shown if it comes after the last one shown from
        Redis (see ``RouterLease.offer_status``)."""
        self.keep(source, stored)
        if not fed:
            return
        if follows(self._shown.get(source), stored.mark, strict=source not in self._own):
            self._show(source, stored)
        else:
            self.settle_own(source)

    def keep(self, source: str, stored: StoredStatus) -> None:
        """Remember ``stored`` as the newest status Redis gave for ``source``, if it is."""
        if source not in self.topics:
            return
        if supersedes(self._stored.get(source), stored):
            self._stored[source] = stored

    def _show(self, source: str, stored: StoredStatus) -> None:
        """Show viewers a status from Redis; a malformed one, or one of another source than
        the stream's (or of a source this replica does not serve), is skipped."""
        try:
            status = status_shown(stored.data, self.router, source, tuple(self.topics))
        except EntryError as exc:
            logger.warning("%s: skipped %s", self.router, exc)
            return
        topic = self.topic_of(status)
        self._shown[source] = stored.mark
        self._own.discard(source)
        if status != topic.status:
            topic.publish_status(status)

    # -- this replica's own -------------------------------------------------------------------

    def show_own(self, status: dict[str, object]) -> None:
        """Show a status of this replica's own (polling for itself while Redis is away, or
        idle here meanwhile): it stands until one from Redis replaces it (``end_own``,
        ``offer``)."""
        topic = self.topic_of(status)
        self._own.add(topic.source)
        topic.publish_status(status)

    def end_own(self, *, degraded: bool) -> None:
        """This replica stops polling for itself (see ``RouterLease._end_local``): with
        ``degraded`` (Redis still away) each topic shows ``idle``, marked degraded; otherwise
        each source's newest status from Redis replaces the degraded one when it came after
        the last one shown from Redis, else the current one stays without the mark."""
        for source in self.topics:
            if degraded:
                idle = status_frame(
                    self.router, "idle", None, self._wall(), degraded=True, source=source
                )
                self.show_own(idle)
                continue
            stored = self._stored.get(source)
            if stored is not None and follows(self._shown.get(source), stored.mark, strict=True):
                self._show(source, stored)
            else:
                self.settle_own(source)

    def settle_own(self, source: str) -> None:
        """Redis answers and this replica does not poll for itself: the status of its own
        that ``source``'s topic shows stays, without the degraded mark, standing for the last
        status from Redis it followed."""
        if source not in self._own:
            return
        self._own.discard(source)
        topic = self.topic_of({"source": source})
        current = topic.status
        if current is not None and current.get("degraded"):
            topic.publish_status({k: v for k, v in current.items() if k != "degraded"})
