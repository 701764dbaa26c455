"""Cluster mode on Redis: one poller per router for every replica, and the streams that carry its
frames to every replica's viewers.

``Cluster`` owns what one replica runs, each part in a module of its own:

- ``Link`` (``gateway.cluster_link``, the only module that imports the Redis client): the
  connection (a client for commands and scripts, and one connection for the stream reader's
  blocking reads), a deadline on every call, and Redis's health as this replica sees it: a
  failed call backs the next ones off (full jitter), and no answer for a lease TTL makes the
  replica ``degraded`` (logged once each way; ``gateway_cluster_degraded``);
- one ``RouterLease`` per router (``gateway.cluster_lease``): who polls, demand, the lease
  (its poller's gate in ``gateway.cluster_gate``, a holder's entries for its next tick in
  ``gateway.cluster_outbox``, the statuses its topics show, in order, in
  ``gateway.cluster_statuses``);
- ``StreamReader`` (``gateway.cluster_stream``): one task with one ``XREAD BLOCK`` over every
  router's streams (one per source it serves), feeding every topic of this replica (the
  holder's own included: one path, one order everywhere). At start and after every reconnect it
  loads the streams' tails first, so a subscriber on any replica finds a warm history ring.
  Frames reach viewers as the holder encoded them.

``/healthz`` and ``/readyz`` never look at any of this: Redis being away is no reason to restart
or unroute a replica, whose viewers stay connected (see README, "Cluster mode").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from typing import Final

from gateway.cluster_lease import RouterLease
from gateway.cluster_link import Link
from gateway.cluster_stream import StreamReader
from gateway.config import Settings
from gateway.core.cluster import lease_ttl_ms, replica_id, router_keys
from gateway.core.sources import Source
from gateway.metrics import Metrics
from gateway.topic import Topic

__all__ = ["COMMAND_TIMEOUT", "Cluster", "Link", "StreamReader"]

logger = logging.getLogger(__name__)

COMMAND_TIMEOUT: Final = 1.0
"""Deadline of one Redis call, in seconds (shorter for routers whose lease TTL is short: at most
half the shortest TTL, so a holder gets two tries before its lease runs out)."""

READ_BLOCK: Final = 1.0
"""Seconds one ``XREAD BLOCK`` waits for new entries; its deadline is this plus a call's."""


class Cluster:
    """What one replica runs in cluster mode: the link, a lease per router, the stream reader.

    Built before the pollers (each takes its lease's ``gate`` and the lease as publisher, then
    is attached as ``lease.poller``). ``start()`` starts the tasks without waiting for Redis (a
    replica serves, and its probes answer, whatever Redis does). ``release()`` is step 3 of the
    shutdown (leases given up, bounded); ``close()`` ends the reader and the connections.
    """

    def __init__(
        self,
        settings: Settings,
        topics: Mapping[str, Mapping[Source, Topic]],
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        replica: str | None = None,
    ) -> None:
        poll, prefix = settings.poll, settings.cluster.key_prefix
        self.replica = replica or replica_id(
            socket.gethostname(), os.getpid(), secrets.token_hex(3)
        )
        ttls = [
            lease_ttl_ms(r.effective_interval(poll), r.effective_timeout(poll))
            for r in settings.routers
        ]
        self.link = Link(
            settings.cluster.redis_url,
            timeout=min(COMMAND_TIMEOUT, min(ttls) / 2000),
            block=READ_BLOCK,
            degrade_after=max(ttls) / 1000,
            metrics=metrics,
            name=self.replica,
            clock=clock,
        )
        self.leases = {
            r.id: RouterLease(
                r,
                poll,
                topics[r.id],
                self.link,
                metrics,
                replica=self.replica,
                keys=router_keys(prefix, r.id),
                clock=clock,
                wall=wall,
            )
            for r in settings.routers
        }
        self.reader = StreamReader(
            self.link, topics, self.leases, metrics, prefix=prefix, history=poll.history, wall=wall
        )
        # The reader's task: created by start(), cancelled and awaited by close().
        self._reader_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        logger.info("cluster mode: replica %s", self.replica)
        for lease in self.leases.values():
            lease.start()
        if self._reader_task is None:
            self._reader_task = asyncio.create_task(self.reader.run(), name="cluster:reader")

    async def release(self) -> None:
        """Give up every lease this replica holds, at once (each bounded by a call's deadline),
        so other replicas take over within an interval rather than a lease TTL."""
        await asyncio.gather(*(lease.shutdown() for lease in self.leases.values()))

    async def close(self) -> None:
        task, self._reader_task = self._reader_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.link.close()
