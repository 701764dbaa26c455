"""Cluster mode end to end: three real gateway processes, one Redis, one emulated router.

What an operator of several replicas relies on: the router is polled once per interval for the
whole cluster, whatever the number of replicas and viewers; every viewer on every replica gets
every frame in order; nobody watching anywhere costs the router nothing; a dead replica's
router is taken over within a lease TTL plus an interval, and its viewers resume elsewhere
without a gap; a Redis outage keeps every viewer served and ends in one poller again.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import aiohttp
import pytest
from redis.asyncio import Redis

from gateway import process
from gateway.core.cluster import router_keys
from gateway.emulator.server import Fault, RouterEmulator
from tests.support.cluster import (
    ROUTER,
    Timing,
    Watcher,
    get_json,
    holders,
    logs,
    replicas,
    write_config,
)
from tests.support.gateway import emulator, metric, prints, running
from tests.support.redis import RedisServer, redis_server
from tests.support.timing import eventually, seconds, stays

TIMING: Final = Timing()
WINDOW: Final = seconds(3.0)
"""How long request counts are observed for."""
SLACK: Final = seconds(1.0)
"""What a bound on a takeover allows beyond the design's figure: process scheduling, a login."""


@pytest.fixture
async def emu() -> AsyncIterator[RouterEmulator]:
    router = emulator(interfaces=4)
    async with running(router):
        yield router


@pytest.fixture
async def redis() -> AsyncIterator[RedisServer]:
    async with redis_server() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


async def watch(
    http: aiohttp.ClientSession, group: list[process.Child], per_replica: int
) -> list[Watcher]:
    """``per_replica`` viewers on each replica of ``group``, subscribed, a replica at a time."""
    watchers: list[Watcher] = []
    for replica in group:
        batch = [Watcher(http) for _ in range(per_replica)]
        await asyncio.gather(*(w.open(replica) for w in batch))
        watchers += batch
    return watchers


async def requests_in(emu: RouterEmulator, window: float) -> int:
    """The router's ``/interface/print`` requests during the next ``window`` seconds."""
    before = prints(emu)
    await asyncio.sleep(window)  # an observation window, not a wait for something
    return prints(emu) - before


def one_per_interval(requests: int, window: float) -> bool:
    """At most one request per interval (no replica polls besides the holder), and the holder
    keeps its cadence (a busy test machine may cost it a few)."""
    expected = window / TIMING.interval
    return 0.6 * expected <= requests <= expected + 1


async def test_three_replicas_poll_once_per_interval_for_300_viewers(
    tmp_path: Path, emu: RouterEmulator, redis: RedisServer, http: aiohttp.ClientSession
) -> None:
    """300 viewers over three replicas: the router gets one request per interval in total and
    one login, every viewer receives every frame in order, and a REST snapshot from any replica
    is the cluster's latest frame."""
    config = write_config(tmp_path / "gw.toml", emu, redis.url, TIMING)
    async with replicas(config, 3) as group:
        watchers = await watch(http, group, 100)
        await eventually(
            lambda: all(len(w.frames) >= 2 for w in watchers),
            timeout=seconds(10),
            message="every viewer gets live frames",
        )
        assert len(await holders(http, group)) == 1, logs(group)
        requests = await requests_in(emu, WINDOW)
        assert one_per_interval(requests, WINDOW), (requests, logs(group))
        assert emu.logins == 1  # one replica ever talked to the router

        # Every viewer has every frame from the latest first frame on, in order, no gaps.
        mark = max(w.last_seq or 0 for w in watchers)
        await eventually(
            lambda: all((w.last_seq or 0) >= mark for w in watchers),
            timeout=seconds(5),
            message="every viewer reached the latest frame",
        )
        start = max(w.seqs()[0] for w in watchers)
        expected = list(range(start, mark + 1))
        for w in watchers:
            assert w.violations == [], w.violations
            assert [s for s in w.seqs() if start <= s <= mark] == expected
        assert mark - start >= WINDOW / TIMING.interval * 0.6

        # The router stops answering: frames stop, and every replica's snapshot and listing is
        # the cluster's last frame, with the holder's view of the router.
        await emu.set_fault(Fault("hang"))
        await eventually(
            lambda: all(w.status.get("state") == "down" for w in watchers),
            timeout=seconds(10),
            message="every viewer sees the router down",
        )
        last = watchers[0].frames[-1]
        assert all(w.frames[-1] == last[:2] + w.frames[-1][2:] for w in watchers)
        for replica in group:
            status, snapshot = await get_json(http, f"{replica.url}/api/routers/{ROUTER}/traffic")
            assert status == 200
            assert (snapshot["seq"], snapshot["ts"]) == last[:2]
            assert (snapshot["state"], snapshot["stale"]) == ("down", True)
            _, listing = await get_json(http, f"{replica.url}/api/routers")
            (entry,) = listing["routers"]
            assert (entry["state"], entry["last_poll_ts"], entry["viewers"]) == (
                "down",
                last[1],
                100,
            )
            assert entry["last_error"]
        await asyncio.gather(*(w.close() for w in watchers))


async def test_nobody_watching_anywhere_costs_the_router_nothing(
    tmp_path: Path, emu: RouterEmulator, redis: RedisServer, http: aiohttp.ClientSession
) -> None:
    """Once the last viewer of every replica (and the last REST read) is gone, polling stops
    after the linger: the router is idle everywhere and gets no request at all."""
    config = write_config(tmp_path / "gw.toml", emu, redis.url, TIMING)
    async with replicas(config, 3) as group:
        watchers = await watch(http, group[:2], 5)
        status, _ = await get_json(http, f"{group[2].url}/api/routers/{ROUTER}/traffic")
        assert status == 200
        await eventually(
            lambda: all(len(w.frames) >= 2 for w in watchers), timeout=seconds(10), message="live"
        )
        await asyncio.gather(*(w.close() for w in watchers))
        left = time.monotonic()

        async def idle_everywhere() -> bool:
            answers = await asyncio.gather(*(get_json(http, f"{r.url}/api/routers") for r in group))
            return all(body["routers"][0]["state"] == "idle" for _, body in answers)

        await eventually(idle_everywhere, timeout=seconds(10), message="idle on every replica")
        # The linger, then the withdrawal (an interval) and the holder's next tick.
        assert time.monotonic() - left <= TIMING.linger + 3 * TIMING.interval + SLACK
        assert await holders(http, group) == []
        count = prints(emu)
        await stays(lambda: prints(emu) == count, duration=WINDOW, message="no request")


async def test_a_killed_holder_is_replaced_within_a_lease_ttl_and_an_interval(
    tmp_path: Path, emu: RouterEmulator, redis: RedisServer, http: aiohttp.ClientSession
) -> None:
    """kill -9 of the replica that polls: another one polls within one lease TTL plus one
    interval; its viewers see seq jump forward (never back) after a status and miss no more
    than that span; the dead replica's viewers resume on another with ``since`` and get what
    the stream holds, without a gap."""
    config = write_config(tmp_path / "gw.toml", emu, redis.url, TIMING)
    async with replicas(config, 3) as group:
        watchers = await watch(http, group, 10)
        await eventually(
            lambda: all(len(w.frames) >= 2 for w in watchers), timeout=seconds(10), message="live"
        )
        (index,) = await holders(http, group)
        victim = group[index]
        survivors = [r for r in group if r is not victim]
        orphans = watchers[index * 10 : index * 10 + 10]
        kept = [w for w in watchers if w not in orphans]
        before = {id(w): len(w.frames) for w in kept}
        killed = time.monotonic()
        await victim.kill()

        await eventually(
            lambda: all(len(w.frames) > before[id(w)] + 1 for w in kept),
            timeout=seconds(10),
            message="the survivors' viewers get frames again",
        )
        span = TIMING.ttl + TIMING.interval
        (new,) = await holders(http, survivors)
        for w in kept:
            assert w.violations == [], w.violations
            old, first = w.frames[before[id(w)] - 1], w.frames[before[id(w)]]
            assert first[0] > old[0]
            # The new holder was not polling: no baseline of its own, so no rates (never a
            # rate across two pollers' readings), then rates from its own.
            assert [row["rx_bps"] for row in w.rows[before[id(w)]]] == [None] * len(
                w.rows[before[id(w)]]
            )
            assert all(row["rx_bps"] is not None for row in w.rows[before[id(w)] + 1])
            # Polling resumed within the span (by arrival), and frames are missing for no
            # longer than that (by the frames' own times), plus one interval of cadence.
            assert first[2] - killed <= span + SLACK, (first[2] - killed, logs(group))
            assert first[1] - old[1] <= span + TIMING.interval + SLACK
        assert await lease_changes(http, survivors[new], "acquired") == 1

        # The dead replica's viewers saw their connection end; they resume on a survivor.
        await eventually(
            lambda: all(w.ended.is_set() for w in orphans), timeout=seconds(5), message="ended"
        )
        reference = kept[0].seqs()
        for n, w in enumerate(orphans):
            since = w.last_seq
            assert since is not None
            await w.open(survivors[n % 2], since=since)
            assert w.reset is False
            assert w.history, "the stream holds frames after since"
            assert w.history == [s for s in reference if since < s <= w.history[-1]]
            assert w.violations == [], w.violations
        await asyncio.gather(*(w.close() for w in watchers))


async def lease_changes(http: aiohttp.ClientSession, replica: process.Child, change: str) -> float:
    """The replica's ``gateway_cluster_lease_changes_total`` for the router and ``change``."""
    _, text = await get_text(http, f"{replica.url}/metrics")
    labels = f'change="{change}",router="{ROUTER}"'
    return metric(text, "gateway_cluster_lease_changes_total", labels)


async def get_text(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=seconds(5))) as response:
        return response.status, await response.text()


async def test_a_redis_outage_keeps_viewers_served_and_ends_in_one_poller(
    tmp_path: Path, emu: RouterEmulator, redis: RedisServer, http: aiohttp.ClientSession
) -> None:
    """Redis killed mid-run: no websocket closes, every viewer's status says ``degraded`` and
    frames keep coming (each replica polls for its own viewers), probes stay 200; Redis back
    (empty): one replica polls again, the mark is gone, and seq never went backwards."""
    config = write_config(tmp_path / "gw.toml", emu, redis.url, TIMING)
    async with replicas(config, 3) as group:
        watchers = await watch(http, group, 10)
        await eventually(
            lambda: all(len(w.frames) >= 2 for w in watchers), timeout=seconds(10), message="live"
        )
        await redis.stop()

        def degraded(w: Watcher) -> int | None:
            """Index of the first status marked degraded."""
            marked = [i for i, s in enumerate(w.statuses) if s.get("degraded")]
            return marked[0] if marked else None

        await eventually(
            lambda: all(degraded(w) is not None for w in watchers),
            timeout=TIMING.ttl + seconds(5),
            message="every viewer told degraded",
        )
        counts = {id(w): len(w.frames) for w in watchers}
        await eventually(
            lambda: all(len(w.frames) >= counts[id(w)] + 3 for w in watchers),
            timeout=seconds(5),
            message="frames keep coming while Redis is away",
        )
        for replica in group:
            for probe in ("healthz", "readyz"):
                status, _ = await get_json(http, f"{replica.url}/{probe}")
                assert status == 200, probe
            _, text = await get_text(http, f"{replica.url}/metrics")
            assert metric(text, "gateway_cluster_degraded") == 1
        assert not any(w.ended.is_set() for w in watchers)

        await redis.start()
        await eventually(
            lambda: all(not w.status.get("degraded") for w in watchers),
            timeout=seconds(10),
            message="the degraded mark is gone",
        )

        async def one_holder() -> bool:
            return len(await holders(http, group)) == 1

        await eventually(one_holder, timeout=seconds(10), message="one replica polls")
        counts = {id(w): len(w.frames) for w in watchers}
        requests = await requests_in(emu, WINDOW)
        assert one_per_interval(requests, WINDOW), (requests, logs(group))
        for w in watchers:
            assert len(w.frames) > counts[id(w)], "frames from the new holder"
            assert w.violations == [], (w.violations, logs(group))
            seqs = w.seqs()
            assert all(a < b for a, b in itertools.pairwise(seqs))
            # The winner had been polling for its own viewers, without a gap: its first frame
            # as holder (where seq jumps) has rates, from its own previous reading.
            jump = max(i for i in range(1, len(seqs)) if seqs[i] > seqs[i - 1] + 1)
            assert all(row["rx_bps"] is not None for row in w.rows[jump]), w.rows[jump]
            assert "degraded" not in w.status
        for replica in group:
            _, text = await get_text(http, f"{replica.url}/metrics")
            assert metric(text, "gateway_cluster_degraded") == 0
        assert not any(w.ended.is_set() for w in watchers)
        await asyncio.gather(*(w.close() for w in watchers))


async def test_a_stalled_redis_that_wakes_leaves_the_router_polled(
    tmp_path: Path, emu: RouterEmulator, redis: RedisServer, http: aiohttp.ClientSession
) -> None:
    """Redis frozen past a lease TTL, then running again: the acquires the replicas sent while it
    was frozen (given up by them, run by Redis when it wakes) leave the lease under a token its
    replica gave up on. That replica takes it again: every viewer's frames keep coming, never
    waiting the lease's lifetime for it to run out."""
    timing = Timing(timeout=3.0)  # a lease lifetime long beside the interval: 3.5 s
    config = write_config(tmp_path / "gw.toml", emu, redis.url, timing)
    async with replicas(config, 2) as group:
        watchers = await watch(http, group, 2)
        await eventually(
            lambda: all(len(w.frames) >= 2 for w in watchers), timeout=seconds(10), message="live"
        )
        redis.pause()
        try:
            await eventually(
                lambda: all(w.status.get("degraded") for w in watchers),
                timeout=timing.ttl + seconds(5),
                message="every viewer told degraded",
            )
            counts = {id(w): len(w.frames) for w in watchers}
            await eventually(
                lambda: all(len(w.frames) >= counts[id(w)] + 3 for w in watchers),
                timeout=seconds(5),
                message="frames while Redis is frozen",
            )
        finally:
            redis.resume()
        woke = time.monotonic()
        await eventually(
            lambda: all(not w.status.get("degraded") for w in watchers),
            timeout=seconds(10),
            message="the degraded mark is gone",
        )
        await eventually(
            lambda: all(any(t > woke + 2 * timing.ttl for _, _, t in w.frames) for w in watchers),
            timeout=2 * timing.ttl + seconds(10),
            message="frames long after Redis woke",
        )
        for w in watchers:
            arrivals = [t for _, _, t in w.frames if t > woke - timing.interval]
            longest = max(b - a for a, b in itertools.pairwise(arrivals))
            # One interval when the replica that polled on takes the lease again; a lease
            # lifetime (3.5 s) when nobody polls until it runs out.
            assert longest < timing.ttl / 2, (longest, logs(group))
            assert w.violations == [], (w.violations, logs(group))
        assert not any(w.ended.is_set() for w in watchers)
        await asyncio.gather(*(w.close() for w in watchers))


async def test_redis_back_from_an_older_save_never_shows_a_viewer_an_older_status(
    tmp_path: Path, emu: RouterEmulator, redis: RedisServer, http: aiohttp.ClientSession
) -> None:
    """Redis away, then back from a save older than the cluster's last status (the idle of a
    release, and the lease of a takeover that had appended nothing yet): no viewer on any
    replica, watching before or subscribed after, gets that idle after the status it has; all
    end on the current status without the degraded mark, with frames from one poller."""
    config = write_config(tmp_path / "gw.toml", emu, redis.url, TIMING)
    keys = router_keys("gateway", ROUTER)
    control = Redis.from_url(redis.url, single_connection_client=True)
    try:
        async with replicas(config, 3) as group:
            # Watched, then left: the holder releases the lease with an idle status.
            first = Watcher(http)
            await first.open(group[0])
            await eventually(lambda: len(first.frames) >= 2, timeout=seconds(10), message="live")
            await first.close()

            async def released() -> bool:
                status = await control.hget(keys.meta, "status")
                return await control.exists(keys.lease) == 0 and b'"idle"' in (status or b"")

            await eventually(released, timeout=TIMING.linger + seconds(5), message="released")
            saved: dict[str, bytes] = {}
            for key in (keys.meta, keys.stream):
                dumped = await control.dump(key)
                assert isinstance(dumped, bytes), key
                saved[key] = dumped

            watchers = await watch(http, group, 3)
            await eventually(
                lambda: all(len(w.frames) >= 2 for w in watchers),
                timeout=seconds(10),
                message="live again",
            )
            # Redis away for every replica: it refuses them (and keeps what the test restores).
            await control.config_set("requirepass", "away")
            await control.client_kill_filter(_type="normal", skipme=True)
            await eventually(
                lambda: all(w.status.get("degraded") for w in watchers),
                timeout=TIMING.ttl + seconds(5),
                message="every viewer told degraded",
            )
            seen = {id(w): len(w.statuses) for w in watchers}
            # Back from the older save: the idle, and a lease whose holder is gone.
            await control.flushall()
            for key, value in saved.items():
                await control.restore(key, 0, value)
            await control.set(keys.lease, "gone-1-000000#1")
            await control.config_set("requirepass", "")
            await eventually(
                lambda: all(not w.status.get("degraded") for w in watchers),
                timeout=seconds(10),
                message="the degraded mark is gone",
            )
            late = await watch(http, group, 2)
            await control.delete(keys.lease)  # the gone holder's lease runs out

            async def one_holder() -> bool:
                return len(await holders(http, group)) == 1

            await eventually(one_holder, timeout=seconds(10), message="one replica polls")
            counts = {id(w): len(w.frames) for w in watchers + late}
            await eventually(
                lambda: all(len(w.frames) >= counts[id(w)] + 2 for w in watchers + late),
                timeout=seconds(10),
                message="frames from the new holder",
            )
            for w in watchers:
                after = w.statuses[seen[id(w)] :]
                assert [s for s in after if s["state"] == "idle"] == [], (after, logs(group))
            for w in late:
                assert [s for s in w.statuses if s["state"] == "idle"] == [], w.statuses
            for w in watchers + late:
                assert w.status["state"] == "up"
                assert "degraded" not in w.status
                assert w.violations == [], (w.violations, logs(group))
                assert all(a < b for a, b in itertools.pairwise(w.seqs()))
            requests = await requests_in(emu, WINDOW)
            assert one_per_interval(requests, WINDOW), (requests, logs(group))
            for replica in group:
                _, text = await get_text(http, f"{replica.url}/metrics")
                assert metric(text, "gateway_cluster_degraded") == 0
            assert not any(w.ended.is_set() for w in watchers + late)
            await asyncio.gather(*(w.close() for w in watchers + late))
    finally:
        await control.aclose()


async def test_a_replica_shutting_down_hands_its_routers_over_at_once(
    tmp_path: Path, emu: RouterEmulator, redis: RedisServer, http: aiohttp.ClientSession
) -> None:
    """SIGTERM to the replica that polls: it releases the lease on its way out, so another one
    polls within about an interval rather than a lease TTL, and the process exits 0."""
    timing = Timing(interval=0.25, timeout=3.0)  # a TTL (3.5 s) well above the hand-over
    config = write_config(tmp_path / "gw.toml", emu, redis.url, timing)
    async with replicas(config, 2) as group:
        watchers = await watch(http, group, 5)
        await eventually(
            lambda: all(len(w.frames) >= 2 for w in watchers), timeout=seconds(10), message="live"
        )
        (index,) = await holders(http, group)
        leaving, staying = group[index], group[1 - index]
        kept = watchers[5:] if index == 0 else watchers[:5]
        before = {id(w): len(w.frames) for w in kept}
        stopped = time.monotonic()
        assert await leaving.stop() == 0
        await eventually(
            lambda: all(len(w.frames) > before[id(w)] for w in kept),
            timeout=seconds(10),
            message="frames again",
        )
        took = min(w.frames[before[id(w)]][2] for w in kept) - stopped
        assert took <= timing.interval + seconds(0.5) < timing.ttl, (took, logs(group))
        assert await holders(http, [staying]) == [0]
        assert await lease_changes(http, staying, "acquired") == 1
        for w in kept:
            assert w.violations == [], w.violations
        await asyncio.gather(*(w.close() for w in watchers))


async def test_a_queues_viewer_on_a_replica_that_does_not_poll_gets_queue_frames(
    tmp_path: Path, redis: RedisServer, http: aiohttp.ClientSession
) -> None:
    """Interfaces watched on one replica (which then polls the router), queues on another: the
    holder polls both sources for the cluster, one request of each per interval, and the queues
    viewer gets every queue frame, in order, through Redis; the other replica never logs in."""
    router = emulator(interfaces=4, queues=5)
    async with running(router):
        config = write_config(tmp_path / "gw.toml", router, redis.url, TIMING)
        async with replicas(config, 2) as group:
            interfaces = Watcher(http)
            await interfaces.open(group[0])
            await eventually(
                lambda: len(interfaces.frames) >= 2, timeout=seconds(10), message="a holder polls"
            )
            assert await holders(http, group) == [0], logs(group)
            queues = Watcher(http, source="queues")
            await queues.open(group[1])
            await eventually(
                lambda: len(queues.frames) >= 4,
                timeout=seconds(10),
                message="queue frames reach the other replica",
            )
            before = router.commands["/queue/simple/print"]
            requests = await requests_in(router, WINDOW)
            queue_requests = router.commands["/queue/simple/print"] - before
            assert one_per_interval(requests, WINDOW), (requests, logs(group))
            assert abs(queue_requests - requests) <= 1, (queue_requests, requests)
            assert router.commands["/ip/hotspot/active/print"] == 0
            assert router.logins == 1
            assert queues.violations == [], queues.violations
            seqs = queues.seqs()
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            assert [row["name"] for row in queues.rows[-1]] == [f"cust{n:04d}" for n in range(1, 6)]
            assert queues.status["source"] == "queues"
            assert queues.status["state"] == "up"
            await interfaces.close()
            await queues.close()
