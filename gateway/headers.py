"""Security headers on every response: what browsers may do with what the gateway sends.

- ``X-Content-Type-Options: nosniff``: a response is only ever what its ``Content-Type`` says
  (a JSON body is never run as a script, an upload never as HTML).
- ``Referrer-Policy: no-referrer``: a page of the gateway tells no other site its URL.
- Framing: denied (``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``), so no other
  site can show the dashboard in a frame and trick a viewer into clicks (clickjacking); with
  ``server.allowed_frame_ancestors`` (the embed case) exactly those origins may frame it
  (``frame-ancestors``; ``X-Frame-Options`` has no way to say so, and is left out).
- ``Strict-Transport-Security`` when ``server.tls_proxy`` declares that viewers reach the
  gateway over HTTPS (a TLS proxy in front): browsers then refuse plain HTTP to its host for a
  year. Never sent otherwise: over plain HTTP it would be a lie browsers ignore, and on a
  host that also serves plain HTTP it would break those sites.
- A ``Content-Security-Policy`` of ``default-src 'none'`` on every response that has none of
  its own (the dashboard page has a full one): a JSON body or an error opened in a tab can load
  nothing.
- ``Cache-Control: no-store`` on ``/api/`` answers: they are one viewer's data, shaped by its
  token, and no shared cache may keep them.

Pure: ``security_headers`` builds the headers once from the settings; ``add_security_headers``
is the app's ``on_response_prepare`` hook.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from aiohttp import web

from gateway.config import ServerSettings

__all__ = ["HSTS", "frame_ancestors", "response_hook", "security_headers"]

HSTS: Final = "max-age=31536000"
"""One year, without ``includeSubDomains`` (other hosts of the domain are not the gateway's to
decide) or ``preload``."""


def frame_ancestors(server: ServerSettings) -> str:
    """The CSP ``frame-ancestors`` sources: ``'none'``, or the allowed embedders' origins."""
    return " ".join(server.allowed_frame_ancestors) or "'none'"


def security_headers(server: ServerSettings) -> dict[str, str]:
    """The headers every response carries (the page's own CSP aside)."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": (
            f"default-src 'none'; frame-ancestors {frame_ancestors(server)}"
        ),
    }
    if not server.allowed_frame_ancestors:
        headers["X-Frame-Options"] = "DENY"
    if server.tls_proxy:
        headers["Strict-Transport-Security"] = HSTS
    return headers


def response_hook(
    server: ServerSettings,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """The ``on_response_prepare`` hook that puts ``security_headers`` on every response,
    error pages, static files and websocket handshakes included, keeping a header a view set."""
    headers: Mapping[str, str] = security_headers(server)

    async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
        out = response.headers
        for name, value in headers.items():
            out.setdefault(name, value)
        if request.path.startswith("/api/"):
            out.setdefault("Cache-Control", "no-store")

    return add_security_headers
