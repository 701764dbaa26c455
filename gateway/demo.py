"""``gateway demo``: emulated routers on loopback plus the gateway, in one process.

Three routers that a NOC would recognise: a small office router with a guest hotspot, an ISP
access router with hundreds of PPPoE customers who come and go (each with its PPP session and a
dynamic simple queue holding its plan) and business customers on static plan queues, and a flaky
router that now and then hangs or drops the connection, so the dashboard's badges and recovery
can be seen without a real router.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import AsyncIterator, Mapping
from typing import Final

from gateway.config import Settings, settings_from_dict
from gateway.config.load import env_variable
from gateway.emulator.device import Device, sized_config
from gateway.emulator.server import Fault, RouterEmulator
from gateway.emulator.version import Version
from gateway.faults import UnexpectedErrors

logger = logging.getLogger(__name__)

DEMO_PASSWORD: Final = "demo"

# What each demo router serves: the office has a guest hotspot (and its users' dynamic queues),
# the ISP router PPPoE customers and plan queues, the tower links only.
DEMO_SOURCES: Final[Mapping[str, tuple[str, ...]]] = {
    "office": ("interfaces", "queues", "hotspot"),
    "isp-bras": ("interfaces", "queues"),
    "tower-3": ("interfaces",),
}

# How often the flaky router misbehaves, and for how long.
FLAKY_EVERY: Final = (40.0, 80.0)
FLAKY_FOR: Final = (5.0, 12.0)


def demo_emulators() -> dict[str, tuple[str, RouterEmulator]]:
    """The demo's routers: id -> (display name, emulator not yet started)."""
    office = Device(sized_config(8, 0, identity="office-gw", board="RB5009UG+S+", hotspot=12))
    isp = Device(
        sized_config(
            12,
            300,
            version=Version(6, 49, 10),
            identity="bras-1",
            pppoe_session=180.0,
            queues=40,
            board="CCR1036-8G-2S+",
            seed=7,
        )
    )
    flaky = Device(sized_config(6, 0, identity="tower-3", board="RB4011iGS+", seed=3))
    return {
        "office": ("Office router", RouterEmulator(office, password=DEMO_PASSWORD)),
        "isp-bras": ("ISP access (PPPoE)", RouterEmulator(isp, password=DEMO_PASSWORD)),
        "tower-3": ("Flaky tower router", RouterEmulator(flaky, password=DEMO_PASSWORD)),
    }


def demo_settings(
    emulators: dict[str, tuple[str, RouterEmulator]],
    *,
    host: str,
    port: int,
    env: Mapping[str, str] = os.environ,
) -> Settings:
    """The gateway's settings in front of the (started) demo routers, listening on host:port.

    ``GATEWAY_SERVER_HOST`` and ``GATEWAY_SERVER_PORT`` in ``env`` are not applied: they are
    only the defaults of ``--host`` and ``--port``, which win when given. Every other
    ``GATEWAY_<SECTION>_<KEY>`` variable applies (and an unknown one is refused) as for
    ``serve``. Raises ConfigError.
    """
    given = {env_variable("server", "host"), env_variable("server", "port")}
    env = {name: value for name, value in env.items() if name not in given}
    return settings_from_dict(
        {
            "server": {"host": host, "port": port, "shutdown_grace": 5.0},
            "poll": {"interval": 1.0, "timeout": 2.0, "backoff_max": 10.0},
            "routers": [
                {
                    "id": router_id,
                    "name": name,
                    "host": "127.0.0.1",
                    "port": emu.port,
                    "username": "admin",
                    "password": DEMO_PASSWORD,
                    "sources": list(DEMO_SOURCES.get(router_id, ("interfaces",))),
                }
                for router_id, (name, emu) in emulators.items()
            ],
        },
        source="demo",
        env=env,
    )


async def _misbehave(emulator: RouterEmulator, rng: random.Random) -> None:
    unexpected = UnexpectedErrors(logger, "demo fault schedule")
    while True:
        await asyncio.sleep(rng.uniform(*FLAKY_EVERY))
        mode = rng.choice(("hang", "drop", "hang"))
        try:
            await emulator.set_fault(Fault(mode, duration=rng.uniform(*FLAKY_FOR)))  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - the schedule outlives one failed fault
            unexpected.report(exc)


@contextlib.asynccontextmanager
async def running_demo_routers() -> AsyncIterator[dict[str, tuple[str, RouterEmulator]]]:
    """Start the demo routers (and the flaky one's misbehaviour); stop them all on exit."""
    emulators = demo_emulators()
    for _, emu in emulators.values():
        await emu.start()
    # Owned here: the flaky router's fault schedule, cancelled on exit.
    chaos = asyncio.create_task(_misbehave(emulators["tower-3"][1], random.Random(11)))
    try:
        yield emulators
    finally:
        chaos.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await chaos
        for _, emu in emulators.values():
            await emu.stop()
