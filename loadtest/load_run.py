"""What every user of one Locust process shares during a test: the routers, the replicas users
spread over, what the viewers saw, and how a measurement is reported to Locust.

``RUN`` is the one ``Run`` of the process; ``RUN.reset()`` starts it afresh at each test start
(Locust runs one test at a time per process). Only greenlets touch it (one OS thread).
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any, Final

import gevent.lock
import websocket
from load_settings import Settings
from locust.exception import CatchResponseError

from gateway.auth import BEARER_PROTOCOL, SUBPROTOCOL

PRINT: Final = "/interface/print"
"""The one command the gateway sends a router per poll."""

WS: Final = "WS"
"""Request type of everything measured on the websocket."""


class Problem(Exception):
    """A broken expectation. Messages carry no varying numbers, so Locust groups them."""


NETWORK_ERRORS: Final = (websocket.WebSocketException, OSError, ValueError, Problem)
"""What a websocket operation may raise (ValueError covers bad JSON and bad frames)."""


@dataclass
class PrintCount:
    """An emulator's ``/interface/print`` counter, read at a monotonic time."""

    at: float
    count: int


@dataclass
class Run:
    """What every user of this process shares during one test.

    Locust runs one test at a time per process; ``reset()`` and ``start()`` begin each. Only
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

    def reset(self, settings: Settings) -> None:
        """Forget the last test: every field as a new ``Run(settings)`` has it. The object stays
        the same, so every module that imported ``RUN`` sees the new test."""
        fresh = Run(settings)
        for each in fields(self):
            setattr(self, each.name, getattr(fresh, each.name))


RUN = Run()
"""The test this process is running; reset at each test start (Locust runs one at a time)."""


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
        exception=None if problem is None else CatchResponseError(describe(problem)),
        context={},
    )


def describe(problem: BaseException) -> str:
    """A failure's text for Locust: a ``Problem``'s message, or the exception's type and text."""
    if isinstance(problem, Problem):
        return str(problem)
    return f"{type(problem).__name__}: {problem}"
