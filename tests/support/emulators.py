"""Helpers that drive the RouterOS API emulator with real client libraries over loopback (the
fixtures built on them are in ``tests/emulator/conftest.py``).

One approach throughout: the emulator runs on the test's own event loop, so a test awaits its
controls (``set_fault``, ``reboot``, ``reset_counters``) directly, and librouteros
``async_connect`` shares that loop. The blocking clients (librouteros ``connect`` and
``routeros_api``) run in worker threads through ``in_thread``, always under a deadline, so the
emulator keeps serving while they wait on it. Every connection is opened through ``clients`` and
closed when the test ends, however the test ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections.abc import AsyncIterable, Callable
from typing import Any, TypeVar

import librouteros
import routeros_api

from gateway.emulator.device import Device, DeviceConfig, sized_config
from gateway.emulator.server import OverLimit, RouterEmulator
from tests.support.timing import seconds, within

T = TypeVar("T")

CLIENT_TIMEOUT = seconds(1)
"""Every client's socket timeout: ample on loopback, short enough to keep timeout tests quick."""

DEADLINE = seconds(5)
"""How long one client call may take in a test, its own timeout included, before the test fails."""

WALL_START = 1_704_189_600.0
"""2024-01-02 10:00:00 UTC: the emulated routers' wall clock at the start of every test."""

Row = dict[str, Any]


class FakeClock:
    """Time that moves only when the test moves it; the monotonic and wall clocks move together.

    Only the test's coroutine advances it, and only the emulator (on the same loop) reads it.
    """

    def __init__(self, wall: float = WALL_START) -> None:
        self.elapsed = 0.0
        self._wall = wall

    def monotonic(self) -> float:
        return 1000.0 + self.elapsed

    def wall(self) -> float:
        return self._wall + self.elapsed

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self.elapsed += seconds


class Routers:
    """Starts emulators on the test's loop, each backed by a Device on the test's fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        # Every emulator started in this test, stopped (in order) by the fixture's teardown.
        self._started: list[RouterEmulator] = []

    async def start(
        self,
        config: DeviceConfig | None = None,
        *,
        max_sessions: int = 20,
        over_limit: OverLimit = "close",
        write_chunk: int = 0,
        tls: ssl.SSLContext | None = None,
        device_type: type[Device] = Device,
    ) -> RouterEmulator:
        """A listening emulator (8 interfaces, RouterOS 7.18.2 unless ``config`` says otherwise);
        api-ssl with ``tls`` (a server context from ``gateway.emulator.tls``).

        The version decides the login: the MD5 challenge only before 6.43. ``device_type`` may
        be a subclass of ``Device`` that injects a fault of its own.
        """
        device = device_type(
            config or sized_config(8), clock=self.clock.monotonic, wall=self.clock.wall
        )
        emulator = RouterEmulator(
            device,
            max_sessions=max_sessions,
            over_limit=over_limit,
            write_chunk=write_chunk,
            tls=tls,
        )
        await emulator.start()
        self._started.append(emulator)
        return emulator

    async def stop_all(self) -> None:
        for emulator in self._started:
            await emulator.stop()


async def in_thread(call: Callable[[], T], *, timeout: float = DEADLINE) -> T:
    """Run a blocking client call in a worker thread; fail the test if it outlives ``timeout``."""
    return await within(asyncio.to_thread(call), timeout)


async def rows_of(replies: AsyncIterable[Row], *, timeout: float = DEADLINE) -> list[Row]:
    """Every row of an async librouteros reply, under a deadline."""

    async def collect() -> list[Row]:
        return [row async for row in replies]

    return await within(collect(), timeout)


async def _close_async(api: Any) -> None:
    # A connection the router already dropped may fail to close cleanly; it is closed all the same.
    with contextlib.suppress(OSError):
        await api.close()


class Clients:
    """Real client connections, logged in to an emulator; all closed when the test ends."""

    def __init__(self) -> None:
        # Closers of every connection opened so far, run in reverse order at teardown.
        self._closers = contextlib.AsyncExitStack()

    async def connect(
        self,
        router: RouterEmulator,
        *,
        password: str | None = None,
        timeout: float = CLIENT_TIMEOUT,
        **options: Any,
    ) -> Any:
        """librouteros ``connect`` (blocking): call the returned ``Api`` through ``in_thread``."""
        call = functools.partial(
            librouteros.connect,
            router.host,
            router.username,
            router.password if password is None else password,
            port=router.port,
            timeout=timeout,
            **options,
        )
        api = await in_thread(call)
        self._closers.callback(api.close)
        return api

    async def async_connect(
        self,
        router: RouterEmulator,
        *,
        password: str | None = None,
        timeout: float = CLIENT_TIMEOUT,
        **options: Any,
    ) -> Any:
        """librouteros ``async_connect``: an ``AsyncApi`` on the test's loop."""
        login = librouteros.async_connect(
            router.host,
            router.username,
            router.password if password is None else password,
            port=router.port,
            timeout=timeout,
            **options,
        )
        api = await within(login, DEADLINE)
        self._closers.push_async_callback(_close_async, api)
        return api

    async def routeros_api(
        self,
        router: RouterEmulator,
        *,
        password: str | None = None,
        plaintext_login: bool = True,
        timeout: float = CLIENT_TIMEOUT,
    ) -> Any:
        """A ``routeros_api`` ``RouterOsApi`` (blocking): call it through ``in_thread``."""
        pool = routeros_api.RouterOsApiPool(
            router.host,
            username=router.username,
            password=router.password if password is None else password,
            port=router.port,
            plaintext_login=plaintext_login,
        )
        # The pool reads its socket timeout (15 s by default) when it connects.
        pool.socket_timeout = timeout
        # Registered first: the library leaves its socket open when the login itself fails.
        self._closers.callback(pool.disconnect)
        return await in_thread(pool.get_api)

    async def close_all(self) -> None:
        await self._closers.aclose()
