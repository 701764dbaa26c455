"""The websocket endpoint ``/ws``: the route ``gateway.app`` registers, one viewer per connection.

``WebSocketEndpoint.handle`` prepares the websocket, admits it (``gateway.ws_admission``: not
draining, origin allowed, under the connection limits, token good), registers its viewer with
the hub and runs the read loop, in which the viewer acts on each client message
(``gateway.ws_messages``); everything a viewer is sent goes out through it (a ``Sink``:
``gateway.ws_session``) as prebuilt frames, synchronously, so the hub never waits on it. The
handshake agrees to permessage-deflate with clients that offer it, on the gateway's terms
(``gateway.wire.deflate_answer``: every message deflated alone, so one compressed copy serves
every such viewer); aiohttp's reader inflates what those clients send. Messages larger than
``MAX_MESSAGE`` are closed with 1009 by aiohttp itself. Keepalive: see ``Hub.heartbeat`` and
``USER_TIMEOUT``. Close codes: ``gateway.wire.CloseCode``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from typing import Final

from aiohttp import hdrs, web
from aiohttp.web_request import BaseRequest
from multidict import CIMultiDict

from gateway.auth import SUBPROTOCOL
from gateway.config import ServerSettings
from gateway.faults import UnexpectedErrors
from gateway.hub import Hub
from gateway.lifecycle import Lifecycle
from gateway.wire import CloseCode, deflate_answer
from gateway.ws_admission import Admission
from gateway.ws_messages import DeflateViewer, Viewer
from gateway.ws_session import CLOSE_TIMEOUT, ViewerContext

logger = logging.getLogger(__name__)

USER_TIMEOUT: Final = 1.5
"""Heartbeat periods that data we sent may stay unacknowledged before the kernel drops the
connection (``TCP_USER_TIMEOUT``): how a dead peer that still gets traffic frames is found."""

MAX_MESSAGE: Final = 64 * 1024
"""Largest client message accepted; larger ones close the connection with 1009."""

SEND_BUFFER: Final = 128 * 1024
"""Kernel send buffer per viewer socket. Left to autotune, Linux grows it to megabytes per
connection, which hides a stalled viewer for tens of seconds and costs gigabytes at 15,000
viewers; 128 KiB still carries a dashboard's traffic across a slow link."""


class DeflateResponse(web.WebSocketResponse):
    """aiohttp's websocket response, agreeing to permessage-deflate on the gateway's terms.

    aiohttp answers an offer as the client words it (without ``server_no_context_takeover``
    unless asked, with any smaller server window asked for); the gateway's shared frames need
    its own answer (``deflate_answer``). Created with ``compress=False``, so aiohttp's own
    negotiation stays out of it; the agreed extension then turns on aiohttp's reader for the
    client's compressed messages (inflated within ``max_msg_size``). Nothing is compressed
    through aiohttp's writer: the gateway writes its frames itself.
    """

    def _handshake(self, request: BaseRequest) -> tuple[CIMultiDict[str], str | None, int, bool]:
        headers, protocol, compress, takeover = super()._handshake(request)
        answer = deflate_answer(request.headers.getall(hdrs.SEC_WEBSOCKET_EXTENSIONS, []))
        if answer is None:
            return headers, protocol, compress, takeover
        headers[hdrs.SEC_WEBSOCKET_EXTENSIONS] = answer
        return headers, protocol, 15, True


def _tune_socket(transport: asyncio.BaseTransport, heartbeat: float) -> None:
    """A small fixed send buffer, and a deadline on unacknowledged data (see USER_TIMEOUT)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    user_timeout = getattr(socket, "TCP_USER_TIMEOUT", None)  # Linux
    if user_timeout is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, user_timeout, int(heartbeat * USER_TIMEOUT * 1000))


class WebSocketEndpoint:
    """``GET /ws``: admits a connection (``gateway.ws_admission``), then runs its viewer until
    the connection ends."""

    def __init__(
        self,
        context: ViewerContext,
        server: ServerSettings,
        lifecycle: Lifecycle,
    ) -> None:
        self.context = context
        # Who may open a viewer; holds the counts of every admitted one until its end.
        self.admission = Admission(context, server, lifecycle)
        # Unexpected errors while serving a viewer (bugs): each kind's traceback logged once.
        self.unexpected = UnexpectedErrors(logger, "websocket viewer")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # Few locals: this coroutine's frame lives as long as its connection, 15,000 of them.
        ws = DeflateResponse(
            # No per-connection ping timers: Hub.heartbeat pings idle viewers, all in one pass,
            # and the read loop answers the peer's pings and notes its pongs.
            heartbeat=None,
            autoping=False,
            # Frames are prebuilt once and shared (deflated once for every viewer that agreed
            # to it), never compressed per client: DeflateResponse negotiates.
            compress=False,
            max_msg_size=MAX_MESSAGE,
            timeout=CLOSE_TIMEOUT,
            # Answered when offered (with a token as "bearer.<token>", never echoed).
            protocols=(SUBPROTOCOL,),
        )
        await ws.prepare(request)
        admitted = await self.admission.admit(request, ws, time.monotonic())
        if admitted is None:
            return ws
        transport = request.transport
        assert transport is not None  # prepared just now: the connection is open
        _tune_socket(transport, self.context.heartbeat)
        kind = DeflateViewer if ws.compress else Viewer
        viewer = kind(self.context, ws, transport, *admitted)
        self.context.hub.connect(viewer)
        self.context.metrics.ws_connections.inc()
        viewer.hello()
        # The read loop runs here, in aiohttp's handler, not in a coroutine of the viewer's:
        # one coroutine frame fewer for each of thousands of idle connections.
        try:
            while viewer.handle(await ws.receive()):
                if transport.get_write_buffer_size() > viewer.limits.behind_bytes:
                    await viewer.wait_taken()
        except Exception as exc:  # noqa: BLE001 - one viewer's fault ends that viewer only
            # A bug of ours met by this client's messages: logged (a traceback once per kind,
            # so a client repeating it cannot flood the log) and the client told 1011.
            self.unexpected.report(exc, "a websocket message")
            viewer.close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            await viewer.finish()
            self.context.hub.disconnect(viewer)
            self.context.metrics.ws_connections.dec()
            self.admission.release(viewer.address, viewer.grant.subject)
            if not ws.closed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLOSE_TIMEOUT):
                        await ws.close()
            viewer.audit()
        return ws


async def close_viewers(hub: Hub, code: CloseCode, reason: str) -> None:
    """Close every connected viewer with ``code``, concurrently, each bounded by CLOSE_TIMEOUT."""
    viewers = [sink for sink in hub.connected() if isinstance(sink, Viewer)]
    for viewer in viewers:
        viewer.close(code, reason)
    closers = [v.closer for v in viewers if v.closer is not None]
    await asyncio.gather(*closers, return_exceptions=True)
