"""The virtual-time event loop the fast tests run on."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.virtual_time import START, VirtualTimeLoop, virtual_time


@virtual_time
async def test_sleeps_and_timeouts_take_virtual_time_only() -> None:
    """An hour of sleeping and a timeout run in order, exactly, in no real time."""
    loop = asyncio.get_running_loop()
    began = time.monotonic()
    await asyncio.sleep(3600)
    assert loop.time() == START + 3600
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(60):
            await asyncio.Event().wait()
    assert loop.time() == START + 3660
    assert time.monotonic() - began < 1.0


def test_a_loop_where_nothing_can_happen_raises_instead_of_hanging() -> None:
    """Waiting on an event that nothing sets, with no timer pending, is a clear error."""

    async def stuck() -> None:
        await asyncio.Event().wait()

    with (
        asyncio.Runner(loop_factory=VirtualTimeLoop) as runner,
        pytest.raises(RuntimeError, match="deadlock on virtual time"),
    ):
        runner.run(stuck())
