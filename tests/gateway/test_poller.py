"""The poll loop's timing, fast: a typed fake router session and an event loop on virtual time.

Each test runs the real ``Poller`` (and its real topic and demand) on ``VirtualTimeLoop``, whose
clock jumps to the next timer whenever the loop is idle: the poller's own ``asyncio.sleep`` and
``asyncio.timeout`` run unchanged, minutes of polling take milliseconds, and every instant is
exact. ``await asyncio.sleep(n)`` in a test moves the story on ``n`` virtual seconds; it is the
clock, not a wait for something to happen. The fake router (``FakeRouter``, the poller's
``RouterSession`` seam) records when each request started and ended.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import pytest

from gateway.config import settings_from_dict
from gateway.core.backoff import AUTH_FAILURE_MIN_DELAY
from gateway.demand import Demand
from gateway.metrics import Metrics
from gateway.poller import Poller, RouterSession
from gateway.router_errors import RouterAuthFailed, RouterUnavailable
from gateway.routeros import Row
from gateway.topic import Topic
from tests.support.virtual_time import START, virtual_time

INTERVAL: Final = 1.0
LINGER: Final = 10.0
IDLE_LOGOUT: Final = 60.0
BACKOFF_INITIAL: Final = 0.5
BACKOFF_MAX: Final = 30.0
WALL: Final = 1_764_377_000.0
SEED: Final = 20_251_130

ROW: Final = {
    ".id": "*1",
    "name": "ether1",
    "type": "ether",
    "running": "true",
    "disabled": "false",
    "rx-byte": "0",
    "tx-byte": "0",
    "rx-packet": "0",
    "tx-packet": "0",
}


def now() -> float:
    """Virtual seconds since the test's loop started."""
    return asyncio.get_running_loop().time() - START


class FakeRouter:
    """A router session on the virtual clock: each print takes ``delay`` seconds, then returns
    one interface or raises ``fault`` (and, as the real client does, drops the session)."""

    def __init__(self) -> None:
        self.connected = False
        self.delay = 0.0
        self.fault: Exception | None = None
        # When each request started and ended, and each logout (virtual seconds).
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.closes: list[float] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._bytes = 0

    async def print_interfaces(self, proplist: Sequence[str]) -> list[Row]:
        self.starts.append(now())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)  # the router's reply time, on the virtual clock
            if self.fault is not None:
                self.connected = False
                raise self.fault
            self.connected = True
            self._bytes += 1000
            return [{**ROW, "rx-byte": str(self._bytes)}]
        finally:
            self.in_flight -= 1
            self.ends.append(now())

    async def close(self) -> None:
        self.closes.append(now())
        self.connected = False

    def gaps(self) -> list[float]:
        """Seconds between the starts of successive requests."""
        return [round(b - a, 9) for a, b in zip(self.starts, self.starts[1:], strict=False)]


@dataclass
class Rig:
    poller: Poller
    router: FakeRouter
    demand: Demand

    @property
    def frames(self) -> int:
        """Traffic frames published so far."""
        return self.poller.seq - self.poller.seq_base


def rig(router: FakeRouter | None = None) -> Rig:
    """A started poller of one router, with nobody watching yet (call inside the test's loop)."""
    loop = asyncio.get_running_loop()
    settings = settings_from_dict(
        {
            "poll": {
                "interval": INTERVAL,
                "linger": LINGER,
                "idle_logout": IDLE_LOGOUT,
                "backoff_initial": BACKOFF_INITIAL,
                "backoff_max": BACKOFF_MAX,
            },
            "routers": [
                {"id": "r1", "host": "192.0.2.1", "username": "u", "password": "p"},
            ],
        },
        source="test",
    )
    demand = Demand(settings.poll.linger, loop.time)

    def wall() -> float:
        return WALL + loop.time()

    topic = Topic("r1", settings.poll.history, demand=demand, clock=loop.time, wall=wall)
    router = router or FakeRouter()
    session: RouterSession = router  # the seam the fake stands in for, checked by mypy
    poller = Poller(
        settings.routers[0],
        settings.poll,
        topic,
        Metrics(),
        client=session,
        clock=loop.time,
        wall=wall,
    )
    poller.start()
    return Rig(poller, router, demand)


@pytest.fixture
def seeded() -> Iterator[random.Random]:
    """The global generator (the backoff's jitter) seeded, and a twin that draws the same."""
    state = random.getstate()
    random.seed(SEED)
    try:
        yield random.Random(SEED)
    finally:
        random.setstate(state)


@virtual_time
async def test_one_request_per_interval_never_two_in_flight() -> None:
    """While watched, the router gets one request each interval, on the beat, one at a time."""
    r = rig()
    r.router.delay = 0.3
    r.demand.join()
    await asyncio.sleep(10.5)
    assert r.router.starts == [float(t) for t in range(11)]
    assert r.router.most_in_flight == 1
    assert r.frames == 11
    assert r.poller.state == "up"
    await r.poller.stop()


@virtual_time
async def test_a_slow_reply_is_followed_at_once_never_stacked() -> None:
    """A reply slower than the interval delays the next request to the moment it ends: no
    request waits behind another, none is skipped, and the beat returns once replies are quick."""
    r = rig()
    r.router.delay = 2.5
    r.demand.join()
    await asyncio.sleep(7.6)  # three slow replies, ending at 2.5, 5.0 and 7.5
    assert r.router.starts == [0.0, 2.5, 5.0, 7.5]
    assert r.router.starts[1:] == r.router.ends[:3]
    r.router.delay = 0.0  # from the next request on; the one sent at 7.5 ends at 10.0
    await asyncio.sleep(5.0)
    assert r.router.starts[4:] == [10.0, 11.0, 12.0]
    assert r.router.most_in_flight == 1
    await r.poller.stop()


@virtual_time
async def test_failures_back_off_with_full_jitter_and_reset_after_a_success(
    seeded: random.Random,
) -> None:
    """Each retry waits a random share of a ceiling that doubles from backoff_initial up to
    backoff_max; one good poll brings the ceiling back to backoff_initial."""
    r = rig()
    r.router.fault = RouterUnavailable("192.0.2.1:8728: connection refused")
    r.demand.join()
    await asyncio.sleep(200.0)
    gaps = r.router.gaps()
    ceilings = [min(BACKOFF_MAX, BACKOFF_INITIAL * 2**k) for k in range(len(gaps))]
    assert len(gaps) >= 10
    assert ceilings[-1] == BACKOFF_MAX
    assert gaps == pytest.approx([seeded.random() * ceiling for ceiling in ceilings])
    assert len(set(gaps)) == len(gaps)  # jittered, not fixed steps
    assert (r.poller.state, r.poller.error) == ("down", "192.0.2.1:8728: connection refused")
    r.router.fault = None
    await asyncio.sleep(BACKOFF_MAX)  # the pending retry is at most this far off
    assert r.poller.state == "up"
    seeded.random()  # the draw for that pending retry
    r.router.fault = RouterUnavailable("192.0.2.1:8728: connection refused")
    failing = len(r.router.starts)  # the index of the next request: the first to fail
    await asyncio.sleep(2.0)
    retry = r.router.starts[failing + 1] - r.router.starts[failing]
    assert retry == pytest.approx(seeded.random() * BACKOFF_INITIAL)
    await r.poller.stop()


@virtual_time
async def test_router_down_is_published_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """A router that keeps failing the same way is one ``down`` status and one warning, not
    one per retry."""
    caplog.set_level(logging.INFO, logger="gateway.poller")
    r = rig()
    r.router.fault = RouterUnavailable("192.0.2.1:8728: connection refused")
    r.demand.join()
    await asyncio.sleep(120.0)
    assert len(r.router.starts) > 5
    downs = [rec for rec in caplog.records if "down" in rec.getMessage()]
    assert len(downs) == 1
    assert r.poller.topic.status is not None
    assert r.poller.topic.status["state"] == "down"
    await r.poller.stop()


@virtual_time
async def test_polling_lingers_after_the_last_viewer_then_goes_idle() -> None:
    """After the last viewer leaves, polls go on for ``linger`` seconds, then stop."""
    r = rig()
    r.demand.join()
    await asyncio.sleep(5.2)
    r.demand.leave()  # the last poll that saw the viewer was at 5.0: linger counts from there
    await asyncio.sleep(30.0)
    assert r.router.starts == [float(t) for t in range(15)]
    assert r.poller.state == "idle"
    await r.poller.stop()


@virtual_time
async def test_an_idle_session_logs_out_after_idle_logout() -> None:
    """Once polling stops the session stays open ``idle_logout`` seconds, then logs out."""
    r = rig()
    r.demand.join()
    await asyncio.sleep(0.5)
    r.demand.leave()
    await asyncio.sleep(LINGER + IDLE_LOGOUT + 30.0)
    assert r.router.starts[-1] == LINGER - INTERVAL
    assert r.router.closes == [LINGER + IDLE_LOGOUT]
    assert not r.router.connected
    await r.poller.stop()


@virtual_time
async def test_a_viewer_back_before_idle_logout_reuses_the_session() -> None:
    """A viewer returning within ``idle_logout`` is served on the same session: no logout, no
    new login, polling resumes at once."""
    r = rig()
    r.demand.join()
    await asyncio.sleep(0.5)
    r.demand.leave()
    await asyncio.sleep(LINGER + IDLE_LOGOUT / 2)
    back = now()
    r.demand.join()
    await asyncio.sleep(IDLE_LOGOUT)
    assert r.router.closes == []
    assert r.router.connected
    assert back in r.router.starts
    assert r.poller.state == "up"
    await r.poller.stop()
    assert r.router.closes == [back + IDLE_LOGOUT]  # stop() logs out


@virtual_time
async def test_bad_credentials_wait_at_least_a_minute(seeded: random.Random) -> None:
    """After a refused login the next try is a minute away at the soonest (accounts lock, the
    router's log fills), however short the ordinary backoff."""
    r = rig()
    r.router.fault = RouterAuthFailed("192.0.2.1:8728: login as 'u' refused")
    r.demand.join()
    await asyncio.sleep(3 * AUTH_FAILURE_MIN_DELAY + 1)
    assert r.router.starts == [0.0, 60.0, 120.0, 180.0]
    assert r.poller.state == "down"
    assert r.poller.error == "192.0.2.1:8728: login as 'u' refused"
    await r.poller.stop()


class Broken(FakeRouter):
    """A session whose print raises something no router error explains (a bug below)."""

    async def print_interfaces(self, proplist: Sequence[str]) -> list[Row]:
        if self.fault is not None:
            self.starts.append(now())
            raise ZeroDivisionError("a bug")
        return await super().print_interfaces(proplist)


@virtual_time
async def test_an_unexpected_error_is_logged_once_reported_down_and_retried(
    caplog: pytest.LogCaptureFixture, seeded: random.Random
) -> None:
    """A bug below the poller is logged with its traceback once, shown as ``down`` with
    ``internal error: <type>`` (never its text), retried with backoff, and logged again only
    after a success."""
    caplog.set_level(logging.ERROR, logger="gateway.poller")
    r = rig(Broken())
    r.router.fault = ZeroDivisionError()
    r.demand.join()
    await asyncio.sleep(60.0)
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert len(r.router.starts) > 5
    assert all(0 < gap < BACKOFF_MAX for gap in r.router.gaps())  # backed off each time
    assert (r.poller.state, r.poller.error) == ("down", "internal error: ZeroDivisionError")
    r.router.fault = None
    await asyncio.sleep(BACKOFF_MAX)
    assert r.poller.state == "up"
    r.router.fault = ZeroDivisionError()
    await asyncio.sleep(5.0)
    assert len([rec for rec in caplog.records if rec.levelno >= logging.ERROR]) == 2
    await r.poller.stop()
