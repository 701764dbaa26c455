"""One viewer's session on ``/ws``: what it holds, what it is sent, and how it ends.

``Session`` is the sink the hub writes a viewer's frames to (``gateway.sink.Sink``), with the
viewer's grant, its subscriptions (the topics it is in), its token's lifetime (``refresh_needed``,
then 4401 once the token is past ``exp``) and its end: a closing handshake bounded by
``CLOSE_TIMEOUT`` (slow consumer, draining, rate, expiry), the connection dropped (a peer that
did not answer a ping) and the audit line written once it is over. What the client sends is
acted on by its subclass, ``gateway.ws_messages.Viewer``; ``ViewerContext`` is what every viewer
of one app shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Final, Literal

from aiohttp import WSMsgType, web

from gateway.auth import Grant, Verifier, refresh_times
from gateway.config import LimitSettings
from gateway.core.messages import hello_frame
from gateway.hub import Hub
from gateway.logs import audit_session
from gateway.metrics import Metrics
from gateway.sink import Limits, Sink, Transport
from gateway.topic import Topic, encode_message
from gateway.wire import ABNORMAL, CloseCode, close_reason

__all__ = ["CLOSE_TIMEOUT", "END", "Session", "TokenVia", "ViewerContext"]

# The endpoint's log: its lines keep the one name operators filter on, whichever module logs.
logger = logging.getLogger("gateway.ws")

CLOSE_TIMEOUT: Final = 2.0
"""How long a closing handshake may take before the socket is dropped (and its memory freed)."""

TAKEN_POLL: Final = 0.05
"""Seconds between looks at a viewer's unsent bytes while its next message waits for them to
drain (``Session.wait_taken``): only viewers taking a big history are looked at."""

TokenVia = Literal["protocol", "query", "message", "none"]
"""How a viewer's token came: the ``bearer.`` subprotocol, ``?token=``, the auth message, or
none at all (mode ``none``). In the audit line, so an operator can see who still uses URLs."""

_RESET: Final = struct.pack("ii", 1, 0)
"""``SO_LINGER`` on, zero seconds: closing the socket resets the connection at once."""

# What ends a viewer's read loop (as ``async for`` over the websocket would).
END: Final = frozenset((WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED))


@dataclass(frozen=True, slots=True)
class ViewerContext:
    """What every viewer of one app shares: one object, so each viewer holds one reference."""

    hub: Hub
    # (id, name) of every configured router, in configuration order: the hello's list, before
    # the viewer's token narrows it.
    routers: tuple[tuple[str, str], ...]
    # Seconds between heartbeats (``server.heartbeat``), told in hello (the page's watchdog
    # waits two of them). Each period, every viewer gets something: traffic frames, or else a
    # websocket ping and a ``heartbeat`` message (see ``Hub.heartbeat``).
    heartbeat: float
    metrics: Metrics
    # The slow-consumer rule's numbers (``server.slow_consumer_bytes`` and ``_seconds``).
    limits: Limits
    # Checks tokens: at admission, and each refresh (``gateway.auth``).
    verifier: Verifier
    # What one client may cost (``[limits]``): the message rate is each viewer's to keep.
    client_limits: LimitSettings = field(default_factory=LimitSettings)


class Session(Sink):
    """One websocket client: the sink the hub writes to, its subscriptions, and the task that
    closes it. Its messages are acted on by the subclass ``gateway.ws_messages.Viewer``, which
    adds no state: every field of a viewer is here.

    There may be 15,000 of these in one process, so each is one object holding only what it
    needs (the sink itself rather than a separate one with callbacks, slots, a tuple of router
    ids, shared strings and filters, one shared context), and its read loop is the handler's
    own, awaiting ``receive()`` directly (no coroutine frames of its own per idle connection).
    """

    __slots__ = (
        "_budget",
        "_budget_at",
        "_closer",
        "_ignored",
        "_token_timer",
        "address",
        "context",
        "ended",
        "grant",
        "opened",
        "received",
        "subscriptions",
        "token_via",
        "watched",
        "ws",
    )

    def __init__(
        self,
        context: ViewerContext,
        ws: web.WebSocketResponse,
        transport: Transport,
        grant: Grant,
        address: str = "",
        token_via: TokenVia = "none",
    ) -> None:
        self.context = context
        self.ws = ws
        self.grant = grant
        # For the limits and the audit line: the client's address (``gateway.core.address``),
        # how its token came, when it was admitted (monotonic), the messages it sent (text and
        # binary ones, those past the rate included; not pings and pongs), every
        # router it subscribed to (usually one: that topic's shared 1-tuple), and the close code
        # this side sent (None until then; the peer's, or 1006, otherwise).
        self.address = address
        self.token_via = token_via
        self.opened = time.monotonic()
        self.received = 0
        self.watched: tuple[str, ...] = ()
        self.ended: int | None = None
        super().__init__(transport, limits=context.limits)
        self.restricted = grant.restricted
        # The message rate's token bucket (``limits.messages_per_second``, burst
        # ``message_burst``; kept by ``Viewer._within_rate``): tokens left, and when
        # (monotonic) they were counted. Starts full.
        self._budget = float(context.client_limits.message_burst)
        self._budget_at = time.monotonic()
        # Messages ignored in a row for the rate; message_burst of them close the connection.
        self._ignored = 0
        # The topics (router and source) this viewer is subscribed to (a tuple: usually one, at
        # most 64).
        self.subscriptions: tuple[Topic, ...] = ()
        # Closes the websocket when the viewer falls behind or the server drains; owned here,
        # awaited by finish().
        self._closer: asyncio.Task[None] | None = None
        # The token's one timer: first it asks for a new token (refresh_needed), then it
        # closes with 4401 once the token is past exp plus the leeway. Re-armed by a good
        # refresh, cancelled by finish(); None without a token.
        self._token_timer: asyncio.TimerHandle | None = None
        self._arm_token_timer()

    @property
    def closer(self) -> asyncio.Task[None] | None:
        return self._closer

    def send(self, message: object) -> None:
        self.write(encode_message(message, self.deflate))

    def hello(self) -> None:
        context = self.context
        allows = self.grant.allows
        self.send(hello_frame([r for r in context.routers if allows(r[0])], context.heartbeat))

    async def wait_taken(self) -> None:
        """Wait until at most ``limits.behind_bytes`` of what was sent is still unsent.

        The read loop calls this before it reads the next message, so a viewer's histories are
        sent one after another as it takes them: a client that re-subscribes faster than it
        reads cannot stack histories in the gateway's memory (its messages wait in its own TCP
        stream instead), and an honest one that subscribes to several routers at once gets them
        in turn. While the bytes drain the viewer is alive (it reads, though its pong waits
        behind the history); no progress for ``limits.behind_seconds`` is the slow-consumer rule.
        """
        transport = self.transport
        loop = asyncio.get_running_loop()
        unsent = transport.get_write_buffer_size()
        progress_at = loop.time()
        limits = self.limits
        while unsent > limits.behind_bytes and not self.behind:
            await asyncio.sleep(TAKEN_POLL)  # a bounded look, not a wait for an event
            now_unsent = transport.get_write_buffer_size()
            if now_unsent < unsent:
                progress_at = loop.time()
                self.awaiting_pong = False
            elif loop.time() - progress_at > limits.behind_seconds:
                self.fall_behind()
                return
            unsent = now_unsent

    async def finish(self) -> None:
        """After the read loop: no more timers or subscriptions; wait for a closing handshake."""
        if self._token_timer is not None:
            self._token_timer.cancel()
        self._unsubscribe_all()
        closer = self._closer
        if closer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await closer

    # -- the token's lifetime -------------------------------------------------------------

    def _arm_token_timer(self) -> None:
        """Schedule ``refresh_needed`` for the current token, then its expiry."""
        if self._token_timer is not None:
            self._token_timer.cancel()
            self._token_timer = None
        expires = self.grant.expires
        if expires is None:
            return
        settings = self.context.verifier.settings
        ask, close = refresh_times(expires, time.time(), settings.refresh_before, settings.leeway)
        self._token_timer = asyncio.get_running_loop().call_later(
            ask, self._ask_for_token, expires, close - ask
        )

    def _ask_for_token(self, expires: float, grace: float) -> None:
        """The token expires soon: ask for a new one, and close if none comes within ``grace``."""
        self.send({"type": "refresh_needed", "exp": expires})
        self._token_timer = asyncio.get_running_loop().call_later(
            grace, self.close, CloseCode.BAD_TOKEN, "token expired"
        )

    # -- the topics it is in (``Viewer`` subscribes), and its end ----------------------------------

    def _unsubscribe(self, topic: Topic) -> None:
        if topic in self.subscriptions:
            self._set_subscriptions(tuple(t for t in self.subscriptions if t is not topic))
            topic.unsubscribe(self)
            self.context.metrics.viewers.labels(topic.router).dec()

    def _set_subscriptions(self, topics: tuple[Topic, ...]) -> None:
        # Nearly every viewer watches one topic: share that topic's 1-tuple, not one each.
        if len(topics) == 1:
            topics = topics[0].only
        self.subscriptions = topics

    def _unsubscribe_all(self) -> None:
        for topic in self.subscriptions:
            self._unsubscribe(topic)

    def fell_behind(self) -> None:
        """Called by the sink while the hub iterates its subscribers: change no subscription
        here. The sink already refuses further writes; the closer task unsubscribes."""
        self.context.metrics.slow_consumer_closes.inc()
        self.close(CloseCode.SLOW_CONSUMER, "slow consumer")

    def died(self) -> None:
        """The peer did not answer a heartbeat ping: drop the connection without a handshake."""
        logger.debug("dropping a viewer that did not answer a ping")
        if self.ended is None:
            self.ended = ABNORMAL
        self._unsubscribe_all()
        self._abort()

    def close(self, code: CloseCode, reason: str) -> None:
        """Start closing (once); the close handshake is bounded, then the socket is dropped."""
        if self._closer is None:
            self.ended = int(code)
            self.behind = True  # nothing more from the hub: no frame may follow the close frame
            self._closer = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: CloseCode, reason: str) -> None:
        self._unsubscribe_all()
        transport = self.transport
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.ws.close(code=code, message=close_reason(reason), drain=False)
                # aiohttp closes the transport at once here (the read loop is waiting in
                # receive), and the transport sends what is queued (frames, then the close
                # frame) before its FIN: give a peer that is still reading the rest of the
                # bound to take it, so a slow consumer learns why it was closed (4408).
                # The transport tells only its protocol (aiohttp's) when it drains: look.
                while transport.get_write_buffer_size():  # noqa: ASYNC110
                    await asyncio.sleep(TAKEN_POLL)
        except TimeoutError:
            pass
        finally:
            # Free what is still queued for a peer that stopped reading.
            self._abort()

    def audit(self) -> None:
        """Write this session's audit line (``gateway.logs``), once it has ended."""
        code = self.ended
        if code is None:
            code = self.ws.close_code or ABNORMAL  # the peer's close, or none at all
        audit_session(
            subject=self.grant.subject,
            client=self.address,
            token_via=self.token_via,
            routers=self.watched,
            duration=time.monotonic() - self.opened,
            close_code=int(code),
            messages_in=self.received,
            messages_out=self.written,
        )

    def _abort(self) -> None:
        """Drop the connection now, and what is queued for it.

        With bytes still queued the connection is reset (``SO_LINGER`` 0), not ended with a
        FIN: the peer would otherwise see a frame cut short followed by an orderly end, which
        a websocket client cannot tell from a server that wrote a broken frame.
        """
        transport = self.transport
        assert isinstance(transport, asyncio.Transport)  # Sink.transport: the asyncio one
        if transport.get_write_buffer_size():
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        transport.abort()
