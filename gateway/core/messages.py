"""The protocol's messages other than traffic frames, as plain dicts: ``hello``, ``status`` and
``error``, and what a restricted viewer is shown of a status.

Like the traffic frames (``gateway.core.frames``), each is a dict whose key order is the order
on the wire, encoded once and sent as the same bytes to every viewer it goes to. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

from gateway.core.frames import PROTOCOL_VERSION
from gateway.core.model import RouterState
from gateway.core.sources import DEFAULT_SOURCE, Source

__all__ = [
    "PUBLIC_ERROR",
    "ErrorCode",
    "error_frame",
    "hello_frame",
    "public_status",
    "status_frame",
]

ErrorCode = Literal[
    "bad_request",
    "unknown_router",
    "too_many_subscriptions",
    "refresh_refused",
    "rate_limited",
]
"""The ``code`` of an ``error`` frame; the connection stays open after any of them. The first
three answer a subscribe (or unsubscribe; a router outside the token is an ``unknown_router``);
``refresh_refused`` answers a token refresh, and ``rate_limited`` a message sent past the
connection's rate (which was not acted on)."""


PUBLIC_ERROR: Final = "the router is unavailable"
"""The ``error`` a restricted viewer (a customer's token) is shown for any failure: the full text
names the router's address, API port and user, which only operators may see."""


def public_status(status: dict[str, object]) -> dict[str, object]:
    """``status`` as a restricted viewer sees it: any ``error`` replaced by ``PUBLIC_ERROR``
    (the same dict when it has none)."""
    if status.get("error") is None:
        return status
    return {**status, "error": PUBLIC_ERROR}


def status_frame(
    router: str,
    state: RouterState,
    error: str | None,
    since: float,
    *,
    degraded: bool = False,
    source: Source = DEFAULT_SOURCE,
) -> dict[str, object]:
    """A ``status`` frame: ``{"type": "status", "router", "source", "state", "error",
    "since"}``, the state of one source of a router.

    ``error`` is a short human-readable reason (never a secret) or ``None``; ``since`` is the Unix
    time the source entered ``state``. With ``degraded`` (cluster mode, Redis unreachable: this
    replica polls the router itself) the frame ends with ``"degraded": true``; otherwise the
    key is absent.
    """
    status: dict[str, object] = {
        "type": "status",
        "router": router,
        "source": source,
        "state": state,
        "error": error,
        "since": since,
    }
    if degraded:
        status["degraded"] = True
    return status


def hello_frame(routers: Sequence[tuple[str, str]], heartbeat: float) -> dict[str, object]:
    """The ``hello`` frame sent on connect: ``type, v, routers: [{id, name}], heartbeat``.

    ``routers`` are ``(id, name)`` pairs, already limited to what the viewer may see.
    ``heartbeat`` is the server's ping interval in seconds.
    """
    return {
        "type": "hello",
        "v": PROTOCOL_VERSION,
        "routers": [{"id": router_id, "name": name} for router_id, name in routers],
        "heartbeat": heartbeat,
    }


def error_frame(code: ErrorCode, message: str) -> dict[str, object]:
    """An ``error`` frame: ``{"type": "error", "code", "message"}``."""
    return {"type": "error", "code": code, "message": message}
