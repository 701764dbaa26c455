"""The websocket endpoint ``/ws``: one Viewer per connection.

A viewer reads client messages (subscribe / unsubscribe) in its own task; everything it sends
goes through its ``Sink`` as prebuilt frames, synchronously, so the hub never waits on it. A bad
message gets an ``error`` frame and the connection stays open; an oversized one is closed with
1009 by aiohttp itself (``max_msg_size``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from typing import Final
from urllib.parse import urlsplit

import orjson
from aiohttp import WSMsgType, web

from gateway.auth import AuthError, Grant, authorise
from gateway.core.frames import ErrorCode, InterfaceFilter, error_frame, hello_frame
from gateway.hub import CLOSE_GOING_AWAY, CLOSE_SLOW_CONSUMER, Sink, encode_message
from gateway.keys import APP
from gateway.state import AppState

logger = logging.getLogger(__name__)

HEARTBEAT: Final = 20.0
"""Seconds between server heartbeats: a websocket ping and a ``heartbeat`` message."""

MAX_MESSAGE: Final = 64 * 1024
"""Largest client message accepted; larger ones close the connection with 1009."""

MAX_SUBSCRIPTIONS: Final = 64
MAX_GLOBS: Final = 256
CLOSE_TIMEOUT: Final = 2.0
"""How long a closing handshake may take before the socket is dropped (and its memory freed)."""

SEND_BUFFER: Final = 128 * 1024
"""Kernel send buffer per viewer socket. Left to autotune, Linux grows it to megabytes per
connection, which hides a stalled viewer for tens of seconds and costs gigabytes at 15,000
viewers; 128 KiB still carries a dashboard's traffic across a slow link."""

CLOSE_POLICY: Final = 1008
CLOSE_TRY_AGAIN: Final = 1013
CLOSE_BAD_TOKEN: Final = 4401


class BadMessage(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Viewer:
    """One websocket client: its sink, its subscriptions, and the task that closes it."""

    def __init__(
        self, state: AppState, ws: web.WebSocketResponse, request: web.Request, grant: Grant
    ) -> None:
        self.state = state
        self.ws = ws
        self.grant = grant
        transport = request.transport
        assert transport is not None
        self.transport = transport
        self.sink = Sink(transport, self._on_behind)
        # Router id -> the filter of this viewer's subscription there.
        self.subscriptions: set[str] = set()
        # Closes the websocket when the viewer falls behind or the server drains; owned here,
        # awaited by run()'s cleanup.
        self._closer: asyncio.Task[None] | None = None
        # Closes the connection with 4401 when the token expires; cancelled when run() ends.
        self._expiry: asyncio.TimerHandle | None = None
        if grant.expires is not None:
            delay = max(0.0, grant.expires - time.time())
            self._expiry = asyncio.get_running_loop().call_later(
                delay, self.close, CLOSE_BAD_TOKEN, "token expired"
            )

    @property
    def closer(self) -> asyncio.Task[None] | None:
        return self._closer

    def send(self, message: object) -> None:
        self.sink.write(encode_message(message))

    async def run(self) -> None:
        state = self.state
        visible = [(r.id, r.name) for r in state.settings.routers if self.grant.allows(r.id)]
        self.send(hello_frame(visible, state.heartbeat))
        try:
            async for msg in self.ws:
                if msg.type is WSMsgType.TEXT:
                    self._handle_text(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    self.send(error_frame("bad_request", "messages must be JSON text frames"))
                elif msg.type is WSMsgType.ERROR:
                    logger.debug("websocket error: %s", self.ws.exception())
                    break
        finally:
            if self._expiry is not None:
                self._expiry.cancel()
            self._unsubscribe_all()
            closer = self._closer
            if closer is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await closer

    def _handle_text(self, text: str) -> None:
        try:
            message = orjson.loads(text)
            if not isinstance(message, dict):
                raise BadMessage("bad_request", 'expected a JSON object with a "type"')
            kind = message.get("type")
            if kind == "subscribe":
                self._subscribe(message)
            elif kind == "unsubscribe":
                self._unsubscribe(self._router(message))
            else:
                raise BadMessage(
                    "bad_request",
                    f"unknown message type {kind!r}; expected subscribe or unsubscribe",
                )
        except orjson.JSONDecodeError as exc:
            self.send(error_frame("bad_request", f"invalid JSON: {exc}"))
        except BadMessage as exc:
            self.send(error_frame(exc.code, str(exc)))

    def _router(self, message: dict[str, object]) -> str:
        router = message.get("router")
        if not isinstance(router, str):
            raise BadMessage("bad_request", '"router" must be a router id (a string)')
        if router not in self.state.hub.topics:
            raise BadMessage("unknown_router", f"no router with id {router[:80]!r}")
        if not self.grant.allows(router):
            raise BadMessage("forbidden", f"your token does not cover router {router!r}")
        return router

    def _subscribe(self, message: dict[str, object]) -> None:
        router = self._router(message)
        unknown = set(message) - {"type", "router", "interfaces", "since"}
        if unknown:
            raise BadMessage("bad_request", f"unknown field(s) {sorted(unknown)} in subscribe")
        flt = self.grant.interface_filter(router)
        globs = message.get("interfaces")
        if globs is not None:
            if (
                not isinstance(globs, list)
                or len(globs) > MAX_GLOBS
                or not all(isinstance(g, str) and 0 < len(g) <= 256 for g in globs)
            ):
                raise BadMessage(
                    "bad_request",
                    f'"interfaces" must be a list of up to {MAX_GLOBS} name globs',
                )
            flt = flt.intersect(InterfaceFilter.of(globs))
        since = message.get("since")
        if since is not None and (
            isinstance(since, bool) or not isinstance(since, int) or since < 0
        ):
            raise BadMessage("bad_request", '"since" must be a non-negative integer seq')
        if router not in self.subscriptions and len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise BadMessage(
                "too_many_subscriptions", f"at most {MAX_SUBSCRIPTIONS} routers per connection"
            )
        topic = self.state.hub.topics[router]
        topic.subscribe(self.sink, flt, since)
        if router not in self.subscriptions:
            self.subscriptions.add(router)
            self.state.metrics.viewers.labels(router).inc()
        self.state.pollers[router].wake()

    def _unsubscribe(self, router: str) -> None:
        if router in self.subscriptions:
            self.subscriptions.discard(router)
            self.state.hub.topics[router].unsubscribe(self.sink)
            self.state.metrics.viewers.labels(router).dec()

    def _unsubscribe_all(self) -> None:
        for router in list(self.subscriptions):
            self._unsubscribe(router)

    def _on_behind(self) -> None:
        """Called by the sink while the hub iterates its subscribers: change no subscription
        here. The sink already refuses further writes; the closer task unsubscribes."""
        self.state.metrics.slow_consumer_closes.inc()
        self.close(CLOSE_SLOW_CONSUMER, "slow consumer")

    def close(self, code: int, reason: str) -> None:
        """Start closing (once); the close handshake is bounded, then the socket is dropped."""
        if self._closer is None:
            self._closer = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        self._unsubscribe_all()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.ws.close(code=code, message=reason.encode(), drain=False)
        except TimeoutError:
            pass
        finally:
            # Free what is still queued for a peer that stopped reading.
            self.transport.abort()


def _origin_allowed(request: web.Request, allowed: tuple[str, ...]) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (scripts, load tests, other services)
    origin = origin.lower().rstrip("/")
    if allowed:
        return origin in allowed
    parts = urlsplit(origin)
    return parts.netloc == request.host.lower()


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    state = request.app[APP]
    ws = web.WebSocketResponse(
        heartbeat=state.heartbeat,
        compress=False,  # frames are prebuilt once and shared; per-client deflate would not be
        max_msg_size=MAX_MESSAGE,
        timeout=CLOSE_TIMEOUT,
    )
    await ws.prepare(request)
    if state.draining:
        await ws.close(code=CLOSE_GOING_AWAY, message=b"server shutting down")
        return ws
    if not _origin_allowed(request, state.settings.server.allowed_origins):
        await ws.close(code=CLOSE_POLICY, message=b"origin not allowed")
        return ws
    try:
        grant = authorise(state.settings.auth, request.query.get("token"))
    except AuthError as exc:
        await ws.close(code=CLOSE_BAD_TOKEN, message=str(exc).encode())
        return ws
    if len(state.viewers) >= state.settings.server.max_connections:
        await ws.close(code=CLOSE_TRY_AGAIN, message=b"connection limit reached")
        return ws
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    viewer = Viewer(state, ws, request, grant)
    state.viewers.add(viewer)
    state.hub.sinks.add(viewer.sink)
    state.metrics.ws_connections.inc()
    try:
        await viewer.run()
    finally:
        state.viewers.discard(viewer)
        state.hub.sinks.discard(viewer.sink)
        state.metrics.ws_connections.dec()
        if not ws.closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await ws.close()
    return ws
