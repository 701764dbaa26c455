"""The lease scripts and the Redis link against a real redis-server: acquire, renew, lose,
release, demand, and every call bounded when Redis is gone or hangs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import orjson
import pytest

from gateway.cluster import Cluster, Link
from gateway.cluster_store import Acquired
from gateway.config import settings_from_dict
from gateway.core.cluster import Entry, RedisUnavailable, StatusMark, entry_id, router_keys
from gateway.core.filters import InterfaceFilter
from gateway.core.frames import traffic_frame
from gateway.core.messages import status_frame
from gateway.hub import Hub
from gateway.metrics import Metrics
from gateway.sink import Sink
from tests.support.fakes import FakeTransport
from tests.support.redis import RedisServer, free_port, redis_server
from tests.support.timing import eventually, seconds

KEYS: Final = router_keys("test", "core-1")
TTL: Final = 2000
MAXLEN: Final = 100
TRAFFIC: Final = Entry("traffic", b'{"type":"traffic","seq":41}', 1764377000.5, 41)
STATUS: Final = Entry("status", b'{"type":"status","state":"up"}', 1764377000.25)


@pytest.fixture
async def redis() -> AsyncIterator[RedisServer]:
    async with redis_server() as server:
        yield server


@pytest.fixture
async def link(redis: RedisServer) -> AsyncIterator[Link]:
    link = make_link(redis.url)
    yield link
    await link.close()


def make_link(url: str, *, timeout: float = 1.0, degrade_after: float = 5.0) -> Link:
    return Link(
        url,
        timeout=seconds(timeout),
        block=0.1,
        degrade_after=degrade_after,
        metrics=Metrics(),
        name="test-replica",
    )


async def test_a_free_lease_is_taken_by_one_replica_only(link: Link) -> None:
    """The first replica with demand takes the lease; the next one is told it is held."""
    first = await link.acquire(KEYS, "a#1", TTL, "a", TTL)
    second = await link.acquire(KEYS, "b#1", TTL, "b", TTL)
    assert first.taken
    assert not second.taken
    assert (first.seq, first.status) == (None, None)
    assert await link.commands.get(KEYS.lease) == b"a#1"
    ttl = await link.commands.pttl(KEYS.lease)
    assert 0 < ttl <= TTL
    assert abs(first.now_ms - time.time() * 1000) < seconds(5) * 1000  # Redis time, in ms


async def test_a_lease_left_under_an_earlier_token_of_this_replica_is_taken_again(
    link: Link,
) -> None:
    """An acquire that timed out at its replica but ran in Redis later left the lease under that
    replica's earlier token: its next acquire takes it (the router is polled again at once, not
    after the lease runs out); another replica's does not."""
    await link.commands.set(KEYS.lease, b"a#3", px=TTL)
    other = await link.acquire(KEYS, "b#7", TTL, "b", TTL)
    assert not other.taken
    assert await link.commands.get(KEYS.lease) == b"a#3"
    again = await link.acquire(KEYS, "a#4", TTL, "a", TTL)
    assert again.taken
    assert await link.commands.get(KEYS.lease) == b"a#4"
    assert 0 < await link.commands.pttl(KEYS.lease) <= TTL
    # Only the whole replica id counts: "a" is not "ab".
    await link.commands.set(KEYS.lease, b"ab#1", px=TTL)
    assert not (await link.acquire(KEYS, "a#5", TTL, "a", TTL)).taken


async def test_the_holder_renews_and_appends_in_one_call(link: Link) -> None:
    """A tick renews the lease, appends the entries in order, records the last seq and status,
    and counts the replicas with demand."""
    await link.acquire(KEYS, "a#1", TTL, "a", TTL)
    await link.acquire(KEYS, "b#1", TTL, "b", TTL)
    await link.commands.pexpire(KEYS.lease, 100)
    count = await link.tick(KEYS, "a#1", TTL, "a", TTL, MAXLEN, [STATUS, TRAFFIC])
    assert count == 2
    assert await link.commands.pttl(KEYS.lease) > 100
    entries: Any = await link.commands.xrange(KEYS.stream)
    assert [fields[b"type"] for _, fields in entries] == [b"status", b"traffic"]
    assert entries[1][1][b"data"] == TRAFFIC.data
    assert entries[1][1][b"seq"] == b"41"
    meta = await link.commands.hgetall(KEYS.meta)
    assert meta == {b"seq": b"41", b"status": STATUS.data}
    again = await link.acquire(KEYS, "c#1", TTL, "c", TTL)
    assert again == Acquired(False, again.now_ms, 41, STATUS.data)


async def test_a_stale_token_is_told_the_lease_is_lost_and_appends_nothing(link: Link) -> None:
    """A tick with a token that no longer holds the lease returns lost, renews nothing and
    appends nothing: a replica that lost the lease can never publish."""
    await link.acquire(KEYS, "a#1", TTL, "a", TTL)
    await link.commands.delete(KEYS.lease)
    await link.acquire(KEYS, "b#1", TTL, "b", TTL)  # b took over
    assert await link.tick(KEYS, "a#1", TTL, "a", TTL, MAXLEN, [TRAFFIC]) == -1
    assert await link.commands.xlen(KEYS.stream) == 0
    assert await link.commands.hget(KEYS.meta, "seq") is None
    assert await link.commands.get(KEYS.lease) == b"b#1"
    # An expired lease nobody took is lost as well: it is never brought back by a tick.
    await link.commands.delete(KEYS.lease)
    assert await link.tick(KEYS, "b#1", TTL, "b", TTL, MAXLEN, [TRAFFIC]) == -1
    assert await link.commands.exists(KEYS.lease) == 0


async def test_only_the_holder_releases_the_lease(link: Link) -> None:
    """A release by another token changes nothing; the holder's deletes the lease and its
    demand and appends the last status."""
    await link.acquire(KEYS, "a#1", TTL, "a", TTL)
    assert not await link.release(KEYS, "b#1", "b", MAXLEN, STATUS)
    assert await link.commands.get(KEYS.lease) == b"a#1"
    assert await link.commands.xlen(KEYS.stream) == 0
    assert await link.release(KEYS, "a#1", "a", MAXLEN, STATUS)
    assert await link.commands.exists(KEYS.lease) == 0
    assert await link.commands.zscore(KEYS.demand, "a") is None
    assert await link.status(KEYS) == STATUS.data
    # Released without a status (a shutdown): nothing appended.
    await link.acquire(KEYS, "b#1", TTL, "b", TTL)
    assert await link.release(KEYS, "b#1", "b", MAXLEN, None)
    assert await link.commands.xlen(KEYS.stream) == 1


async def test_demand_counts_replicas_until_it_expires_or_is_withdrawn(link: Link) -> None:
    """Each replica's demand counts until withdrawn or past its expiry; a holder without demand
    of its own sees zero once the others' demand is gone."""
    await link.acquire(KEYS, "a#1", TTL, "a", TTL)
    await link.acquire(KEYS, "b#1", TTL, "b", TTL)
    await link.acquire(KEYS, "c#1", TTL, "c", 50)  # expires in 50 ms
    assert await link.tick(KEYS, "a#1", TTL, "a", TTL, MAXLEN, []) >= 2
    await link.withdraw(KEYS, "b")

    async def only_the_holder() -> bool:
        return await link.tick(KEYS, "a#1", TTL, "a", TTL, MAXLEN, []) == 1

    await eventually(only_the_holder, timeout=seconds(2), message="c's demand expired")
    assert await link.tick(KEYS, "a#1", TTL, "a", 0, MAXLEN, []) == 0


async def test_the_stream_is_trimmed_near_its_length(link: Link) -> None:
    """A stream never grows far past its length, and keeps at least that many entries."""
    await link.acquire(KEYS, "a#1", TTL, "a", TTL)
    for seq in range(1, 401):
        entry = Entry("traffic", b"{}", 1.0, seq)
        await link.tick(KEYS, "a#1", TTL, "a", TTL, MAXLEN, [entry])
    length = await link.commands.xlen(KEYS.stream)
    assert MAXLEN <= length <= MAXLEN + 100  # "~": whole macro nodes are trimmed
    entries, _ = await link.tail(KEYS, MAXLEN)
    assert [int(fields[b"seq"]) for _, fields in entries] == list(range(400, 300, -1))


async def test_scripts_are_loaded_again_after_redis_forgets_them(link: Link) -> None:
    """A Redis that lost its script cache (a restart, SCRIPT FLUSH) gets the script again."""
    await link.acquire(KEYS, "a#1", TTL, "a", TTL)
    await link.commands.script_flush()
    assert await link.tick(KEYS, "a#1", TTL, "a", TTL, MAXLEN, [TRAFFIC]) == 1
    await link.commands.script_flush()
    assert not (await link.acquire(KEYS, "b#1", TTL, "b", TTL)).taken


async def test_calls_to_a_redis_that_is_gone_fail_fast_and_back_off() -> None:
    """With nothing listening, a call fails at once, the next calls wait for the backoff, and
    after ``degrade_after`` without an answer the link is degraded."""
    link = make_link(f"redis://127.0.0.1:{free_port()}/0", degrade_after=seconds(0.3))
    try:
        started = time.monotonic()
        with pytest.raises(RedisUnavailable, match="acquire: ConnectionError"):
            await link.acquire(KEYS, "a#1", TTL, "a", TTL)
        assert time.monotonic() - started < seconds(1)
        assert not link.healthy
        assert link.retry_in() > 0 or link.may_call()
        await eventually(lambda: link.degraded, timeout=seconds(2), message="degraded")
    finally:
        await link.close()


async def test_a_redis_that_never_answers_costs_one_deadline_per_call() -> None:
    """A server that accepts connections and says nothing (a hung Redis) makes each call fail
    at its deadline: nothing waits longer."""
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = make_link(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    try:
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "acquire": lambda: link.acquire(KEYS, "a#1", TTL, "a", TTL),
            "read": lambda: link.read({KEYS.stream: b"0-0"}, 10),
        }
        for name, call in calls.items():
            started = time.monotonic()
            with pytest.raises(RedisUnavailable, match="timeout"):
                await call()
            took = time.monotonic() - started
            # The deadline (a read's includes its block time), and a little for the machine.
            assert took < seconds(0.3) + 0.1 + seconds(0.5), (name, took)
            link.healthy = True  # as if a call had succeeded meanwhile: try the next at once
    finally:
        await link.close()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_each_source_has_its_own_stream_seq_and_status(link: Link) -> None:
    """A tick's entries go to their source's stream and meta fields; an acquire reports every
    source's status and the highest seq; the interfaces keys stay as they were."""
    queued = Entry("traffic", b'{"seq":900}', 1764377000.6, 900, "queues")
    refused = Entry("status", b'{"source":"hotspot","state":"down"}', 1764377000.7, None, "hotspot")
    await link.acquire(KEYS, "a#1", TTL, "a", TTL, sources=["interfaces", "queues"])
    await link.tick(KEYS, "a#1", TTL, "a", TTL, MAXLEN, [TRAFFIC, queued, refused, STATUS])
    assert KEYS.stream_of("interfaces") == KEYS.stream
    assert await link.commands.xlen(KEYS.stream) == 2
    queues: Any = await link.commands.xrange(KEYS.stream_of("queues"))
    [(_, fields)] = queues
    assert (fields[b"seq"], fields[b"data"]) == (b"900", queued.data)
    assert await link.commands.xlen(KEYS.stream_of("hotspot")) == 1
    meta = await link.commands.hgetall(KEYS.meta)
    assert meta == {
        b"seq": b"41",
        b"seq:queues": b"900",
        b"status": STATUS.data,
        b"status:hotspot": refused.data,
    }
    entries, status = await link.tail(KEYS, MAXLEN, "hotspot")
    assert status is not None
    assert status.data == refused.data
    assert len(entries) == 1
    again = await link.acquire(KEYS, "b#1", TTL, "b", TTL)
    assert again.seq == 900
    assert {s: v.data for s, v in again.statuses.items()} == {
        "interfaces": STATUS.data,
        "hotspot": refused.data,
    }
    stored = await link.statuses(KEYS)
    assert {s: v.data for s, v in stored.items()} == {
        "interfaces": STATUS.data,
        "hotspot": refused.data,
    }


async def test_demand_names_the_sources_each_replica_wants(link: Link) -> None:
    """Replicas announce demand per source; a tick says which sources anybody wants, and a
    replica's withdrawal or release takes back all of its own."""
    await link.acquire(KEYS, "a#1", TTL, "a", TTL, sources=["interfaces"])
    taken = await link.acquire(KEYS, "b#1", TTL, "b", TTL, sources=["queues", "hotspot"])
    assert taken.wanted == {"interfaces", "queues", "hotspot"}
    demanded = await link.tick(KEYS, "a#1", TTL, "a", TTL, MAXLEN, [], sources=["interfaces"])
    assert demanded == 3
    assert demanded.sources == {"interfaces", "queues", "hotspot"}
    await link.withdraw(KEYS, "b")
    demanded = await link.tick(KEYS, "a#1", TTL, "a", TTL, MAXLEN, [], sources=["queues"])
    assert (int(demanded), demanded.sources) == (1, frozenset({"queues"}))
    idle = [
        Entry("status", b'{"state":"idle"}', 1.0, None, source)
        for source in ("interfaces", "queues", "hotspot")
    ]
    assert await link.release(KEYS, "a#1", "a", MAXLEN, idle)
    assert await link.commands.zcard(KEYS.demand) == 0
    for source in ("interfaces", "queues", "hotspot"):
        assert await link.commands.xlen(KEYS.stream_of(source)) == 1


async def test_each_status_is_kept_with_its_place_in_the_stream(link: Link) -> None:
    """A status appended with its position keeps it and its entry id beside it in meta, on a
    tick and on a release: every way a replica reads the current status (an acquire, a status
    read, a stream load) says where it stands, ordered as the stream is."""
    up = Entry("status", b'{"state":"up"}', 1764377000.25, 41)
    await link.acquire(KEYS, "a#1", TTL, "a", TTL)
    await link.tick(KEYS, "a#1", TTL, "a", TTL, MAXLEN, [up, TRAFFIC])
    entries: Any = await link.commands.xrange(KEYS.stream)
    (first_id, fields), _ = entries
    assert fields[b"seq"] == b"41"
    marked = StatusMark(41, entry_id(first_id))
    assert (await link.statuses(KEYS))["interfaces"].mark == marked
    again = await link.acquire(KEYS, "b#1", TTL, "b", TTL)
    assert again.statuses["interfaces"].mark == marked
    _, current = await link.tail(KEYS, MAXLEN)
    assert current is not None
    assert current.mark == marked

    idle = Entry("status", b'{"state":"idle"}', 1764377001.0, 42)
    assert await link.release(KEYS, "a#1", "a", MAXLEN, idle)
    entries = await link.commands.xrange(KEYS.stream)
    last_id, fields = entries[-1]
    assert (fields[b"type"], fields[b"seq"]) == (b"status", b"42")
    stored = (await link.statuses(KEYS))["interfaces"]
    assert (stored.data, stored.mark) == (idle.data, StatusMark(42, entry_id(last_id)))
    assert marked < StatusMark(42, entry_id(last_id))

    # A status from a replica that gives no position drops the mark of the one it replaces.
    await link.acquire(KEYS, "a#2", TTL, "a", TTL)
    await link.tick(KEYS, "a#2", TTL, "a", TTL, MAXLEN, [STATUS])
    stored = (await link.statuses(KEYS))["interfaces"]
    assert (stored.data, stored.mark) == (STATUS.data, None)


async def test_a_stream_loaded_again_reaches_viewers_in_its_own_order(redis: RedisServer) -> None:
    """A replica loading a router's stream (at start, after a reconnect) shows its viewers the
    status in force before the last ``history`` frames, those frames, then the statuses that
    came after them, as they came live: never a status before frames that preceded it."""
    holder = make_link(redis.url)
    settings = settings_from_dict(
        {
            "poll": {"interval": 1.0, "timeout": 1.0, "history": 3},
            "cluster": {"redis_url": redis.url},
            "routers": [{"id": "core-1", "host": "192.0.2.1", "username": "u", "password": "p"}],
        },
        source="test",
    )
    hub = Hub(["core-1"], settings.poll.history)
    cluster = Cluster(settings, hub.sources, Metrics(), replica="b")
    viewer = FakeTransport()
    hub.sources["core-1"]["interfaces"].subscribe(Sink(viewer, lambda: None), InterfaceFilter.all())
    try:
        keys = router_keys("gateway", "core-1")

        def status(state: Any, at: float, place: int) -> Entry:
            data = orjson.dumps(status_frame("core-1", state, "x" if state == "down" else None, at))
            return Entry("status", data, at, place)

        def frame(seq: int) -> Entry:
            data = orjson.dumps(traffic_frame("core-1", seq, 1764377000.0 + seq, 1.0, False, []))
            return Entry("traffic", data, 1764377000.0 + seq, seq)

        entries = [status("up", 1.0, 100), *(frame(seq) for seq in range(100, 105))]
        entries.append(status("down", 2.0, 105))
        await holder.acquire(keys, "a#1", TTL, "a", TTL)
        await holder.tick(keys, "a#1", TTL, "a", TTL, MAXLEN, entries)
        cluster.start()

        def seen() -> list[object]:
            return [m.get("state", m.get("seq")) for m in viewer.messages()[2:]]

        await eventually(lambda: len(seen()) >= 5, timeout=seconds(5), message="loaded")
        assert seen() == ["up", 102, 103, 104, "down"]
    finally:
        await cluster.release()
        await cluster.close()
        await holder.close()
