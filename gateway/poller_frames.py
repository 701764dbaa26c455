"""Each source's frame from the rows of its print: parsed, filtered, rated and numbered.

``SourceFrames`` makes a poller's frames (``gateway.core.frames``). A reply's rows are parsed
(``gateway.core.model``, ``gateway.core.sources``); a row that cannot be read is left out and
counted, and a reply of which no row can be read makes the source ``down`` through the
poller's ``refuse``. The rows left after the router's filter for the source (its
``interfaces``, ``queues`` or ``hotspot`` setting) are rated against the source's previous
reading (its baseline, which the poller clears when a rate would be wrong), joined with the
PPP sessions of the poller's ``SessionBook``, and numbered with the source's next seq; the
frame then goes to the source's topic, or in cluster mode to the ``Publisher``. No requests
here: the poller makes them, and reads the PPP sessions when they are due.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from gateway.config import RouterSettings
from gateway.core.filters import InterfaceFilter
from gateway.core.frames import hotspot_frame, queue_frame, traffic_frame
from gateway.core.model import InterfaceSample, RowError, Sample, parse_interface_row
from gateway.core.rates import compute_hotspot_rates, compute_queue_rates, compute_rates
from gateway.core.sessions import SessionBook
from gateway.core.sources import (
    Reading,
    Source,
    parse_hotspot_row,
    parse_queue_row,
)
from gateway.core.text import has_escapes
from gateway.metrics import Metrics
from gateway.poller_status import Publisher
from gateway.routeros import Row
from gateway.topic import Topic

__all__ = ["SourceFrames"]

# The poller's log: its lines keep the one name operators filter on, whichever module logs.
logger = logging.getLogger("gateway.poller")

T = TypeVar("T")


class SourceFrames:
    """One router's frames, one source at a time (``frame``), and where they go (``publish``).

    ``topics`` is the router's topics by source; in cluster mode ``publisher`` takes the frames
    instead and numbers them. ``sessions`` is the poller's book of PPP sessions, read here and
    kept by the poller. ``refuse`` is called with a source and the reason when no row of its
    reply can be read.
    """

    def __init__(
        self,
        router: RouterSettings,
        interval: float,
        topics: Mapping[Source, Topic],
        metrics: Metrics,
        sessions: SessionBook,
        *,
        wall: Callable[[], float],
        publisher: Publisher | None,
        refuse: Callable[[Source, str], None],
    ) -> None:
        self.router = router
        self.interval = interval
        self.topics = topics
        self.metrics = metrics
        self.sessions = sessions
        self._wall = wall
        self._publisher = publisher
        self._refuse = refuse
        self._filters: dict[Source, InterfaceFilter] = {
            source: router.name_filter(source) for source in self.topics
        }
        # Each source's previous reading: the baseline for its rates. Cleared when a polling run
        # starts, when a session opens and when the source goes unwatched: across an idle gap a
        # rate would be an average over minutes, and across a reconnect the router may have
        # rebooted with counters already past the old ones, so the first reading after either
        # has no rates. Counters going down within a session (reset-counters) are the rate
        # rule's business.
        self._previous: dict[Source, object] = {}
        # seq grows by one per poll of a source, from the start time in milliseconds: a
        # restarted gateway never reuses a number a browser saw, so a resume from before the
        # restart is always recognised as older than the ring (reset) rather than silently
        # skipping frames. One counter per source.
        self.seq_base = int(wall() * 1000)
        self.seqs: dict[Source, int] = dict.fromkeys(self.topics, self.seq_base)
        self.last_poll_ts: float | None = None
        # Set once a name that did not decode in the router's encoding has been reported: the
        # warning is once per router for the life of the process, not once per tick.
        self._text_checked = False
        # Sources whose unreadable rows were logged (once per source for the process).
        self._skips_logged: set[Source] = set()

    def forget(self, source: Source | None = None) -> None:
        """Drop the baseline of ``source`` (of every source when None): its next reading has
        no rates."""
        if source is None:
            self._previous.clear()
        else:
            self._previous.pop(source, None)

    def frame(self, source: Source, rows: list[Row], at: float) -> dict[str, object] | None:
        """``source``'s frame from the rows of its reply read at ``at`` (monotonic seconds), or
        None when no row could be read (the source was refused, saying why)."""
        if source == "interfaces":
            return self._interfaces_frame(rows, at)
        if source == "queues":
            return self._queues_frame(rows, at)
        return self._hotspot_frame(rows, at)

    def _interfaces_frame(self, rows: list[Row], at: float) -> dict[str, object] | None:
        try:
            parsed = [s for s in map(parse_interface_row, rows) if s is not None]
        except RowError:
            # An odd row among good ones: read them one by one, skipping (and counting) it.
            parsed = self.parsed("interfaces", rows, parse_interface_row)
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
        read = self._reading("queues", rows, at, parse_queue_row, lambda q: q.name)
        if read is None:
            return None
        previous, reading = read
        rates = compute_queue_rates(previous, reading)
        seq, ts = self._next("queues")
        return queue_frame(
            self.router.id, seq, ts, self.interval, False, reading, rates, self.sessions.view()
        )

    def _hotspot_frame(self, rows: list[Row], at: float) -> dict[str, object] | None:
        read = self._reading("hotspot", rows, at, parse_hotspot_row, lambda u: u.user)
        if read is None:
            return None
        previous, reading = read
        rates = compute_hotspot_rates(previous, reading)
        seq, ts = self._next("hotspot")
        return hotspot_frame(self.router.id, seq, ts, self.interval, False, reading, rates)

    def _reading(
        self,
        source: Source,
        rows: list[Row],
        at: float,
        parse: Callable[[Row], T | None],
        name: Callable[[T], str],
    ) -> tuple[Reading[T] | None, Reading[T]] | None:
        """This poll's reading of ``source`` (its rows parsed, those the router's filter lets
        through by ``name``) and the previous one, which it replaces; None when no row parsed
        (nothing is published, and the previous reading stays)."""
        parsed = self.parsed(source, rows, parse)
        if not parsed and rows:
            return None
        flt = self._filters[source]
        reading = Reading(
            at, tuple(parsed if flt.is_all else (r for r in parsed if flt.matches(name(r))))
        )
        previous = self._previous.get(source)
        self._previous[source] = reading
        return (previous if isinstance(previous, Reading) else None), reading

    def parsed(
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

    def publish(self, source: Source, frame: dict[str, object]) -> None:
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


def _printable(text: str) -> str:
    """Text for one log line: control characters (a newline in a name) written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
