"""Who may open a viewer on ``/ws``: the checks a websocket passes before its viewer exists.

In order: the server is not draining (else 1001), the page's origin is allowed (else 1008), the
client's address is under the handshake rate, the server under ``max_connections`` and the
address under ``connections_per_address`` (else 1013), the token is good (else 4401) and its
subject under ``connections_per_subject`` (else 1013). The token comes in the handshake, as the
subprotocol ``bearer.<token>`` next to ``gateway.v1`` (answered with ``gateway.v1`` only) or,
discouraged, as ``?token=``; or else, in ``jwt`` mode, as the first message, ``{"type": "auth",
"token": ...}``, before which the server sends nothing. Each refusal is counted (when a limit
refused it) and written to the audit log; the client's address is the peer's, or what trusted
proxies report. ``Admission`` owns the counts an admitted viewer holds until ``release``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Final

import orjson
from aiohttp import WSMsgType, hdrs, web

from gateway.auth import AuthError, Grant, protocol_token
from gateway.config import ServerSettings
from gateway.core.address import client_address, networks
from gateway.core.limits import Counts, KeyedBuckets, address_key
from gateway.core.once import FirstSeen
from gateway.core.origins import judge_origin
from gateway.lifecycle import Lifecycle
from gateway.logs import audit_session
from gateway.metrics import Limit
from gateway.wire import ABNORMAL, CloseCode, close_reason
from gateway.ws_session import END, TokenVia, ViewerContext

__all__ = ["REFUSED_ORIGINS_LOGGED", "UNTRUSTED_PROXIES_LOGGED", "Admission"]

# The endpoint's log: its lines keep the one name operators filter on, whichever module logs.
logger = logging.getLogger("gateway.ws")

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


UNTRUSTED_PROXIES_LOGGED: Final = 100
"""Distinct peers that sent X-Forwarded-For without being trusted, each logged once."""


class Admission:
    """Admits websockets to ``/ws`` (see the module's docstring): ``admit`` a prepared one,
    ``release`` what an admitted viewer held once its connection has ended."""

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
        # back when the connection ends (release).
        self.handshakes = KeyedBuckets(limits.handshakes_per_second, limits.handshake_burst)
        self.per_address = Counts(limits.connections_per_address)
        self.per_subject = Counts(limits.connections_per_subject)
        # Peers that sent X-Forwarded-For without being trusted proxies, each logged once.
        self.untrusted_proxies: FirstSeen[str] = FirstSeen(UNTRUSTED_PROXIES_LOGGED)

    async def admit(
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
        address and subject, which ``release`` gives back.
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

    def release(self, address: str, subject: str | None) -> None:
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
        if msg.type in END or msg.type is WSMsgType.ERROR:
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
