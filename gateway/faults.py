"""Unexpected errors in long-lived tasks: logged with their traceback once per kind, then quietly.

A long-lived task (a router's poll loop, the heartbeat) must survive a bug below it: it reports
the error, backs off and tries again. Reporting a failure that repeats every tick with a full
traceback each time would bury the log (and the first traceback says all there is to say), so
:class:`UnexpectedErrors` logs the traceback the first time a kind of error is seen, and one
DEBUG line for each repeat. A kind is the exception's type and the line that raised it. After a
success the owner calls :meth:`UnexpectedErrors.recovered`: a failure after that is news again.
"""

from __future__ import annotations

import logging
from typing import Final

from gateway.core.once import FirstSeen

__all__ = ["UnexpectedErrors"]

KINDS: Final = 32
"""Distinct kinds remembered between two successes; more than that are logged at DEBUG only."""

_Kind = tuple[type[BaseException], str, int]


def _kind(exc: BaseException) -> _Kind:
    """The exception's type and where it was raised (the innermost frame of its traceback)."""
    tb = exc.__traceback__
    if tb is None:
        return type(exc), "", 0
    while tb.tb_next is not None:
        tb = tb.tb_next
    return type(exc), tb.tb_frame.f_code.co_filename, tb.tb_lineno


class UnexpectedErrors:
    """One long-lived task's unexpected errors (anything it has no handling for).

    ``what`` names the task in every line, e.g. ``"core-1: poll loop"``. Owned by the task; only
    the task calls it.
    """

    __slots__ = ("_kinds", "_logger", "what")

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._logger = logger
        self.what = what
        # Kinds already logged with a traceback since the last success; cleared by recovered().
        self._kinds: FirstSeen[_Kind] = FirstSeen(KINDS)

    def report(self, exc: BaseException, during: str = "") -> None:
        """Log ``exc``: at ERROR with its traceback the first time its kind is seen, else DEBUG.

        ``during`` optionally says what the task was doing (``"/interface/print"``).
        """
        name = type(exc).__name__
        where = f" during {during}" if during else ""
        if self._kinds.first(_kind(exc)):
            self._logger.error(
                "%s: unexpected %s%s; carrying on (repeats are logged at DEBUG)",
                self.what,
                name,
                where,
                exc_info=exc,
            )
        else:
            self._logger.debug("%s: unexpected %s%s again", self.what, name, where)

    def recovered(self) -> None:
        """The task succeeded: the next unexpected error gets its traceback logged again."""
        if len(self._kinds):
            self._kinds.clear()
