"""One poll loop per router: poll while someone watches, publish frames, back off on failure.

The poller is the only caller of its RouterClient, so exactly one request is ever in flight
per router. A slow reply delays the next tick instead of stacking polls. Each tick polls every
source of the router that someone watches (``interfaces``, ``queues``, ``hotspot``; README,
"Sources"), one request after another, and publishes each source's frame to its topic as soon
as its reply is read; PPP sessions are read at the start of a tick now and then and joined into
the interface and queue rows (``gateway.core.sessions``). A source nobody watches costs
nothing.

Failures publish a ``status`` frame per source (on change only), then back off with full
jitter; bad credentials back off at least a minute. A router that refuses one source's request
(a trap: the session is fine) shows that source ``down`` with its message, and the tick goes on
with the others. Whether anyone watches is the topics' ``Demand`` (subscribers, REST reads,
linger), the one thing the poller reads from the web side; with no demand the poller goes
idle, and after a further idle period it logs out.

This module is the loop (demand, ticks, requests, back-off, and when to read PPP sessions);
each source's frame is made from its rows in ``gateway.poller_frames``, and what viewers are
told of the router and its sources is ``gateway.poller_status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from gateway.config import PollSettings, RouterSettings
from gateway.core.backoff import Backoff, auth_failure_delay
from gateway.core.sessions import SessionBook
from gateway.core.sources import (
    COMMANDS,
    DEFAULT_SOURCE,
    PROPLISTS,
    SESSION_PROPLIST,
    SESSIONS_COMMAND,
    Source,
    parse_session_row,
)
from gateway.demand import RouterDemand
from gateway.faults import UnexpectedErrors
from gateway.metrics import Metrics
from gateway.poller_frames import SourceFrames
from gateway.poller_status import Publisher, RouterStatus
from gateway.routeros import (
    Connector,
    RouterAuthFailed,
    RouterClient,
    RouterError,
    RouterTimeout,
    Row,
)
from gateway.topic import Topic

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class RouterSession(Protocol):
    """What the poller needs of its router client: :class:`gateway.routeros.RouterClient`.

    One command at a time, the session opened on first use and dropped after a failure; every
    call has its own deadline and raises only ``gateway.router_errors`` types for router
    trouble. Tests give the poller a fake of their own through this seam.
    """

    @property
    def connected(self) -> bool:
        """Whether a logged-in session is open now."""
        ...

    async def print_interfaces(self, proplist: Sequence[str]) -> list[Row]:
        """``/interface/print`` of the ``proplist`` fields, connecting first when needed."""
        ...

    async def close(self) -> None:
        """Log out (bounded by the deadline) and drop the session."""
        ...


@runtime_checkable
class SourceSession(RouterSession, Protocol):
    """A router session that prints any menu: what a router serving more than its interfaces
    needs (``RouterClient`` is one). A trap (the router refused the command) leaves the session
    ``connected``; any other failure drops it."""

    async def print_rows(self, command: str, proplist: Sequence[str]) -> list[Row]:
        """``command`` (a ``.../print``) of the ``proplist`` fields, connecting when needed."""
        ...


class Wanted(Protocol):
    """When to poll: the router's ``RouterDemand`` (its topics' demand), or in cluster mode the
    router's lease gate (``gateway.cluster_gate.Gate``). ``woken`` is set when polling may have
    become wanted; the poller waits on it while idle and clears it when it looks."""

    woken: asyncio.Event

    def wanted(self) -> bool:
        """Whether to poll now."""
        ...

    def wants(self, source: str) -> bool:
        """Whether to poll ``source`` in the tick starting now."""
        ...


class _TickFailed(Exception):
    """The router (not one source) failed during a tick: back off ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay)
        self.delay = delay


class Poller(RouterStatus):
    """Polls one router's watched sources while it has demand, and publishes to their topics.

    ``topics`` is the router's topics by source (``Hub.sources[router]``); a single ``Topic`` is
    its ``interfaces``. ``connect`` opens the router's API sessions
    (``gateway.routeros.connect_librouteros`` in production) for the ``RouterClient`` the poller
    builds; a test may pass a ``client`` of its own instead (exactly one of the two). Call
    ``start()`` once; ``stop()`` ends the loop and logs out. In cluster mode ``gate`` replaces
    the topics' demand and ``publisher`` the topics as the frames' destination (both the
    router's lease).

    ``state``, ``error`` and ``since`` are the router's (its session: ``connecting``, ``up``,
    ``down``, ``idle``); each source's status, published on its topic, follows them, except
    that a source nobody watches is ``idle`` and a source the router refuses is ``down``
    (``gateway.poller_status.RouterStatus``). Each source's frame is made from its rows by
    ``frames`` (``gateway.poller_frames.SourceFrames``).
    """

    def __init__(
        self,
        router: RouterSettings,
        poll: PollSettings,
        topics: Topic | Mapping[Source, Topic],
        metrics: Metrics,
        *,
        connect: Connector | None = None,
        client: RouterSession | None = None,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
        idle_logout: float | None = None,
        gate: Wanted | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self.interval = router.effective_interval(poll)
        self.timeout = router.effective_timeout(poll)
        self.sessions_interval = poll.sessions_interval
        # After polling stops, keep the API session this long in case a viewer comes back.
        self.idle_logout = poll.idle_logout if idle_logout is None else idle_logout
        by_source: dict[Source, Topic] = (
            {topics.source: topics} if isinstance(topics, Topic) else dict(topics)
        )
        if not by_source:
            raise ValueError(f"router {router.id}: no source to poll")
        # The router's state and its sources' statuses (RouterStatus), published from here on.
        super().__init__(router, by_source, metrics, wall=wall, publisher=publisher)
        # The first source's topic (interfaces, when served): what single-source callers read.
        self.topic = self.topics.get(DEFAULT_SOURCE) or next(iter(self.topics.values()))
        # Whether anyone watches each source, and the wake-up when someone starts to: the
        # topics' (their clock should be this poller's: the app builds both from the same one),
        # or the lease's gate.
        self.demand: Wanted = (
            RouterDemand({s: t.demand for s, t in self.topics.items()}) if gate is None else gate
        )
        self.metrics = metrics
        if client is None:
            if connect is None:
                raise TypeError("Poller needs connect (or a client of its own)")
            client = RouterClient(router, self.timeout, connect=connect)
        elif connect is not None:
            raise TypeError("Poller takes connect or client, not both")
        self.client = client
        # The client as a session that prints any menu (None: it prints interfaces only, and
        # then the router may serve nothing else).
        self._rows_client = client if isinstance(client, SourceSession) else None
        if self._rows_client is None and set(self.topics) - {DEFAULT_SOURCE}:
            raise TypeError("a router serving more than interfaces needs a SourceSession")
        self._clock = clock
        self._backoff = Backoff(poll.backoff_initial, poll.backoff_max)
        # Errors the loop has no handling for (bugs, or a library raising something new): each
        # kind is logged with its traceback once until a poll succeeds again.
        self._unexpected = UnexpectedErrors(logger, f"{router.id}: poll loop")
        # The loop task; created by start(), cancelled and awaited by stop().
        self._task: asyncio.Task[None] | None = None
        # The PPP sessions last read, joined into interface and queue rows; emptied with the
        # baselines (a new session to the router may be a rebooted router).
        self.sessions = SessionBook()
        # Each source's frames from its rows: their baselines (cleared with the sessions, and
        # when a source goes unwatched or is refused), seqs and destination.
        self.frames = SourceFrames(
            router,
            self.interval,
            self.topics,
            metrics,
            self.sessions,
            wall=wall,
            publisher=publisher,
            refuse=self._refuse,
        )
        # Whether a refused /ppp/active was logged (once until it is answered again).
        self._sessions_refused = False
        self._ok = metrics.router_requests.labels(router.id, "ok")
        self._timeouts = metrics.router_requests.labels(router.id, "timeout")
        self._errors = metrics.router_requests.labels(router.id, "error")
        self._duration = metrics.router_poll_seconds.labels(router.id)

    @property
    def seq(self) -> int:
        """The seq of the last frame of the first source (interfaces, when served)."""
        return self.frames.seqs[self.topic.source]

    @property
    def seq_base(self) -> int:
        """The first seq of every source (the start time in milliseconds): see SourceFrames."""
        return self.frames.seq_base

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"poller:{self.router.id}")

    async def stop(self) -> None:
        """Stop polling and log out of the router (bounded by the command deadline)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.client.close()

    async def _run(self) -> None:
        """Poll while wanted, idle otherwise, until cancelled; nothing else ends it.

        An unexpected error anywhere in a cycle (a bug, a library raising something new) is
        logged, the router is reported ``down``, and the loop backs off and looks at demand
        again, so a viewer never watches a router that looks ``up`` while nobody polls it.
        Cancellation (``stop()``) is never caught here.
        """
        while True:
            try:
                await self._cycle()
            except Exception as exc:  # noqa: BLE001 - the loop outlives any bug below it
                self._unexpected.report(exc)
                self._internal_error(exc)
            else:
                continue
            await asyncio.sleep(self._backoff.next_delay())
            self.demand.woken.set()  # look at demand again: viewers may still be waiting

    async def _cycle(self) -> None:
        """Wait for demand, poll while it lasts, then keep the session a while and log out."""
        woken = self.demand.woken
        await woken.wait()
        woken.clear()
        if self.demand.wanted():
            await self._poll_while_wanted()
            self._polled = frozenset()
            self._set_state("idle", None)
        if not woken.is_set() and self.client.connected:
            # Nobody watches: keep the session a while for a returning viewer, then log out.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.idle_logout):
                    await woken.wait()
            if not woken.is_set():
                await self.client.close()
                logger.info("%s: logged out after %g s idle", self.router.id, self.idle_logout)

    async def _poll_while_wanted(self) -> None:
        if not self.client.connected and self.state != "down":
            self._set_state("connecting", None)
        next_tick = self._clock()
        self._forget_baselines()
        while self.demand.wanted():
            delay = await self._poll_once()
            if delay is None:
                # Success: keep the cadence; after a slow reply, poll again at once, never twice.
                next_tick = max(next_tick + self.interval, self._clock())
                delay = next_tick - self._clock()
            else:
                next_tick = self._clock() + delay
                await self._back_off(delay)
                continue
            await asyncio.sleep(delay)

    async def _back_off(self, delay: float) -> None:
        """Wait ``delay`` seconds after a failure (up to a minute after a refused login). A
        source that viewers start watching meanwhile is told the router's state at once
        (``down``, with the reason), not ``idle`` until the next try; no request is sent
        sooner."""
        deadline = self._clock() + delay
        woken = self.demand.woken
        while (left := deadline - self._clock()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await woken.wait()
            if not woken.is_set():
                continue
            woken.clear()
            wanted = frozenset(source for source in self.topics if self.demand.wants(source))
            if not self.demand.wanted():
                return
            if wanted - self._polled:
                self._polled |= wanted
                for source in self.topics:
                    self._publish_source_status(source)

    def _forget_baselines(self) -> None:
        self.frames.forget()
        self.sessions.forget()

    async def _poll_once(self) -> float | None:
        """One tick. Returns None on success, or how long to back off.

        Router errors are expected and reported as they are; anything else raised while
        polling, parsing or publishing is a fault of ours: logged with its traceback (once per
        kind), reported to viewers as ``down`` with ``internal error: <type>`` (never the
        exception's text, which may quote anything), and retried after a back-off.
        """
        try:
            await self._tick()
        except _TickFailed as failed:
            return failed.delay
        except Exception as exc:  # noqa: BLE001 - the loop outlives any bug below it
            self._unexpected.report(exc)
            self._internal_error(exc)
            return self._backoff.next_delay()
        self._unexpected.recovered()
        return None

    async def _tick(self) -> None:
        """The requests, parsing and publishing of one tick; router errors handled here.

        Raises _TickFailed when the router itself failed (the session is gone, or the login was
        refused): every watched source is then ``down`` with the reason.
        """
        started = self._clock()
        if not self.client.connected:
            self._forget_baselines()
        polled = frozenset(source for source in self.topics if self.demand.wants(source))
        for source in self.topics:
            if source not in polled:
                self.frames.forget(source)
                self._refused[source] = None
        self._polled = polled
        for source in self.topics:
            self._publish_source_status(source)  # a source no longer watched goes idle
        if (
            self._rows_client is not None
            and polled & {"interfaces", "queues"}
            and self.sessions.due(self._clock(), self.interval, self.sessions_interval)
        ):
            await self._read_sessions()
        for source in self.topics:
            if source in polled:
                await self._poll_source(source)
        self.sessions.end_tick()
        self._duration.observe(self._clock() - started)
        self._backoff.reset()

    async def _request(
        self, source: Source | None, command: str, proplist: Sequence[str]
    ) -> list[Row] | None:
        """One request; its rows, or None when the router refused it (a trap, the session kept:
        the source, when given, is then ``down`` with the router's message).

        Raises _TickFailed when the router failed as a whole.
        """
        try:
            if command == COMMANDS["interfaces"]:
                rows = await self.client.print_interfaces(proplist)
            else:
                assert self._rows_client is not None  # checked in __init__
                rows = await self._rows_client.print_rows(command, proplist)
        except RouterAuthFailed as exc:
            self._errors.inc()
            self._fail(str(exc))
            raise _TickFailed(auth_failure_delay(self._backoff.next_delay())) from None
        except RouterError as exc:
            (self._timeouts if isinstance(exc, RouterTimeout) else self._errors).inc()
            if not self.client.connected:
                self._fail(str(exc))
                raise _TickFailed(self._backoff.next_delay()) from None
            # The router answered and refused this command alone: the session is fine.
            if source is not None:
                self._refuse(source, str(exc))
            return None
        self._ok.inc()
        self._set_state("up", None)
        return rows

    async def _read_sessions(self) -> None:
        """Read ``/ppp/active`` into the session book. A router that refuses it (no ppp
        package, no permission) joins no sessions until the next read is due."""
        # Dated when asked, so that reads keep the sessions interval's beat (a reply's time
        # would push each read a tick later than the last).
        at, wall = self._clock(), self._wall()
        rows = await self._request(None, SESSIONS_COMMAND, SESSION_PROPLIST)
        if rows is None:
            # Refused: the book is "read" with no session, so rows ask for nothing until the
            # next read is due (a router without PPP does not get asked every few seconds).
            if not self._sessions_refused:
                self._sessions_refused = True
                logger.info(
                    "%s: %s refused: PPP sessions are not joined to interfaces and queues",
                    self.router.id,
                    SESSIONS_COMMAND,
                )
            self.sessions.update((), at, wall)
            return
        self._sessions_refused = False
        self.sessions.update(self.frames.parsed(None, rows, parse_session_row), at, wall)

    async def _poll_source(self, source: Source) -> None:
        """Poll one source and publish its frame (or its refusal)."""
        rows = await self._request(source, COMMANDS[source], PROPLISTS[source])
        if rows is None:
            return
        frame = self.frames.frame(source, rows, self._clock())
        if frame is None:
            return  # every row unreadable: the source is down, said so
        self._refused[source] = None
        self._publish_source_status(source)
        self.frames.publish(source, frame)

    # -- states -------------------------------------------------------------------------------

    def _refuse(self, source: Source, error: str) -> None:
        """The router refused ``source``'s request alone: that source is ``down``, and its next
        reading has no rates."""
        self.frames.forget(source)
        super()._refuse(source, error)

    def _internal_error(self, exc: Exception) -> None:
        """Report an unexpected error to viewers as ``down``; never raises (it runs in a guard)."""
        try:
            self._fail(f"internal error: {type(exc).__name__}")
        except Exception as again:  # noqa: BLE001 - reporting must not end the loop either
            self._unexpected.report(again)
