"""The faults switched on a router while Locust runs, and the schedule that applies them through
its emulator's control API, counted from the moment the first viewer reaches the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from rig_outcome import Outcome
from rig_processes import HTTP_TIMEOUT, START_DEADLINE

from gateway import process


@dataclass(frozen=True, slots=True)
class Step:
    """One fault, switched on ``at`` seconds after the first viewer arrived."""

    at: float
    what: str
    path: str
    body: dict[str, object] | None = None


def full_schedule(duration: float) -> list[Step]:
    """A hang (10 s in a 60 s run), a dropped connection, slow replies, a reboot; the last
    quarter of the run is left clean so everything has recovered when Locust judges it."""
    hang = min(10.0, duration / 6)
    slow = min(8.0, duration * 0.13)
    return [
        Step(0.15 * duration, f"hang for {hang:g} s", "/faults", {"mode": "hang", "for": hang}),
        Step(0.45 * duration, "drop connections for 1 s", "/faults", {"mode": "drop", "for": 1}),
        Step(
            0.55 * duration,
            f"slow replies (2.5 s) for {slow:g} s",
            "/faults",
            {"mode": "slow", "delay": 2.5, "for": slow},
        ),
        Step(0.75 * duration, "reboot", "/reboot"),
    ]


def ci_schedule(duration: float) -> list[Step]:
    """One hang in the middle of the run."""
    hang = round(duration / 4, 1)
    return [Step(0.35 * duration, f"hang for {hang:g} s", "/faults", {"mode": "hang", "for": hang})]


async def first_viewer(http: aiohttp.ClientSession, url: str, locust: process.Child) -> None:
    """Wait until a websocket viewer is subscribed: the load has reached the gateway."""
    deadline = time.monotonic() + START_DEADLINE
    while locust.proc.returncode is None:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError, KeyError):
            async with http.get(f"{url}/api/routers", timeout=HTTP_TIMEOUT) as response:
                body = await response.json()
            if any(r["viewers"] for r in body["routers"]):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no viewer reached the gateway within {START_DEADLINE:g} s")
        await asyncio.sleep(0.1)  # pacing between polls


async def run_schedule(
    http: aiohttp.ClientSession,
    control: str,
    steps: Sequence[Step],
    gateway: str,
    locust: process.Child,
    outcome: Outcome,
) -> None:
    """Apply each fault at its time, counted from the first viewer's arrival."""
    await first_viewer(http, gateway, locust)
    t0 = time.monotonic()
    for step in steps:
        await asyncio.sleep(max(0.0, t0 + step.at - time.monotonic()))  # the schedule's clock
        at = time.monotonic() - t0
        try:
            async with http.post(
                control + step.path, json=step.body or {}, timeout=HTTP_TIMEOUT
            ) as response:
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {await response.text()}")
            outcome.applied.append(f"{at:5.1f} s  {step.what}")
        except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
            outcome.problems.append(f"fault {step.what!r} at {at:.1f} s not applied: {exc}")
