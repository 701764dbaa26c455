"""HTTP endpoints: the page, health and readiness probes, metrics, and the REST snapshots."""

from __future__ import annotations

import time
from typing import Final

import aiohttp_jinja2
import orjson
from aiohttp import web

from gateway.core.frames import is_stale
from gateway.keys import APP
from gateway.metrics import CONTENT_TYPE
from gateway.ws import websocket_handler

FIRST_FRAME_WAIT: Final = 1.0
"""A first REST read waits this long for the first poll; it never waits on a router longer."""


def _json(data: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, object]:
    state = request.app[APP]
    return {"routers": [{"id": r.id, "name": r.name} for r in state.settings.routers]}


async def healthz(request: web.Request) -> web.Response:
    """Liveness: answered by the event loop itself, so it fails only when the loop is stuck."""
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: never depends on a router (an outage must not unroute healthy replicas)."""
    state = request.app[APP]
    if state.ready and not state.draining:
        return _json({"status": "ready"})
    return _json({"status": "draining" if state.draining else "starting"}, status=503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[APP].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def routers(request: web.Request) -> web.Response:
    state = request.app[APP]
    listing = []
    for router in state.settings.routers:
        poller = state.pollers[router.id]
        listing.append(
            {
                "id": router.id,
                "name": router.name,
                "state": poller.state,
                "viewers": state.hub.topics[router.id].viewers,
                "last_poll_ts": poller.last_poll_ts,
                "last_error": poller.error,
            }
        )
    return _json({"routers": listing})


async def traffic(request: web.Request) -> web.Response:
    """The latest frame, at once; a first read waits at most a second for the first poll."""
    state = request.app[APP]
    router = request.match_info["router"]
    poller = state.pollers.get(router)
    if poller is None:
        return _json({"error": "unknown_router", "message": f"no router {router!r}"}, 404)
    poller.touch()
    topic = state.hub.topics[router]
    frame = topic.latest or await topic.wait_frame(FIRST_FRAME_WAIT)
    if frame is None:
        return _json(
            {
                "error": "no_data",
                "message": "no traffic frame yet",
                "state": poller.state,
                "last_error": poller.error,
            },
            503,
            headers={"Retry-After": "1"},
        )
    now = time.time()
    body = dict(frame.data)
    body["stale"] = is_stale(poller.state, frame.ts, now, poller.interval, poller.timeout)
    body["state"] = poller.state
    body["age_ms"] = round((now - frame.ts) * 1000)
    return _json(body)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/routers", routers)
    app.router.add_get("/api/routers/{router}/traffic", traffic)
    app.router.add_get("/ws", websocket_handler)
