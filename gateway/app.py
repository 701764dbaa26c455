"""The application factory: what is built, which route serves what, and the lifecycle.

Resources come up in dependency order through ``cleanup_ctx`` and go down in reverse. The
shutdown sequence (``drain``, then the cleanup contexts), as the README's "Deploy" section
states it:

1. readiness turns 503 at once and no new websocket is accepted;
2. every websocket gets close 1001 (clients reconnect, with jitter, to another replica);
3. Redis leases are released (cluster mode), pollers stop and router sessions log out (the
   cleanup contexts);
4. the process exits 0 within ``shutdown_grace``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway import views
from gateway.auth import Verifier
from gateway.config import Settings
from gateway.demand import Demand
from gateway.faults import UnexpectedErrors
from gateway.headers import response_hook
from gateway.hub import Hub
from gateway.keyfiles import KEY_CHECK_SECONDS, KeyFiles
from gateway.keys import HUB, LIFECYCLE, METRICS, POLLERS, ROUTERS, SETTINGS, VERIFIER
from gateway.lifecycle import Lifecycle
from gateway.logs import quiet_bad_requests
from gateway.metrics import Metrics
from gateway.poller import Clock, Poller
from gateway.redact import AIOHTTP_LOGGERS, install_filter
from gateway.sink import Limits
from gateway.wire import CloseCode
from gateway.ws import WebSocketEndpoint, close_viewers
from gateway.ws_session import ViewerContext

if TYPE_CHECKING:
    from gateway.cluster import Cluster
    from gateway.routeros import Connector

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    connect: Connector,
    clock: Clock = time.monotonic,
    heartbeat: float | None = None,
    idle_logout: float | None = None,
    key_check: float = KEY_CHECK_SECONDS,
) -> web.Application:
    """Build the gateway app.

    ``connect`` opens a router's API session: the command line passes
    ``gateway.routeros.connect_librouteros``; tests pass it too, or a wrapper that injects
    faults. ``clock`` (the pollers' and their demand's) is a seam for tests, as are
    ``heartbeat`` and ``idle_logout`` (seconds), which replace ``server.heartbeat`` and
    ``poll.idle_logout`` when given, and ``key_check``, the seconds between looks at the key
    files (``gateway.keyfiles``).

    Whoever runs the app may keep aiohttp's access log on; its request lines can carry
    ``?token=``, and aiohttp's websocket logger the subprotocols a client offered, so the app
    redacts those loggers' records (``gateway.redact``) wherever they are written.
    """
    for name in AIOHTTP_LOGGERS:
        install_filter(logging.getLogger(name))
    quiet_bad_requests()
    period = settings.server.heartbeat if heartbeat is None else heartbeat
    app = web.Application()
    hub = Hub(
        (r.id for r in settings.routers),
        settings.poll.history,
        sources={r.id: r.sources for r in settings.routers},
        demand=functools.partial(Demand, settings.poll.linger, clock),
    )
    metrics = Metrics()
    lifecycle = Lifecycle()
    pollers: dict[str, Poller] = {}
    key_files = KeyFiles(settings.auth)
    verifier = Verifier(settings.auth, key_files.keys)
    app[SETTINGS] = settings
    app[VERIFIER] = verifier
    app[HUB] = hub
    app[METRICS] = metrics
    app[LIFECYCLE] = lifecycle
    app[POLLERS] = pollers
    app[ROUTERS] = {r.id: r for r in settings.routers}
    endpoint = WebSocketEndpoint(
        ViewerContext(
            hub=hub,
            routers=tuple((r.id, r.name) for r in settings.routers),
            heartbeat=period,
            metrics=metrics,
            limits=Limits(
                behind_bytes=settings.server.slow_consumer_bytes,
                behind_seconds=settings.server.slow_consumer_seconds,
            ),
            verifier=verifier,
            client_limits=settings.limits,
        ),
        settings.server,
        lifecycle,
    )
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(views.WEB_ROOT / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    app.router.add_get("/", views.index)
    app.router.add_get("/customer", views.customer)
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/readyz", views.readyz)
    app.router.add_get("/metrics", views.metrics)
    app.router.add_get("/api/routers", views.routers)
    app.router.add_get("/api/routers/{router}/traffic", views.traffic)
    app.router.add_get("/api/routers/{router}/queues", views.queues)
    app.router.add_get("/api/routers/{router}/hotspot", views.hotspot)
    app.router.add_get("/ws", endpoint.handle)
    app.router.add_static("/static", views.STATIC_ROOT, append_version=True, name="static")
    app.on_response_prepare.append(response_hook(settings.server))

    async def polling(app: web.Application) -> AsyncIterator[None]:
        # Owned here: one poller (and its task) per router, from start-up to step 3; in cluster
        # mode also the replica's Redis side (a lease per router and the stream reader).
        cluster: Cluster | None = None
        if settings.cluster.enabled:
            # Imported here: one process never loads the Redis client.
            from gateway.cluster import Cluster

            cluster = Cluster(settings, hub.sources, metrics, clock=clock)
        for router in settings.routers:
            lease = None if cluster is None else cluster.leases[router.id]
            poller = Poller(
                router,
                settings.poll,
                hub.sources[router.id],
                metrics,
                connect=connect,
                clock=clock,
                idle_logout=idle_logout,
                gate=None if lease is None else lease.gate,
                publisher=lease,
            )
            if lease is not None:
                lease.poller = poller
            pollers[router.id] = poller
            poller.start()
        if cluster is not None:
            cluster.start()
        lifecycle.ready = True
        yield
        lifecycle.ready = False
        # Step 3: give up Redis leases (others take over at once), then stop polling and log
        # out of every router, all at once.
        if cluster is not None:
            await cluster.release()
        await asyncio.gather(*(p.stop() for p in pollers.values()))
        if cluster is not None:
            await cluster.close()

    async def heartbeats(app: web.Application) -> AsyncIterator[None]:
        # Owned here: one task sends the heartbeat message to every viewer each period.
        async def beat() -> None:
            # A fault in one beat is logged (a traceback once per kind) and the next beat, one
            # period later, tries again: without heartbeats every idle viewer's page would
            # give up on a healthy connection.
            unexpected = UnexpectedErrors(logger, "heartbeat")
            while True:
                await asyncio.sleep(period)
                try:
                    hub.heartbeat(time.time())
                except Exception as exc:  # noqa: BLE001 - the heartbeat outlives any bug below
                    unexpected.report(exc)
                else:
                    unexpected.recovered()

        task = asyncio.create_task(beat(), name="heartbeats")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def key_rotation(app: web.Application) -> AsyncIterator[None]:
        # Owned here: one task looks at the key files every key_check seconds (none without).
        task = asyncio.create_task(key_files.watch(key_check), name="key-files")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    if key_files.watching:
        app.cleanup_ctx.append(key_rotation)
    app.cleanup_ctx.append(polling)
    app.cleanup_ctx.append(heartbeats)
    app.on_shutdown.append(drain)
    return app


def begin_drain(app: web.Application) -> None:
    """Step 1: readiness 503 and no new websockets, at once."""
    lifecycle = app[LIFECYCLE]
    lifecycle.draining = True
    lifecycle.ready = False


async def drain(app: web.Application) -> None:
    """Steps 1 and 2: every websocket closed with 1001, concurrently, each bounded. Run by the
    command line while the listener still answers probes (503) and reconnects (1001), and
    again (finding nothing left) by aiohttp's shutdown."""
    begin_drain(app)
    await close_viewers(app[HUB], CloseCode.GOING_AWAY, "server shutting down")
