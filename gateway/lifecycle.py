"""Where the app is in its life: starting, serving, draining."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Lifecycle:
    """Readiness and draining, set by the app's start-up and shutdown; read by the probes and
    the websocket endpoint. Mutated only on the event loop."""

    # False until start-up finished (every poller started), and again from the moment draining
    # begins.
    ready: bool = False
    # True from step 1 of the shutdown sequence on (see ``gateway.app``): no new websockets.
    draining: bool = False

    @property
    def serving(self) -> bool:
        """Whether readiness answers 200."""
        return self.ready and not self.draining
