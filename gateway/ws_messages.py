"""What a viewer's client may send on ``/ws``, and what each message does.

``Viewer`` is a ``gateway.ws_session.Session`` that acts on its client's messages, one at a
time from the endpoint's read loop (``Viewer.handle``): ``subscribe`` and ``unsubscribe`` (each
to one source of one router: a topic; with a name filter, history and resume), ``refresh`` (a
new token in place), ``auth`` (ignored or refused once admitted), pings (answered with pongs).
Every message is counted against the connection's rate (``[limits] messages_per_second``). A bad
message gets an ``error`` frame (``gateway.core.messages.ErrorCode``) and the connection stays
open; an oversized one is closed with 1009 by aiohttp itself (``max_msg_size``).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Final

import orjson
from aiohttp import WebSocketError, WSMessage, WSMsgType

from gateway.auth import AuthError, Grant
from gateway.core.filters import InterfaceFilter, name_patterns
from gateway.core.limits import refill
from gateway.core.messages import ErrorCode, error_frame
from gateway.core.sources import DEFAULT_SOURCE, SOURCES, Source
from gateway.topic import Topic
from gateway.wire import CloseCode, pong_frame
from gateway.ws_session import END, Session

__all__ = ["MAX_GLOBS", "MAX_NAME", "MAX_SUBSCRIPTIONS", "BadMessage", "DeflateViewer", "Viewer"]

# The endpoint's log: its lines keep the one name operators filter on, whichever module logs.
logger = logging.getLogger("gateway.ws")

MAX_SUBSCRIPTIONS: Final = 64
"""Subscriptions one connection may hold, each to one source of one router."""
MAX_GLOBS: Final = 256
MAX_NAME: Final = 256
"""Longest glob or exact name in a subscription's ``names`` (RouterOS names are shorter)."""


def _show(value: object) -> str:
    """A client's value for an error message, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


class BadMessage(Exception):
    """A client message refused: answered with an ``error`` frame of ``code`` and this text;
    the connection stays open."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


# The fields a subscribe may carry.
_SUBSCRIBE_FIELDS: Final = frozenset(
    ("type", "router", "source", "names", "interfaces", "since", "history", "history_seconds")
)
# The fields an unsubscribe may carry.
_UNSUBSCRIBE_FIELDS: Final = frozenset(("type", "router", "source"))
# The filter of a whole-router subscription, shared rather than one per viewer.
_ALL: Final = InterfaceFilter.all()


class Viewer(Session):
    """One websocket client as its messages see it: a ``Session`` that acts on what the client
    sends (see the module's docstring). Its state is all the session's: no slot of its own."""

    __slots__ = ()

    def handle(self, msg: WSMessage) -> bool:
        """Act on one message from the peer; False when the connection is done."""
        if msg.type in END:
            return False
        # Anything from the peer, the pong to a heartbeat ping included, proves it alive.
        self.awaiting_pong = False
        if msg.type is WSMsgType.ERROR:
            logger.debug("websocket error: %s", self.ws.exception())
            if self.ended is None and isinstance(msg.data, WebSocketError):
                # aiohttp closed with this code (1002, 1007, 1009), then reads on for the
                # peer's close, meets the same fault again and records 1006: audit what was
                # sent.
                self.ended = int(msg.data.code)
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


class DeflateViewer(Viewer):
    """A viewer whose connection agreed to permessage-deflate: written compressed messages
    (the same bytes as every other such viewer's). A class of its own, so the flag costs a
    connection nothing."""

    __slots__ = ()
    deflate = True
