"""Browser end-to-end helpers: Debian's Chromium driven by Playwright for Python, against a real
``gateway serve`` process in front of emulated routers running on the test's event loop (the
fixtures are in ``tests/web/conftest.py``).

Chromium is launched from ``/usr/bin/chromium`` (``GATEWAY_TEST_CHROMIUM`` overrides); Playwright's
own browser downloads are never used. Without Playwright or Chromium the tests are skipped with
the reason, except in CI (``CI=true``), where a missing browser is a failure: a suite that
silently skips its browser tests proves nothing.

Every page records its console errors and every request it makes; a test fails on any console
error (Chromium's own "WebSocket connection ... failed" lines are tolerated only inside an
outage the test caused on purpose) and on any request that leaves the gateway's origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import re
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from gateway import process
from gateway.demo import DEMO_PASSWORD
from gateway.emulator.server import RouterEmulator
from tests.support.gateway import receive_until, subscribe
from tests.support.timing import seconds

if TYPE_CHECKING:
    from playwright.async_api import ConsoleMessage, Page, Request, ViewportSize

CHROMIUM = Path(os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}

POLL = {"interval": 0.5, "timeout": 1.0, "linger": 2.0, "backoff_initial": 0.2, "backoff_max": 2.0}
"""Quick polls and a short router backoff, so state changes show within a test's patience."""

# What Chromium itself logs (as a console error) for every refused websocket attempt.
_SOCKET_FAILURE = re.compile(r"^WebSocket connection to 'ws://127\.0\.0\.1:\d+/ws' failed")


def ms(n: float) -> float:
    """``n`` test-unit seconds as Playwright's milliseconds."""
    return seconds(n) * 1000


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (pip install playwright)"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


# -- the routers and the gateway process ---------------------------------------------------------


Routers = dict[str, tuple[str, RouterEmulator]]


def free_port() -> int:
    """A port free on 127.0.0.1 now (the gateway process is restarted on the same one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class ConfigExtras:
    """What a test adds to the browser tests' gateway configuration: lines for the ``[server]``
    table, TOML ``sections`` (such as an ``[auth]`` table) and, per router id, lines for its
    ``[[routers]]`` table."""

    server: str = ""
    sections: str = ""
    routers: dict[str, str] = field(default_factory=dict)


def gateway_config(routers: Routers, port: int, extras: ConfigExtras | None = None) -> str:
    """A ``gateway serve`` config for ``routers``, listening on ``port``, with ``extras``."""
    extras = extras or ConfigExtras()
    poll = "\n".join(f"{key} = {value}" for key, value in POLL.items())
    blocks = [
        f'[server]\nhost = "127.0.0.1"\nport = {port}\nshutdown_grace = 2.0\n{extras.server}\n'
        f"[poll]\n{poll}\n",
        extras.sections,
    ]
    for router_id, (name, emulator) in routers.items():
        blocks.append(
            f'[[routers]]\nid = "{router_id}"\nname = "{name}"\nhost = "127.0.0.1"\n'
            f'port = {emulator.port}\nusername = "admin"\npassword = "{DEMO_PASSWORD}"\n'
            f"{extras.routers.get(router_id, '')}\n"
        )
    return "\n".join(blocks)


@dataclass
class GatewayProcess:
    """``python -m gateway serve`` on a fixed port, so it can be killed and started again."""

    config: Path
    log: Path
    port: int
    child: process.Child | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def proc(self) -> asyncio.subprocess.Process | None:
        return None if self.child is None else self.child.proc

    async def start(self) -> None:
        argv = process.command("serve", "--config", str(self.config))
        self.child = await process.start(argv, name="gateway", log=self.log)
        try:
            await self.child.ready_on(process.GATEWAY_READY, seconds(10))
        except BaseException:
            await self.kill()
            raise
        assert self.child.port == self.port, self.child.output()

    async def kill(self) -> None:
        """SIGKILL: a crash, not a drain (no close frames, connections reset)."""
        child, self.child = self.child, None
        if child is not None:
            await child.kill()


@contextlib.asynccontextmanager
async def watching(gateway: GatewayProcess, router: str) -> AsyncIterator[None]:
    """Another viewer of ``router`` for the duration of the block (so the gateway polls it and
    keeps history), reading and discarding everything so it never counts as a slow consumer."""
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{gateway.url}ws")
        await receive_until(ws, "hello")
        await subscribe(ws, router)

        async def drain() -> None:
            async for _ in ws:
                pass

        # Owned here: cancelled and awaited when the block ends.
        reader = asyncio.create_task(drain())
        try:
            yield
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await ws.close()


# -- the page -------------------------------------------------------------------------------------


@dataclass
class Watch:
    """What a page said and fetched: console errors and requests outside the gateway."""

    origin: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    tolerated: int = 0
    _outage: bool = False

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if self._outage and _SOCKET_FAILURE.match(message.text):
            self.tolerated += 1
        else:
            self.errors.append(message.text)

    def on_page_error(self, error: Any) -> None:
        self.errors.append(f"uncaught: {error}")

    def on_request(self, request: Request) -> None:
        if not request.url.startswith((self.origin, "ws://127.0.0.1", "data:")):
            self.foreign.append(request.url)

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """While the gateway is down on purpose, Chromium logs each refused try: expected."""
        self._outage = True
        try:
            yield
        finally:
            self._outage = False

    def check(self) -> None:
        assert self.errors == [], f"console errors: {self.errors}"
        assert self.foreign == [], f"requests outside the gateway: {self.foreign}"


@dataclass
class Dashboard:
    page: Page
    watch: Watch
    gateway: GatewayProcess

    def view(self, index: int) -> Any:
        return self.page.locator("section.view").nth(index)

    async def evaluate(self, script: str, arg: Any = None) -> Any:
        return await self.page.evaluate(script, arg)

    async def point_times(self, router: str) -> list[float]:
        """The poll times of the points the page holds for ``router``, in order."""
        times: list[float] = await self.evaluate(
            "(r) => (window.gatewayDashboard.feed.routers.get(r)?.series.points ?? [])"
            ".map((p) => p.ts)",
            router,
        )
        return times

    async def wait_points(self, router: str, more_than: int, timeout: float = 10) -> None:
        """Wait until the page holds more than ``more_than`` points for ``router``."""
        await self.page.wait_for_function(
            "([r, n]) => (window.gatewayDashboard?.feed.routers.get(r)?.series.points.length"
            " ?? 0) > n",
            arg=[router, more_than],
            timeout=ms(timeout),
        )
