"""A router's lease, fast: the real ``RouterLease`` and ``Poller`` on virtual time, over a
typed fake of the Redis store (``LeaseStore``) that keeps the lease, demand and stream in memory
with the scripts' rules. The timing promises: a lost lease stops polling at once, a lease that
cannot be renewed stops it before it runs out, and only then, Redis being away for a TTL, does
the replica poll for its own viewers."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from gateway.cluster_lease import Role, RouterLease
from gateway.cluster_store import Acquired, LeaseStore
from gateway.config import settings_from_dict
from gateway.core.cluster import (
    Demanded,
    Entry,
    RedisUnavailable,
    RouterKeys,
    StatusMark,
    StoredStatus,
    router_keys,
)
from gateway.core.messages import status_frame
from gateway.core.model import RouterState
from gateway.core.sources import Source
from gateway.demand import Demand
from gateway.metrics import Metrics
from gateway.poller import Poller, RouterSession
from gateway.routeros import Row
from gateway.topic import Topic
from tests.support.virtual_time import START, virtual_time

INTERVAL: Final = 1.0
TIMEOUT: Final = 3.0
TTL: Final = 2 * INTERVAL + TIMEOUT
LINGER: Final = 2.0
WALL: Final = 1_764_377_000.0


def now() -> float:
    return asyncio.get_running_loop().time() - START


class FakeStore:
    """The scripts' rules in memory, on the loop's clock. ``down``: every call fails (Redis
    away), and after ``TTL`` seconds of that the store reports itself degraded, as the link
    does."""

    def __init__(self) -> None:
        self.clock = asyncio.get_running_loop().time
        self.lease: tuple[str, float] | None = None
        self.demand: dict[str, float] = {}
        self.entries: list[tuple[float, Entry]] = []
        # The current status of each source in meta, as an acquire and a status read give it.
        self.meta: dict[str, StoredStatus] = {}
        self.down = False
        # Seconds the answer to the next tick takes to come back (Redis ran it at once).
        self.slow_answer = 0.0
        self.last_ok = self.clock()
        # Virtual time of every acquire call, and the sources it announced.
        self.acquires: list[tuple[float, tuple[str, ...]]] = []

    @property
    def degraded(self) -> bool:
        return self.down and self.clock() - self.last_ok >= TTL

    def may_call(self) -> bool:
        return True

    async def _answer(self) -> float:
        await asyncio.sleep(0)
        if self.down:
            raise RedisUnavailable("Redis tick: ConnectionError")
        self.last_ok = self.clock()
        return self.last_ok

    def _held_by(self, token: str, at: float) -> bool:
        return self.lease is not None and self.lease[0] == token and at < self.lease[1]

    async def acquire(
        self,
        keys: RouterKeys,
        token: str,
        ttl_ms: int,
        replica: str,
        demand_ms: int,
        *,
        sources: Sequence[str] = ("interfaces",),
    ) -> Acquired:
        self.acquires.append((self.clock() - START, tuple(sources)))
        at = await self._answer()
        self.demand[replica] = at + demand_ms / 1000
        # As the script: a lease under an earlier token of this replica's is taken again.
        mine = token.rpartition("#")[0] + "#"
        taken = self.lease is None or at >= self.lease[1] or self.lease[0].startswith(mine)
        if taken:
            self.lease = (token, at + ttl_ms / 1000)
        last = [e.seq for _, e in self.entries if e.kind == "traffic"]
        return Acquired(
            taken,
            round((WALL + at) * 1000),
            last[-1] if last else None,
            None,
            statuses=dict(self.meta),
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
        sources: Sequence[str] = ("interfaces",),
    ) -> Demanded:
        at = await self._answer()
        if not self._held_by(token, at):
            return Demanded(-1)
        self.lease = (token, at + ttl_ms / 1000)
        self.entries += [(at, e) for e in entries]
        self.demand = {r: until for r, until in self.demand.items() if until > at}
        if demand_ms:
            self.demand[replica] = at + demand_ms / 1000
        else:
            self.demand.pop(replica, None)
        delay, self.slow_answer = self.slow_answer, 0.0
        await asyncio.sleep(delay)
        return Demanded(len(self.demand))

    async def release(
        self,
        keys: RouterKeys,
        token: str,
        replica: str,
        maxlen: int,
        status: Entry | Sequence[Entry] | None,
    ) -> bool:
        at = await self._answer()
        if not self._held_by(token, at):
            return False
        if status is not None:
            statuses = [status] if isinstance(status, Entry) else status
            self.entries += [(at, entry) for entry in statuses]
        self.lease = None
        self.demand.pop(replica, None)
        return True

    async def withdraw(self, keys: RouterKeys, replica: str) -> None:
        await self._answer()
        self.demand.pop(replica, None)

    async def statuses(self, keys: RouterKeys) -> Mapping[str, StoredStatus]:
        await self._answer()
        return dict(self.meta)

    def traffic(self) -> list[tuple[float, int]]:
        """(virtual time, seq) of every traffic entry appended."""
        return [
            (at - START, e.seq)
            for at, e in self.entries
            if e.kind == "traffic" and e.seq is not None
        ]


class FakeRouter:
    """A router session that answers at once and records when each request was sent."""

    def __init__(self) -> None:
        self.connected = False
        self.starts: list[float] = []
        self._bytes = 0

    async def print_interfaces(self, proplist: Sequence[str]) -> list[Row]:
        self.starts.append(now())
        await asyncio.sleep(0)
        self.connected = True
        self._bytes += 1000
        row = {".id": "*1", "name": "ether1", "type": "ether", "running": "true"}
        counters = {"rx-byte": str(self._bytes), "tx-byte": "0"}
        return [{**row, "disabled": "false", **counters, "rx-packet": "0", "tx-packet": "0"}]

    async def close(self) -> None:
        self.connected = False


class ShownTopic(Topic):
    """A topic that keeps every status it was given to show, in order."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.shown: list[dict[str, object]] = []

    def publish_status(self, status: dict[str, object]) -> None:
        self.shown.append(status)
        super().publish_status(status)


@dataclass
class Rig:
    lease: RouterLease
    poller: Poller
    store: FakeStore
    router: FakeRouter
    demand: Demand
    topic: ShownTopic
    metrics: Metrics

    async def stop(self) -> None:
        await self.lease.shutdown()
        await self.poller.stop()


def rig() -> Rig:
    """One replica's lease and poller of one router, started, nobody watching yet."""
    loop = asyncio.get_running_loop()
    settings = settings_from_dict(
        {
            "poll": {"interval": INTERVAL, "timeout": TIMEOUT, "linger": LINGER},
            "routers": [{"id": "r1", "host": "192.0.2.1", "username": "u", "password": "p"}],
        },
        source="test",
    )

    def wall() -> float:
        return WALL + loop.time()

    demand = Demand(LINGER, loop.time)
    topic = ShownTopic("r1", settings.poll.history, demand=demand, clock=loop.time, wall=wall)
    store = FakeStore()
    seam: LeaseStore = store  # the seam the fake stands in for, checked by mypy
    metrics = Metrics()
    lease = RouterLease(
        settings.routers[0],
        settings.poll,
        topic,
        seam,
        metrics,
        replica="a",
        keys=router_keys("t", "r1"),
        clock=loop.time,
        wall=wall,
    )
    router = FakeRouter()
    session: RouterSession = router
    poller = Poller(
        settings.routers[0],
        settings.poll,
        topic,
        metrics,
        client=session,
        clock=loop.time,
        wall=wall,
        gate=lease.gate,
        publisher=lease,
    )
    lease.poller = poller
    lease.start()
    poller.start()
    return Rig(lease, poller, store, router, demand, topic, metrics)


def changes(r: Rig, change: str) -> float:
    value = r.metrics.registry.get_sample_value(
        "gateway_cluster_lease_changes_total", {"router": "r1", "change": change}
    )
    return 0.0 if value is None else value


@virtual_time
async def test_the_holder_publishes_to_the_stream_one_frame_per_interval() -> None:
    """With demand the replica takes the lease at once and polls once per interval; its frames
    go to the stream (not straight to its viewers), a status first, seq from the clock."""
    r = rig()
    r.demand.join()
    await asyncio.sleep(5.5)
    assert r.lease.role == "holder"
    assert r.router.starts == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    kinds = [e.kind for _, e in r.store.entries]
    assert kinds[:2] == ["status", "status"]  # connecting, up
    seqs = [seq for _, seq in r.store.traffic()]
    # The takeover starts at Redis time in ms (this replica's own count was at its clock).
    assert 0 <= seqs[0] - round((WALL + START) * 1000) <= 1
    assert seqs == list(range(seqs[0], seqs[0] + 6))
    assert r.topic.latest is None  # the stream's reader feeds the topic, not the poller
    assert changes(r, "acquired") == 1
    await r.stop()


@virtual_time
async def test_a_lost_lease_stops_polling_at_once_and_publishes_nothing_more() -> None:
    """When a tick finds another replica's token in the lease, this replica sends no further
    request and appends nothing."""
    r = rig()
    r.demand.join()
    await asyncio.sleep(3.5)
    r.store.lease = ("b#1", r.store.clock() + 100)  # another replica took it
    appended = len(r.store.entries)
    await asyncio.sleep(10)
    assert r.lease.role == "idle"
    assert r.router.starts[-1] <= 4.0  # the poll already under way when the tick said "lost"
    assert len(r.store.entries) == appended
    assert changes(r, "lost") == 1
    await r.stop()


@virtual_time
async def test_nobody_watching_in_the_cluster_releases_with_an_idle_status() -> None:
    """Once no replica has demand (this one's linger over), the holder appends an idle status,
    gives the lease up and stops polling."""
    r = rig()
    r.demand.join()
    await asyncio.sleep(3.5)
    r.demand.leave()
    await asyncio.sleep(10)
    assert r.store.lease is None
    assert r.store.demand == {}
    last = r.store.entries[-1][1]
    assert last.kind == "status"
    assert b'"state":"idle"' in last.data
    # The linger (2 s) after the last look that saw a subscriber, then the next tick.
    assert r.router.starts[-1] <= 3.5 + LINGER + 1.5 * INTERVAL
    assert changes(r, "released") == 1
    await r.stop()


@virtual_time
async def test_an_unrenewable_lease_stops_polling_before_it_runs_out_then_polls_locally() -> None:
    """Redis gone: the holder sends no request past its last renewal plus the TTL; once Redis
    has been away a TTL the replica polls for its own viewers, statuses marked degraded, seq
    going on above the last frame (the frames polled while the lease could not be renewed
    were never published: seq jumps over them, after the degraded status)."""
    r = rig()
    r.demand.join()
    await asyncio.sleep(4.5)
    r.store.down = True
    renewed = r.store.last_ok - START
    await asyncio.sleep(10)
    in_stream = r.store.traffic()
    assert all(at <= renewed + TTL for at, _ in in_stream)
    expires = renewed + TTL
    held = [t for t in r.router.starts if 4.5 < t < expires]
    assert held, "polling goes on while the lease is still held"
    assert r.lease.role == "local"
    status = r.topic.status or {}
    assert status.get("degraded") is True
    assert status["state"] == "up"
    frames = list(r.topic.history)
    assert frames, "frames reach this replica's viewers directly"
    assert frames[0].seq == in_stream[-1][1] + 1 + len(held)
    assert [f.seq for f in frames] == list(range(frames[0].seq, frames[0].seq + len(frames)))
    assert all(t >= expires for t in r.router.starts if t > 4.5 and t not in held)
    assert changes(r, "lost") == 1
    await r.stop()


@virtual_time
async def test_more_demand_costs_redis_nothing_until_the_next_interval() -> None:
    """A replica that does not hold the lease announces its demand and tries the lease once an
    interval, however many REST reads and subscribers arrive meanwhile (each used to cost a
    script on Redis)."""
    r = rig()
    r.store.lease = ("b#1", r.store.clock() + 100)  # another replica polls
    r.demand.join()
    for _ in range(45):  # REST reads and subscribers, ten a second for 4.5 s
        await asyncio.sleep(0.1)
        r.demand.touch()
        r.demand.join()
    assert r.lease.role == "idle"
    assert [at for at, _ in r.store.acquires] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert r.router.starts == []
    await r.stop()


@virtual_time
async def test_a_source_newly_wanted_here_is_announced_at_once() -> None:
    """A viewer of another source on a replica that does not hold the lease is announced at
    once (the holder polls that source from its next tick), not at the next interval."""
    loop = asyncio.get_running_loop()
    settings = settings_from_dict(
        {
            "poll": {"interval": INTERVAL, "timeout": TIMEOUT, "linger": LINGER},
            "routers": [{"id": "r1", "host": "192.0.2.1", "username": "u", "password": "p"}],
        },
        source="test",
    )
    woken = asyncio.Event()
    sources: tuple[Source, ...] = ("interfaces", "queues")
    topics = {
        source: Topic(
            "r1",
            settings.poll.history,
            source=source,
            demand=Demand(LINGER, loop.time, woken),
            clock=loop.time,
        )
        for source in sources
    }
    store = FakeStore()
    store.lease = ("b#1", store.clock() + 100)  # another replica polls
    lease = RouterLease(
        settings.routers[0],
        settings.poll,
        topics,
        store,
        Metrics(),
        replica="a",
        keys=router_keys("t", "r1"),
        clock=loop.time,
    )
    lease.start()
    topics["interfaces"].demand.join()
    await asyncio.sleep(0.3)
    topics["interfaces"].demand.touch()  # nothing new
    await asyncio.sleep(0.2)
    topics["queues"].demand.join()  # a source not yet announced
    await asyncio.sleep(1.2)
    assert store.acquires == [
        (0.0, ("interfaces",)),
        (0.5, ("interfaces", "queues")),
        (1.5, ("interfaces", "queues")),
    ]
    await lease.shutdown()


def stored(state: RouterState, since: float, mark: StatusMark) -> StoredStatus:
    """A status of r1's interfaces as Redis holds it."""
    return StoredStatus(orjson.dumps(status_frame("r1", state, None, since)), mark)


def role(r: Rig) -> Role:
    """The lease's role now."""
    return r.lease.role


def first_rates(entry: Entry) -> list[object]:
    """The rx rates of a traffic entry's frame."""
    frame = orjson.loads(entry.data)
    return [row["rx_bps"] for row in frame["interfaces"]]


@virtual_time
async def test_redis_back_with_an_older_status_leaves_viewers_on_the_current_one() -> None:
    """Redis answers again holding a status older than the one this replica's own polling
    showed (a save from before, a snapshot read before the stream's last entry): its viewers
    keep the current state, marked degraded no more, never the older one; the holder's next
    status follows; and a status older than the one shown is never shown, by any path."""
    r = rig()
    r.store.lease = ("b#1", r.store.clock() + 100)  # another replica polls
    r.demand.join()
    await asyncio.sleep(0.5)
    r.lease.offer_status("interfaces", stored("up", 1.0, StatusMark(100, (10, 0))))
    assert r.topic.shown[-1]["state"] == "up"
    r.store.down = True
    await asyncio.sleep(TTL + 2.5)
    assert role(r) == "local"
    assert r.topic.shown[-1] == {**r.topic.shown[-1], "state": "up", "degraded": True}
    before = len(r.topic.shown)
    # Back, with what Redis held before the status this replica last showed from it.
    r.store.meta = {"interfaces": stored("idle", 0.5, StatusMark(90, (9, 0)))}
    r.store.down = False
    await asyncio.sleep(2 * INTERVAL)
    assert role(r) == "idle"
    after = r.topic.shown[before:]
    assert [s["state"] for s in after] == ["up"], after
    assert "degraded" not in after[0]
    # Older, or the same again, by any path: nothing; newer: shown, in order.
    r.lease.offer_status("interfaces", stored("idle", 0.5, StatusMark(90, (9, 0))))
    r.lease.offer_status("interfaces", stored("up", 1.0, StatusMark(100, (10, 0))))
    assert len(r.topic.shown) == before + 1
    r.lease.offer_status("interfaces", stored("up", 9.0, StatusMark(10**6, (20, 0))))
    r.lease.offer_status("interfaces", stored("down", 1.5, StatusMark(100, (10, 1))))
    assert [s["since"] for s in r.topic.shown[before + 1 :]] == [9.0]
    await r.stop()


@virtual_time
async def test_redis_back_with_a_newer_status_shows_it_when_this_replica_stops() -> None:
    """The newest status Redis gave while this replica polled for itself (the holder's, read
    from the stream) replaces the degraded one when it stops, and a newer one from the lease's
    answer wins over it."""
    r = rig()
    r.store.lease = ("b#1", r.store.clock() + 100)
    r.demand.join()
    r.store.down = True
    await asyncio.sleep(TTL + 2.5)
    assert role(r) == "local"
    latest = r.topic.latest
    assert latest is not None
    ahead = latest.seq + 10**6  # a takeover's seq jumps to Redis time
    r.lease.offer_status("interfaces", stored("connecting", 7.0, StatusMark(ahead, (30, 0))))
    assert r.topic.shown[-1].get("degraded") is True  # polling for itself: kept for later
    r.store.meta = {"interfaces": stored("up", 7.5, StatusMark(ahead, (30, 1)))}
    r.store.down = False
    await asyncio.sleep(2 * INTERVAL)
    assert role(r) == "idle"
    assert r.topic.shown[-1] == status_frame("r1", "up", None, 7.5)
    await r.stop()


@virtual_time
async def test_a_renewal_answered_after_the_lease_ran_out_here_appends_no_idle() -> None:
    """A renewal that Redis ran in time but whose answer came after the lease ran out here:
    the poller, stopped meanwhile, polls again at once, and its idle status of the meantime
    never reaches the stream (viewers would see the router idle while it is polled)."""
    r = rig()
    r.demand.join()
    await asyncio.sleep(2.5)
    assert role(r) == "holder"
    r.store.slow_answer = TTL - 0.5  # the next tick's answer: after the lease ran out here
    await asyncio.sleep(TTL + 2)
    assert role(r) == "holder"
    states = [orjson.loads(e.data)["state"] for _, e in r.store.entries if e.kind == "status"]
    assert "idle" not in states, states
    assert states[-1] == "up"
    assert r.router.starts[-1] >= TTL + 3.5, r.router.starts
    await r.stop()


@virtual_time
async def test_rates_after_a_takeover_come_only_from_the_new_holders_own_polling() -> None:
    """The first frame a replica appends after taking the lease has no rates when it was not
    polling (no baseline of its own), and keeps them when it was polling the router without a
    gap, for its own viewers while Redis was away: from its own previous reading, one interval
    before (here 8,000 bit/s: 1,000 bytes a poll, a poll a second)."""
    r = rig()
    r.demand.join()
    await asyncio.sleep(2.5)
    assert role(r) == "holder"
    traffic = [e for _, e in r.store.entries if e.kind == "traffic"]
    assert first_rates(traffic[0]) == [None]
    assert first_rates(traffic[1]) == [8000.0]

    r.store.down = True
    await asyncio.sleep(TTL + 2.5)
    assert role(r) == "local"
    appended = len(r.store.entries)
    r.store.lease = None  # Redis restarted empty
    r.store.down = False
    await asyncio.sleep(2.5)
    assert role(r) == "holder"
    taken = [e for _, e in r.store.entries[appended:] if e.kind == "traffic"]
    assert taken, "the holder appends again"
    assert first_rates(taken[0]) == [8000.0]
    await r.stop()


@virtual_time
async def test_viewers_gone_during_an_outage_leave_an_unmarked_status_once_redis_is_back() -> None:
    """Viewers gone while Redis was away: the router shows idle, marked degraded; Redis back
    (empty, nobody polls), its streams loaded again: idle without the mark; and the status
    Redis had before, met again, replaces it."""
    r = rig()
    r.store.lease = ("b#1", r.store.clock() + 100)
    r.demand.join()
    await asyncio.sleep(0.5)
    r.lease.offer_status("interfaces", stored("up", 1.0, StatusMark(100, (10, 0))))
    r.store.down = True
    await asyncio.sleep(TTL + 1.5)
    r.demand.leave()
    await asyncio.sleep(LINGER + 2 * INTERVAL)
    assert role(r) == "idle"
    status = r.topic.status
    assert status is not None
    assert (status["state"], status.get("degraded")) == ("idle", True)
    r.store.down = False
    r.lease.reloaded("interfaces")  # the reader loaded an empty stream
    assert r.topic.status is not None
    assert (r.topic.status["state"], "degraded" in r.topic.status) == ("idle", False)
    await r.stop()

    r = rig()
    r.store.lease = ("b#1", r.store.clock() + 100)
    r.demand.join()
    await asyncio.sleep(0.5)
    up = stored("up", 1.0, StatusMark(100, (10, 0)))
    r.lease.offer_status("interfaces", up)
    r.store.down = True
    await asyncio.sleep(TTL + 1.5)
    r.demand.leave()
    await asyncio.sleep(LINGER + 2 * INTERVAL)
    r.store.down = False
    r.lease.offer_status("interfaces", up)  # the reader loaded the stream: the same status
    assert r.topic.status == status_frame("r1", "up", None, 1.0)
    await r.stop()
