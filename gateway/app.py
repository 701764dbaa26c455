"""The application factory and its lifecycle.

Resources come up in dependency order through ``cleanup_ctx`` and go down in reverse. The
shutdown sequence (``drain``), as DESIGN.md states it:

1. readiness turns 503 at once and no new websocket is accepted;
2. every websocket gets close 1001 (clients reconnect, with jitter, to another replica);
3. pollers stop and router sessions log out (the cleanup contexts);
4. the process exits 0 within ``shutdown_grace``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.config import Settings
from gateway.faults import UnexpectedErrors
from gateway.hub import CLOSE_GOING_AWAY, Hub
from gateway.keys import APP
from gateway.metrics import Metrics
from gateway.poller import IDLE_LOGOUT, Clock, Poller
from gateway.redact import install_filter
from gateway.routeros import Connector, connect_librouteros
from gateway.state import AppState
from gateway.views import WEB_ROOT, add_routes
from gateway.ws import HEARTBEAT

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    connect: Connector = connect_librouteros,
    clock: Clock = time.monotonic,
    heartbeat: float = HEARTBEAT,
    idle_logout: float = IDLE_LOGOUT,
) -> web.Application:
    """Build the gateway app. ``connect``, ``clock`` and the periods are seams for tests.

    Whoever runs the app may keep aiohttp's access log on; its request lines carry ``?token=``,
    so the app redacts that logger's records (``gateway.redact``) wherever they are written.
    """
    install_filter(logging.getLogger("aiohttp.access"))
    app = web.Application()
    state = AppState(
        settings=settings,
        hub=Hub((r.id for r in settings.routers), settings.poll.history),
        metrics=Metrics(),
        heartbeat=heartbeat,
    )
    app[APP] = state
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(WEB_ROOT / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    add_routes(app)
    app.router.add_static("/static", WEB_ROOT / "static", append_version=True, name="static")

    async def pollers(app: web.Application) -> AsyncIterator[None]:
        for router in settings.routers:
            topic = state.hub.topics[router.id]
            poller = Poller(
                router,
                settings.poll,
                topic,
                state.metrics,
                connect=connect,
                clock=clock,
                idle_logout=idle_logout,
            )
            state.pollers[router.id] = poller
            poller.start()
        state.ready = True
        yield
        state.ready = False
        # Step 3: stop polling and log out of every router, all at once.
        await asyncio.gather(*(p.stop() for p in state.pollers.values()))

    async def heartbeats(app: web.Application) -> AsyncIterator[None]:
        # Owned here: one task sends the heartbeat message to every viewer each period.
        async def beat() -> None:
            # A fault in one beat is logged (a traceback once per kind) and the next beat, one
            # period later, tries again: without heartbeats every idle viewer's page would
            # give up on a healthy connection.
            unexpected = UnexpectedErrors(logger, "heartbeat")
            while True:
                await asyncio.sleep(heartbeat)
                try:
                    state.hub.heartbeat(time.time())
                except Exception as exc:  # noqa: BLE001 - the heartbeat outlives any bug below
                    unexpected.report(exc)
                else:
                    unexpected.recovered()

        task = asyncio.create_task(beat(), name="heartbeats")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(pollers)
    app.cleanup_ctx.append(heartbeats)
    app.on_shutdown.append(_close_viewers)
    return app


async def _close_viewers(app: web.Application) -> None:
    """Step 2: close every websocket with 1001, concurrently, each bounded."""
    state = app[APP]
    begin_drain(app)
    viewers = list(state.viewers)
    for viewer in viewers:
        viewer.close(CLOSE_GOING_AWAY, "server shutting down")
    closers = [v.closer for v in viewers if v.closer is not None]
    await asyncio.gather(*closers, return_exceptions=True)


def begin_drain(app: web.Application) -> None:
    """Step 1: readiness 503 and no new websockets, at once."""
    state = app[APP]
    state.draining = True
    state.ready = False


async def drain(app: web.Application) -> None:
    """Steps 1 and 2, while the listener still answers probes (503) and reconnects (1001)."""
    await _close_viewers(app)
