"""Every source's print, read in bulk, gives the rows librouteros' own word-by-word reading gives
(over a real socket to the emulator, big replies included)."""

from __future__ import annotations

import logging

import pytest

from gateway.config import settings_from_dict
from gateway.core.sources import COMMANDS, PROPLISTS, SESSION_PROPLIST, SESSIONS_COMMAND
from gateway.emulator.device import Device, sized_config
from gateway.emulator.server import RouterEmulator
from gateway.routeros import BULK_COMMANDS, RouterClient
from tests.support.timing import seconds, within

CASES = [
    (COMMANDS["interfaces"], PROPLISTS["interfaces"]),
    (COMMANDS["queues"], PROPLISTS["queues"]),
    (COMMANDS["hotspot"], PROPLISTS["hotspot"]),
    (SESSIONS_COMMAND, SESSION_PROPLIST),
]


@pytest.mark.parametrize(("command", "proplist"), CASES, ids=[c for c, _ in CASES])
async def test_each_sources_print_reads_the_same_in_bulk_and_word_by_word(
    command: str, proplist: tuple[str, ...], caplog: pytest.LogCaptureFixture
) -> None:
    """A source's reply of hundreds of rows (non-ASCII comments included) reads the same rows
    through the bulk reader as through librouteros word by word."""
    assert command in BULK_COMMANDS
    device = Device(
        sized_config(8, pppoe=300, queues=200, hotspot=150, pppoe_session=0, hotspot_session=0),
        clock=lambda: 100.0,  # the router's time stands still: both reads see the same counters
    )
    async with RouterEmulator(device, password="pw") as emu:
        entry = {"id": "r", "host": "127.0.0.1", "port": emu.port, "username": "admin"}
        settings = settings_from_dict({"routers": [{**entry, "password": "pw"}]}, source="t")
        client = RouterClient(settings.routers[0], seconds(5))
        try:
            bulk = await within(client.print_rows(command, proplist), seconds(10))
            # With librouteros' debug log on, every reply is read (and logged) word by word.
            caplog.set_level(logging.DEBUG, logger="librouteros")
            words = await within(client.print_rows(command, proplist), seconds(10))
        finally:
            await client.close()
    assert len(bulk) >= 150
    assert bulk == words
