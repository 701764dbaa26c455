"""One router's lease in cluster mode: which replica polls it, and where its frames go.

Each replica runs one ``RouterLease`` per router (one task), whatever sources the router
serves: one poller per router for the cluster. Demand is per source (a replica announces the
sources its viewers watch); the holder polls each source some replica wants, and appends each
source's frames and statuses to that source's stream. Its role is one of:

- ``idle``: this replica does not poll the router. When it has local demand (the topic's
  ``Demand``: subscribers, REST reads, linger) it tries every interval to take the lease
  (``ACQUIRE``: announce the demand, ``SET NX``), so a dead holder's lease is taken within one
  lease TTL plus one interval.
- ``holder``: it holds the lease and its poller polls. Every tick (``TICK``) renews the lease,
  appends what the poller published to the router's stream (every replica's reader feeds its
  topic from there, this one's included), keeps this replica's demand fresh and counts the
  replicas with demand; at zero it writes an ``idle`` status and releases the lease. A tick
  that finds the lease gone stops polling at once and appends nothing; so does a lease this
  replica could not renew within its lifetime.
- ``local``: Redis has been unreachable for a lease TTL (the store is ``degraded``) and the
  router has local demand: the poller polls and publishes straight to the topic, its statuses
  marked ``"degraded": true``. When Redis answers again the replica competes for the lease;
  unless it wins, it stops polling and shows the stream's status again.

Statuses from Redis reach the topics in order: ``gateway.cluster_statuses.ShownStatuses`` keeps
what each topic showed; the lease tells it when the stream feeds the topics and when this
replica polls for itself.

The poller sees the lease through two seams: ``gate`` (``gateway.cluster_gate``: poll while
``wanted()``) and the lease itself as its publisher (``traffic``, ``status``, ``next_seq``; a
holder keeps what it publishes in its ``gateway.cluster_outbox.Outbox`` for the next tick).
The lease's steps decide its role and make its Redis calls. Redis is reached only through
``LeaseStore`` (``gateway.cluster_store``; ``gateway.cluster_link.Link`` in production), so this
module imports no Redis client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Final, Literal

from gateway.cluster_gate import Gate, PollerState
from gateway.cluster_outbox import Outbox
from gateway.cluster_statuses import ShownStatuses
from gateway.cluster_store import Acquired, LeaseStore
from gateway.config import PollSettings, RouterSettings
from gateway.core.cluster import (
    RedisUnavailable,
    RouterKeys,
    StoredStatus,
    lease_ttl_ms,
    stream_maxlen,
    takeover_seq,
)
from gateway.core.sources import DEFAULT_SOURCE, Source
from gateway.demand import RouterDemand
from gateway.faults import UnexpectedErrors
from gateway.history import Frame
from gateway.metrics import Metrics
from gateway.topic import Topic

logger = logging.getLogger(__name__)

Role = Literal["idle", "holder", "local"]

RENEW_AFTER: Final = 1.5
"""Intervals after the last renewal at which a holder renews without anything to publish: each
published frame renews the lease anyway, so a polling holder sends one script per poll; a
holder whose router is down still renews well within the TTL (two intervals plus the timeout)."""


def publish_counted(topic: Topic, metrics: Metrics, frame: Frame | dict[str, object]) -> None:
    """Publish a traffic frame to ``topic`` (a ``Frame`` from a stream, skipped when its seq is
    not above the topic's latest; or a frame dict, encoded once) and count what it cost."""
    encodes, dropped = topic.encodes, topic.frames_dropped
    written = topic.publish_frame(frame) if isinstance(frame, Frame) else topic.publish(frame)
    if written is None:
        return
    if topic.encodes != encodes:
        metrics.frame_encode.inc(topic.encodes - encodes)
    metrics.frames_sent.inc(written)
    if topic.frames_dropped != dropped:
        metrics.frames_dropped.inc(topic.frames_dropped - dropped)


class RouterLease:
    """One router's lease on this replica: the task that takes, renews and releases it, and the
    publisher its poller writes to. ``poller`` is attached after construction (the poller needs
    the gate first). ``start()`` once; ``shutdown()`` releases a held lease (bounded)."""

    def __init__(
        self,
        router: RouterSettings,
        poll: PollSettings,
        topics: Topic | Mapping[Source, Topic],
        store: LeaseStore,
        metrics: Metrics,
        *,
        replica: str,
        keys: RouterKeys,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.router = router.id
        self.interval = router.effective_interval(poll)
        self.ttl_ms = lease_ttl_ms(self.interval, router.effective_timeout(poll))
        self.maxlen = stream_maxlen(poll.history)
        # The router's topics by source (a single topic: its interfaces).
        self.topics: dict[Source, Topic] = (
            {topics.source: topics} if isinstance(topics, Topic) else dict(topics)
        )
        self.topic = self.topics.get(DEFAULT_SOURCE) or next(iter(self.topics.values()))
        self.demand = RouterDemand({s: t.demand for s, t in self.topics.items()})
        self.keys = keys
        self.replica = replica
        self.poller: PollerState | None = None
        self.gate = Gate(self)
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._wall = wall
        self.role: Role = "idle"
        # The lease's value while held; a new one per attempt, so a lease this replica lost and
        # took again is told apart from the old one.
        self._token: str | None = None
        self._attempts = 0
        # Monotonic time of the last renewal's sending, and when the lease may have run out
        # (counted from the sending: Redis set it later, so it runs out later than this).
        self._renewed_at = -math.inf
        self._lease_until = -math.inf
        # What the poller published while holding, for the next tick, and where the next
        # status stands (the takeover's seq floor). Its pending entries are cleared when the
        # lease is lost or released.
        self._outbox = Outbox(metrics, wall)
        # Whether this replica's demand is in Redis (it is withdrawn once demand ends), and for
        # which sources (as the last acquire or tick sent them).
        self._announced = False
        self._announced_sources: frozenset[str] = frozenset()
        # The sources some replica wants, as the last acquire or tick said (a holder polls
        # them, besides what its own viewers want).
        self.wanted_anywhere: frozenset[str] = frozenset()
        # Whether the last step saw local demand; when the step ran.
        self._wanted = False
        self._stepped_at = -math.inf
        # Set by the topics' demand (a subscriber joined, a REST read) and by the publisher
        # (entries to send): the lease's task looks again. Only that task clears it.
        self.wake = self.demand.woken
        self._unexpected = UnexpectedErrors(logger, f"{router.id}: cluster lease")
        self._held = metrics.cluster_lease_held.labels(router.id)
        self._changes = metrics.cluster_lease_changes
        self._held.set(0)
        # The lease's task: created by start(), cancelled and awaited by shutdown().
        self._task: asyncio.Task[None] | None = None
        # What the topics show of the router's statuses (each ``idle`` from here on, until the
        # stream's reader finds the router's status in Redis).
        self.statuses = ShownStatuses(router.id, self.topics, wall)

    @property
    def polling(self) -> bool:
        """Whether this replica's poller should poll the router now."""
        if self.role == "holder":
            return self._clock() < self._lease_until
        return self.role == "local"

    @property
    def feeds_topic(self) -> bool:
        """Whether the stream feeds the topic: not while the poller publishes to it itself."""
        return self.role != "local"

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"lease:{self.router}")

    async def shutdown(self) -> None:
        """Stop the task and give a held lease up, so another replica polls at once (step 3 of
        the shutdown; bounded by the store's deadline). The poller stops polling from here on."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.role == "holder" and self._token is not None:
            token = self._token
            self._drop("released", "shutting down")
            with contextlib.suppress(RedisUnavailable):
                await self._store.release(self.keys, token, self.replica, self.maxlen, None)
        self.role = "idle"

    async def _run(self) -> None:
        while True:
            delay = self._next_step() - self._clock()
            if delay > 0:
                if self._demand_announced():
                    # More demand (a subscriber joined, a REST read) that Redis has already:
                    # it changes nothing before the next step, due within an interval. (Each
                    # used to cost a script: a Redis call per REST read on every replica but
                    # the holder.)
                    self.wake.clear()
                if not self.wake.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(None if math.isinf(delay) else delay):
                            await self.wake.wait()
                    continue  # look again: the step is due, or the wake may change nothing
            self.wake.clear()
            try:
                await self._step()
            except RedisUnavailable:
                pass  # logged by the store; a lease that is not renewed runs out by itself
            except Exception as exc:  # noqa: BLE001 - the lease outlives any bug below it
                self._unexpected.report(exc)
            else:
                self._unexpected.recovered()

    def _demand_announced(self) -> bool:
        """Whether this replica, not holding the lease, announced its demand at its last step
        and still has it, for no source more: then it announces it again, and tries the lease,
        once an interval. (A source newly wanted is announced at once: the holder starts
        polling it from its next tick.)"""
        return (
            self.role == "idle"
            and self._announced
            and self._wanted
            and self._announced_sources.issuperset(self._sources_wanted())
        )

    def _next_step(self) -> float:
        """When the task should look again (monotonic; inf: only when woken)."""
        retry = self._stepped_at + self.interval / 4
        if self.role == "holder":
            if self._outbox.pending and self._store.may_call():
                return retry
            due = min(self._renewed_at + RENEW_AFTER * self.interval, self._lease_until)
        elif self.role == "local" or self._announced or self._wanted:
            due = self._stepped_at + self.interval
        else:
            return math.inf
        return max(due, retry)

    async def _step(self) -> None:
        now = self._stepped_at = self._clock()
        wanted = self._wanted = self.demand.wanted()
        store = self._store
        if self.role == "holder" and now >= self._lease_until:
            self._drop("lost", "not renewed within its lifetime")
        if store.degraded:
            if wanted and self.role != "local":
                self._go_local()
            elif not wanted and self.role == "local":
                self._end_local(degraded=True)
            return
        if not store.may_call():
            return
        if self.role == "holder":
            if self._outbox.pending or now >= self._renewed_at + RENEW_AFTER * self.interval:
                await self._tick(wanted)
        elif wanted:
            await self._acquire()
        elif self.role == "local":
            for source, stored in (await store.statuses(self.keys)).items():
                self.statuses.keep(source, stored)
            self._end_local(degraded=False)
        elif self._announced:
            await store.withdraw(self.keys, self.replica)
            self._announced = False
            self._announced_sources = frozenset()

    # -- the lease ----------------------------------------------------------------------------

    def _sources_wanted(self) -> list[str]:
        """The sources this replica's viewers want now."""
        return [source for source in self.topics if self.demand.wants(source)]

    async def _acquire(self) -> None:
        self._attempts += 1
        token = f"{self.replica}#{self._attempts}"
        sent = self._clock()
        sources = self._sources_wanted()
        reply = await self._store.acquire(
            self.keys,
            token,
            self.ttl_ms,
            self.replica,
            self.ttl_ms,
            sources=sources,
        )
        self._announced = True
        self._announced_sources = frozenset(sources)
        self.wanted_anywhere = reply.wanted
        for source, stored in reply.statuses.items():
            self.statuses.keep(source, stored)
        if reply.taken:
            self._take(token, sent, reply)
        elif self.role == "local":
            self._end_local(degraded=False)

    def _take(self, token: str, sent: float, reply: Acquired) -> None:
        self.role = "holder"
        self._token = token
        self._renewed_at = sent
        self._lease_until = sent + self.ttl_ms / 1000
        seqs = [t.latest.seq for t in self.topics.values() if t.latest is not None]
        self._outbox.seq_floor = takeover_seq(reply.seq, max(seqs, default=None), reply.now_ms)
        self._held.set(1)
        self._changes.labels(self.router, "acquired").inc()
        logger.info("%s: this replica (%s) polls it for the cluster", self.router, self.replica)
        poller = self.poller
        if poller is not None and poller.state != "idle":
            # Polling already (for itself, or not yet stopped after a lost lease): viewers get
            # the state before the first frame of the takeover, whose seq jumps.
            for status in poller.statuses():
                self.status(status)
        self.gate.woken.set()

    async def _tick(self, wanted: bool) -> None:
        token = self._token
        assert token is not None  # a holder has one
        entries = tuple(self._outbox.pending)
        sent = self._clock()
        sources = self._sources_wanted()
        count = await self._store.tick(
            self.keys,
            token,
            self.ttl_ms,
            self.replica,
            self.ttl_ms if wanted else 0,
            self.maxlen,
            entries,
            sources=sources,
        )
        if count < 0:
            self._drop("lost", "another replica holds it, or it ran out")
            return
        self._outbox.sent(entries)
        lapsed = self._clock() >= self._lease_until
        self._renewed_at = sent
        self._lease_until = sent + self.ttl_ms / 1000
        if lapsed and self.polling:
            # Answered after the lease ran out here, renewed in time at Redis: the poller,
            # stopped meanwhile (it publishes nothing while the lease may have run out), polls
            # again.
            self.gate.woken.set()
        self._announced = wanted
        self._announced_sources = frozenset(sources if wanted else ())
        self.wanted_anywhere = count.sources
        if count == 0:
            # Nobody watches anywhere: say so, give the lease up; the poller stops at once and
            # logs out after its idle period.
            self._drop("released", "nobody watches in the cluster")
            idle = self._outbox.idle(self.router, self.topics)
            await self._store.release(self.keys, token, self.replica, self.maxlen, idle)

    def _drop(self, change: Literal["lost", "released"], why: str) -> None:
        """Stop holding (the poller stops before its next request): count and log it."""
        self.role = "idle"
        self._token = None
        self._outbox.pending.clear()
        self._lease_until = -math.inf
        self._held.set(0)
        self._changes.labels(self.router, change).inc()
        if change == "lost":
            logger.warning("%s: lease lost (%s): this replica stops polling it", self.router, why)
        else:
            logger.info("%s: lease released (%s)", self.router, why)

    # -- Redis away ---------------------------------------------------------------------------

    def _go_local(self) -> None:
        """Poll for this replica's own viewers while Redis is unreachable."""
        self.role = "local"
        logger.debug("%s: polled by this replica for itself while Redis is away", self.router)
        poller = self.poller
        if poller is not None and poller.state != "idle":
            for status in poller.statuses():
                self.statuses.show_own({**status, "degraded": True})
        self.gate.woken.set()

    def _end_local(self, *, degraded: bool) -> None:
        """Stop polling for this replica alone: local demand ended (``degraded``: Redis is
        still away, the router is idle here), or Redis answers and another replica holds the
        lease: each source's newest status from Redis replaces the degraded one when it came
        after the last one this replica showed from Redis (news of the cluster: the holder's),
        else (Redis restarted empty, or from an older save, or holds what this replica had
        seen before its own polling followed it; the holder's own is on its way) the current
        one without the mark, so that the next frame (whose seq may jump) comes right after a
        status, and no older status comes after it."""
        self.role = "idle"
        self.statuses.end_own(degraded=degraded)

    # -- statuses from Redis (shown by ``statuses``) ---------------------------------------

    def offer_status(self, source: str, stored: StoredStatus) -> None:
        """A status of ``source`` from Redis (a stream entry, or the current one in ``meta``):
        kept when it is the newest Redis gave, and shown when the stream feeds the topic and it
        comes after the last one shown from Redis (an older one, or the same again, changes
        nothing). A status of this replica's own (idle here while Redis was away) gives way
        to the same one again (Redis answers: the cluster's status stands), and otherwise
        stays, without the degraded mark."""
        self.statuses.offer(source, stored, fed=self.feeds_topic)

    def reloaded(self, source: str) -> None:
        """``source``'s stream was loaded again (Redis answers): a status of this replica's own
        that nothing from Redis replaced (Redis restarted empty) stays, without the degraded
        mark, unless this replica still polls for itself."""
        if self.feeds_topic:
            self.statuses.settle_own(source)

    # -- the poller's publisher ---------------------------------------------------------------

    def traffic(self, frame: dict[str, object]) -> None:
        """A frame the poller made: to its source's stream (holder), to the topic (local), or
        dropped."""
        if self.role == "holder":
            if self._clock() >= self._lease_until:
                return  # the lease may have run out: this replica may not publish any more
            self._outbox.traffic(frame, self.statuses.topic_of(frame).source)
            self.wake.set()
        elif self.role == "local":
            publish_counted(self.statuses.topic_of(frame), self._metrics, frame)

    def status(self, status: dict[str, object]) -> None:
        """A status change of the poller's: to its source's stream (at its position, see
        ``gateway.cluster_outbox``), to the topic marked degraded, or dropped (a poller that is not
        polling for anyone: the ``idle`` of a poller stopped by a lease that ran out, too, which
        would otherwise reach the stream should a late renewal succeed)."""
        if self.role == "holder":
            if self._clock() >= self._lease_until:
                return  # the lease may have run out: this replica may not publish any more
            self._outbox.status(status, self.statuses.topic_of(status).source)
            self.wake.set()
        elif self.role == "local":
            self.statuses.show_own({**status, "degraded": True})

    def next_seq(self, seq: int, source: str = DEFAULT_SOURCE) -> int:
        """The seq of the poller's next frame of ``source``, after ``seq``: a holder's starts
        at its takeover floor; a replica polling for itself goes on from what its viewers saw
        last."""
        if self.role == "holder":
            return max(seq + 1, self._outbox.seq_floor)
        latest = self.statuses.topic_of({"source": source}).latest
        if self.role == "local" and latest is not None:
            return max(seq + 1, latest.seq + 1)
        return seq + 1
