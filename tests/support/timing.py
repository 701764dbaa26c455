"""One time unit for every test deadline, so a slow machine scales them all at once.

Set ``GATEWAY_TEST_TIME_UNIT=3`` to give every deadline three times as long.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

UNIT = float(os.environ.get("GATEWAY_TEST_TIME_UNIT", "1"))


def seconds(n: float) -> float:
    """``n`` seconds in the test time unit."""
    return n * UNIT


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]],
    *,
    timeout: float,
    interval: float = 0.01,
    message: str = "condition",
) -> None:
    """Wait until ``predicate`` holds, or fail after ``timeout`` (already in test units)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} did not hold within {timeout:.1f} s")
        await asyncio.sleep(interval)


async def stays(
    predicate: Callable[[], bool], *, duration: float, interval: float = 0.02, message: str
) -> None:
    """Check that ``predicate`` keeps holding for ``duration`` seconds (an observation window)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        assert predicate(), f"{message} stopped holding"
        await asyncio.sleep(interval)
    assert predicate(), f"{message} stopped holding"


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """Await with a deadline (in test units already)."""
    return await asyncio.wait_for(awaitable, timeout)
