"""Locust load test of the gateway: websocket viewers, REST readers and page visitors.

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8080
    locust -f loadtest/locustfile.py --host URL --headless -u 500 -r 100 -t 60s --only-summary \\
        --emulator-control core-1=http://127.0.0.1:8780

Nothing but ``--host`` is needed: the routers come from ``GET /api/routers``. Against several
replicas, ``--replicas URL,URL,...`` spreads every kind of user over them round robin, and
``--cluster`` (replicas in cluster mode, sharing one Redis) lets a frame's ``seq`` jump forward
where another replica took over polling, and moves a reconnecting viewer on to the next replica
(its resume must find every frame there). Three users:

- ``Viewer`` (weight 8): one plain websocket (``websocket-client`` under gevent), subscribed to
  one router for its whole life, every message judged by the protocol's contract checker
  (``gateway.contract``, the same the test suite uses). Every live ``traffic`` frame is
  reported as a request named ``traffic <router>`` whose response time is its delay,
  ``now - ts``. A frame whose ``seq`` is not the previous one plus one (a gap, a duplicate, out
  of order) is a failure; so is a silence longer than the gap bound while the router is ``up``
  (reported as ``silence <router>``). The gateway sends no traffic frames while a router is
  down and ``seq`` only grows on good polls, so a router fault is neither a gap nor a silence.
  On a close or a lost connection the viewer reconnects with backoff and resubscribes with
  ``since`` = the last seq; the history (one message or several, the last without ``"more":
  true``) must fill the gap exactly. Every close but a planned one (``CloseCode.GOING_AWAY``)
  is a failure. A message out of its place (before the status, inside the history) or of
  1 MiB or more fails the subscribe.
- ``RestReader`` (weight 1): ``GET /api/routers/{id}/traffic`` with 2 s timeouts.
- ``PageVisitor`` (weight 1): ``GET /`` and every asset the page names (``src=``, ``<link
  href=``, and the import map's modules), a few at a time, as a browser does.

The run fails (exit code 1) on any failure, any request (REST, page, websocket connect,
subscribe) slower than ``--request-max``, a frame delay p99 above ``--frame-p99-max``, a viewer
that received no live frame, or, with ``--emulator-control``, more router requests than one per
poll interval (plus ``--poll-slack``) per router, read from the emulators' ``/stats``.

The checks assume one Locust process (not ``--master``/``--worker``): they read this process's
statistics and viewers.
"""

from __future__ import annotations

import html.parser
import itertools
import json
import logging
import random
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import gevent
import gevent.lock
import gevent.pool
import orjson
import websocket
from locust import FastHttpUser, User, between, constant, events, task
from locust.exception import CatchResponseError
from locust.stats import StatsEntry

from gateway.auth import BEARER_PROTOCOL, SUBPROTOCOL
from gateway.contract import Phase, Rule, StreamCheck, Violation
from gateway.wire import CloseCode, parse_close

logger = logging.getLogger("loadtest")

PRINT: Final = "/interface/print"
"""The one command the gateway sends a router per poll."""

WS: Final = "WS"

"""Request type of everything measured on the websocket."""


class Problem(Exception):
    """A broken expectation. Messages carry no varying numbers, so Locust groups them."""


NETWORK_ERRORS: Final = (websocket.WebSocketException, OSError, ValueError, Problem)
"""What a websocket operation may raise (ValueError covers bad JSON and bad frames)."""


# -- settings ---------------------------------------------------------------------------------


def _add_options(parser: Any) -> None:
    # Locust's own parser, not an argument group: only it takes include_in_web_ui.
    parser.add_argument(
        "--emulator-control",
        default="",
        env_var="LOCUST_EMULATOR_CONTROL",
        help="the emulators' control URLs, comma-separated ROUTER=URL (a bare URL when the "
        "gateway has one router); enables the one-request-per-interval check",
    )
    parser.add_argument(
        "--request-max",
        type=float,
        default=2.0,
        env_var="LOCUST_REQUEST_MAX",
        help="seconds: the client timeout and the slowest request allowed",
    )
    parser.add_argument(
        "--frame-p99-max",
        type=float,
        default=1000.0,
        env_var="LOCUST_FRAME_P99_MAX",
        help="milliseconds: the largest 99th percentile of frame delay (now - ts) allowed",
    )
    parser.add_argument(
        "--frame-gap-max",
        type=float,
        default=0.0,
        env_var="LOCUST_FRAME_GAP_MAX",
        help="seconds without a traffic frame while a router is up before it counts as a "
        "failure; 0 = 2 x the router's poll interval + --router-timeout",
    )
    parser.add_argument(
        "--router-timeout",
        type=float,
        default=3.0,
        env_var="LOCUST_ROUTER_TIMEOUT",
        help="seconds: the gateway's poll timeout (for the default --frame-gap-max)",
    )
    parser.add_argument(
        "--poll-slack",
        type=float,
        default=2.0,
        env_var="LOCUST_POLL_SLACK",
        help="router requests allowed per router beyond one per poll interval",
    )
    parser.add_argument(
        "--replicas",
        default="",
        env_var="LOCUST_REPLICAS",
        help="the gateway replicas' base URLs, comma-separated: users spread over them round "
        "robin (default: --host alone; routers are read from --host)",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        default=False,
        env_var="LOCUST_CLUSTER",
        help="the replicas run in cluster mode: seq may jump forward at a takeover (right "
        "after a status), and a viewer that reconnects resumes on the next replica",
    )
    parser.add_argument(
        "--gateway-token",
        default="",
        env_var="LOCUST_GATEWAY_TOKEN",
        include_in_web_ui=False,
        help="a JWT for a gateway in auth mode jwt (websocket subprotocol bearer.<token>, "
        "REST Authorization: Bearer)",
    )
    parser.add_argument(
        "--summary-json",
        default="",
        env_var="LOCUST_SUMMARY_JSON",
        help="write the measured figures and the checks' verdicts to this file",
    )


@dataclass(frozen=True, slots=True)
class Settings:
    request_max: float = 2.0
    frame_p99_max: float = 1000.0
    frame_gap_max: float = 0.0
    router_timeout: float = 3.0
    poll_slack: float = 2.0
    controls: tuple[tuple[str, str], ...] = ()
    replicas: tuple[str, ...] = ()
    cluster: bool = False
    token: str = ""
    summary_json: str = ""

    @classmethod
    def from_options(cls, options: Any) -> Settings:
        if options is None:
            return cls()
        controls = []
        for item in (s.strip() for s in options.emulator_control.split(",")):
            if not item:
                continue
            router, sep, url = item.partition("=")
            if not sep:
                router, url = "", item
            controls.append((router.strip(), url.strip().rstrip("/")))
        replicas = tuple(u.strip().rstrip("/") for u in options.replicas.split(",") if u.strip())
        return cls(
            request_max=options.request_max,
            frame_p99_max=options.frame_p99_max,
            frame_gap_max=options.frame_gap_max,
            router_timeout=options.router_timeout,
            poll_slack=options.poll_slack,
            controls=tuple(controls),
            replicas=replicas,
            cluster=bool(options.cluster),
            token=options.gateway_token,
            summary_json=options.summary_json,
        )


# -- the run's shared state -------------------------------------------------------------------


@dataclass
class PrintCount:
    """An emulator's ``/interface/print`` counter, read at a monotonic time."""

    at: float
    count: int


@dataclass
class Run:
    """What every user of this process shares during one test.

    Locust runs one test at a time per process; ``start()`` resets it at each test start. Only
    greenlets touch it (one OS thread), so plain fields need no lock; ``_discovering`` only
    keeps users from asking for the router list all at once.
    """

    settings: Settings = field(default_factory=Settings)
    host: str = ""
    routers: list[str] = field(default_factory=list)
    # Router id -> its poll interval, learnt from the frames (they carry it).
    intervals: dict[str, float] = field(default_factory=dict)
    # Routers of which some user has seen a traffic frame (a later 503 is then a failure).
    seen_frames: set[str] = field(default_factory=set)
    # Router id -> its emulator's control URL, and its print counter at start and end.
    controls: dict[str, str] = field(default_factory=dict)
    counts_start: dict[str, PrintCount] = field(default_factory=dict)
    counts_end: dict[str, PrintCount] = field(default_factory=dict)
    setup_problems: list[str] = field(default_factory=list)
    viewers_stopped: int = 0
    viewers_empty: int = 0
    reconnects: int = 0
    closes: Counter[int] = field(default_factory=Counter)
    # Websocket connections opened to each replica (its base URL), resumes included.
    connections: Counter[str] = field(default_factory=Counter)
    _next: itertools.count[int] = field(default_factory=itertools.count)
    # Users of each kind handed a replica so far: each kind is spread round robin on its own.
    _spread: Counter[str] = field(default_factory=Counter)
    _discovering: gevent.lock.Semaphore = field(default_factory=gevent.lock.Semaphore)
    # Monotonic time of the last failed discovery: users retry at most once a second.
    _failed_at: float = -1e9

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.token}"} if self.settings.token else {}

    @property
    def hosts(self) -> tuple[str, ...]:
        """The base URLs users spread over: ``--replicas``, or ``--host`` alone."""
        return self.settings.replicas or (self.host.rstrip("/"),)

    def next_host(self, kind: str) -> int:
        """The index in ``hosts`` of the next user of ``kind`` (round robin per kind, so that
        every kind of user is spread evenly whatever the weights)."""
        index = self._spread[kind] % len(self.hosts)
        self._spread[kind] += 1
        return index

    @staticmethod
    def ws_url(base: str) -> str:
        """The websocket URL of the gateway at ``base``."""
        scheme, _, rest = base.rstrip("/").partition("://")
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"

    @property
    def ws_subprotocols(self) -> list[str] | None:
        """The token as a subprotocol (README, "Security"), never in the URL."""
        if not self.settings.token:
            return None
        return [SUBPROTOCOL, BEARER_PROTOCOL + self.settings.token]

    def gap_bound(self, router: str) -> float:
        """Longest silence allowed while the router is up, in seconds."""
        if self.settings.frame_gap_max > 0:
            return self.settings.frame_gap_max
        return 2 * self.intervals.get(router, 1.0) + self.settings.router_timeout

    def start(self, environment: Any) -> None:
        """Discover the routers and read the emulators' counters (at the test's start)."""
        self.host = environment.host or ""
        if not self.host:
            self.setup_problems.append("no --host: the gateway's base URL is needed")
            return
        self.discover(environment)
        self._map_controls()
        self.counts_start = self._read_counts()

    def next_router(self, environment: Any) -> str | None:
        """The next router, round robin; None (after reporting why) while none is known."""
        if not self.routers:
            with self._discovering:
                if not self.routers and time.monotonic() - self._failed_at > 1.0:
                    self.discover(environment)
            if not self.routers:
                return None
        return self.routers[next(self._next) % len(self.routers)]

    def discover(self, environment: Any) -> None:
        """Read ``GET /api/routers`` once, reported as a request like any other."""
        started = time.perf_counter()
        url = self.host.rstrip("/") + "/api/routers"
        request = urllib.request.Request(url, headers=self.headers)
        exception: Exception | None = None
        length = 0
        try:
            with urllib.request.urlopen(request, timeout=self.settings.request_max) as response:
                body = response.read()
            length = len(body)
            routers = [str(r["id"]) for r in json.loads(body)["routers"]]
            if not routers:
                raise Problem("the gateway lists no routers")
            self.routers = routers
        except (OSError, ValueError, KeyError, TypeError, Problem) as exc:
            exception = exc
            self._failed_at = time.monotonic()
        environment.events.request.fire(
            request_type="GET",
            name="/api/routers",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=exception,
            context={},
        )

    def _map_controls(self) -> None:
        for router, url in self.settings.controls:
            if not router:
                if len(self.routers) != 1:
                    self.setup_problems.append(
                        "--emulator-control: name the router (ROUTER=URL): the gateway lists "
                        f"{len(self.routers)} routers"
                    )
                    continue
                router = self.routers[0]
            if router not in self.routers:
                problem = f"--emulator-control: the gateway has no router {router!r}"
                self.setup_problems.append(problem)
                continue
            self.controls[router] = url

    def _read_counts(self) -> dict[str, PrintCount]:
        counts = {}
        for router, url in self.controls.items():
            try:
                with urllib.request.urlopen(f"{url}/stats", timeout=self.settings.request_max) as r:
                    stats = json.loads(r.read())
                counts[router] = PrintCount(time.monotonic(), int(stats["commands"].get(PRINT, 0)))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self.setup_problems.append(f"emulator control {url}/stats unreadable: {exc}")
        return counts

    def stop(self) -> None:
        if self.controls:
            self.counts_end = self._read_counts()


RUN = Run()
"""The test this process is running; replaced at each test start (Locust runs one at a time)."""


def _on_init(environment: Any, **_: Any) -> None:
    settings = Settings.from_options(environment.parsed_options)
    # FastHttpUser reads its timeouts from the class when each user starts.
    for cls in (RestReader, PageVisitor):
        cls.network_timeout = settings.request_max
        cls.connection_timeout = settings.request_max
    if type(environment.runner).__name__ in ("MasterRunner", "WorkerRunner"):
        logger.warning("the gateway checks judge this process's users only: run it as one process")


def _on_test_start(environment: Any, **_: Any) -> None:
    global RUN
    RUN = Run(Settings.from_options(environment.parsed_options))
    RUN.start(environment)


def _on_test_stop(environment: Any, **_: Any) -> None:
    RUN.stop()


def fire(
    environment: Any,
    name: str,
    seconds: float,
    *,
    length: int = 0,
    problem: BaseException | None = None,
) -> None:
    """Report one websocket measurement to Locust."""
    environment.events.request.fire(
        request_type=WS,
        name=name,
        response_time=seconds * 1000,
        response_length=length,
        exception=None if problem is None else CatchResponseError(_describe(problem)),
        context={},
    )


def _describe(problem: BaseException) -> str:
    if isinstance(problem, Problem):
        return str(problem)
    return f"{type(problem).__name__}: {problem}"


# -- websocket viewers ------------------------------------------------------------------------


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

    def __init__(self, viewer: Viewer, ws: Any, router: str) -> None:
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


class Viewer(User):
    """A dashboard: one websocket, subscribed to one router, checking every frame.

    It connects to one replica (round robin over ``RUN.hosts``); with ``--cluster`` each
    reconnect goes to the next one, as a load balancer may send a browser anywhere, so a resume
    there must find the frames it missed.
    """

    weight = 8
    wait_time = constant(0.5)
    """The supervisor's tick; a graceful stop takes effect while it waits."""

    def on_start(self) -> None:
        self.born = time.monotonic()
        self.router = ""
        self.live_frames = 0
        # Judges every message, across reconnects (it keeps the last seq seen, for a resume).
        self.check = StreamCheck(
            router_timeout=RUN.settings.router_timeout,
            gap_bound=RUN.gap_bound,
            cluster=RUN.settings.cluster,
        )
        # Index in RUN.hosts of the replica this viewer connects to (next).
        self.replica = RUN.next_host("viewer")
        self.stopped = False

    @task
    def watch(self) -> None:
        """Connect, subscribe and watch until the user stops; reconnect when the link ends."""
        router = RUN.next_router(self.environment)
        if router is None:
            return
        self.router = router
        failures = 0
        while True:
            feed = self._connect(router)
            if feed is not None:
                try:
                    while feed.open:
                        self.wait()  # type: ignore[no-untyped-call]
                finally:
                    feed.drop()
                if self._ended_cleanly(feed):
                    failures = 0
            RUN.reconnects += 1
            failures += 1
            if RUN.settings.cluster:
                self.replica += 1  # any replica serves any viewer: resume on the next one
            # Full jitter, base 0.5 s, doubling, capped (the browsers' policy, shorter cap).
            gevent.sleep(random.uniform(0, min(5.0, 0.5 * 2 ** min(failures, 8))))

    def _connect(self, router: str) -> Feed | None:
        environment = self.environment
        timeout = RUN.settings.request_max
        started = time.perf_counter()
        ws: Any = None
        host = RUN.hosts[self.replica % len(RUN.hosts)]
        try:
            ws = websocket.create_connection(
                RUN.ws_url(host),
                timeout=timeout,
                enable_multithread=False,
                skip_utf8_validation=True,
                subprotocols=RUN.ws_subprotocols,
            )
            RUN.connections[host] += 1
            feed = Feed(self, ws, router)
            self.check.connect(time.monotonic())
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
            feed.subscribe(self.check.last_seq(router), timeout)
        except gevent.GreenletExit:
            ws.shutdown()
            raise
        except NETWORK_ERRORS:
            ws.shutdown()  # already reported by subscribe()
            return None
        feed.start()
        return feed

    def _ended_cleanly(self, feed: Feed) -> bool:
        """Report how a connection ended; True for a server's planned close (going away)."""
        if feed.close_code is not None:
            RUN.closes[feed.close_code] += 1
            if feed.close_code == CloseCode.GOING_AWAY:
                return True
            fire(
                self.environment,
                "/ws close",
                0,
                problem=Problem(f"closed by the server with code {feed.close_code}"),
            )
        elif feed.error is not None:
            fire(self.environment, "/ws close", 0, problem=feed.error)
        return False

    def on_stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        RUN.viewers_stopped += 1
        lived = time.monotonic() - self.born
        # A viewer that lived long enough to see frames but saw none.
        if self.live_frames == 0 and lived > RUN.gap_bound(self.router) + RUN.settings.request_max:
            RUN.viewers_empty += 1


# -- REST readers -----------------------------------------------------------------------------


class RestReader(FastHttpUser):
    """A billing system or script reading the latest traffic frame over REST."""

    weight = 1
    wait_time = between(0.5, 1.5)
    network_timeout = 2.0
    connection_timeout = 2.0

    def __init__(self, environment: Any) -> None:
        # The client is made for ``host``: the next replica's, before it is made.
        self.host = RUN.hosts[RUN.next_host("rest")]
        super().__init__(environment)

    @task
    def traffic(self) -> None:
        router = RUN.next_router(self.environment)
        if router is None:
            return
        path = f"/api/routers/{urllib.parse.quote(router, safe='')}/traffic"
        with self.client.get(
            path, name="/api/routers/[id]/traffic", headers=RUN.headers, catch_response=True
        ) as response:
            problem = _snapshot_problem(router, response)
            if problem is None:
                response.success()
            else:
                response.failure(problem)


def _snapshot_problem(router: str, response: Any) -> str | None:
    """What is wrong with a REST snapshot, or None."""
    status = response.status_code
    if status == 0:
        return f"no response: {_describe(response.error)}"
    if status == 503 and router not in RUN.seen_frames:
        # A first read before the first poll: allowed by the contract, with Retry-After.
        return None if response.headers.get("Retry-After") else "503 without Retry-After"
    if status != 200:
        return f"HTTP {status}"
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return "body is not JSON"
    if not isinstance(body, dict) or body.get("router") != router:
        return "snapshot of the wrong router"
    if not isinstance(body.get("seq"), int) or not isinstance(body.get("state"), str):
        return "snapshot without seq and state"
    RUN.seen_frames.add(router)
    interval = body.get("interval")
    if isinstance(interval, int | float) and interval > 0:
        RUN.intervals.setdefault(router, float(interval))
    return None


# -- page visitors ----------------------------------------------------------------------------


class _AssetParser(html.parser.HTMLParser):
    """Collects what a browser would fetch to show the page: ``src`` of any element,
    ``href`` of ``<link>``, and every URL of an import map (``imports`` and ``scopes``)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.problems: list[str] = []
        self._importmap = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("src"):
            self.urls.append(str(values["src"]))
        if tag == "link" and values.get("href"):
            self.urls.append(str(values["href"]))
        if tag == "script" and (values.get("type") or "").lower() == "importmap":
            self._importmap, self._text = True, []

    def handle_data(self, data: str) -> None:
        if self._importmap:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._importmap:
            self._importmap = False
            try:
                importmap = json.loads("".join(self._text))
            except ValueError:
                self.problems.append("the import map is not JSON")
                return
            if not isinstance(importmap, dict):
                return
            maps = [importmap.get("imports") or {}]
            maps += list((importmap.get("scopes") or {}).values())
            for mapping in maps:
                if isinstance(mapping, dict):
                    self.urls.extend(str(u) for u in mapping.values())


def page_assets(page_url: str, text: str) -> tuple[list[str], list[str]]:
    """Absolute same-origin URLs of the page's assets (deduplicated), and parse problems."""
    parser = _AssetParser()
    parser.feed(text)
    parser.close()
    origin = urllib.parse.urlsplit(page_url)[:2]
    urls: dict[str, None] = {}
    for raw in parser.urls:
        url = urllib.parse.urljoin(page_url, raw.strip())
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("http", "https") and parts[:2] == origin:
            urls[urllib.parse.urldefrag(url).url] = None
    return list(urls), parser.problems


class PageVisitor(FastHttpUser):
    """A browser opening the dashboard: the page, then its styles, icon and ES modules."""

    weight = 1
    wait_time = between(2, 4)
    network_timeout = 2.0
    connection_timeout = 2.0
    concurrency = 6
    """Connections per visitor, like a browser's per-host limit."""

    def __init__(self, environment: Any) -> None:
        # The client is made for ``host``: the next replica's, before it is made.
        self.host = RUN.hosts[RUN.next_host("page")]
        super().__init__(environment)

    @task
    def page(self) -> None:
        page_url = (self.client.base_url or self.host or "").rstrip("/") + "/"
        assets: list[str] = []
        with self.client.get(page_url, name="/", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(
                    f"HTTP {response.status_code}"
                    if response.status_code
                    else f"no response: {_describe(response.error)}"
                )
                return
            if "text/html" not in (response.headers.get("Content-Type") or ""):
                response.failure("the page is not text/html")
                return
            assets, problems = page_assets(page_url, response.text or "")
            if problems:
                response.failure("; ".join(problems))
                return
            if not assets:
                response.failure("the page names no assets")
                return
            response.success()
        pool = gevent.pool.Pool(self.concurrency)
        try:
            for url in assets:
                pool.spawn(self._asset, url)
            pool.join()
        finally:
            pool.kill(block=True, timeout=1.0)

    def _asset(self, url: str) -> None:
        name = urllib.parse.urlsplit(url).path
        with self.client.get(url, name=name, catch_response=True) as response:
            if response.status_code == 200 and response.content:
                response.success()
            elif response.status_code == 0:
                response.failure(f"no response: {_describe(response.error)}")
            else:
                response.failure(f"HTTP {response.status_code}" if response.content else "empty")


# -- the verdict ------------------------------------------------------------------------------


def _percentiles(entry: Any) -> dict[str, float]:
    if not entry.num_requests:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0, "count": 0.0}
    return {
        "p50": float(entry.get_response_time_percentile(0.5)),
        "p99": float(entry.get_response_time_percentile(0.99)),
        "max": float(entry.max_response_time),
        "count": float(entry.num_requests),
    }


def judge(environment: Any) -> dict[str, Any]:
    """Every check of the run; ``problems`` lists the broken ones, each naming what broke."""
    stats = environment.stats
    settings = RUN.settings
    problems = list(RUN.setup_problems)
    entries = list(stats.entries.values())
    frames = [e for e in entries if e.method == WS and e.name.startswith("traffic ")]
    requests = [e for e in entries if e not in frames and not e.name.startswith("silence ")]

    if stats.total.num_failures:
        rows = sorted(stats.errors.values(), key=lambda e: -e.occurrences)
        listed = "; ".join(f"{e.to_name()} x{e.occurrences}" for e in rows[:6])
        problems.append(f"{stats.total.num_failures} failures: {listed}")
    limit_ms = settings.request_max * 1000
    for entry in requests:
        if entry.max_response_time > limit_ms:
            problems.append(
                f"slow request: {entry.method} {entry.name} took up to "
                f"{entry.max_response_time:.0f} ms (limit {limit_ms:.0f} ms)"
            )
    for entry in frames:
        p99 = entry.get_response_time_percentile(0.99)
        if p99 > settings.frame_p99_max:
            problems.append(
                f"slow frames: {entry.name} delay p99 {p99:.0f} ms "
                f"(limit {settings.frame_p99_max:g} ms)"
            )
    for entry in entries:
        if entry.name.startswith("silence ") and entry.num_requests:
            problems.append(
                f"frame silence: {entry.name} went quiet {entry.num_requests} times while up, "
                f"longest {entry.max_response_time / 1000:.1f} s"
            )
    rest = [e for e in requests if e.name == "/api/routers/[id]/traffic"]
    if RUN.viewers_empty:
        problems.append(f"{RUN.viewers_empty} viewers received no traffic frame")
    if RUN.viewers_stopped and not sum(e.num_requests for e in frames):
        problems.append("no traffic frame reached any viewer")
    if RUN.viewers_stopped or rest:
        for router in RUN.routers:
            if router not in RUN.seen_frames:
                problems.append(f"no traffic frame of router {router!r} was seen")

    router_requests = {}
    for router, start in RUN.counts_start.items():
        end = RUN.counts_end.get(router)
        interval = RUN.intervals.get(router)
        if end is None or interval is None:
            continue
        duration = end.at - start.at
        count = end.count - start.count
        allowed = duration / interval + settings.poll_slack
        router_requests[router] = {
            "requests": count,
            "seconds": round(duration, 1),
            "interval": interval,
            "per_interval": round(count * interval / duration, 3) if duration > 0 else 0.0,
            "allowed": round(allowed, 1),
        }
        if count > allowed:
            problems.append(
                f"router {router!r} got {count} requests in {duration:.1f} s: more than one "
                f"per {interval:g} s poll interval (allowed {allowed:.0f})"
            )

    all_frames = StatsEntry(stats, "traffic", WS)
    for entry in frames:
        all_frames.extend(entry)
    return {
        "passed": not problems,
        "problems": problems,
        "users": environment.runner.target_user_count if environment.runner else 0,
        "seconds": round(stats.last_request_timestamp - stats.start_time, 1)
        if stats.last_request_timestamp
        else 0.0,
        "requests": stats.total.num_requests,
        "failures": stats.total.num_failures,
        "frames": all_frames.num_requests,
        "frame_delay_ms": _percentiles(all_frames),
        "rest_ms": _percentiles(rest[0]) if rest else _percentiles(StatsEntry(stats, "-", "GET")),
        "slowest_request_ms": max((e.max_response_time for e in requests), default=0),
        "router_requests": router_requests,
        "replicas": {url: RUN.connections.get(url, 0) for url in RUN.hosts},
        "viewers": {
            "stopped": RUN.viewers_stopped,
            "received_nothing": RUN.viewers_empty,
            "reconnects": RUN.reconnects,
            "closes": {str(k): v for k, v in sorted(RUN.closes.items())},
        },
    }


def _on_quitting(environment: Any, **_: Any) -> None:
    verdict = judge(environment)
    if RUN.settings.summary_json:
        with open(RUN.settings.summary_json, "w", encoding="utf-8") as out:
            json.dump(verdict, out, indent=2)
    frames = verdict["frame_delay_ms"]
    logger.info(
        "gateway checks: %d frames, delay p50 %.0f ms p99 %.0f ms; slowest request %.0f ms; "
        "router requests per interval %s",
        verdict["frames"],
        frames["p50"],
        frames["p99"],
        verdict["slowest_request_ms"],
        {r: v["per_interval"] for r, v in verdict["router_requests"].items()} or "not measured",
    )
    if verdict["passed"]:
        logger.info("gateway checks: PASSED")
        return
    for problem in verdict["problems"]:
        logger.error("gateway check FAILED: %s", problem)
    environment.process_exit_code = 1


for _hook, _listener in (
    (events.init_command_line_parser, _add_options),
    (events.init, _on_init),
    (events.test_start, _on_test_start),
    (events.test_stop, _on_test_stop),
    (events.quitting, _on_quitting),
):
    _hook.add_listener(_listener)  # type: ignore[no-untyped-call]
