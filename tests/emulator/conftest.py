"""Fixtures of the emulator's tests: emulated routers on the test's loop and fake clock, and
real client connections to them (see ``tests.support.emulators``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from librouteros.login import async_token, token

from gateway.emulator.server import RouterEmulator
from tests.emulator.librouteros_client import Librouteros, Login
from tests.support.emulators import Clients, FakeClock, Routers


@pytest.fixture
def fake_clock() -> FakeClock:
    """The clock of every emulated router in the test."""
    return FakeClock()


@pytest.fixture
async def routers(fake_clock: FakeClock) -> AsyncIterator[Routers]:
    """Starts emulators for the test and stops them all at its end."""
    started = Routers(fake_clock)
    try:
        yield started
    finally:
        await started.stop_all()


@pytest.fixture
async def router(routers: Routers) -> RouterEmulator:
    """A started RouterOS 7.18.2 emulator with 8 interfaces, on the test's fake clock."""
    return await routers.start()


@pytest.fixture
async def clients(routers: Routers) -> AsyncIterator[Clients]:
    """Client connections for the test, closed before its emulators stop."""
    opened = Clients()
    try:
        yield opened
    finally:
        await opened.close_all()


@pytest.fixture(params=["connect", "async_connect"])
def login(request: pytest.FixtureRequest, clients: Clients) -> Login:
    """Log in with librouteros ``connect`` or ``async_connect`` (``legacy``: the MD5 challenge)."""
    blocking = request.param == "connect"

    async def login(router: RouterEmulator, *, legacy: bool = False, **options: Any) -> Librouteros:
        if legacy:
            options["login_method"] = token if blocking else async_token
        if blocking:
            return Librouteros(await clients.connect(router, **options), blocking=True)
        return Librouteros(await clients.async_connect(router, **options), blocking=False)

    return login
