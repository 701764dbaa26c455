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

This file holds the users and Locust's event hooks; the rest is beside it, by concern:
``load_settings`` (the options), ``load_run`` (what the users share: the routers, the spread
over replicas, reporting a measurement), ``load_feed`` (the viewers' websocket client),
``load_checks`` (the REST and page checks) and ``load_verdict`` (the checks at the end). Locust
imports them from this folder when it loads this file.
"""

from __future__ import annotations

import logging
import random
import time
import urllib.parse
from typing import Any

import gevent
import gevent.pool
from load_checks import page_assets, snapshot_problem
from load_feed import Feed, connect
from load_run import RUN, Problem, describe, fire
from load_settings import Settings, add_options
from load_verdict import on_quitting
from locust import FastHttpUser, User, between, constant, events, task

from gateway.contract import StreamCheck
from gateway.wire import CloseCode

logger = logging.getLogger("loadtest")


def _on_init(environment: Any, **_: Any) -> None:
    settings = Settings.from_options(environment.parsed_options)
    # FastHttpUser reads its timeouts from the class when each user starts.
    for cls in (RestReader, PageVisitor):
        cls.network_timeout = settings.request_max
        cls.connection_timeout = settings.request_max
    if type(environment.runner).__name__ in ("MasterRunner", "WorkerRunner"):
        logger.warning("the gateway checks judge this process's users only: run it as one process")


def _on_test_start(environment: Any, **_: Any) -> None:
    RUN.reset(Settings.from_options(environment.parsed_options))
    RUN.start(environment)


def _on_test_stop(environment: Any, **_: Any) -> None:
    RUN.stop()


# -- websocket viewers ------------------------------------------------------------------------


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
            feed = connect(self, router, RUN.hosts[self.replica % len(RUN.hosts)])
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
            problem = snapshot_problem(router, response)
            if problem is None:
                response.success()
            else:
                response.failure(problem)


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
                    else f"no response: {describe(response.error)}"
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
                response.failure(f"no response: {describe(response.error)}")
            else:
                response.failure(f"HTTP {response.status_code}" if response.content else "empty")


for _hook, _listener in (
    (events.init_command_line_parser, add_options),
    (events.init, _on_init),
    (events.test_start, _on_test_start),
    (events.test_stop, _on_test_stop),
    (events.quitting, on_quitting),
):
    _hook.add_listener(_listener)  # type: ignore[no-untyped-call]
