"""What a websocket client may rely on, as a pure checker: feed it what a viewer received, and it
says what broke the contract.

No I/O and no clock: the caller says when each message arrived (monotonic seconds, any origin)
and how long its text was (bytes). The test suite and the Locust load test judge the gateway
with it, and a client author can read it as the README's "Websocket protocol" section in code.
Everything is per *stream*: one source of one router (``interfaces`` for messages and
subscriptions that name none, as before sources existed). What it checks, on one viewer's
connections (a resume carries over to the next connection):

1. ``hello`` comes first on every connection; its ``heartbeat`` is the period of rule 6.
2. After a subscribe to a router's source, the next message about that stream is one
   ``status``, then its ``history`` messages (each with a ``frames`` list; all of one router
   and one ``reset``; every one but the last with ``"more": true``, the last with ``false``),
   then live frames: no traffic frame of it before its history ended.
3. Per router and source, a traffic frame's ``seq`` is the previous one plus one, through the
   history and into the live frames: more is a gap (frames missing), the same or less a
   duplicate or out of order. A resume (``since`` = the last seq seen) that is not ``reset``
   goes on from ``since``; a ``reset`` one has lost frames (a violation of its own, ``LOST``).
   In cluster mode (``StreamCheck(cluster=True)``) seq may also jump forward where another
   replica took over polling the router: among live frames only right after a ``status``
   message about the router (one always precedes a takeover's first frame), and within a
   history (which carries frames, not status messages), the resume point included. Never
   backwards, never a repeat.
4. While a stream is ``up`` (its latest ``status``), a traffic frame of it comes at least every
   gap bound (by default twice its poll interval plus the router timeout: a slow reply may delay
   a poll by up to the timeout; in cluster mode one interval more: a replica takes over a dead
   holder's lease within its lifetime, ``2 x interval + timeout``, plus one interval). A
   stream that is down, connecting or idle owes no frames. A status that names no source (a
   gateway older than sources) is about every stream of its router.
5. No message is ``MESSAGE_LIMIT`` (1 MiB) or larger, except a single traffic frame that large,
   which is never split (alone, or alone in a history message).
6. Something arrives (a frame, a ``heartbeat`` message) at least every ``heartbeats`` heartbeat
   periods: the dashboard's watchdog (``web/static/js/socket.js``) gives up after two.

``error`` messages and message types it does not know are not judged: what an ``error`` means
is the caller's business, and a newer gateway may add types (the dashboard ignores them too).
After an unsubscribe, messages of that router are not judged either: some may already have been
on their way.

Every ``Violation.text`` is fixed wording without the numbers (a load test groups failures by
it); the numbers are in ``detail``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.contract_terms import (
    DEFAULT_HEARTBEAT,
    DEFAULT_INTERVAL,
    DEFAULT_ROUTER_TIMEOUT,
    DEFAULT_SOURCE,
    Phase,
    Rule,
    Violation,
    may_exceed,
)
from gateway.history import MESSAGE_LIMIT

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_ROUTER_TIMEOUT",
    "DEFAULT_SOURCE",
    "MESSAGE_LIMIT",
    "Phase",
    "Rule",
    "StreamCheck",
    "Violation",
]


class _Stream:
    """One router and source: what was seen of it, across connections."""

    __slots__ = (
        "chunks",
        "frames_seen",
        "interval",
        "last_seq",
        "phase",
        "reset",
        "resubscribed",
        "since",
        "status_before",
        "unsubscribed",
    )

    def __init__(self) -> None:
        # The last traffic seq seen (history or live); kept across connections for a resume.
        self.last_seq: int | None = None
        # None while not subscribed on the current connection.
        self.phase: Phase | None = None
        # The ``since`` of the pending subscribe, and the first history message's reset.
        self.since: int | None = None
        self.reset: bool | None = None
        # History messages of the pending subscribe so far.
        self.chunks = 0
        self.frames_seen = 0
        # True while re-subscribing a live stream: its frames already on the way stay live.
        self.resubscribed = False
        # True after an unsubscribe on this connection: its messages are no longer judged.
        self.unsubscribed = False
        self.interval: float | None = None
        # True when a status message about the router came after its last traffic frame (the
        # one place a cluster's live seq may jump forward).
        self.status_before = False


class StreamCheck:
    """The contract checker for one viewer (one websocket at a time, possibly reconnecting).

    Tell it what the client did (``connect``, ``subscribe``, ``unsubscribe``) and hand it every
    message received (``receive``), in order, with its arrival time; each call returns the
    violations it found, and ``idle`` checks the silences when nothing arrived.

    ``gap_bound(router)`` overrides rule 4's bound (seconds); by default it is ``2 x interval
    + router_timeout``, the interval read from the router's frames. ``heartbeats`` is rule 6's
    bound in heartbeat periods. ``cluster``: the gateway runs in cluster mode, where seq may
    jump forward at a takeover (rule 3). Owned by one reader: not thread-safe, no locks needed.
    """

    def __init__(
        self,
        *,
        router_timeout: float = DEFAULT_ROUTER_TIMEOUT,
        gap_bound: Callable[[str], float] | None = None,
        heartbeats: float = 2.0,
        limit: int = MESSAGE_LIMIT,
        cluster: bool = False,
    ) -> None:
        self._cluster = cluster
        self._router_timeout = router_timeout
        self._gap_bound = gap_bound
        self._heartbeats = heartbeats
        self._limit = limit
        self._streams: dict[tuple[str, str], _Stream] = {}
        # Per connection, reset by connect():
        self.heartbeat = DEFAULT_HEARTBEAT
        self._awaiting_hello = False
        self._last_message: float | None = None
        # Stream (router, source) -> its latest state, and the time from which its silence
        # counts: the last traffic frame, the moment it came up, or the subscribe, whichever is
        # latest.
        self._states: dict[tuple[str, str], str] = {}
        self._quiet_since: dict[tuple[str, str], float] = {}

    # -- what the client did ----------------------------------------------------------------

    def connect(self, now: float) -> None:
        """A new connection opened: ``hello`` must come first; subscriptions start over (the
        last seq of each stream is kept, for a resume)."""
        self.heartbeat = DEFAULT_HEARTBEAT
        self._awaiting_hello = True
        self._last_message = now
        self._states.clear()
        self._quiet_since.clear()
        for stream in self._streams.values():
            stream.phase = None
            stream.resubscribed = stream.unsubscribed = False

    def subscribe(
        self, router: str, now: float, *, since: int | None = None, source: str = DEFAULT_SOURCE
    ) -> None:
        """The client sent a subscribe (``since``: the resume point it sent, if any)."""
        stream = self._stream(router, source)
        stream.resubscribed = stream.phase is Phase.LIVE
        stream.unsubscribed = False
        stream.phase = Phase.STATUS
        stream.since = since
        stream.reset = None
        stream.chunks = stream.frames_seen = 0
        self._quiet_since[(router, source)] = now
        if self._last_message is None:
            self._last_message = now

    def unsubscribe(self, router: str, *, source: str = DEFAULT_SOURCE) -> None:
        """The client sent an unsubscribe: that stream's messages are no longer judged."""
        stream = self._stream(router, source)
        stream.phase = None
        stream.unsubscribed = True

    # -- what it received -------------------------------------------------------------------

    def receive(self, message: object, now: float, *, size: int | None = None) -> list[Violation]:
        """Judge one received message (decoded JSON); ``size`` is its text's length in bytes."""
        found: list[Violation] = []
        self._check_quiet_connection(now, found)
        self._last_message = now
        if not isinstance(message, Mapping):
            found.append(Violation(Rule.SHAPE, "a message that is not a JSON object"))
            return found
        kind = message.get("type")
        if size is not None and size >= self._limit and not may_exceed(message):
            found.append(
                Violation(Rule.SIZE, "a message over 1 MiB", None, f"{kind} of {size} bytes")
            )
        if self._awaiting_hello:
            self._awaiting_hello = False
            if kind != "hello":
                found.append(
                    Violation(Rule.ORDER, "the server did not say hello first", None, str(kind))
                )
        if kind == "hello":
            beat = message.get("heartbeat")
            if isinstance(beat, int | float) and beat > 0:
                self.heartbeat = float(beat)
        elif kind == "status":
            self._on_status(message, now, found)
        elif kind == "history":
            self._on_history(message, found)
        elif kind == "traffic":
            self._on_traffic(message, now, found)
        return found

    def idle(self, now: float) -> list[Violation]:
        """The silences as of ``now`` (rules 4 and 6) with no message arriving: call it when a
        connection ends, or now and then while waiting."""
        found: list[Violation] = []
        self._check_quiet_connection(now, found)
        for key in list(self._quiet_since):
            self._check_silence(key, now, found, restart=False)
        return found

    # -- what it knows ------------------------------------------------------------------------

    def phase(self, router: str, source: str = DEFAULT_SOURCE) -> Phase | None:
        """Where the subscription to ``router`` is; None when not subscribed."""
        stream = self._streams.get((router, source))
        return None if stream is None else stream.phase

    def last_seq(self, router: str, source: str = DEFAULT_SOURCE) -> int | None:
        """The last traffic ``seq`` seen of ``router`` (the ``since`` of a resume)."""
        stream = self._streams.get((router, source))
        return None if stream is None else stream.last_seq

    def state(self, router: str, source: str = DEFAULT_SOURCE) -> str | None:
        """The state of the router's source in its latest ``status`` on this connection."""
        return self._states.get((router, source))

    def interval(self, router: str, source: str = DEFAULT_SOURCE) -> float | None:
        """The router's poll interval, as its frames say; None before the first frame."""
        stream = self._streams.get((router, source))
        return None if stream is None else stream.interval

    def gap_bound(self, router: str) -> float:
        """Rule 4's bound for ``router``, in seconds."""
        if self._gap_bound is not None:
            return self._gap_bound(router)
        intervals = [s.interval for (r, _), s in self._streams.items() if r == router]
        interval = max((i for i in intervals if i is not None), default=DEFAULT_INTERVAL)
        takeover = interval if self._cluster else 0.0
        return 2 * interval + self._router_timeout + takeover

    # -- the rules ----------------------------------------------------------------------------

    def _stream(self, router: str, source: str) -> _Stream:
        stream = self._streams.get((router, source))
        if stream is None:
            stream = self._streams[(router, source)] = _Stream()
        return stream

    def _judged(
        self, message: Mapping[str, Any], found: list[Violation]
    ) -> tuple[str, list[tuple[tuple[str, str], _Stream]]] | None:
        """The router of a message and its streams subscribed on this connection (one, or for a
        status naming no source every source of the router); None when the message is not
        judged further."""
        router = message.get("router")
        kind = message.get("type")
        if not isinstance(router, str):
            found.append(Violation(Rule.SHAPE, f"a {kind} message without a router"))
            return None
        if kind == "status" and "source" not in message:
            keys = [key for key in self._streams if key[0] == router]
        else:
            keys = [(router, str(message.get("source", DEFAULT_SOURCE)))]
        streams = [(key, self._streams[key]) for key in keys if key in self._streams]
        subscribed = [(key, s) for key, s in streams if s.phase is not None]
        if subscribed:
            return router, subscribed
        if not any(s.unsubscribed for _, s in streams):
            # Unsubscribed ones are not judged: their last messages may have been on the way.
            what = "frame" if kind == "traffic" else kind
            found.append(Violation(Rule.ORDER, f"{what} of a router not subscribed to", router))
        return None

    def _on_status(self, message: Mapping[str, Any], now: float, found: list[Violation]) -> None:
        judged = self._judged(message, found)
        if judged is None:
            return
        router, streams = judged
        for _, stream in streams:
            stream.status_before = True
            if stream.phase is Phase.STATUS:
                stream.phase = Phase.HISTORY
                stream.resubscribed = False
            elif stream.phase is Phase.HISTORY:
                found.append(
                    Violation(Rule.ORDER, "expected history after status, got 'status'", router)
                )
        state = message.get("state")
        if not isinstance(state, str):
            found.append(Violation(Rule.SHAPE, "a status without a state", router))
            return
        for key, _ in streams:
            if state != self._states.get(key):
                self._check_silence(key, now, found)
                if state == "up":
                    self._quiet_since[key] = now
                self._states[key] = state

    def _on_history(self, message: Mapping[str, Any], found: list[Violation]) -> None:
        judged = self._judged(message, found)
        if judged is None:
            return
        router, ((_, stream),) = judged
        if stream.phase is Phase.STATUS:
            got = "'history'"
            found.append(
                Violation(Rule.ORDER, f"expected status first after subscribe, got {got}", router)
            )
            stream.phase = Phase.HISTORY
        elif stream.phase is Phase.LIVE:
            found.append(Violation(Rule.ORDER, "a history without a subscribe", router))
            return
        frames = message.get("frames")
        more = message.get("more")
        reset = message.get("reset")
        if not isinstance(frames, list):
            found.append(Violation(Rule.SHAPE, "history without a frames list", router))
            frames = []
        if not isinstance(more, bool):
            found.append(Violation(Rule.SHAPE, "history without more: true or false", router))
            more = False
        if stream.chunks == 0:
            stream.reset = reset is True
            if stream.since is not None and stream.reset:
                found.append(Violation(Rule.LOST, "resume: history reset, frames lost", router))
        elif (reset is True) != stream.reset:
            found.append(Violation(Rule.SHAPE, "history messages disagree on reset", router))
        stream.chunks += 1
        for frame in frames:
            seq = frame.get("seq") if isinstance(frame, Mapping) else None
            if not isinstance(seq, int) or isinstance(seq, bool):
                found.append(Violation(Rule.SHAPE, "history frame without an integer seq", router))
                continue
            expected = stream.last_seq if stream.frames_seen else self._resume_point(stream)
            if expected is not None and seq != expected + 1 and not self._may_jump(expected, seq):
                found.append(
                    Violation(
                        Rule.SEQ, "history: seq not contiguous", router, f"{expected} then {seq}"
                    )
                )
            stream.last_seq = seq
            stream.frames_seen += 1
            stream.status_before = False
            self._learn(stream, frame)
        if not more:
            if stream.frames_seen == 0:
                stream.last_seq = self._resume_point(stream)
            stream.phase = Phase.LIVE

    @staticmethod
    def _resume_point(stream: _Stream) -> int | None:
        """The seq a history continues from: ``since`` unless reset; nothing for a fresh
        subscribe."""
        return None if stream.reset else stream.since

    def _on_traffic(self, message: Mapping[str, Any], now: float, found: list[Violation]) -> None:
        judged = self._judged(message, found)
        if judged is None:
            return
        router, ((key, stream),) = judged
        if stream.phase is not Phase.LIVE and not stream.resubscribed:
            text = (
                "expected status first after subscribe, got 'traffic'"
                if stream.phase is Phase.STATUS
                else "expected history after status, got 'traffic'"
            )
            found.append(Violation(Rule.ORDER, text, router))
            stream.phase = Phase.LIVE
        self._check_silence(key, now, found)
        seq = message.get("seq")
        ts = message.get("ts")
        if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(ts, int | float):
            found.append(
                Violation(Rule.SHAPE, "frame without an integer seq and a numeric ts", router)
            )
            return
        last = stream.last_seq
        if (
            last is not None
            and seq != last + 1
            and not (stream.status_before and self._may_jump(last, seq))
        ):
            text = "seq gap: frames missing" if seq > last + 1 else "seq duplicate or out of order"
            found.append(Violation(Rule.SEQ, text, router, f"{last} then {seq}"))
        stream.last_seq = seq
        stream.status_before = False
        self._learn(stream, message)

    def _may_jump(self, last: int, seq: int) -> bool:
        """Whether seq may go from ``last`` to ``seq`` at a takeover: forward, in cluster mode."""
        return self._cluster and seq > last

    @staticmethod
    def _learn(stream: _Stream, frame: Mapping[str, Any]) -> None:
        interval = frame.get("interval")
        if isinstance(interval, int | float) and interval > 0:
            stream.interval = float(interval)

    def _check_silence(
        self, key: tuple[str, str], now: float, found: list[Violation], *, restart: bool = True
    ) -> None:
        """Rule 4: a silence that began while the stream ``key`` (router, source) was up and
        outlasted the bound.

        With ``restart`` (something about the stream arrived) the silence starts again from
        ``now``; without, only once reported, so that each silence is counted once.
        """
        since = self._quiet_since.get(key)
        if since is None:
            return
        router = key[0]
        quiet = now - since
        broken = self._states.get(key) == "up" and quiet > self.gap_bound(router)
        if broken:
            found.append(
                Violation(
                    Rule.SILENCE,
                    "no traffic frame within the gap bound while the router was up",
                    router,
                    f"{quiet:.1f} s, bound {self.gap_bound(router):g} s",
                    quiet,
                )
            )
        if restart or broken:
            self._quiet_since[key] = now

    def _check_quiet_connection(self, now: float, found: list[Violation]) -> None:
        """Rule 6: nothing at all for longer than ``heartbeats`` periods."""
        last = self._last_message
        if last is None:
            return
        quiet = now - last
        if quiet > self._heartbeats * self.heartbeat:
            found.append(
                Violation(
                    Rule.SILENCE,
                    "nothing arrived for longer than the heartbeat bound",
                    None,
                    f"{quiet:.1f} s, bound {self._heartbeats:g} x {self.heartbeat:g} s",
                    quiet,
                )
            )
            self._last_message = now
