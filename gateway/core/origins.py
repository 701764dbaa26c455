"""Web origins in one normal form, for the configured allowlist and the ``Origin`` header alike.

A browser sends ``Origin: scheme://host[:port]`` serialised as the URL standard says: scheme and
host in lower case, the port only when it is not the scheme's default, an IPv6 address in
brackets and compressed, a non-ASCII host in punycode. Operators write origins their own way
(``https://NOC.example.net:443/``). :func:`normalise_origin` brings both sides to the browser's
form, so that whether an origin is allowed is a plain string comparison.

Nothing here reads a forwarded header (``X-Forwarded-Proto``, ``Forwarded``): any client can
send those, so they decide nothing unless a deployment says whom to trust, and the gateway has no
such setting. See :func:`judge_origin` for what "same origin" then means behind a TLS proxy.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

import idna

__all__ = ["DEFAULT_PORTS", "OriginError", "Refusal", "judge_origin", "normalise_origin"]

DEFAULT_PORTS: Final = {"http": 80, "ws": 80, "https": 443, "wss": 443}
"""The schemes an origin may have here, and the port a browser leaves out for each."""

_HOST_MAX: Final = 253
"""Longest DNS name; also what bounds a normalised origin's length (it is remembered, see ws)."""

_SHOWN: Final = 200
"""Longest text of an unreadable ``Origin`` header kept for a log line (it is attacker-sized)."""

# scheme "://" host [":" port] ["/"]; the host is bracketed IPv6, or anything up to ":" or "/"
# but user information ("@"), a query ("?") or a fragment ("#"), which an origin never has.
_ORIGIN: Final = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://"
    r"(?P<host>\[[^\]]*\]|[^/:\[\]?#@]*)(?::(?P<port>[^/?#@]*))?/?"
)
# Host names as browsers send them (after IDNA): letters, digits, '-' and '_' in dot-separated
# labels. '_' is not valid DNS, but browsers accept it and intranet names use it.
_NAME: Final = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_PORT: Final = re.compile(r"[0-9]{1,5}")
# A last label that makes the URL standard read the whole host as an IPv4 address.
_NUMERIC_LABEL: Final = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")


class OriginError(ValueError):
    """Text that is not a web origin; the message says what is wrong (never the text itself)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a websocket's ``Origin`` was refused, for the log.

    ``origin`` is the normalised origin, or, for a header that is not an origin, the header as
    sent, cut to 200 characters and quoted (so a hostile header cannot forge log lines).
    ``reason`` says why and what to change, in words for an operator.
    """

    origin: str
    reason: str


def normalise_origin(text: str) -> str:
    """``text`` as a browser would send it in ``Origin``: ``scheme://host[:port]``.

    - scheme: ``http``, ``https``, ``ws`` or ``wss``, any case, lower-cased;
    - host: lower-cased; one trailing dot dropped (``example.net.`` names the same host);
      non-ASCII names in punycode (IDNA, UTS #46 as browsers do: ``bücher.example`` becomes
      ``xn--bcher-kva.example``); IPv4 and bracketed IPv6 addresses in their canonical form
      (``[0:0::1]`` becomes ``[::1]``);
    - port: dropped when it is the scheme's default (80 for http/ws, 443 for https/wss);
    - a single trailing ``/`` is accepted; any other path, a query, a fragment or user
      information is an error.

    Raises :class:`OriginError` for the opaque origin ``null`` (sandboxed pages, ``file://``:
    it names no site, so it can never be allowed) and for anything else that is not an origin.
    Pure; idempotent (``normalise_origin(normalise_origin(x)) == normalise_origin(x)``).
    """
    if text.lower() == "null":
        raise OriginError('"null" is the opaque origin of sandboxed pages and files, not a site')
    match = _ORIGIN.fullmatch(text)
    if match is None:
        raise OriginError(
            "expected scheme://host[:port] with nothing after it "
            "(no path, query, fragment or user name)"
        )
    scheme = match["scheme"].lower()
    default_port = DEFAULT_PORTS.get(scheme)
    if default_port is None:
        raise OriginError(f"expected an http or https origin, not {scheme}:")
    host = _host(match["host"])
    port_text = match["port"]
    if port_text:  # "host:" with nothing after the colon is no port, as in the URL standard
        if not _PORT.fullmatch(port_text) or not 0 < int(port_text) <= 65535:
            raise OriginError("expected a port from 1 to 65535")
        port = int(port_text)
        if port != default_port:
            return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def _host(text: str) -> str:
    if text.startswith("["):
        try:
            address = ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise OriginError("expected an IPv6 address inside [ ]") from None
        if address.scope_id is not None:
            raise OriginError("an origin cannot carry an IPv6 zone (%...)")
        return f"[{address.compressed}]"
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    if not text:
        raise OriginError("expected a host name or address")
    if not text.isascii():
        try:
            text = idna.encode(text, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise OriginError(f"not a valid international host name ({exc})") from None
    host = text.lower()
    if len(host) > _HOST_MAX:
        raise OriginError(f"expected a host name of at most {_HOST_MAX} characters")
    if not _NAME.fullmatch(host):
        raise OriginError(
            "expected a host name of letters, digits, '-', '_' and dots, or an IP address"
        )
    if _NUMERIC_LABEL.fullmatch(host.rpartition(".")[2]):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise OriginError("expected a dotted-decimal IPv4 address") from None
    return host


def judge_origin(origin: str, host: str | None, allowed: Collection[str]) -> Refusal | None:
    """Whether a websocket from a page of ``origin`` may connect: None if so, else why not.

    ``origin`` is the ``Origin`` header as sent; ``host`` the ``Host`` header (None if absent);
    ``allowed`` the configured allowlist, already normalised (``ServerSettings``).

    With an allowlist, the normalised origin must be in it. With an empty one only the page's
    own site may connect: the origin's host and port must be the ``Host`` header's, the header's
    port read in the origin's scheme (absent = that scheme's default). The scheme itself cannot
    be compared: behind a TLS proxy the browser's page is ``https`` while the gateway is spoken
    to in plain HTTP, and the header that would say so (``X-Forwarded-Proto``) is forgeable. So
    ``Host: noc.example.net:443`` and ``Host: noc.example.net`` both admit
    ``https://noc.example.net``; the first does not admit ``http://noc.example.net``. List the
    origins in ``server.allowed_origins`` to pin the scheme as well.
    """
    try:
        key = normalise_origin(origin)
    except OriginError as exc:
        shown = json.dumps(origin[:_SHOWN] + ("..." if len(origin) > _SHOWN else ""))
        return Refusal(shown, f"is not a web origin ({exc}), so no setting can allow it")
    if allowed:
        if key in allowed:
            return None
        listed = ", ".join(allowed)
        return Refusal(
            key, f"is not in server.allowed_origins ({listed}); add it there to allow it"
        )
    scheme = key.partition("://")[0]
    try:
        own = normalise_origin(f"{scheme}://{host}") if host is not None else None
    except OriginError:
        own = None
    if own == key:
        return None
    shown_host = json.dumps((host or "")[:_SHOWN])
    return Refusal(
        key,
        f"is not this gateway's own site (Host {shown_host}) and server.allowed_origins is "
        "empty (same origin only); add the origin to server.allowed_origins to allow it",
    )
