"""Cluster mode on Redis: one poller per router for every replica, and the streams that carry its
frames to every replica's viewers.

The only module that imports the Redis client. ``Cluster`` owns what one replica runs:

- ``Link``: the connection (a client for commands and scripts, and one connection for the
  stream reader's blocking reads), a deadline on every call, and Redis's health as this replica
  sees it: a failed call backs the next ones off (full jitter), and no answer for a lease TTL
  makes the replica ``degraded`` (logged once each way; ``gateway_cluster_degraded``);
- one ``RouterLease`` per router (``gateway.cluster_lease``): who polls, demand, the lease;
- ``StreamReader``: one task with one ``XREAD BLOCK`` over every router's streams (one per
  source it serves), feeding every topic of this replica (the holder's own included: one path,
  one order everywhere). At start and after every reconnect it loads the streams' tails first,
  so a subscriber on any replica finds a warm history ring. Frames reach viewers as the holder
  encoded them.

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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.cluster_lease import Acquired, RouterLease, publish_counted
from gateway.cluster_scripts import ACQUIRE, RELEASE, TICK
from gateway.config import Settings
from gateway.core.backoff import Backoff
from gateway.core.cluster import (
    Demanded,
    Entry,
    EntryError,
    RedisUnavailable,
    RouterKeys,
    demand_member,
    entry_args,
    entry_place,
    lease_ttl_ms,
    member_source,
    meta_field,
    parse_entry,
    replica_id,
    router_keys,
    stream_maxlen,
)
from gateway.core.frames import rows_of
from gateway.core.once import FirstSeen
from gateway.core.sources import DEFAULT_SOURCE, SOURCES, Source
from gateway.history import Frame
from gateway.metrics import Metrics
from gateway.topic import Topic

__all__ = ["COMMAND_TIMEOUT", "Cluster", "Link", "StreamReader"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

COMMAND_TIMEOUT: Final = 1.0
"""Deadline of one Redis call, in seconds (shorter for routers whose lease TTL is short: at most
half the shortest TTL, so a holder gets two tries before its lease runs out)."""

READ_BLOCK: Final = 1.0
"""Seconds one ``XREAD BLOCK`` waits for new entries; its deadline is this plus a call's."""

READ_COUNT: Final = 64
"""Entries one read takes from each stream at most (a reader catching up reads again)."""

RETRY_INITIAL: Final = 0.1
"""First ceiling (seconds) of the backoff between calls after a failure: full jitter, doubling,
up to the shortest lease TTL (so Redis's return is noticed within about one TTL)."""


class Link:
    """This replica's connection to Redis, and Redis's health as this replica sees it.

    Every call is tried once, within ``timeout`` seconds (``block`` more for stream reads); a
    failure raises ``RedisUnavailable``, counts ``gateway_cluster_redis_errors_total`` and backs
    further calls off (``may_call``). ``degraded`` is true once no call has succeeded for
    ``degrade_after`` seconds. Implements ``gateway.cluster_lease.LeaseStore``.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        block: float,
        degrade_after: float,
        metrics: Metrics,
        name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.block = block
        self.degrade_after = degrade_after
        # No retries inside the client: a call is tried once; the caller decides when again.
        options: dict[str, Any] = {
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            "client_name": name,
        }
        self.commands = Redis.from_url(url, socket_timeout=timeout, **options)
        # The stream reader's own connection: its reads block for up to ``block`` seconds.
        self.reads = Redis.from_url(
            url, socket_timeout=block + timeout, single_connection_client=True, **options
        )
        self._acquire = self.commands.register_script(ACQUIRE)
        self._tick = self.commands.register_script(TICK)
        self._release = self.commands.register_script(RELEASE)
        self._clock = clock
        self._errors = metrics.cluster_redis_errors
        self._degraded_gauge = metrics.cluster_degraded
        self._degraded_gauge.set(0)
        # Health, changed only by calls' outcomes (all on the event loop): whether the last
        # call succeeded, when one last did, and when the next may be tried after failures.
        self.healthy = True
        self._last_ok = clock()
        self._retry_at = -1.0
        self._backoff = Backoff(RETRY_INITIAL, max(RETRY_INITIAL, degrade_after))
        self._degraded = False

    # -- health -------------------------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        """Whether Redis has not answered for ``degrade_after`` seconds (looked at now)."""
        self.check()
        return self._degraded

    def may_call(self) -> bool:
        return self.healthy or self._clock() >= self._retry_at

    def retry_in(self) -> float:
        """Seconds until a call may be tried again (0 when it may now)."""
        return 0.0 if self.may_call() else self._retry_at - self._clock()

    def check(self) -> None:
        """Enter or leave ``degraded`` as time and outcomes say; logged once each way."""
        degraded = not self.healthy and self._clock() - self._last_ok >= self.degrade_after
        if degraded == self._degraded:
            return
        self._degraded = degraded
        self._degraded_gauge.set(1 if degraded else 0)
        if degraded:
            logger.warning(
                "cluster: Redis unreachable for %g s: degraded, each replica polls the routers "
                "its own viewers watch",
                self.degrade_after,
            )
        else:
            logger.warning("cluster: Redis answers again: no longer degraded")

    def _succeeded(self) -> None:
        self._last_ok = self._clock()
        if not self.healthy:
            self.healthy = True
            self._backoff.reset()
            logger.info("cluster: Redis answers again")
        self.check()

    def _failed(self, what: str, exc: BaseException) -> None:
        self._errors.inc()
        now = self._clock()
        if self.healthy or now >= self._retry_at:
            self._retry_at = now + self._backoff.next_delay()
        if self.healthy:
            self.healthy = False
            logger.warning("cluster: Redis %s failed: %s", what, _describe(exc))
        else:
            logger.debug("cluster: Redis %s failed again: %s", what, _describe(exc))
        self.check()

    async def _call(
        self, what: str, call: Callable[[], Awaitable[T]], deadline: float | None = None
    ) -> T:
        """``call()`` within the deadline; RedisUnavailable (named ``what``) when it fails."""
        try:
            async with asyncio.timeout(self.timeout if deadline is None else deadline):
                result = await call()
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(what, exc)
            raise RedisUnavailable(f"Redis {what}: {_describe(exc)}") from None
        self._succeeded()
        return result

    # -- the lease store ----------------------------------------------------------------------

    async def acquire(
        self,
        keys: RouterKeys,
        token: str,
        ttl_ms: int,
        replica: str,
        demand_ms: int,
        *,
        sources: Sequence[str] = (DEFAULT_SOURCE,),
    ) -> Acquired:
        members = [demand_member(replica, source) for source in sources]
        reply = await self._call(
            "acquire",
            lambda: self._acquire(
                keys=[keys.lease, keys.demand, keys.meta], args=[token, ttl_ms, demand_ms, *members]
            ),
        )
        taken, now_ms, flat, demanded = reply
        meta = dict(zip(flat[::2], flat[1::2], strict=True))
        seqs = [int(value) for field, value in meta.items() if field.split(b":")[0] == b"seq"]
        statuses: dict[str, bytes] = {
            source: status
            for source in SOURCES
            if (status := meta.get(meta_field("status", source).encode()))
        }
        return Acquired(
            int(taken) == 1,
            int(now_ms),
            max(seqs) if seqs else None,
            statuses.get(DEFAULT_SOURCE),
            statuses=statuses,
            wanted=_sources_of(demanded),
        )

    async def tick(
        self,
        keys: RouterKeys,
        token: str,
        ttl_ms: int,
        replica: str,
        demand_ms: int,
        maxlen: int,
        entries: Sequence[Entry],
        *,
        sources: Sequence[str] = (DEFAULT_SOURCE,),
    ) -> Demanded:
        wanted = [demand_member(replica, source) for source in sources] if demand_ms else []
        others = [
            demand_member(replica, s) for s in SOURCES if demand_member(replica, s) not in wanted
        ]
        args: list[str | bytes | int] = [token, ttl_ms, demand_ms, maxlen, len(wanted), len(others)]
        args += wanted
        args += others
        for entry in entries:
            args.extend(entry_place(entry))
            args.extend(entry_args(entry))
        reply = await self._call(
            "tick",
            lambda: self._tick(keys=[keys.lease, keys.demand, keys.meta, *keys.streams], args=args),
        )
        if not isinstance(reply, list):
            return Demanded(int(reply))
        return Demanded(len(reply), _sources_of(reply))

    async def release(
        self,
        keys: RouterKeys,
        token: str,
        replica: str,
        maxlen: int,
        status: Entry | Sequence[Entry] | None,
    ) -> bool:
        members = [demand_member(replica, source) for source in SOURCES]
        args: list[str | bytes | int] = [token, maxlen, len(members), *members]
        statuses = [] if status is None else [status] if isinstance(status, Entry) else status
        for entry in statuses:
            _, data, published, _ = entry_args(entry)
            args += [*entry_place(entry), data, published]
        reply = await self._call(
            "release",
            lambda: self._release(
                keys=[keys.lease, keys.demand, keys.meta, *keys.streams], args=args
            ),
        )
        return int(reply) == 1

    async def withdraw(self, keys: RouterKeys, replica: str) -> None:
        members = [demand_member(replica, source) for source in SOURCES]
        await self._call("demand withdrawal", lambda: self.commands.zrem(keys.demand, *members))

    async def status(self, keys: RouterKeys) -> bytes | None:
        """The router's interfaces status JSON in Redis, if any (``statuses`` has them all)."""
        return (await self.statuses(keys)).get(DEFAULT_SOURCE)

    async def statuses(self, keys: RouterKeys) -> dict[str, bytes]:
        """The router's current status JSON in Redis, per source that has one."""
        fields = [meta_field("status", source) for source in SOURCES]
        values = await self._call("status read", lambda: self.commands.hmget(keys.meta, fields))
        return {
            source: value
            for source, value in zip(SOURCES, values, strict=True)
            if isinstance(value, bytes) and value
        }

    # -- the stream reader's calls ------------------------------------------------------------

    async def tail(
        self, keys: RouterKeys, count: int, source: str = DEFAULT_SOURCE
    ) -> tuple[list[Any], bytes | None]:
        """The newest ``count`` entries of the stream of a router's ``source`` (newest first)
        and its status, read together (one transaction)."""

        async def read() -> list[Any]:
            async with self.commands.pipeline(transaction=True) as pipe:
                pipe.xrevrange(keys.stream_of(source), count=count)
                pipe.hget(keys.meta, meta_field("status", source))
                return list(await pipe.execute())

        entries, status = await self._call("stream load", read)
        return list(entries), status or None

    async def read(self, ids: Mapping[str, bytes], count: int) -> list[Any]:
        """``XREAD BLOCK`` after ``ids`` (stream key to last id seen)."""
        block_ms = round(self.block * 1000)
        streams: dict[Any, Any] = dict(ids)
        reply = await self._call(
            "stream read",
            lambda: self.reads.xread(streams, count=count, block=block_ms),
            deadline=self.block + self.timeout,
        )
        return list(reply or [])

    async def close(self) -> None:
        for client in (self.reads, self.commands):
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(self.timeout):
                    await client.aclose()


def _sources_of(members: Sequence[bytes | str]) -> frozenset[str]:
    """The sources that demand entries (``demand_member``) want."""
    return frozenset(member_source(m.decode() if isinstance(m, bytes) else m) for m in members)


def _describe(exc: BaseException) -> str:
    """An error in one line: its type and message (Redis errors name host and port, never a
    password)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
    return f"{kind}: {text}" if text else kind


def frame_of(entry: Entry, router: str, source: str = DEFAULT_SOURCE) -> Frame:
    """A topic frame from a traffic entry of the stream of ``router``'s ``source``: its JSON as
    it is, parsed once for filters and REST.

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
    return Frame(entry.seq, ts, data, entry.data)


class StreamReader:
    """One task that feeds every topic of this replica from the routers' streams (one per router
    and source).

    Owned by ``Cluster``. The last entry id read from each stream is kept here; it is reset
    from the streams' tails at start and after every failed call (a reconnect: Redis may have
    restarted and lost the streams). Entries of a router whose lease polls for itself
    (``feeds_topic`` false) are passed over.
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
                    self._feed(router, source, fields, now)

    async def _load(self, router: str, source: Source) -> None:
        """The stream's tail into the topic (frames it lacks), its status first."""
        keys = self._keys[router]
        entries, status = await self._link.tail(keys, stream_maxlen(self._history), source)
        self._ids[keys.stream_of(source)] = entries[0][0] if entries else b"0-0"
        lease = self._leases[router]
        if not lease.feeds_topic:
            return
        if status is not None:
            lease.show_status(status)
        frames: list[Entry] = []
        for _, fields in entries:
            entry = self._parse(router, fields)
            if entry is not None and entry.kind == "traffic":
                frames.append(entry)
                if len(frames) == self._history:
                    break
        for entry in reversed(frames):
            self._traffic(router, source, entry)

    def _feed(self, router: str, source: Source, fields: Mapping[bytes, bytes], now: float) -> None:
        entry = self._parse(router, fields)
        if entry is None:
            return
        if entry.kind == "traffic":
            self._lag.observe(max(0.0, now - entry.published))
        lease = self._leases[router]
        if not lease.feeds_topic:
            return
        if entry.kind == "status":
            lease.show_status(entry.data)
        else:
            self._traffic(router, source, entry)

    def _traffic(self, router: str, source: Source, entry: Entry) -> None:
        topic = self._topics[router][source]
        latest = topic.latest
        if latest is not None and entry.seq is not None and entry.seq <= latest.seq:
            return  # had it already (a reload), or older than what viewers saw: never backwards
        try:
            frame = frame_of(entry, router, source)
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
