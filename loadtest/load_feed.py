"""A viewer's websocket client: one connection (``websocket-client`` under gevent), its reader
greenlet, and the contract checks on every message it reads.

``connect()`` opens a connection for a viewer and subscribes; the returned ``Feed`` reads the
live messages in a greenlet of its own until the connection ends or ``drop()`` ends it.
"""

from __future__ import annotations

import time
from typing import Any, Final, Protocol

import gevent
import orjson
import websocket
from load_run import NETWORK_ERRORS, RUN, Problem, fire

from gateway.contract import Phase, Rule, StreamCheck, Violation
from gateway.wire import parse_close


class Watcher(Protocol):
    """The viewer a feed reports to (``locustfile.Viewer``): its Locust environment, its
    contract checker (kept across its connections) and its count of live frames."""

    environment: Any
    check: StreamCheck
    live_frames: int


BREAKING: Final = frozenset({Rule.ORDER, Rule.SIZE})
"""Violations during a subscribe that end the connection: the stream is out of step, or a
message was too big for ordinary clients. Others are reported and the stream goes on."""


class Feed:
    """One websocket connection of a viewer, and the greenlet that reads it.

    Every message goes through the viewer's contract checker (``gateway.contract``), which
    keeps what it needs across the viewer's connections (the last seq, for a resume). The
    reader greenlet (``reader``) is owned here; ``drop()`` kills it before shutting the socket,
    because ``ws.close()`` while the reader is blocked in ``recv`` can hang past the run's end
    (a close handshake waits on a reply the blocked reader would have to read).
    """

    def __init__(self, viewer: Watcher, ws: Any, router: str) -> None:
        self.viewer = viewer
        self.ws = ws
        self.router = router
        self.check = viewer.check
        self.close_code: int | None = None
        self.error: BaseException | None = None
        self.reader: gevent.Greenlet | None = None

    # subscribe() runs in the viewer's greenlet before the reader starts; read() and what it
    # calls run in the reader greenlet; start() and drop() in the viewer's greenlet again.

    def subscribe(self, since: int | None, timeout: float) -> None:
        """Send the subscribe and check the status and history answers (in the user's greenlet)."""
        environment = self.viewer.environment
        started = time.perf_counter()
        message: dict[str, object] = {"type": "subscribe", "router": self.router}
        if since is not None:
            message["since"] = since
        name = "resume" if since is not None else "subscribe"
        problem: BaseException | None = None
        broken = False
        try:
            self.ws.settimeout(timeout)
            self.ws.send(orjson.dumps(message).decode())
            self.check.subscribe(self.router, time.monotonic(), since=since)
            # The status, then the history: one message or several, the last without "more".
            while self.check.phase(self.router) is not Phase.LIVE:
                answer, found = self.next_message()
                for violation in found:
                    if violation.rule in BREAKING:
                        raise Problem(violation.text)
                    # A history that does not fill the gap is reported; the stream goes on.
                    problem = problem or Problem(violation.text)
                if answer.get("type") == "history":
                    for frame in answer.get("frames") or []:
                        self._learn(frame)
        except gevent.GreenletExit:
            raise
        except NETWORK_ERRORS as exc:
            problem, broken = exc, True
        fire(environment, name, time.perf_counter() - started, problem=problem)
        if broken:
            raise Problem("subscribe failed")
        # Past the subscribe, a read waits as long as a quiet but healthy connection may be
        # quiet (heartbeats), so only a dead peer ends it.
        self.ws.settimeout(self.check.heartbeat * 2 + 5)

    def next_message(self) -> tuple[dict[str, Any], list[Violation]]:
        """The next message that is not a heartbeat, and what the checker found on the way;
        Problem for a message that is not an object, an ``error`` message or a close."""
        found: list[Violation] = []
        while True:
            opcode, data = self.ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_TEXT:
                message = orjson.loads(data)
                found += self._silences(
                    self.check.receive(message, time.monotonic(), size=len(data))
                )
                if not isinstance(message, dict):
                    raise Problem("a message that is not a JSON object")
                if message.get("type") == "heartbeat":
                    continue
                if message.get("type") == "error":
                    raise Problem(f"error message: {message.get('code')}")
                return message, found
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise Problem(f"closed by the server ({_close_code(data)})")

    def _learn(self, frame: object) -> None:
        if not isinstance(frame, dict):
            return
        interval = frame.get("interval")
        if isinstance(interval, int | float) and interval > 0:
            RUN.intervals.setdefault(self.router, float(interval))
        RUN.seen_frames.add(self.router)

    def _silences(self, found: list[Violation]) -> list[Violation]:
        """Report the silences among ``found`` (each as a request of its own, its response time
        the silence's length); return the rest."""
        for violation in found:
            if violation.rule is Rule.SILENCE:
                # A router quiet while up, or a connection without even heartbeats.
                name = f"silence {self.router}" if violation.router else "/ws heartbeat"
                fire(
                    self.viewer.environment,
                    name,
                    violation.seconds,
                    problem=Problem(violation.text),
                )
        return [v for v in found if v.rule is not Rule.SILENCE]

    def read(self) -> None:
        """The reader greenlet: every live message until the connection ends."""
        try:
            while True:
                opcode, data = self.ws.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    self._on_text(data)
                elif opcode == websocket.ABNF.OPCODE_CLOSE:
                    # The library has already answered the close; nothing more will come.
                    self.close_code = _close_code(data)
                    return
                # Pings are answered by the library; pongs need nothing.
        except gevent.GreenletExit:
            raise
        except NETWORK_ERRORS as exc:
            self.error = exc

    def _on_text(self, data: bytes) -> None:
        now = time.time()
        message = orjson.loads(data)
        found = self._silences(self.check.receive(message, time.monotonic(), size=len(data)))
        problem = Problem(found[0].text) if found else None
        kind = message.get("type") if isinstance(message, dict) else None
        environment = self.viewer.environment
        if kind == "traffic":
            ts = message.get("ts")
            delay = max(0.0, now - ts) if isinstance(ts, int | float) else 0.0
            self.viewer.live_frames += 1
            self._learn(message)
            fire(environment, f"traffic {self.router}", delay, length=len(data), problem=problem)
        elif kind == "error":
            problem = Problem(f"error message: {message.get('code')}")
            fire(environment, f"message {self.router}", 0, problem=problem)
        elif problem is not None:
            fire(environment, f"message {self.router}", 0, problem=problem)

    # Called by the viewer's own greenlet.

    def start(self) -> None:
        self.reader = gevent.spawn(self.read)

    @property
    def open(self) -> bool:
        return self.reader is not None and not self.reader.dead

    def drop(self) -> None:
        """End the connection at once: kill the reader first, then shut the socket."""
        if self.reader is not None and not self.reader.dead:
            self.reader.kill(block=True, timeout=1.0)
        self._silences(self.check.idle(time.monotonic()))
        self.ws.shutdown()


def _close_code(data: bytes) -> int:
    """The code of a close frame's payload (``NO_STATUS`` when it has none); ValueError if
    malformed."""
    return parse_close(data)[0]


def connect(viewer: Watcher, router: str, host: str) -> Feed | None:
    """A new connection of ``viewer`` to the gateway at ``host``, subscribed to ``router`` (a
    resume from the checker's last seq when it has one), its reader started; None after
    reporting why when the connection or the subscribe failed."""
    environment = viewer.environment
    timeout = RUN.settings.request_max
    started = time.perf_counter()
    ws: Any = None
    try:
        ws = websocket.create_connection(
            RUN.ws_url(host),
            timeout=timeout,
            enable_multithread=False,
            skip_utf8_validation=True,
            subprotocols=RUN.ws_subprotocols,
        )
        RUN.connections[host] += 1
        feed = Feed(viewer, ws, router)
        viewer.check.connect(time.monotonic())
        _, found = feed.next_message()  # the hello, which the checker expects first
        if found:
            raise Problem(found[0].text)
    except gevent.GreenletExit:
        if ws is not None:
            ws.shutdown()
        raise
    except NETWORK_ERRORS as exc:
        fire(environment, "/ws connect", time.perf_counter() - started, problem=exc)
        if ws is not None:
            ws.shutdown()
        return None
    fire(environment, "/ws connect", time.perf_counter() - started)
    try:
        feed.subscribe(viewer.check.last_seq(router), timeout)
    except gevent.GreenletExit:
        ws.shutdown()
        raise
    except NETWORK_ERRORS:
        ws.shutdown()  # already reported by subscribe()
        return None
    feed.start()
    return feed
