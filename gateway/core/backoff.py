"""Reconnect delays: capped exponential backoff with full jitter.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads the reconnects of many
pollers, or many browsers, after a shared outage, instead of having them all retry in lockstep.
"""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable
from typing import Final

__all__ = ["AUTH_FAILURE_MIN_DELAY", "Backoff", "auth_failure_delay"]

AUTH_FAILURE_MIN_DELAY: Final = 60.0
"""Shortest wait, in seconds, after the router refused our credentials.

Bad credentials do not fix themselves within seconds, and every failed login can count towards
an account lock-out and writes a line to the router's log: at most one try a minute. Not a
setting: a shorter floor would only lock accounts sooner, and a longer wait can come from
raising ``backoff_max`` (the wait is the larger of the two).
"""


class Backoff:
    """Delays for successive retries: ``random() * min(maximum, initial * factor ** attempt)``.

    ``attempt`` counts the delays handed out since the last :meth:`reset`, so the first delay is
    drawn from ``[0, initial)``, the second from ``[0, initial * factor)``, and so on up to
    ``[0, maximum)``. The owner calls :meth:`reset` after a success. Pure apart from the injected
    ``random`` (a callable returning a float in ``[0, 1)``), which tests replace with a seeded
    generator.
    """

    __slots__ = ("_attempt", "_factor", "_initial", "_maximum", "_random")

    def __init__(
        self,
        initial: float,
        maximum: float,
        factor: float = 2.0,
        random: Callable[[], float] = _random.random,
    ) -> None:
        """Raise ``ValueError`` unless ``0 < initial <= maximum`` (finite) and ``factor >= 1``."""
        if not (0 < initial <= maximum and math.isfinite(maximum)):
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {initial}, {maximum}")
        if not (factor >= 1 and math.isfinite(factor)):
            raise ValueError(f"backoff factor must be a finite number >= 1, got {factor}")
        self._initial = initial
        self._maximum = maximum
        self._factor = factor
        self._random = random
        # Reset to 0 by reset(); only the owning poller (or client) touches it.
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """How many delays were handed out since construction or the last :meth:`reset`."""
        return self._attempt

    def next_delay(self) -> float:
        """Return the next delay in seconds and count the attempt.

        The delay is drawn from ``[0, min(maximum, initial * factor**attempt))``.
        """
        try:
            ceiling = min(self._maximum, self._initial * self._factor**self._attempt)
        except OverflowError:
            # factor**attempt outgrew a float long after the cap was reached.
            ceiling = self._maximum
        self._attempt += 1
        return self._random() * ceiling

    def reset(self) -> None:
        """Start again from ``initial`` (call after a successful connect or poll)."""
        self._attempt = 0


def auth_failure_delay(backoff_delay: float) -> float:
    """The delay to use after an authentication failure: at least one minute.

    ``backoff_delay`` is what the ordinary backoff would have waited; the longer of the two wins.
    """
    return max(AUTH_FAILURE_MIN_DELAY, backoff_delay)
