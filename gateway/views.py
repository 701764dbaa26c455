"""HTTP endpoints: the page, health and readiness probes, metrics, and the REST snapshots.

Each view reads what it needs through the typed keys of ``gateway.keys``; ``gateway.app``
registers the routes.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import aiohttp_jinja2
import orjson
from aiohttp import web

from gateway.auth import AuthError, Grant
from gateway.config import Settings
from gateway.core.frames import is_stale
from gateway.core.messages import PUBLIC_ERROR
from gateway.core.model import RouterState
from gateway.core.sources import Source
from gateway.headers import frame_ancestors
from gateway.keys import HUB, LIFECYCLE, METRICS, ROUTERS, SETTINGS, VERIFIER
from gateway.metrics import CONTENT_TYPE
from gateway.topic import Topic

FIRST_FRAME_WAIT: Final = 1.0
"""A first REST read waits this long for the first poll; it never waits on a router longer."""


def _json(data: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def _web_root() -> Path:
    """The dashboard's files: ``gateway/web`` when installed from a wheel, else ``web/``."""
    package = Path(__file__).resolve().parent
    installed = package / "web"
    return installed if installed.is_dir() else package.parent / "web"


WEB_ROOT: Final = _web_root()
"""Templates and static files of the dashboard (``templates/``, ``static/``)."""

STATIC_ROOT: Final = WEB_ROOT / "static"

PAGE_ASSETS: Final = ("favicon.svg", "css/dashboard.css", "vendor/uplot/uPlot.min.css")
"""Files the page links to besides its ES modules (every ``*.js`` under ``js/`` and ``vendor/``)."""

_CSP: Final = (
    "default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'{connect}; base-uri 'none'; form-action 'none'; "
    "frame-ancestors {ancestors}"
)
"""The page loads nothing from anywhere but the gateway (it must work on an air-gapped network);
the policy makes that a guarantee the browser enforces, not just a habit of the templates. The
one exception is ``auth.token_url`` on another origin, which the page may fetch new tokens from.
Who may frame it is ``gateway.headers``'s business (every response says the same)."""


def page_config(settings: Settings) -> dict[str, object]:
    """What the page is told (as JSON in the page): where it gets new tokens (README,
    "Security"): the token URL, and the origins allowed to embed it and post it tokens."""
    return {
        "tokenUrl": settings.auth.token_url,
        "embedders": list(settings.server.allowed_frame_ancestors),
    }


def _connect_sources(settings: Settings) -> str:
    """The CSP ``connect-src`` sources besides ``'self'``: the token URL's origin, if foreign."""
    url = settings.auth.token_url
    if not url.startswith(("http://", "https://")):
        return ""
    parts = urlsplit(url)
    return f" {parts.scheme}://{parts.netloc}"


def _asset_urls(
    resource: web.AbstractResource,
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Content-hashed URLs of the page's files, and the import map of its ES modules.

    Every URL carries ``?v=<hash>`` (the static route's ``append_version``), and the import map
    sends each module specifier to its hashed URL, so browsers may cache everything and still
    never run a stale script after an upgrade. Reads the files: call it off the event loop.
    """
    modules = sorted(
        p.relative_to(STATIC_ROOT).as_posix()
        for folder in ("js", "vendor")
        for p in (STATIC_ROOT / folder).rglob("*.js")
    )
    urls = {name: str(resource.url_for(filename=name)) for name in (*PAGE_ASSETS, *modules)}
    imports = {f"/static/{name}": urls[name] for name in modules}
    return urls, {"imports": imports}


async def index(request: web.Request) -> web.Response:
    """The dashboard page. Router names are not in it: the page learns the routers the viewer
    may see from the websocket ``hello``, which applies the viewer's token."""
    return await _page(request, "index.html")


async def customer(request: web.Request) -> web.Response:
    """The customer view (README, "The customer view"): one customer's chart, plan and session,
    for a billing portal to embed. Like the dashboard, it names no router and holds no token:
    the address names the customer's rows, the token (never in a URL) says what it may see."""
    return await _page(request, "customer.html")


async def _page(request: web.Request, template: str) -> web.Response:
    """A page of the dashboard's, with its hashed assets, script nonce and security policy."""
    resource = request.app.router.named_resources()["static"]
    assets, importmap = await asyncio.to_thread(_asset_urls, resource)
    nonce = secrets.token_urlsafe(16)
    settings = request.app[SETTINGS]
    response = aiohttp_jinja2.render_template(
        template,
        request,
        {
            "assets": assets,
            "importmap": importmap,
            "nonce": nonce,
            "config": page_config(settings),
        },
    )
    response.headers["Content-Security-Policy"] = _CSP.format(
        nonce=nonce,
        connect=_connect_sources(settings),
        ancestors=frame_ancestors(settings.server),
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


async def healthz(request: web.Request) -> web.Response:
    """Liveness: answered by the event loop itself, so it fails only when the loop is stuck."""
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: never depends on a router (an outage must not unroute healthy replicas)."""
    lifecycle = request.app[LIFECYCLE]
    if lifecycle.serving:
        return _json({"status": "ready"})
    return _json({"status": "draining" if lifecycle.draining else "starting"}, status=503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def _grant(request: web.Request) -> Grant:
    """The caller's grant from ``Authorization: Bearer``; HTTP 401 when it is not good."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else None
    try:
        return request.app[VERIFIER].authorise(token)
    except AuthError as exc:
        raise web.HTTPUnauthorized(
            text=orjson.dumps({"error": "unauthorized", "message": str(exc)}).decode(),
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="gateway"'},
        ) from None


def _state(topic: Topic) -> tuple[RouterState, str | None]:
    """The state and error of a router's source as its topic's viewers see them: what its
    poller last published (in cluster mode: whichever replica polls it)."""
    status = topic.status or {}
    state = status.get("state")
    error = status.get("error")
    return (
        state if state in ("connecting", "up", "down") else "idle",
        error if isinstance(error, str) else None,
    )


# A router's state as a whole, from its sources': the first of these any source is in.
_ROUTER_STATES: Final[tuple[RouterState, ...]] = ("up", "connecting", "down", "idle")


def _router_state(topics: list[Topic]) -> tuple[RouterState, str | None]:
    """A router's state from its sources': ``up`` while any is up, else ``connecting``, else
    ``down`` (with that source's error), else ``idle``."""
    states = [_state(topic) for topic in topics]
    for wanted in _ROUTER_STATES:
        for state, error in states:
            if state == wanted:
                return state, error
    return "idle", None


async def routers(request: web.Request) -> web.Response:
    app = request.app
    poll, sources = app[SETTINGS].poll, app[HUB].sources
    grant = _grant(request)
    listing = []
    for router in app[SETTINGS].routers:
        if not grant.allows(router.id):
            continue
        topics = list(sources[router.id].values())
        state, error = _router_state(topics)
        if error is not None and grant.restricted:
            error = PUBLIC_ERROR
        stamps = [topic.latest.ts for topic in topics if topic.latest is not None]
        listing.append(
            {
                "id": router.id,
                "name": router.name,
                "interval": router.effective_interval(poll),
                "sources": list(sources[router.id]),
                "state": state,
                "viewers": sum(topic.viewers for topic in topics),
                "last_poll_ts": max(stamps, default=None),
                "last_error": error,
            }
        )
    return _json({"routers": listing})


async def traffic(request: web.Request) -> web.Response:
    """The latest ``interfaces`` frame (see ``snapshot``)."""
    return await snapshot(request, "interfaces")


async def queues(request: web.Request) -> web.Response:
    """The latest ``queues`` frame (see ``snapshot``)."""
    return await snapshot(request, "queues")


async def hotspot(request: web.Request) -> web.Response:
    """The latest ``hotspot`` frame (see ``snapshot``)."""
    return await snapshot(request, "hotspot")


async def snapshot(request: web.Request, source: Source) -> web.Response:
    """The latest frame of one source of a router, at once; a first read waits at most a second
    for the first poll. 404 for an unknown router (or one outside the caller's token) or a source
    it does not serve; the rows are those the caller's token allows."""
    grant = _grant(request)
    router = request.match_info["router"]
    hub = request.app[HUB]
    # A router outside the token is answered as one that does not exist (see ws_messages.py).
    if router not in hub.sources or not grant.allows(router):
        return _json({"error": "unknown_router", "message": f"no router {router!r}"}, 404)
    topic = hub.topic(router, source)
    if topic is None:
        message = f"router {router!r} does not serve {source} (its sources: "
        message += f"{', '.join(hub.sources[router])})"
        return _json({"error": "unknown_source", "message": message}, 404)
    topic.demand.touch()  # a REST read is demand: poll now, and for the linger after it
    frame = topic.latest or await topic.wait_frame(FIRST_FRAME_WAIT)
    if frame is None:
        state, error = _state(topic)
        if error is not None and grant.restricted:
            error = PUBLIC_ERROR
        return _json(
            {
                "error": "no_data",
                "message": f"no {source} frame yet",
                "state": state,
                "last_error": error,
            },
            503,
            headers={"Retry-After": "1"},
        )
    poll = request.app[SETTINGS].poll
    settings = request.app[ROUTERS][router]
    interval, timeout = settings.effective_interval(poll), settings.effective_timeout(poll)
    state, _ = _state(topic)
    now = time.time()
    flt = grant.filter(router, source)
    body = topic.frame_data(frame, flt)
    body["stale"] = is_stale(state, frame.ts, now, interval, timeout)
    body["state"] = state
    body["age_ms"] = round((now - frame.ts) * 1000)
    return _json(body)
