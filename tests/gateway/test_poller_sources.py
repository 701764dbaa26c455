"""The poll loop with several sources, fast: the real ``Poller``, its topics and their demand on
virtual time, over a typed fake router session that prints every menu.

What a router pays for sources (one request per watched source per tick, one after another;
PPP sessions now and then), and how one source's trouble stays its own.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import orjson
import pytest

from gateway.config import settings_from_dict
from gateway.core.sources import COMMANDS, SESSIONS_COMMAND, Source
from gateway.demand import Demand
from gateway.history import Frame
from gateway.hub import Hub
from gateway.metrics import Metrics
from gateway.poller import Poller, SourceSession
from gateway.router_errors import RouterAuthFailed, RouterProtocolError, RouterUnavailable
from gateway.routeros import Row
from gateway.topic import Topic
from tests.support.virtual_time import START, virtual_time

INTERVAL: Final = 1.0
LINGER: Final = 3.0
SESSIONS_INTERVAL: Final = 20.0
WALL: Final = 1_764_377_000.0

INTERFACES: Final = COMMANDS["interfaces"]
QUEUES: Final = COMMANDS["queues"]
HOTSPOT: Final = COMMANDS["hotspot"]


def now() -> float:
    return asyncio.get_running_loop().time() - START


@dataclass
class FakeRouter:
    """A router session on the virtual clock that prints every menu: each request takes
    ``delay`` seconds; ``refuse`` maps a command to the trap it answers (the session stays);
    ``fault`` drops the session on the next request."""

    delay: float = 0.05
    connected: bool = False
    refuse: dict[str, str] = field(default_factory=dict)
    fault: Exception | None = None
    # Each request: (command, start, end), and how many were in flight at most.
    requests: list[tuple[str, float, float]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    # What the router answers per command (interfaces get counters that grow).
    rows: dict[str, list[Row]] = field(default_factory=dict)
    _bytes: int = 0

    async def print_interfaces(self, proplist: Sequence[str]) -> list[Row]:
        return await self.print_rows(INTERFACES, proplist)

    async def print_rows(self, command: str, proplist: Sequence[str]) -> list[Row]:
        start = now()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.fault is not None:
                self.connected = False
                raise self.fault
            self.connected = True
            if command in self.refuse:
                raise RouterProtocolError(
                    f"192.0.2.1:8728: {command} failed: {self.refuse[command]}"
                )
            self._bytes += 1000
            if command == INTERFACES:
                return [
                    {
                        ".id": "*1",
                        "name": "ether1",
                        "rx-byte": str(self._bytes),
                        "tx-byte": "0",
                        "rx-packet": "1",
                        "tx-packet": "1",
                    }
                ]
            return list(self.rows.get(command, []))
        finally:
            self.in_flight -= 1
            self.requests.append((command, start, now()))

    async def close(self) -> None:
        self.connected = False

    def commands(self, command: str) -> list[float]:
        """When each request of ``command`` started."""
        return [round(start, 6) for cmd, start, _ in self.requests if cmd == command]


@dataclass
class Rig:
    poller: Poller
    router: FakeRouter
    topics: dict[Source, Topic]
    metrics: Metrics


def rows(frame: Frame | None) -> list[dict[str, Any]]:
    """The rows of a kept traffic frame."""
    assert frame is not None
    data = orjson.loads(frame.json)
    return cast(list[dict[str, Any]], data[str(data["source"])])


def rig(router: FakeRouter | None = None) -> Rig:
    """A started poller of one router serving every source, nobody watching yet."""
    loop = asyncio.get_running_loop()
    settings = settings_from_dict(
        {
            "poll": {
                "interval": INTERVAL,
                "linger": LINGER,
                "sessions_interval": SESSIONS_INTERVAL,
            },
            "routers": [{"id": "r1", "host": "192.0.2.1", "username": "u", "password": "p"}],
        },
        source="test",
    )

    def wall() -> float:
        return WALL + loop.time()

    def demand(woken: asyncio.Event) -> Demand:
        return Demand(LINGER, loop.time, woken)

    router_settings = settings.routers[0]
    hub = Hub(
        ["r1"],
        settings.poll.history,
        sources={"r1": router_settings.sources},
        demand=demand,
        clock=loop.time,
        wall=wall,
    )
    router = router or FakeRouter()
    session: SourceSession = router  # the seam the fake stands in for, checked by mypy
    metrics = Metrics()
    poller = Poller(
        router_settings,
        settings.poll,
        hub.sources["r1"],
        metrics,
        client=session,
        clock=loop.time,
        wall=wall,
    )
    poller.start()
    return Rig(poller, router, dict(hub.sources["r1"]), metrics)


@virtual_time
async def test_each_watched_source_is_one_request_per_tick_one_after_another() -> None:
    """Interfaces and queues watched: two requests a tick, on the beat, never two in flight;
    hotspot, which nobody watches, is never asked for; PPP sessions once per sessions
    interval."""
    r = rig()
    r.topics["interfaces"].demand.join()
    r.topics["queues"].demand.join()
    await asyncio.sleep(45.5)
    assert r.router.commands(INTERFACES) == pytest.approx(
        [t + 0.05 * (1 if t % 20 == 0 else 0) for t in range(46)], abs=1e-6
    )
    assert len(r.router.commands(QUEUES)) == 46
    assert r.router.commands(HOTSPOT) == []
    assert r.router.commands(SESSIONS_COMMAND) == [0.0, 20.0, 40.0]
    assert r.router.most_in_flight == 1
    await r.poller.stop()


@virtual_time
async def test_a_source_watched_alone_costs_one_request_and_no_sessions_for_hotspot() -> None:
    """Hotspot users watched alone: one hotspot request a tick, nothing else (hotspot rows take
    no PPP sessions)."""
    r = rig()
    r.topics["hotspot"].demand.join()
    await asyncio.sleep(5.5)
    assert len(r.router.commands(HOTSPOT)) == 6
    assert {cmd for cmd, _, _ in r.router.requests} == {HOTSPOT}
    await r.poller.stop()


@virtual_time
async def test_a_source_stops_when_its_viewers_leave_and_starts_with_no_rates() -> None:
    """A source whose last viewer left is polled for its linger, then not at all and shown
    idle, while the router goes on for the others; back, its first frame has no rates."""
    r = rig()
    r.router.rows[QUEUES] = [
        {".id": "*1", "name": "q", "bytes": "0/0", "packets": "0/0", "max-limit": "0/0"}
    ]
    r.topics["interfaces"].demand.join()
    queues = r.topics["queues"]
    queues.demand.join()
    await asyncio.sleep(2.5)
    queues.demand.leave()
    await asyncio.sleep(LINGER + 2.0)
    asked = r.router.commands(QUEUES)
    assert asked[-1] <= 2.5 + LINGER + 1.0
    assert queues.status is not None
    assert (queues.status["source"], queues.status["state"]) == ("queues", "idle")
    assert r.poller.state == "up"
    await asyncio.sleep(3.0)
    assert r.router.commands(QUEUES) == asked
    back = now()
    queues.demand.join()
    await asyncio.sleep(1.5)
    # The first frame after the gap has no rates (no baseline across an idle gap).
    first_back = next(f for f in queues.history if f.ts > WALL + START + back)
    [row] = rows(first_back)
    assert row["up_bps"] is None
    await r.poller.stop()


@virtual_time
async def test_a_refused_source_is_down_alone_and_retried_every_tick(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A router without hotspot: hotspot is down with the router's message (logged once),
    retried every tick without backing off, while interfaces stay up."""
    caplog.set_level(logging.WARNING, logger="gateway.poller")
    router = FakeRouter(refuse={HOTSPOT: "no such command or directory (hotspot)"})
    r = rig(router)
    r.topics["interfaces"].demand.join()
    r.topics["hotspot"].demand.join()
    await asyncio.sleep(5.5)
    hotspot, interfaces = r.topics["hotspot"].status, r.topics["interfaces"].status
    assert hotspot is not None
    assert interfaces is not None
    assert (hotspot["state"], interfaces["state"]) == ("down", "up")
    assert "no such command or directory (hotspot)" in str(hotspot["error"])
    assert len(r.router.commands(HOTSPOT)) == 6
    assert len(r.topics["interfaces"].history) == 6
    assert len(r.topics["hotspot"].history) == 0
    assert r.poller.state == "up"
    downs = [rec for rec in caplog.records if "hotspot: down" in rec.getMessage()]
    assert len(downs) == 1
    router.refuse.clear()
    await asyncio.sleep(1.0)
    hotspot = r.topics["hotspot"].status
    assert hotspot is not None
    assert hotspot["state"] == "up"
    await r.poller.stop()


@virtual_time
async def test_a_router_failure_takes_every_watched_source_down() -> None:
    """A lost session is every watched source's trouble: each is down with the reason; a
    source nobody watches stays idle."""
    r = rig()
    r.topics["interfaces"].demand.join()
    r.topics["queues"].demand.join()
    await asyncio.sleep(1.5)
    r.router.fault = RouterUnavailable("192.0.2.1:8728: connection refused")
    await asyncio.sleep(3.0)
    states = {s: (t.status or {}).get("state") for s, t in r.topics.items()}
    assert states == {"interfaces": "down", "queues": "down", "hotspot": "idle"}
    await r.poller.stop()


@virtual_time
async def test_a_router_that_refuses_ppp_sessions_asks_again_only_when_due() -> None:
    """No ppp package: /ppp/active is refused, nothing is joined, the sources stay up, and it
    is asked again only at the next sessions interval."""
    router = FakeRouter(refuse={SESSIONS_COMMAND: "no such command or directory (ppp)"})
    router.rows[QUEUES] = [{".id": "*1", "name": "<pppoe-a>", "bytes": "0/0", "packets": "0/0"}]
    r = rig(router)
    r.topics["queues"].demand.join()
    await asyncio.sleep(25.5)
    assert r.router.commands(SESSIONS_COMMAND) == [0.0, 20.0]
    status = r.topics["queues"].status
    assert status is not None
    assert status["state"] == "up"
    [row] = rows(r.topics["queues"].latest)
    assert "session" not in row
    await r.poller.stop()


@virtual_time
async def test_a_new_dial_brings_the_sessions_read_forward_but_not_every_tick() -> None:
    """A PPPoE customer who dialed in after the read gets its session at a read a tenth of the
    sessions interval later (not at once, and not every tick while more keep dialing)."""
    router = FakeRouter()
    router.rows[SESSIONS_COMMAND] = [{".id": "*A", "name": "a", "service": "pppoe", "uptime": "5s"}]
    router.rows[QUEUES] = [{".id": "*1", "name": "<pppoe-a>", "bytes": "0/0", "packets": "0/0"}]
    r = rig(router)
    r.topics["queues"].demand.join()
    await asyncio.sleep(3.5)
    assert r.router.commands(SESSIONS_COMMAND) == [0.0]
    for index in range(2, 8):  # a new customer dials in every second
        router.rows[QUEUES].append(
            {".id": f"*{index}", "name": f"<pppoe-c{index}>", "bytes": "0/0", "packets": "0/0"}
        )
        await asyncio.sleep(1.0)
    reads = r.router.commands(SESSIONS_COMMAND)
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(reads)]
    assert len(reads) >= 3
    assert all(gap >= SESSIONS_INTERVAL / 10 for gap in gaps), reads
    first = rows(r.topics["queues"].latest)[0]
    assert first["session"]["user"] == "a"
    # Began 5 s before a read made in the window above (the router's uptime said 5 s).
    assert WALL + START - 5 <= first["session"]["since"] <= WALL + START + 10
    await r.poller.stop()


@virtual_time
async def test_unreadable_rows_are_left_out_and_counted() -> None:
    """A queue row the gateway cannot read is left out of the frame and counted; the others are
    published; a reply of nothing but such rows shows the source down, saying why."""
    router = FakeRouter()
    router.rows[QUEUES] = [
        {".id": "*1", "name": "good", "bytes": "1/2", "packets": "1/1"},
        {".id": "*2", "name": "odd", "bytes": "lots", "packets": "1/1"},
    ]
    r = rig(router)
    r.topics["queues"].demand.join()
    await asyncio.sleep(2.5)
    assert [row["name"] for row in rows(r.topics["queues"].latest)] == ["good"]
    skipped = r.metrics.registry.get_sample_value(
        "gateway_rows_skipped_total", {"router": "r1", "source": "queues"}
    )
    assert skipped == 3.0
    router.rows[QUEUES] = router.rows[QUEUES][1:]
    await asyncio.sleep(1.0)
    status = r.topics["queues"].status
    assert status is not None
    assert status["state"] == "down"
    assert "unreadable queues row: bytes" in str(status["error"])
    await r.poller.stop()


@virtual_time
async def test_a_source_watched_during_a_back_off_is_told_the_router_is_down_at_once() -> None:
    """The router refused the login (the next try is a minute away): a viewer who starts
    watching the queues meanwhile is told they are down, with the reason, at once, not idle;
    and the router gets no request before its time."""
    r = rig()
    r.topics["interfaces"].demand.join()
    await asyncio.sleep(1.5)
    r.router.fault = RouterAuthFailed("192.0.2.1:8728: login as 'u' refused")
    await asyncio.sleep(2.0)
    assert (r.topics["interfaces"].status or {}).get("state") == "down"
    asked = len(r.router.requests)
    r.topics["queues"].demand.join()
    await asyncio.sleep(0.01)
    queues = r.topics["queues"].status or {}
    assert (queues.get("state"), queues.get("error")) == (
        "down",
        "192.0.2.1:8728: login as 'u' refused",
    )
    await asyncio.sleep(30.0)
    assert len(r.router.requests) == asked
    await r.poller.stop()
