"""The gateway's settings: every configuration key, its default, its check and what it means.

This module, with ``gateway.config.routers`` for ``[poll]`` and ``[[routers]]``, is the
contract of the configuration file. Sections ``[server]``, ``[auth]``, ``[poll]``, ``[cluster]``
and ``[limits]`` are one table each, and every router is one ``[[routers]]`` table; each key of
those sections can also be set as ``GATEWAY_<SECTION>_<KEY>`` in the environment
(README, "Configuration"). Each field is declared once, as ``name: Annotated[type, Kind("what it
means", ...)] = default`` (``gateway.config.schema``): the list of accepted keys, the checks and
their messages, and the environment overrides all follow from it. A new key is one new field
in one of the two modules, plus its line in README's configuration block (a test checks the
README names every key).

Times are seconds, sizes bytes. Everything is frozen; secrets are :class:`Secret`
(``gateway.config.secret``).

Tunables that stay module constants, and why: the websocket protocol's limits (``ws.py``: 64 KiB
client messages; ``ws_messages.py``: 64 subscriptions, 256 interface patterns of up to 256
characters; ``history.py``: messages under 1 MiB) are the README's wire contract, the same on
every gateway so one client works with all; the REST read's wait for a first poll (``views.py``,
1 s) is the README's promise of an answer within 1 s; ``TCP_USER_TIMEOUT`` (``ws.py``, 1.5
heartbeats) follows ``heartbeat``; the closing handshake's bound (``ws_session.py``, 2 s) frees a
dead peer's memory well within any drain, and the viewer socket's send buffer (``ws.py``,
128 KiB) keeps the kernel from hiding a stalled viewer behind megabytes; refused credentials are
retried at most once a minute (``core/backoff.py``) so router accounts do not lock.
"""

import re
from dataclasses import dataclass, field
from typing import Annotated, Final, Literal

from gateway.config.routers import PollSettings, RouterSettings
from gateway.config.schema import (
    Choice,
    Derived,
    Flag,
    Integer,
    JwtSecret,
    KeyFile,
    Networks,
    Number,
    Origins,
    PageUrl,
    Text,
    Url,
)
from gateway.config.secret import Secret, redact_url

__all__ = [
    "DEFAULT_JWT_SECRET_ENV",
    "AuthMode",
    "AuthSettings",
    "ClusterSettings",
    "LimitSettings",
    "LogFormat",
    "ServerSettings",
    "Settings",
]

AuthMode = Literal["none", "jwt"]
"""``none``: anyone who can reach the gateway sees every router. ``jwt``: signed tokens (HS256,
RS256, ES256)."""

LogFormat = Literal["text", "json"]
"""``text``: one readable line per record. ``json``: one JSON object per line (log pipelines)."""

DEFAULT_JWT_SECRET_ENV: Final = "GATEWAY_JWT_SECRET"
"""Where the JWT secret is read from in ``jwt`` mode when ``[auth]`` names no source."""

# No braces (the prefix is the keys' hash tag) and nothing a log line or redis-cli would mangle.
_KEY_PREFIX: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _is_key_prefix(text: str) -> bool:
    return _KEY_PREFIX.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """``[server]``: where the gateway listens, whom it serves, and how it treats viewers.

    ``allowed_origins`` are normalised as browsers send ``Origin`` (lower case, no default
    port; see ``gateway.core.origins``); empty means only same-origin browsers may open a
    websocket. ``port`` 0 asks the OS for a free port (tests).
    """

    host: Annotated[str, Text("address to listen on")] = "0.0.0.0"
    port: Annotated[
        int, Integer("port to listen on; 0 = any free port", minimum=0, maximum=65535)
    ] = 8080
    allowed_origins: Annotated[
        tuple[str, ...], Origins("pages allowed to open websockets; empty = same origin only")
    ] = ()
    max_connections: Annotated[
        int, Integer("websockets at once; past it new ones are closed with 1013")
    ] = 20000
    shutdown_grace: Annotated[float, Number("seconds to drain on SIGTERM")] = 10.0
    drain_hold: Annotated[
        float,
        Number(
            "seconds /readyz keeps answering 503 after the viewers are closed and before the "
            "listener closes, at most a quarter of shutdown_grace",
            allow_zero=True,
        ),
    ] = 1.0
    heartbeat: Annotated[
        float, Number("seconds between pings to viewers that get no traffic frames")
    ] = 20.0
    slow_consumer_bytes: Annotated[
        int,
        Integer(
            "unsent bytes (a history being taken aside) at which a viewer is closed with 4408; "
            "keep it above the largest traffic frame (about 160 bytes an interface)"
        ),
    ] = 1024 * 1024
    slow_consumer_seconds: Annotated[
        float, Number("seconds a viewer may take nothing while data waits before 4408")
    ] = 10.0
    trusted_proxies: Annotated[
        tuple[str, ...],
        Networks(
            "reverse proxies (CIDRs) whose X-Forwarded-For names the client; empty = the peer "
            "address is the client"
        ),
    ] = ()
    allowed_frame_ancestors: Annotated[
        tuple[str, ...],
        Origins("pages that may show the dashboard in a frame; empty = no framing at all"),
    ] = ()
    tls_proxy: Annotated[
        bool, Flag("clients reach the gateway over HTTPS (a TLS proxy in front): send HSTS")
    ] = False
    log_format: Annotated[
        LogFormat, Choice("text, or json: one object a line; --log-format overrides it")
    ] = "text"


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """``[auth]``: who may watch, and how tokens are checked, carried and refreshed.

    In ``jwt`` mode at least one key is configured: ``jwt_secret`` (the resolved HS256 secret),
    the key of ``public_key_file`` (RS256 or ES256) or those of ``jwks_file``. Both files are
    read and checked at load (their text kept in ``public_key_pem`` and ``jwks_json``) and
    re-read when they change (``gateway.keyfiles``). ``jwt_secret`` is read from the default
    variable ``GATEWAY_JWT_SECRET`` only when no key file is configured; with one, only when a
    secret source is named.
    """

    mode: Annotated[AuthMode, Choice("who may watch: everyone, or holders of a JWT")] = "none"
    jwt_secret: Annotated[
        Secret | None,
        JwtSecret(
            "the HS256 secret, at least 32 bytes: from the variable jwt_secret_env or the file "
            "jwt_secret_file"
        ),
    ] = None
    public_key_file: Annotated[
        str | None,
        KeyFile(
            "PEM public key or certificate: RSA 2048+ bits (RS256) or EC P-256 (ES256)",
            content_field="public_key_pem",
        ),
    ] = None
    public_key_pem: Annotated[
        str | None, Derived("the text of public_key_file", source="public_key_file")
    ] = field(default=None, repr=False)
    jwks_file: Annotated[
        str | None,
        KeyFile(
            "JSON Web Key Set of RS256 and ES256 keys, picked by kid; re-read when it changes",
            content_field="jwks_json",
            jwks=True,
        ),
    ] = None
    jwks_json: Annotated[str | None, Derived("the text of jwks_file", source="jwks_file")] = field(
        default=None, repr=False
    )
    issuer: Annotated[str, Text('required "iss" claim; empty = not checked', allow_empty=True)] = ""
    audience: Annotated[
        str,
        Text('required "aud" claim; empty = tokens must carry no "aud"', allow_empty=True),
    ] = ""
    leeway: Annotated[
        float, Number("seconds of clock skew allowed on exp, nbf and iat", allow_zero=True)
    ] = 30.0
    auth_timeout: Annotated[
        float,
        Number("seconds a websocket has to send its auth message when no token came with it"),
    ] = 5.0
    refresh_before: Annotated[
        float,
        Number(
            "seconds before a token expires that the server asks for a new one (refresh_needed)"
        ),
    ] = 60.0
    token_url: Annotated[
        str,
        PageUrl(
            "where the dashboard fetches a new token (with the browser's cookies); empty = none"
        ),
    ] = ""

    @property
    def key_files(self) -> tuple[str, ...]:
        """The key files to watch for changes (resolved paths)."""
        return tuple(p for p in (self.public_key_file, self.jwks_file) if p is not None)


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """``[limits]``: what one client may cost. Rates are per second; a count of 0 (or a rate of
    0) turns that limit off.

    Per connection, a token bucket of ``message_burst`` messages refilled at
    ``messages_per_second``; per client address (``server.trusted_proxies`` says what that is),
    open websockets and a bucket of new ones; per token subject, open websockets. The server's
    ``max_connections`` bounds them all. The README's "Limits" section gives the answers a
    client gets past each.
    """

    messages_per_second: Annotated[
        float,
        Number(
            "messages one websocket may send per second, on average; 0 = no limit", allow_zero=True
        ),
    ] = 10.0
    message_burst: Annotated[
        int, Integer("messages one websocket may send at once before the rate applies")
    ] = 20
    connections_per_subject: Annotated[
        int, Integer("open websockets per token subject (jwt mode); 0 = no limit", minimum=0)
    ] = 32
    connections_per_address: Annotated[
        int, Integer("open websockets per client address; 0 = no limit", minimum=0)
    ] = 256
    handshakes_per_second: Annotated[
        float,
        Number("new websockets per client address per second; 0 = no limit", allow_zero=True),
    ] = 10.0
    handshake_burst: Annotated[
        int, Integer("new websockets one client address may open at once")
    ] = 100


@dataclass(frozen=True, slots=True, repr=False)
class ClusterSettings:
    """``[cluster]``: ``redis_url`` empty means one process with an in-memory hub; set, the
    replicas share one poller per router through that Redis (README, "Cluster mode").

    ``key_prefix`` starts every key the gateway writes (``{prefix}:<router>:...``), so several
    gateway clusters can share one Redis. The URL may carry a Redis password, so ``repr()``
    masks it.
    """

    redis_url: Annotated[
        str,
        Url(
            "Redis for cluster mode (one poller per router for every replica); empty = one process",
            schemes=("redis", "rediss", "unix"),
        ),
    ] = ""
    key_prefix: Annotated[
        str,
        Text(
            "start of every Redis key of this gateway cluster",
            valid=_is_key_prefix,
            expected="1 to 64 letters, digits, '_', '.', ':' or '-'",
        ),
    ] = "gateway"

    @property
    def enabled(self) -> bool:
        """Whether replicas coordinate through Redis."""
        return bool(self.redis_url)

    def __repr__(self) -> str:
        return (
            f"ClusterSettings(redis_url={redact_url(self.redis_url)!r}, "
            f"key_prefix={self.key_prefix!r})"
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole configuration: one field per section (a table, or ``routers``, an array of
    tables). ``routers`` is never empty and router ids are unique."""

    server: ServerSettings
    auth: AuthSettings
    poll: PollSettings
    cluster: ClusterSettings
    routers: tuple[RouterSettings, ...]
    limits: LimitSettings = LimitSettings()
