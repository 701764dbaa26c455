"""The routers' settings: ``[poll]``, the defaults every router inherits, and each ``[[routers]]``
table, declared as ``gateway.config.settings`` declares every section (see there).

How to reach a router (address, port, TLS, credentials, code page), how often to poll it, and
which of its interfaces, queues and hotspot users to publish.
"""

import re
from dataclasses import dataclass, field
from typing import Annotated, Final, Literal

from gateway.config.schema import (
    CaFile,
    Choice,
    Derived,
    Fingerprint,
    Flag,
    Getter,
    Integer,
    NameFilter,
    Number,
    RouterPassword,
    Text,
    Words,
)
from gateway.config.secret import Secret
from gateway.core.filters import InterfaceFilter
from gateway.core.sources import SOURCES, Source
from gateway.core.text import encoding_problem

__all__ = ["API_PORT", "API_SSL_PORT", "LoginMethod", "PollSettings", "RouterSettings"]

LoginMethod = Literal["plain", "token"]
"""``plain``: RouterOS 6.43 and later. ``token``: the older challenge login (MD5 of a token)."""

API_PORT: Final = 8728
"""The RouterOS ``api`` service's default port."""
API_SSL_PORT: Final = 8729
"""The RouterOS ``api-ssl`` service's default port."""

_SEQ_PACE: Final = "at most one poll a millisecond: seq counts from a time in milliseconds"

_ROUTER_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class PollSettings:
    """``[poll]``: defaults for every router, in seconds (``history`` counts frames).

    ``backoff_max >= backoff_initial`` is checked at load.
    """

    interval: Annotated[
        float, Number("seconds between polls of one router", minimum=0.001, why=_SEQ_PACE)
    ] = 1.0
    timeout: Annotated[float, Number("deadline for connect, login and each command")] = 3.0
    linger: Annotated[
        float, Number("keep polling this long after the last viewer leaves", allow_zero=True)
    ] = 10.0
    history: Annotated[
        int,
        Integer("traffic frames kept per router for backfill and resume", maximum=1_000_000),
    ] = 300
    backoff_initial: Annotated[float, Number("first reconnect delay's ceiling")] = 0.5
    backoff_max: Annotated[
        float,
        Number("reconnect delay's ceiling: full jitter, doubling", at_least="backoff_initial"),
    ] = 30.0
    idle_logout: Annotated[
        float,
        Number(
            "keep the router session this long after polling stops, then log out", allow_zero=True
        ),
    ] = 60.0
    sessions_interval: Annotated[
        float,
        Number(
            "seconds between reads of /ppp/active (PPP sessions, joined to interfaces and "
            "queues) while a router's interfaces or queues are watched"
        ),
    ] = 30.0


def _api_port(get: Getter) -> int:
    return API_SSL_PORT if get("tls") else API_PORT


def _is_router_id(text: str) -> bool:
    return _ROUTER_ID.fullmatch(text) is not None


def _is_router_encoding(name: str) -> bool:
    return encoding_problem(name) is None


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """One ``[[routers]]`` entry.

    ``interval`` and ``timeout`` are ``None`` when the router inherits them from ``[poll]``; the
    poller asks :meth:`effective_interval` / :meth:`effective_timeout`, so an environment override
    of ``[poll]`` still reaches every router that did not set its own. ``interfaces`` are name
    globs (an ``{exact = "name"}`` entry kept as the glob matching that name only), empty for
    every interface; ``queues`` and ``hotspot`` likewise for those sources. ``sources`` are the
    sources it serves, in polling order (``gateway.core.sources.SOURCES``).

    TLS (``tls = true``, api-ssl): with neither ``tls_ca_file`` nor ``tls_fingerprint`` the
    router is not authenticated and anonymous Diffie-Hellman is accepted (api-ssl without a
    certificate). ``tls_ca_file`` is the file's resolved path and ``tls_ca_pem`` its
    certificates, read at load; the router's certificate must chain to one of them and name
    ``host``. ``tls_fingerprint`` is the SHA-256 of the router's own certificate (64 lower-case
    hex digits, no colons). With either, anonymous TLS is refused. Both need ``tls``.
    """

    id: Annotated[
        str,
        Text(
            "the router's id in URLs, frames and tokens",
            valid=_is_router_id,
            expected="1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
        ),
    ]
    name: Annotated[
        str, Text("name shown on the dashboard; default: id", fallback=lambda g: g("id"))
    ]
    host: Annotated[str, Text("address or DNS name of the router")]
    port: Annotated[
        int, Integer("API port; default 8728, or 8729 with tls", maximum=65535, fallback=_api_port)
    ]
    username: Annotated[str, Text("RouterOS user (a group with only the api and read policies)")]
    password: Annotated[
        Secret,
        RouterPassword("from the variable password_env, the file password_file, or password"),
    ]
    tls: Annotated[bool, Flag("api-ssl instead of api")] = False
    encoding: Annotated[
        str,
        Text(
            "the router's code page for names and the password",
            valid=_is_router_encoding,
            expected=(
                'a text encoding that reads ASCII as ASCII, such as "utf-8", "cp1252", '
                '"cp1251" or "cp932" (RouterOS API words are ASCII: not UTF-16, UTF-7, '
                "utf-8-sig, unicode_escape or EBCDIC)"
            ),
        ),
    ] = "utf-8"
    interval: Annotated[
        float | None,
        Number("seconds between polls; default [poll] interval", minimum=0.001, why=_SEQ_PACE),
    ] = None
    timeout: Annotated[float | None, Number("deadline per step; default [poll] timeout")] = None
    interfaces: Annotated[
        tuple[str, ...],
        NameFilter(
            'interfaces to publish: name globs and {exact = "name"} tables; empty = every one'
        ),
    ] = ()
    sources: Annotated[
        tuple[Source, ...],
        Words("the sources the router serves: interfaces, queues, hotspot", words=SOURCES),
    ] = SOURCES
    queues: Annotated[
        tuple[str, ...],
        NameFilter(
            'simple queues to publish: name globs and {exact = "name"} tables; empty = every one'
        ),
    ] = ()
    hotspot: Annotated[
        tuple[str, ...],
        NameFilter(
            'hotspot users to publish (by login): name globs and {exact = "name"} tables; '
            "empty = every one"
        ),
    ] = ()
    login_method: Annotated[
        LoginMethod, Choice("plain (6.43 and later) or token (the older challenge login)")
    ] = "plain"
    tls_ca_file: Annotated[
        str | None,
        CaFile("PEM certificates the router's certificate must chain to", pem_field="tls_ca_pem"),
    ] = None
    tls_ca_pem: Annotated[
        str | None, Derived("the certificates of tls_ca_file", source="tls_ca_file")
    ] = field(default=None, repr=False)
    tls_fingerprint: Annotated[
        str | None, Fingerprint("SHA-256 of the router's own certificate")
    ] = None

    @property
    def authenticates_router(self) -> bool:
        """Whether the router must prove who it is (a CA file or a pinned fingerprint)."""
        return self.tls_ca_pem is not None or self.tls_fingerprint is not None

    def effective_interval(self, poll: PollSettings) -> float:
        """Seconds between polls of this router: its own ``interval``, else ``poll.interval``."""
        return poll.interval if self.interval is None else self.interval

    def effective_timeout(self, poll: PollSettings) -> float:
        """Deadline for connect, login and each command: ``timeout``, else ``poll.timeout``."""
        return poll.timeout if self.timeout is None else self.timeout

    def interface_filter(self) -> InterfaceFilter:
        """The interfaces this router publishes (every one when ``interfaces`` is empty)."""
        return self.name_filter("interfaces")

    def name_filter(self, source: Source) -> InterfaceFilter:
        """The rows of ``source`` this router publishes, by name (every row when its setting,
        ``interfaces``, ``queues`` or ``hotspot``, is empty)."""
        globs: tuple[str, ...] = getattr(self, source)
        return InterfaceFilter.of(globs) if globs else InterfaceFilter.all()
