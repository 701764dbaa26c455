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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from gateway.config import PollSettings, RouterSettings
from gateway.core.backoff import Backoff, auth_failure_delay
from gateway.core.frames import (
    InterfaceFilter,
    hotspot_frame,
    queue_frame,
    status_frame,
    traffic_frame,
)
from gateway.core.model import (
    InterfaceSample,
    RouterState,
    RowError,
    Sample,
    parse_interface_row,
)
from gateway.core.rates import compute_hotspot_rates, compute_queue_rates, compute_rates
from gateway.core.sessions import SessionBook
from gateway.core.sources import (
    COMMANDS,
    DEFAULT_SOURCE,
    PROPLISTS,
    SESSION_PROPLIST,
    SESSIONS_COMMAND,
    HotspotSample,
    QueueSample,
    Reading,
    Source,
    parse_hotspot_row,
    parse_queue_row,
    parse_session_row,
)
from gateway.core.text import has_escapes
from gateway.demand import RouterDemand
from gateway.faults import UnexpectedErrors
from gateway.metrics import Metrics
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

T = TypeVar("T")


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
    router's lease gate (``gateway.cluster_lease.Gate``). ``woken`` is set when polling may have
    become wanted; the poller waits on it while idle and clears it when it looks."""

    woken: asyncio.Event

    def wanted(self) -> bool:
        """Whether to poll now."""
        ...

    def wants(self, source: str) -> bool:
        """Whether to poll ``source`` in the tick starting now."""
        ...


class Publisher(Protocol):
    """Where frames go instead of the topics (cluster mode: ``gateway.cluster_lease.RouterLease``,
    which appends them to Redis, publishes them locally, or drops them). Each frame and status
    names its source."""

    def traffic(self, frame: dict[str, object]) -> None:
        """A traffic frame of this poll."""
        ...

    def status(self, status: dict[str, object]) -> None:
        """A status change of one source."""
        ...

    def next_seq(self, seq: int, source: str) -> int:
        """The seq of ``source``'s frame after one numbered ``seq``."""
        ...


class _TickFailed(Exception):
    """The router (not one source) failed during a tick: back off ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay)
        self.delay = delay


class Poller:
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
    that a source nobody watches is ``idle`` and a source the router refuses is ``down``.
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
        self.router = router
        self.interval = router.effective_interval(poll)
        self.timeout = router.effective_timeout(poll)
        self.sessions_interval = poll.sessions_interval
        # After polling stops, keep the API session this long in case a viewer comes back.
        self.idle_logout = poll.idle_logout if idle_logout is None else idle_logout
        self.topics: dict[Source, Topic] = (
            {topics.source: topics} if isinstance(topics, Topic) else dict(topics)
        )
        if not self.topics:
            raise ValueError(f"router {router.id}: no source to poll")
        # The first source's topic (interfaces, when served): what single-source callers read.
        self.topic = self.topics.get(DEFAULT_SOURCE) or next(iter(self.topics.values()))
        # Whether anyone watches each source, and the wake-up when someone starts to: the
        # topics' (their clock should be this poller's: the app builds both from the same one),
        # or the lease's gate.
        self.demand: Wanted = (
            RouterDemand({s: t.demand for s, t in self.topics.items()}) if gate is None else gate
        )
        # In cluster mode, where frames and statuses go instead of the topics.
        self._publisher = publisher
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
        self._filters: dict[Source, InterfaceFilter] = {
            source: router.name_filter(source) for source in self.topics
        }
        self._clock = clock
        self._wall = wall
        self._backoff = Backoff(poll.backoff_initial, poll.backoff_max)
        # Errors the loop has no handling for (bugs, or a library raising something new): each
        # kind is logged with its traceback once until a poll succeeds again.
        self._unexpected = UnexpectedErrors(logger, f"{router.id}: poll loop")
        # The loop task; created by start(), cancelled and awaited by stop().
        self._task: asyncio.Task[None] | None = None
        # Each source's previous reading: the baseline for its rates. Cleared when a polling run
        # starts, when a session opens and when the source goes unwatched: across an idle gap a
        # rate would be an average over minutes, and across a reconnect the router may have
        # rebooted with counters already past the old ones, so the first reading after either
        # has no rates. Counters going down within a session (reset-counters) are the rate
        # rule's business.
        self._previous: dict[Source, object] = {}
        # The PPP sessions last read, joined into interface and queue rows; emptied with the
        # baselines (a new session to the router may be a rebooted router).
        self.sessions = SessionBook()
        # seq grows by one per poll of a source, from the start time in milliseconds: a
        # restarted gateway never reuses a number a browser saw, so a resume from before the
        # restart is always recognised as older than the ring (reset) rather than silently
        # skipping frames. One counter per source.
        self.seq_base = int(wall() * 1000)
        self.seqs: dict[Source, int] = dict.fromkeys(self.topics, self.seq_base)
        self.state: RouterState = "idle"
        self.error: str | None = None
        self.since = wall()
        self.last_poll_ts: float | None = None
        # Each source's failure of its own in the last tick it was polled (a trap: the router
        # refused that request), None when it answered. Cleared when the source goes unwatched.
        self._refused: dict[Source, str | None] = dict.fromkeys(self.topics)
        # Each source's published status as (state, error, since): sources follow the router's
        # state, see source_status().
        self._statuses: dict[Source, tuple[RouterState, str | None, float]] = {}
        # Which sources the current tick polls (the ones wanted when it began).
        self._polled: frozenset[Source] = frozenset()
        # Set once a name that did not decode in the router's encoding has been reported: the
        # warning is once per router for the life of the process, not once per tick.
        self._text_checked = False
        # Sources whose unreadable rows were logged (once per source for the process), and
        # whether a refused /ppp/active was logged (once until it is answered again).
        self._skips_logged: set[Source] = set()
        self._sessions_refused = False
        self._up = metrics.router_up.labels(router.id)
        self._ok = metrics.router_requests.labels(router.id, "ok")
        self._timeouts = metrics.router_requests.labels(router.id, "timeout")
        self._errors = metrics.router_requests.labels(router.id, "error")
        self._duration = metrics.router_poll_seconds.labels(router.id)
        self._up.set(0)
        for source in self.topics:
            self._publish_source_status(source, force=True, since=self.since)

    @property
    def seq(self) -> int:
        """The seq of the last frame of the first source (interfaces, when served)."""
        return self.seqs[self.topic.source]

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
            await asyncio.sleep(delay)

    def _forget_baselines(self) -> None:
        self._previous.clear()
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
                self._previous.pop(source, None)
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
        self.sessions.update(self._parsed(None, rows, parse_session_row), at, wall)

    async def _poll_source(self, source: Source) -> None:
        """Poll one source and publish its frame (or its refusal)."""
        rows = await self._request(source, COMMANDS[source], PROPLISTS[source])
        if rows is None:
            return
        at = self._clock()
        if source == "interfaces":
            frame = self._interfaces_frame(rows, at)
        elif source == "queues":
            frame = self._queues_frame(rows, at)
        else:
            frame = self._hotspot_frame(rows, at)
        if frame is None:
            return  # every row unreadable: the source is down, said so
        self._refused[source] = None
        self._publish_source_status(source)
        self._publish(source, frame)

    def _interfaces_frame(self, rows: list[Row], at: float) -> dict[str, object] | None:
        try:
            parsed = [s for s in map(parse_interface_row, rows) if s is not None]
        except RowError:
            # An odd row among good ones: read them one by one, skipping (and counting) it.
            parsed = self._parsed("interfaces", rows, parse_interface_row)
            if not parsed and rows:
                return None
        flt = self._filters["interfaces"]
        # Most routers have no `interfaces` setting: then every row stays, unmatched.
        samples = tuple(parsed if flt.is_all else (s for s in parsed if flt.matches(s.name)))
        if not self._text_checked:
            self._check_text(parsed)
        sample = Sample(at, samples)
        previous = self._previous.get("interfaces")
        rates = compute_rates(previous if isinstance(previous, Sample) else None, sample)
        self._previous["interfaces"] = sample
        seq, ts = self._next("interfaces")
        return traffic_frame(
            self.router.id, seq, ts, self.interval, False, rates, self.sessions.view()
        )

    def _queues_frame(self, rows: list[Row], at: float) -> dict[str, object] | None:
        parsed = self._parsed("queues", rows, parse_queue_row)
        if not parsed and rows:
            return None
        flt = self._filters["queues"]
        reading: Reading[QueueSample] = Reading(
            at, tuple(parsed if flt.is_all else (q for q in parsed if flt.matches(q.name)))
        )
        previous = self._previous.get("queues")
        rates = compute_queue_rates(previous if isinstance(previous, Reading) else None, reading)
        self._previous["queues"] = reading
        seq, ts = self._next("queues")
        return queue_frame(
            self.router.id, seq, ts, self.interval, False, reading, rates, self.sessions.view()
        )

    def _hotspot_frame(self, rows: list[Row], at: float) -> dict[str, object] | None:
        parsed = self._parsed("hotspot", rows, parse_hotspot_row)
        if not parsed and rows:
            return None
        flt = self._filters["hotspot"]
        reading: Reading[HotspotSample] = Reading(
            at, tuple(parsed if flt.is_all else (u for u in parsed if flt.matches(u.user)))
        )
        previous = self._previous.get("hotspot")
        rates = compute_hotspot_rates(previous if isinstance(previous, Reading) else None, reading)
        self._previous["hotspot"] = reading
        seq, ts = self._next("hotspot")
        return hotspot_frame(self.router.id, seq, ts, self.interval, False, reading, rates)

    def _parsed(
        self, source: Source | None, rows: list[Row], parse: Callable[[Row], T | None]
    ) -> list[T]:
        """Every row ``parse`` reads (None: a row that names nothing, left out). A row it cannot
        read is left out and counted (``gateway_rows_skipped_total``), logged once per source;
        when no row of a non-empty reply can be read, the source is ``down`` saying why."""
        parsed: list[T] = []
        first: RowError | None = None
        skipped = 0
        for row in rows:
            try:
                item = parse(row)
            except RowError as exc:
                first = first or exc
                skipped += 1
                continue
            if item is not None:
                parsed.append(item)
        if first is None:
            return parsed
        what = source or "sessions"
        self.metrics.rows_skipped.labels(self.router.id, what).inc(skipped)
        if source is not None and source not in self._skips_logged:
            self._skips_logged.add(source)
            logger.warning(
                "%s: %d %s row(s) could not be read and were left out: %s",
                self.router.id,
                skipped,
                source,
                first,
            )
        if source is not None and not parsed and rows:
            where = f"{self.router.host}:{self.router.port}"
            self._refuse(source, f"{where}: unreadable {source} row: {first}")
        return parsed

    def _next(self, source: Source) -> tuple[int, float]:
        """The seq and ts of ``source``'s frame being made."""
        publisher = self._publisher
        seq = self.seqs[source]
        seq = self.seqs[source] = seq + 1 if publisher is None else publisher.next_seq(seq, source)
        ts = self.last_poll_ts = self._wall()
        return seq, ts

    def _publish(self, source: Source, frame: dict[str, object]) -> None:
        publisher = self._publisher
        if publisher is not None:
            publisher.traffic(frame)
            return
        topic = self.topics[source]
        encodes, dropped = topic.encodes, topic.frames_dropped
        written = topic.publish(frame)
        self.metrics.frame_encode.inc(topic.encodes - encodes)
        self.metrics.frames_sent.inc(written)
        if topic.frames_dropped != dropped:
            self.metrics.frames_dropped.inc(topic.frames_dropped - dropped)

    def _check_text(self, samples: Sequence[InterfaceSample]) -> None:
        """Warn, once per router, when names carry bytes that the ``encoding`` setting does not
        decode, or decodes to text other bytes also give (they reach viewers escaped, see
        ``gateway.core.text``): the setting may be wrong."""
        odd = next((s for s in samples if has_escapes(s.name)), None)
        if odd is None:
            return
        self._text_checked = True
        logger.warning(
            '%s: interface %s is shown as "%s": bytes of its name that do not decode as %s '
            "(this router's encoding setting), or not to text of their own, are shown as "
            "\ufffd\\xNN. Set encoding for "
            'router %s in the config to its code page (e.g. "cp1252", "cp1251", "latin-1").',
            self.router.id,
            odd.id,
            _printable(odd.name),
            self.router.encoding,
            self.router.id,
        )

    # -- states -------------------------------------------------------------------------------

    def _fail(self, error: str) -> None:
        self._set_state("down", error)

    def _refuse(self, source: Source, error: str) -> None:
        """The router refused ``source``'s request alone: that source is ``down``."""
        if self._refused.get(source) != error:
            logger.warning("%s: %s: down: %s", self.router.id, source, error)
        self._refused[source] = error
        self._previous.pop(source, None)
        self._publish_source_status(source)

    def _internal_error(self, exc: Exception) -> None:
        """Report an unexpected error to viewers as ``down``; never raises (it runs in a guard)."""
        try:
            self._fail(f"internal error: {type(exc).__name__}")
        except Exception as again:  # noqa: BLE001 - reporting must not end the loop either
            self._unexpected.report(again)

    def _set_state(self, state: RouterState, error: str | None) -> None:
        """Publish and log a change of the router's state; repeating it does nothing."""
        if (state, error) == (self.state, self.error):
            return
        if state != self.state:
            self.since = self._wall()  # a new reason for the same state keeps its "since"
        self.state, self.error = state, error
        self._up.set(1 if state == "up" else 0)
        if state == "down":
            logger.warning("%s: down: %s", self.router.id, error)
        else:
            logger.info("%s: %s", self.router.id, state)
        for source in self.topics:
            self._publish_source_status(source, since=self.since)

    def source_status(self, source: Source) -> tuple[RouterState, str | None]:
        """What viewers of ``source`` are told: the router's state, except ``idle`` for a source
        nobody watches (while the router is polled for others), and ``down`` with the router's
        message for a source whose request it refuses."""
        if self.state == "idle" or source not in self._polled:
            return "idle", None
        refused = self._refused.get(source)
        if self.state == "up" and refused is not None:
            return "down", refused
        return self.state, self.error

    def statuses(self) -> list[dict[str, object]]:
        """The current status message of every source (what a new holder of the router's lease
        shows before its first frames)."""
        return [self._status_message(source) for source in self.topics]

    def _status_message(self, source: Source) -> dict[str, object]:
        state, error, since = self._statuses[source]
        return status_frame(self.router.id, state, error, since, source=source)

    def _publish_source_status(
        self, source: Source, *, force: bool = False, since: float | None = None
    ) -> None:
        """Publish ``source``'s status when it changed. A new state's ``since`` is ``since``
        when given (the router's, when its change caused this one), else now; a new reason
        for the same state keeps its ``since``."""
        state, error = self.source_status(source)
        current = self._statuses.get(source)
        if not force and current is not None and current[:2] == (state, error):
            return
        if current is not None and current[0] == state:
            since = current[2]
        elif since is None:
            since = self._wall()
        self._statuses[source] = (state, error, since)
        status = self._status_message(source)
        if self._publisher is None:
            self.topics[source].publish_status(status)
        else:
            self._publisher.status(status)


def _printable(text: str) -> str:
    """Text for one log line: control characters (a newline in a name) written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
