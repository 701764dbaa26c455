"""One poll loop per router: poll while someone watches, publish frames, back off on failure.

The poller is the only caller of its RouterClient, so exactly one request is ever in flight
per router. A slow reply delays the next tick instead of stacking polls. Failures publish a
``status`` frame (on change only), then back off with full jitter; bad credentials back off at
least a minute. Whether anyone watches is its topic's ``Demand`` (subscribers, REST reads,
linger), the one thing it reads from the web side; with no demand the poller goes idle, and
after a further idle period it logs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.config import PollSettings, RouterSettings
from gateway.core.backoff import Backoff, auth_failure_delay
from gateway.core.frames import status_frame, traffic_frame
from gateway.core.model import (
    PROPLIST,
    InterfaceSample,
    RouterState,
    RowError,
    Sample,
    parse_interface_row,
)
from gateway.core.rates import compute_rates
from gateway.core.text import has_escapes
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


class Wanted(Protocol):
    """When to poll: a topic's ``Demand``, or in cluster mode the router's lease gate
    (``gateway.cluster_lease.Gate``). ``woken`` is set when polling may have become wanted; the
    poller waits on it while idle and clears it when it looks."""

    woken: asyncio.Event

    def wanted(self) -> bool:
        """Whether to poll now."""
        ...


class Publisher(Protocol):
    """Where frames go instead of the topic (cluster mode: ``gateway.cluster_lease.RouterLease``,
    which appends them to Redis, publishes them locally, or drops them)."""

    def traffic(self, frame: dict[str, object]) -> None:
        """A traffic frame of this poll."""
        ...

    def status(self, status: dict[str, object]) -> None:
        """A status change."""
        ...

    def next_seq(self, seq: int) -> int:
        """The seq of the frame after one numbered ``seq``."""
        ...


class Poller:
    """Polls one router while its topic has demand (``Topic.demand``), and publishes to it.

    ``connect`` opens the router's API sessions (``gateway.routeros.connect_librouteros`` in
    production) for the ``RouterClient`` the poller builds; a test may pass a ``client`` of
    its own instead (exactly one of the two). Call ``start()`` once; ``stop()`` ends the loop
    and logs out. In cluster mode ``gate`` replaces the topic's demand and ``publisher`` the
    topic as the frames' destination (both the router's lease).
    """

    def __init__(
        self,
        router: RouterSettings,
        poll: PollSettings,
        topic: Topic,
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
        # After polling stops, keep the API session this long in case a viewer comes back.
        self.idle_logout = poll.idle_logout if idle_logout is None else idle_logout
        self.topic = topic
        # Whether anyone watches, and the wake-up when someone starts to: the topic's (its clock
        # should be this poller's: the app builds both from the same one), or the lease's gate.
        self.demand: Wanted = topic.demand if gate is None else gate
        # In cluster mode, where frames and statuses go instead of the topic.
        self._publisher = publisher
        self.metrics = metrics
        if client is None:
            if connect is None:
                raise TypeError("Poller needs connect (or a client of its own)")
            client = RouterClient(router, self.timeout, connect=connect)
        elif connect is not None:
            raise TypeError("Poller takes connect or client, not both")
        self.client = client
        self._filter = router.interface_filter()
        self._clock = clock
        self._wall = wall
        self._backoff = Backoff(poll.backoff_initial, poll.backoff_max)
        # Errors the loop has no handling for (bugs, or a library raising something new): each
        # kind is logged with its traceback once until a poll succeeds again.
        self._unexpected = UnexpectedErrors(logger, f"{router.id}: poll loop")
        # The loop task; created by start(), cancelled and awaited by stop().
        self._task: asyncio.Task[None] | None = None
        # The previous sample: the baseline for rates. Cleared when a polling run starts and
        # when a session opens: across an idle gap a rate would be an average over minutes, and
        # across a reconnect the router may have rebooted with counters already past the old
        # ones, so the first sample after either has no rates. Counters going down within a
        # session (reset-counters) are the rate rule's business.
        self._previous: Sample | None = None
        # seq grows by one per poll, from the start time in milliseconds: a restarted gateway
        # never reuses a number a browser saw, so a resume from before the restart is always
        # recognised as older than the ring (reset) rather than silently skipping frames.
        self.seq_base = int(wall() * 1000)
        self.seq = self.seq_base
        self.state: RouterState = "idle"
        self.error: str | None = None
        self.since = wall()
        self.last_poll_ts: float | None = None
        # Set once a name that did not decode in the router's encoding has been reported: the
        # warning is once per router for the life of the process, not once per tick.
        self._text_checked = False
        self._up = metrics.router_up.labels(router.id)
        self._ok = metrics.router_requests.labels(router.id, "ok")
        self._timeouts = metrics.router_requests.labels(router.id, "timeout")
        self._errors = metrics.router_requests.labels(router.id, "error")
        self._duration = metrics.router_poll_seconds.labels(router.id)
        self._up.set(0)
        self._publish_status(status_frame(router.id, self.state, None, self.since))

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
        self._previous = None
        while self.demand.wanted():
            delay = await self._poll_once()
            if delay is None:
                # Success: keep the cadence; after a slow reply, poll again at once, never twice.
                next_tick = max(next_tick + self.interval, self._clock())
                delay = next_tick - self._clock()
            else:
                next_tick = self._clock() + delay
            await asyncio.sleep(delay)

    async def _poll_once(self) -> float | None:
        """One request. Returns None on success, or how long to back off.

        Router errors are expected and reported as they are; anything else raised while
        polling, parsing or publishing is a fault of ours: logged with its traceback (once per
        kind), reported to viewers as ``down`` with ``internal error: <type>`` (never the
        exception's text, which may quote anything), and retried after a back-off.
        """
        try:
            return await self._poll()
        except Exception as exc:  # noqa: BLE001 - the loop outlives any bug below it
            self._unexpected.report(exc)
            self._internal_error(exc)
            return self._backoff.next_delay()

    async def _poll(self) -> float | None:
        """The request, parsing and publishing of one tick; router errors handled here."""
        started = self._clock()
        if not self.client.connected:
            self._previous = None
        try:
            rows = await self.client.print_interfaces(PROPLIST)
            at = self._clock()
            parsed = [s for s in map(parse_interface_row, rows) if s is not None]
            flt = self._filter
            # Most routers have no `interfaces` setting: then every row stays, unmatched.
            samples = tuple(parsed if flt.is_all else (s for s in parsed if flt.matches(s.name)))
        except RouterAuthFailed as exc:
            self._errors.inc()
            self._fail(str(exc))
            return auth_failure_delay(self._backoff.next_delay())
        except RouterError as exc:
            (self._timeouts if isinstance(exc, RouterTimeout) else self._errors).inc()
            self._fail(str(exc))
            return self._backoff.next_delay()
        except RowError as exc:
            self._errors.inc()
            self._fail(f"{self.router.host}:{self.router.port}: unreadable interface row: {exc}")
            return self._backoff.next_delay()
        self._ok.inc()
        self._duration.observe(at - started)
        if not self._text_checked:
            self._check_text(parsed)
        self._backoff.reset()
        sample = Sample(at, samples)
        rates = compute_rates(self._previous, sample)
        self._previous = sample
        publisher = self._publisher
        self.seq = self.seq + 1 if publisher is None else publisher.next_seq(self.seq)
        ts = self._wall()
        self.last_poll_ts = ts
        self._set_state("up", None)
        frame = traffic_frame(self.router.id, self.seq, ts, self.interval, False, rates)
        if publisher is not None:
            publisher.traffic(frame)
            self._unexpected.recovered()
            return None
        topic = self.topic
        encodes, dropped = topic.encodes, topic.frames_dropped
        written = topic.publish(frame)
        self.metrics.frame_encode.inc(topic.encodes - encodes)
        self.metrics.frames_sent.inc(written)
        if topic.frames_dropped != dropped:
            self.metrics.frames_dropped.inc(topic.frames_dropped - dropped)
        self._unexpected.recovered()
        return None

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

    def _fail(self, error: str) -> None:
        self._set_state("down", error)

    def _internal_error(self, exc: Exception) -> None:
        """Report an unexpected error to viewers as ``down``; never raises (it runs in a guard)."""
        try:
            self._fail(f"internal error: {type(exc).__name__}")
        except Exception as again:  # noqa: BLE001 - reporting must not end the loop either
            self._unexpected.report(again)

    def _set_state(self, state: RouterState, error: str | None) -> None:
        """Publish and log a state change; repeating the same state and error does nothing."""
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
        self._publish_status(status_frame(self.router.id, state, error, self.since))

    def _publish_status(self, status: dict[str, object]) -> None:
        if self._publisher is None:
            self.topic.publish_status(status)
        else:
            self._publisher.status(status)


def _printable(text: str) -> str:
    """Text for one log line: control characters (a newline in a name) written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
