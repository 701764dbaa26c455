"""The contract checker's vocabulary: what it reports, and what it assumes until told.

Which rule a finding broke (:class:`Rule`, the numbered rules of ``gateway.contract``'s
docstring), the finding itself (:class:`Violation`, fixed wording plus the numbers), where a
subscription is (:class:`Phase`), the values the checker assumes until the server says otherwise
(the heartbeat, a router's poll interval and timeout, the source of a message that names none),
and the one shape rule of sizes: which messages may be larger than the limit (:func:`may_exceed`).
Pure data and pure functions, no I/O; import them from ``gateway.contract``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_INTERVAL",
    "DEFAULT_ROUTER_TIMEOUT",
    "DEFAULT_SOURCE",
    "Phase",
    "Rule",
    "Violation",
    "may_exceed",
]

DEFAULT_SOURCE: Final = "interfaces"
"""The source of a subscription or frame that names none."""

DEFAULT_HEARTBEAT: Final = 20.0
"""The heartbeat period (seconds) assumed until a ``hello`` says otherwise (the server's
default, and the dashboard's)."""

DEFAULT_ROUTER_TIMEOUT: Final = 3.0
"""The gateway's default ``poll.timeout`` (seconds), for the default gap bound of rule 4."""

DEFAULT_INTERVAL: Final = 1.0
"""The poll interval (seconds) assumed for a router until one of its frames says otherwise."""


class Rule(enum.StrEnum):
    """Which rule a violation broke (see ``gateway.contract``'s docstring)."""

    ORDER = "order"
    """A message out of its place: before ``hello``, before a router's ``status`` or the end of
    its history, or about a router not subscribed to."""
    SHAPE = "shape"
    """A message without a field the contract promises (``seq``, ``frames``, ``more``...)."""
    SEQ = "seq"
    """Frames missing, repeated or out of order."""
    LOST = "lost"
    """A resume answered with ``reset: true``: the history no longer reached back to ``since``
    and frames were lost. The gateway's answer is correct, and the client redraws; whether that
    is a failure (a load test) or the point (a test of the ring) is the caller's call."""
    SIZE = "size"
    """A message of ``MESSAGE_LIMIT`` bytes or more."""
    SILENCE = "silence"
    """No traffic frame within the gap bound while the router was up, or nothing at all for
    ``heartbeats`` heartbeat periods."""


class Phase(enum.Enum):
    """Where a subscription is: waiting for its ``status``, in its history, or live."""

    STATUS = "status"
    HISTORY = "history"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken promise. ``text`` is fixed wording (no numbers); ``detail`` has the numbers;
    ``seconds`` is how long a silence lasted (0 for other rules)."""

    rule: Rule
    text: str
    router: str | None = None
    detail: str = ""
    seconds: float = 0.0

    def __str__(self) -> str:
        where = f"{self.router}: " if self.router is not None else ""
        return f"{where}{self.text}" + (f" ({self.detail})" if self.detail else "")


def may_exceed(message: Mapping[str, Any]) -> bool:
    """A single traffic frame of the limit or more is never split: alone, or alone in a history
    message, it may be larger (see ``gateway.history.MESSAGE_LIMIT``)."""
    if message.get("type") == "traffic":
        return True
    frames = message.get("frames")
    return message.get("type") == "history" and isinstance(frames, list) and len(frames) == 1
