"""The websocket endpoint ``/ws``: admission, then one Viewer per connection.

The endpoint admits a connection (not draining, origin allowed, under the connection limit,
token good), registers its viewer with the hub and runs the read loop. The token comes in the
handshake, as the subprotocol ``bearer.<token>`` next to ``gateway.v1`` (answered with
``gateway.v1`` only) or, discouraged, as ``?token=``; or else, in ``jwt`` mode, as the first
message, ``{"type": "auth", "token": ...}``, before which the server sends nothing. The viewer
reads client messages (subscribe / unsubscribe, each to one source of one router: a topic);
everything it sends goes out through it (a ``Sink``) as prebuilt frames, synchronously, so the
hub never waits on it. The handshake agrees to permessage-deflate with clients that offer it,
on the gateway's terms (``gateway.wire.deflate_answer``: every message deflated alone, so one
compressed copy serves every such viewer); aiohttp's reader inflates what those clients send.
A bad message gets an ``error`` frame and the connection stays open; an oversized one is closed
with 1009 by aiohttp itself (``max_msg_size``). Keepalive: see ``Hub.heartbeat`` and
``USER_TIMEOUT``. Close codes: ``gateway.wire.CloseCode``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Final, Literal

import orjson
from aiohttp import WSMessage, WSMsgType, hdrs, web
from aiohttp.web_request import BaseRequest
from multidict import CIMultiDict

from gateway.auth import (
    SUBPROTOCOL,
    AuthError,
    Grant,
    Verifier,
    protocol_token,
    refresh_times,
)
from gateway.config import LimitSettings, ServerSettings
from gateway.core.address import client_address, networks
from gateway.core.filters import InterfaceFilter, name_patterns
from gateway.core.limits import Counts, KeyedBuckets, address_key, refill
from gateway.core.messages import ErrorCode, error_frame, hello_frame
from gateway.core.once import FirstSeen
from gateway.core.origins import judge_origin
from gateway.core.sources import DEFAULT_SOURCE, SOURCES, Source
from gateway.faults import UnexpectedErrors
from gateway.hub import Hub
from gateway.lifecycle import Lifecycle
from gateway.logs import audit_session
from gateway.metrics import Limit, Metrics
from gateway.sink import Limits, Sink, Transport
from gateway.topic import Topic, encode_message
from gateway.wire import ABNORMAL, CloseCode, close_reason, deflate_answer, pong_frame

logger = logging.getLogger(__name__)

USER_TIMEOUT: Final = 1.5
"""Heartbeat periods that data we sent may stay unacknowledged before the kernel drops the
connection (``TCP_USER_TIMEOUT``): how a dead peer that still gets traffic frames is found."""

MAX_MESSAGE: Final = 64 * 1024
"""Largest client message accepted; larger ones close the connection with 1009."""

MAX_SUBSCRIPTIONS: Final = 64
"""Subscriptions one connection may hold, each to one source of one router."""
MAX_GLOBS: Final = 256
MAX_NAME: Final = 256
"""Longest glob or exact name in a subscription's ``names`` (RouterOS names are shorter)."""
CLOSE_TIMEOUT: Final = 2.0
"""How long a closing handshake may take before the socket is dropped (and its memory freed)."""

SEND_BUFFER: Final = 128 * 1024
"""Kernel send buffer per viewer socket. Left to autotune, Linux grows it to megabytes per
connection, which hides a stalled viewer for tens of seconds and costs gigabytes at 15,000
viewers; 128 KiB still carries a dashboard's traffic across a slow link."""

TAKEN_POLL: Final = 0.05
"""Seconds between looks at a viewer's unsent bytes while its next message waits for them to
drain (``Viewer.wait_taken``): only viewers taking a big history are looked at."""

REFUSED_ORIGINS_LOGGED: Final = 1000
"""Distinct refused websocket origins logged at WARNING (each once); later ones only at DEBUG."""

_LIMITS: Final[dict[Limit, str]] = {
    "handshakes_per_address": "too many new connections from your address",
    "connections": "connection limit reached",
    "connections_per_address": "too many connections from your address",
    "connections_per_subject": "too many connections with this token's subject",
}
"""The close reason of each admission limit (1013)."""


def _refusal(limit: Limit) -> tuple[int, str, Limit]:
    """A limit's refusal: close 1013 with its reason."""
    return CloseCode.TRY_AGAIN_LATER, _LIMITS[limit], limit


TokenVia = Literal["protocol", "query", "message", "none"]
"""How a viewer's token came: the ``bearer.`` subprotocol, ``?token=``, the auth message, or
none at all (mode ``none``). In the audit line, so an operator can see who still uses URLs."""

_RESET: Final = struct.pack("ii", 1, 0)
"""``SO_LINGER`` on, zero seconds: closing the socket resets the connection at once."""

UNTRUSTED_PROXIES_LOGGED: Final = 100
"""Distinct peers that sent X-Forwarded-For without being trusted, each logged once."""


def _show(value: object) -> str:
    """A client's value for an error message, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


class BadMessage(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


# What ends a viewer's read loop (as ``async for`` over the websocket would).
_END: Final = frozenset((WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED))
# The fields a subscribe may carry.
_SUBSCRIBE_FIELDS: Final = frozenset(
    ("type", "router", "source", "names", "interfaces", "since", "history", "history_seconds")
)
# The fields an unsubscribe may carry.
_UNSUBSCRIBE_FIELDS: Final = frozenset(("type", "router", "source"))
# The filter of a whole-router subscription, shared rather than one per viewer.
_ALL: Final = InterfaceFilter.all()


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


class Viewer(Sink):
    """One websocket client: the sink the hub writes to, its subscriptions, and the task that
    closes it.

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
        # ``message_burst``): tokens left, and when (monotonic) they were counted. Starts full.
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

    def handle(self, msg: WSMessage) -> bool:
        """Act on one message from the peer; False when the connection is done."""
        if msg.type in _END:
            return False
        # Anything from the peer, the pong to a heartbeat ping included, proves it alive.
        self.awaiting_pong = False
        if msg.type is WSMsgType.ERROR:
            logger.debug("websocket error: %s", self.ws.exception())
            return False
        if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
            self.received += 1
        if not self._within_rate():
            # Closing for the rate (4429) ends the read loop here, rather than leaving the close
            # to wait on the next receive: aiohttp then reads (and drops) what the flooding
            # client still sends until its close frame, instead of closing a socket with
            # unread data, which resets the connection and loses the 4429 on the way.
            return self._closer is None
        if msg.type is WSMsgType.TEXT:
            self._handle_text(msg.data)
        elif msg.type is WSMsgType.PING:
            self.write(pong_frame(msg.data))  # aiohttp took at most 125 bytes, as RFC 6455 says
        elif msg.type is WSMsgType.BINARY:
            self.send(error_frame("bad_request", "messages must be JSON text frames"))
        return True

    def _within_rate(self) -> bool:
        """Take one message from the rate's bucket. A message past the rate is not acted on
        and gets ``rate_limited``; ``message_burst`` of them in a row (a client that ignores
        the answers) close the connection with 4429. Other viewers never wait on any of it."""
        limits = self.context.client_limits
        rate = limits.messages_per_second
        if rate <= 0:
            return True
        now = time.monotonic()
        burst = limits.message_burst
        tokens = refill(self._budget, self._budget_at, now, rate, burst)
        self._budget_at = now
        if tokens >= 1.0:
            self._budget = tokens - 1.0
            self._ignored = 0
            return True
        self._budget = tokens
        self._ignored += 1
        if self._ignored == 1:
            self.context.metrics.limit_hits.labels("messages").inc()
        self.send(
            error_frame(
                "rate_limited",
                f"more than {rate:g} messages a second (or {burst} at once): this one was "
                f"ignored; {burst} ignored in a row close the connection",
            )
        )
        if self._ignored >= burst:
            self.close(CloseCode.TOO_MANY_MESSAGES, "too many messages")
        return False

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

    def _handle_text(self, text: str) -> None:
        try:
            message = orjson.loads(text)
            if not isinstance(message, dict):
                raise BadMessage("bad_request", 'expected a JSON object with a "type"')
            kind = message.get("type")
            if kind == "subscribe":
                self._subscribe(message)
            elif kind == "unsubscribe":
                self._unsubscribe_message(message)
            elif kind == "refresh":
                self._refresh(message)
            elif kind == "auth":
                if self.context.verifier.enabled:
                    raise BadMessage(
                        "bad_request",
                        'this connection has its token; send {"type": "refresh", "token": ...} '
                        "for a new one",
                    )
                # Mode none: no token is needed, and a page that has one may send it anyway.
            else:
                raise BadMessage(
                    "bad_request",
                    f"unknown message type {str(kind)[:40]!r}; expected subscribe, unsubscribe "
                    "or refresh",
                )
        except orjson.JSONDecodeError as exc:
            self.send(error_frame("bad_request", f"invalid JSON: {exc}"))
        except BadMessage as exc:
            self.send(error_frame(exc.code, str(exc)))

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

    def _refresh(self, message: dict[str, object]) -> None:
        """``{"type": "refresh", "token": ...}``: a new token of the same subject and the same or
        a narrower scope replaces the connection's, in place. Anything else is refused with
        ``refresh_refused`` and changes nothing: the current token's expiry still applies."""
        verifier = self.context.verifier
        if not verifier.enabled:
            return  # mode none: no token to replace
        token = message.get("token")
        if not isinstance(token, str) or set(message) != {"type", "token"}:
            raise BadMessage(
                "bad_request", 'expected {"type": "refresh", "token": "..."} and nothing else'
            )
        keeps = "this connection keeps its current token until it expires"
        try:
            grant = verifier.authorise(token)
        except AuthError as exc:
            raise BadMessage("refresh_refused", f"{exc}; {keeps}") from None
        if grant.subject != self.grant.subject:
            raise BadMessage(
                "refresh_refused", f"the new token is for another subject (sub); {keeps}"
            )
        if not grant.within(self.grant):
            raise BadMessage(
                "refresh_refused",
                f"the new token covers more than this connection's; {keeps}, or reconnect "
                "with the new one",
            )
        self._take(grant)

    def _take(self, grant: Grant) -> None:
        """Replace the grant with a narrower (or equal) one: routers it no longer covers are
        unsubscribed, the other subscriptions narrowed to its filters; then ``refreshed``."""
        self.grant = grant
        self.restricted = grant.restricted
        dropped = [topic for topic in self.subscriptions if not grant.allows(topic.router)]
        for topic in dropped:
            self._unsubscribe(topic)
        for topic in self.subscriptions:
            flt = grant.filter(topic.router, topic.source)
            if not flt.is_all:
                topic.narrow(self, flt)
        self._arm_token_timer()
        allows = grant.allows
        self.send(
            {
                "type": "refreshed",
                "exp": grant.expires,
                "routers": [{"id": i, "name": n} for i, n in self.context.routers if allows(i)],
                "unsubscribed": list(dict.fromkeys(topic.router for topic in dropped)),
            }
        )

    # -- subscriptions --------------------------------------------------------------------

    def _router(self, message: dict[str, object]) -> dict[Source, Topic]:
        """The topics of the message's router, by source (after the checks on the router)."""
        router = message.get("router")
        if not isinstance(router, str):
            raise BadMessage("bad_request", '"router" must be a router id (a string)')
        topics = self.context.hub.sources.get(router)
        # A router outside the token is answered as one that does not exist: a token does not
        # tell which other routers the gateway has.
        if topics is None or not self.grant.allows(router):
            raise BadMessage("unknown_router", f"no router with id {router[:80]!r}")
        return topics

    def _source(self, message: dict[str, object], topics: dict[Source, Topic]) -> Source | None:
        """The message's ``source`` (None when it names none), one the router serves."""
        source = message.get("source")
        if source is None:
            return None
        if not isinstance(source, str) or source not in SOURCES:
            raise BadMessage(
                "bad_request",
                f'"source" must be one of {", ".join(map(repr, SOURCES))}, got {_show(source)}',
            )
        if source not in topics:
            router = next(iter(topics.values())).router
            raise BadMessage(
                "bad_request",
                f"router {router!r} does not serve {source!r} (its sources: {', '.join(topics)})",
            )
        return source

    def _subscribe(self, message: dict[str, object]) -> None:
        topics = self._router(message)
        unknown = set(message) - _SUBSCRIBE_FIELDS
        if unknown:
            raise BadMessage("bad_request", f"unknown field(s) {sorted(unknown)} in subscribe")
        source = self._source(message, topics) or DEFAULT_SOURCE
        if source not in topics:
            router = next(iter(topics.values())).router
            raise BadMessage(
                "bad_request",
                f'router {router!r} does not serve {source!r}; subscribe with "source" one of '
                f"{', '.join(topics)}",
            )
        topic = topics[source]
        router = topic.router  # the one shared string, not this message's copy
        if "names" in message and "interfaces" in message:
            raise BadMessage(
                "bad_request", '"names" and "interfaces" are one field (its two names): send one'
            )
        field_name = "names" if "names" in message else "interfaces"
        flt = self.grant.filter(router, source)
        entries = message.get(field_name)
        if entries is not None:
            try:
                globs = name_patterns(entries, max_entries=MAX_GLOBS, max_length=MAX_NAME)
            except ValueError as exc:
                raise BadMessage("bad_request", f'"{field_name}": {exc}') from None
            flt = flt.intersect(InterfaceFilter.of(globs))
        if flt.is_all:
            flt = _ALL
        since = message.get("since")
        if since is not None and (
            isinstance(since, bool) or not isinstance(since, int) or since < 0
        ):
            raise BadMessage("bad_request", '"since" must be a non-negative integer seq')
        frames = message.get("history")
        if frames is not None and (
            isinstance(frames, bool) or not isinstance(frames, int) or frames < 0
        ):
            raise BadMessage(
                "bad_request", '"history" must be a non-negative integer (frames; 0 for none)'
            )
        window = message.get("history_seconds")
        if window is not None and (
            isinstance(window, bool)
            or not isinstance(window, int | float)
            or not 0 <= window < math.inf
        ):
            raise BadMessage(
                "bad_request", '"history_seconds" must be a non-negative number of seconds'
            )
        if topic not in self.subscriptions and len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            self.context.metrics.limit_hits.labels("subscriptions").inc()
            raise BadMessage(
                "too_many_subscriptions",
                f"at most {MAX_SUBSCRIPTIONS} subscriptions (a router's source each) per "
                "connection",
            )
        # The topic wakes its poller (its demand counts this subscriber).
        topic.subscribe(self, flt, since, frames=frames, seconds=window)
        if topic not in self.subscriptions:
            self._set_subscriptions((*self.subscriptions, topic))
            self.context.metrics.viewers.labels(router).inc()
            if router not in self.watched:
                self.watched = (*self.watched, router)

    def _unsubscribe_message(self, message: dict[str, object]) -> None:
        topics = self._router(message)
        unknown = set(message) - _UNSUBSCRIBE_FIELDS
        if unknown:
            raise BadMessage("bad_request", f"unknown field(s) {sorted(unknown)} in unsubscribe")
        source = self._source(message, topics)
        for served, topic in topics.items():
            if source is None or served == source:
                self._unsubscribe(topic)

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


class DeflateViewer(Viewer):
    """A viewer whose connection agreed to permessage-deflate: written compressed messages
    (the same bytes as every other such viewer's). A class of its own, so the flag costs a
    connection nothing."""

    __slots__ = ()
    deflate = True


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
    """``GET /ws``: admits a connection, then runs its viewer until the connection ends.

    Admission (``_admit``): not draining (else close 1001), origin allowed (else 1008), under
    the connection limits (else 1013), a good token (else 4401).
    """

    def __init__(
        self,
        context: ViewerContext,
        server: ServerSettings,
        lifecycle: Lifecycle,
    ) -> None:
        self.context = context
        self.server = server
        self.verifier = context.verifier
        self.lifecycle = lifecycle
        # The websocket origins refused so far, each logged once. Bounded: a client can send
        # any number of distinct Origin headers. A key is at most about 270 characters (a
        # refused origin is normalised, with a host of at most 253, or cut to 200), so under
        # 0.5 MB in all.
        self.refused_origins: FirstSeen[str] = FirstSeen(REFUSED_ORIGINS_LOGGED)
        # Connections admitted so far but still waiting for their token (the auth message):
        # they count towards max_connections like viewers.
        self.authenticating = 0
        limits = context.client_limits
        self.trusted = networks(server.trusted_proxies)
        # New websockets per client address (a token bucket each, bounded in number), and open
        # ones per address and per token subject; each count is taken at admission and given
        # back when the connection ends (_release).
        self.handshakes = KeyedBuckets(limits.handshakes_per_second, limits.handshake_burst)
        self.per_address = Counts(limits.connections_per_address)
        self.per_subject = Counts(limits.connections_per_subject)
        # Unexpected errors while serving a viewer (bugs): each kind's traceback logged once.
        self.unexpected = UnexpectedErrors(logger, "websocket viewer")
        # Peers that sent X-Forwarded-For without being trusted proxies, each logged once.
        self.untrusted_proxies: FirstSeen[str] = FirstSeen(UNTRUSTED_PROXIES_LOGGED)

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
        admitted = await self._admit(request, ws, time.monotonic())
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
            self._release(viewer.address, viewer.grant.subject)
            if not ws.closed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLOSE_TIMEOUT):
                        await ws.close()
            viewer.audit()
        return ws

    async def _admit(
        self, request: web.Request, ws: web.WebSocketResponse, started: float
    ) -> tuple[Grant, str, TokenVia] | None:
        """The viewer's grant, client address and token transport, or None once the websocket
        is closed with the reason (counted in ``gateway_limit_hits_total`` when a limit refused
        it, and written to the audit log either way).

        In order: not draining (else 1001); origin allowed (else 1008); the client's address
        under ``handshakes_per_second``, the server under ``max_connections`` (those still
        authenticating count) and the address under ``connections_per_address`` (else 1013);
        a good token (else 4401); its subject under ``connections_per_subject`` (else 1013).
        The token comes from the ``bearer.`` subprotocol, else ``?token=``, else (in ``jwt``
        mode) the first message, which must be ``{"type": "auth", "token": ...}`` within
        ``auth_timeout``; nothing is sent before it. A grant returned holds one count of its
        address and subject, which ``_release`` gives back.
        """
        address = self._client_address(request)
        key = address_key(address)
        refused = functools.partial(self._refuse, ws, address, started)
        early = self._early_refusal(request, key)
        if early is not None:
            await refused(*early)
            return None
        token: str | None = protocol_token(request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL))
        via: TokenVia = "protocol"
        if token is None:
            token = request.query.get("token")
            via = "query" if token is not None else "message" if self.verifier.enabled else "none"
        refusal: AuthError | None = None
        self.authenticating += 1
        try:
            grant = await self._token_grant(ws, token)
        except AuthError as exc:
            grant, refusal = None, exc
        finally:
            self.authenticating -= 1
        if grant is None:
            self.per_address.release(key)
            if refusal is None:
                await refused(ABNORMAL, "left before authenticating", via=via)
            else:
                await refused(CloseCode.BAD_TOKEN, str(refusal), via=via)
            return None
        if grant.subject is not None and not self.per_subject.acquire(grant.subject):
            self.per_address.release(key)
            limit: Limit = "connections_per_subject"
            await refused(*_refusal(limit), via=via, subject=grant.subject)
            return None
        return grant, address, via

    def _early_refusal(
        self, request: web.Request, key: str
    ) -> tuple[int, str, Limit | None] | None:
        """Why a websocket is refused before its token is looked at (code, reason, the limit
        it ran into), or None; when None, one count of the address ``key`` is taken."""
        if self.lifecycle.draining:
            return CloseCode.GOING_AWAY, "server shutting down", None
        if not self._origin_allowed(request):
            return CloseCode.POLICY_VIOLATION, "origin not allowed", None
        if not self.handshakes.take(key, time.monotonic()):
            return _refusal("handshakes_per_address")
        if self.context.hub.connections + self.authenticating >= self.server.max_connections:
            return _refusal("connections")
        if not self.per_address.acquire(key):
            return _refusal("connections_per_address")
        return None

    async def _refuse(
        self,
        ws: web.WebSocketResponse,
        address: str,
        started: float,
        code: int,
        reason: str,
        limit: Limit | None = None,
        *,
        via: TokenVia = "none",
        subject: str | None = None,
    ) -> None:
        """Close a websocket that is not admitted (``ABNORMAL``: it is gone already), count a
        limit's refusal, and write its audit line."""
        if limit is not None:
            self.context.metrics.limit_hits.labels(limit).inc()
        if code != ABNORMAL:
            await ws.close(code=code, message=close_reason(reason))
        audit_session(
            subject=subject,
            client=address,
            token_via=via,
            routers=(),
            duration=time.monotonic() - started,
            close_code=code,
            messages_in=0,
            messages_out=0,
            reason=reason,
        )

    def _release(self, address: str, subject: str | None) -> None:
        """Give back the counts a viewer's admission took."""
        self.per_address.release(address_key(address))
        if subject is not None:
            self.per_subject.release(subject)

    def _client_address(self, request: web.Request) -> str:
        """The client's address: the peer, or behind ``server.trusted_proxies`` the address
        they report (``gateway.core.address``). A forwarded header from a peer that is not
        trusted is ignored, and said once per peer: it usually means a proxy in front that
        the configuration does not name, so every client would share the proxy's limits."""
        peer = request.remote or ""
        forwarded = request.headers.getall(hdrs.X_FORWARDED_FOR, ())
        address = client_address(peer, forwarded, self.trusted)
        if forwarded and address == peer and self.untrusted_proxies.first(peer):
            logger.warning(
                "websocket from %s carries X-Forwarded-For, but %s is not in "
                "server.trusted_proxies: limits and logs take it as the client's address. If "
                "it is your reverse proxy, list it there",
                peer,
                peer,
            )
        return address

    async def _token_grant(self, ws: web.WebSocketResponse, token: str | None) -> Grant | None:
        """The grant of the handshake's token, else of the auth message's; None when the peer
        left (or broke the protocol) before sending one. ``AuthError`` when it is refused."""
        if token is None and self.verifier.enabled:
            token = await self._auth_message(ws)
            if token is None:
                return None
        return self.verifier.authorise(token)

    async def _auth_message(self, ws: web.WebSocketResponse) -> str | None:
        """The token of the client's first message, ``{"type": "auth", "token": "..."}``.

        Pings are answered while waiting. None when the peer closed (or sent an invalid
        frame, which aiohttp has answered with a close); ``AuthError`` for anything else, and
        when nothing came within ``auth_timeout``.
        """
        timeout = self.verifier.settings.auth_timeout
        expected = 'expected {"type": "auth", "token": ...} as the first message'
        try:
            async with asyncio.timeout(timeout):
                while True:
                    msg = await ws.receive()
                    if msg.type is WSMsgType.PING:
                        await ws.pong(msg.data)
                    elif msg.type is not WSMsgType.PONG:
                        break
        except TimeoutError:
            raise AuthError(f"no token: {expected}, within {timeout:g} s") from None
        if msg.type in _END or msg.type is WSMsgType.ERROR:
            return None
        if msg.type is not WSMsgType.TEXT:
            raise AuthError(f"no token: {expected}")
        try:
            message = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            raise AuthError(f"no token: {expected}, got text that is not JSON") from None
        if not isinstance(message, dict) or message.get("type") != "auth":
            got = message.get("type") if isinstance(message, dict) else None
            what = f"a {str(got)[:20]!r} message" if isinstance(got, str) else "something else"
            raise AuthError(f"no token: {expected}, got {what}")
        token = message.get("token")
        if not isinstance(token, str) or set(message) != {"type", "token"}:
            raise AuthError(f'no token: {expected} (a string "token" and nothing else)')
        return token

    def _origin_allowed(self, request: web.Request) -> bool:
        """Whether this websocket's page may connect (``judge_origin``); a refusal is logged
        once per origin at WARNING, naming the origin and the setting that would allow it."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser (scripts, load tests, other services)
        refusal = judge_origin(origin, request.headers.get("Host"), self.server.allowed_origins)
        if refusal is None:
            return True
        seen = self.refused_origins
        code = int(CloseCode.POLICY_VIOLATION)
        if seen.first(refusal.origin):
            logger.warning(
                "websocket refused with %d: origin %s %s", code, refusal.origin, refusal.reason
            )
            if seen.full:
                logger.warning(
                    "%d distinct origins refused; further new ones are logged at DEBUG only",
                    seen.limit,
                )
        else:
            logger.debug("websocket refused with %d: origin %s", code, refusal.origin)
        return False


async def close_viewers(hub: Hub, code: CloseCode, reason: str) -> None:
    """Close every connected viewer with ``code``, concurrently, each bounded by CLOSE_TIMEOUT."""
    viewers = [sink for sink in hub.connected() if isinstance(sink, Viewer)]
    for viewer in viewers:
        viewer.close(code, reason)
    closers = [v.closer for v in viewers if v.closer is not None]
    await asyncio.gather(*closers, return_exceptions=True)
