"""An event loop on virtual time: code that sleeps runs unchanged and takes no real time.

``VirtualTimeLoop.time()`` starts at ``START`` and moves only when nothing is ready to run: it
then jumps straight to the earliest timer. ``asyncio.sleep``, ``asyncio.timeout``, ``wait_for``
and ``call_later`` all read this clock, so a poll loop's cadence, back-off, linger and idle
logout play out exactly, in order, in microseconds of real time, with no seam in the code under
test (pass ``loop.time`` wherever it takes a clock). Real I/O still works (it is polled without
waiting), but a test that only waits on it never advances; a loop where every task waits on
something no timer will ever set raises instead of hanging.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, Final, ParamSpec

P = ParamSpec("P")

START: Final = 1000.0
"""The virtual clock's reading when a loop starts (any value works; not 0, to catch code that
mistakes a reading for a duration)."""


class _JumpingSelector(selectors.SelectSelector):
    """Polls for I/O without waiting; where the loop would wait, moves its clock instead."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        if timeout is None:
            raise RuntimeError(
                "deadlock on virtual time: every task waits and no timer is set "
                "(something waits for an event that nothing will set)"
            )
        self._loop.advance(timeout)
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock jumps to the next timer whenever the loop is idle."""

    def __init__(self) -> None:
        self._now = START
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock on (the selector does this; tests need not)."""
        self._now += seconds


def virtual_time(
    test: Callable[P, Coroutine[Any, Any, None]],
) -> Callable[P, None]:
    """Run an ``async def`` test on a fresh :class:`VirtualTimeLoop` (the test itself is then a
    plain function to pytest; read the clock with ``asyncio.get_running_loop().time()``)."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            runner.run(test(*args, **kwargs))

    return run
