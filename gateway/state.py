"""The running gateway's shared state, stored in the app under one typed key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from gateway.config import Settings
from gateway.core.once import FirstSeen
from gateway.hub import Hub
from gateway.metrics import Metrics

if TYPE_CHECKING:
    from gateway.poller import Poller
    from gateway.ws import Viewer

REFUSED_ORIGINS_LOGGED: Final = 1000
"""Distinct refused websocket origins logged at WARNING (each once); later ones only at DEBUG."""


@dataclass(slots=True)
class AppState:
    """What the handlers share. Mutated only on the event loop."""

    settings: Settings
    hub: Hub
    metrics: Metrics
    # One poller per router id; created at start-up, stopped at cleanup.
    pollers: dict[str, Poller] = field(default_factory=dict)
    # Every open websocket; the shutdown sequence closes them with 1001.
    viewers: set[Viewer] = field(default_factory=set)
    # False until start-up finished, and again from the moment draining begins.
    ready: bool = False
    draining: bool = False
    # Seconds between heartbeats (websocket pings and heartbeat messages), told in hello.
    heartbeat: float = 20.0
    # The websocket origins refused so far, each logged once. Bounded: a client can send any
    # number of distinct Origin headers. A key is at most about 270 characters (a refused
    # origin is normalised, with a host of at most 253, or cut to 200), so under 0.5 MB in all.
    refused_origins: FirstSeen[str] = field(
        default_factory=lambda: FirstSeen(REFUSED_ORIGINS_LOGGED)
    )
