"""This replica's link to Redis: the client, a deadline on every call, and Redis's health.

The only module that imports the Redis client. ``Link`` holds a client for commands and scripts
(``gateway.cluster_scripts``) and one connection for the stream reader's blocking reads; every
call is tried once within its deadline. A failed call backs the next ones off (full jitter),
and no answer for a lease TTL makes the replica ``degraded`` (logged once each way;
``gateway_cluster_degraded``). It is the leases' store (``gateway.cluster_store.LeaseStore``)
and the stream reader's (``gateway.cluster_stream``) way to Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.cluster_scripts import ACQUIRE, RELEASE, TICK
from gateway.cluster_store import Acquired
from gateway.core.backoff import Backoff
from gateway.core.cluster import (
    Demanded,
    Entry,
    RedisUnavailable,
    RouterKeys,
    StoredStatus,
    demand_member,
    entry_args,
    entry_place,
    member_source,
    meta_field,
    parse_status_at,
)
from gateway.core.sources import DEFAULT_SOURCE, SOURCES
from gateway.metrics import Metrics

__all__ = ["RETRY_INITIAL", "Link"]

# The cluster's log: its lines keep the one name operators filter on, whichever module logs.
logger = logging.getLogger("gateway.cluster")

T = TypeVar("T")

RETRY_INITIAL: Final = 0.1
"""First ceiling (seconds) of the backoff between calls after a failure: full jitter, doubling,
up to the shortest lease TTL (so Redis's return is noticed within about one TTL)."""


class Link:
    """This replica's connection to Redis, and Redis's health as this replica sees it.

    Every call is tried once, within ``timeout`` seconds (``block`` more for stream reads); a
    failure raises ``RedisUnavailable``, counts ``gateway_cluster_redis_errors_total`` and backs
    further calls off (``may_call``). ``degraded`` is true once no call has succeeded for
    ``degrade_after`` seconds. Implements ``gateway.cluster_store.LeaseStore``.
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

        def field(name: str, source: str) -> bytes:
            return meta_field(name, source).encode()

        seqs = [int(value) for field, value in meta.items() if field.split(b":")[0] == b"seq"]
        statuses: dict[str, StoredStatus] = {
            source: StoredStatus(status, parse_status_at(meta.get(field("status_at", source))))
            for source in SOURCES
            if (status := meta.get(field("status", source)))
        }
        interfaces = statuses.get(DEFAULT_SOURCE)
        return Acquired(
            int(taken) == 1,
            int(now_ms),
            max(seqs) if seqs else None,
            None if interfaces is None else interfaces.data,
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
            _, data, published, seq = entry_args(entry)
            args += [*entry_place(entry), data, published, seq]
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
        stored = (await self.statuses(keys)).get(DEFAULT_SOURCE)
        return None if stored is None else stored.data

    async def statuses(self, keys: RouterKeys) -> dict[str, StoredStatus]:
        """The router's current status in Redis (JSON and mark), per source that has one."""
        fields = [meta_field(name, s) for s in SOURCES for name in ("status", "status_at")]
        values = await self._call("status read", lambda: self.commands.hmget(keys.meta, fields))
        return {
            source: StoredStatus(value, parse_status_at(at if isinstance(at, bytes) else None))
            for source, value, at in zip(SOURCES, values[::2], values[1::2], strict=True)
            if isinstance(value, bytes) and value
        }

    # -- the stream reader's calls ------------------------------------------------------------

    async def tail(
        self, keys: RouterKeys, count: int, source: str = DEFAULT_SOURCE
    ) -> tuple[list[Any], StoredStatus | None]:
        """The newest ``count`` entries of the stream of a router's ``source`` (newest first)
        and its current status, read together (one transaction)."""

        async def read() -> list[Any]:
            async with self.commands.pipeline(transaction=True) as pipe:
                pipe.xrevrange(keys.stream_of(source), count=count)
                pipe.hmget(keys.meta, meta_field("status", source), meta_field("status_at", source))
                return list(await pipe.execute())

        entries, (status, at) = await self._call("stream load", read)
        stored = StoredStatus(status, parse_status_at(at)) if status else None
        return list(entries), stored

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
