"""A real gateway on loopback in front of real emulated routers, and a viewer's helpers: what
the gateway's app tests share."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.config import Settings, settings_from_dict
from gateway.contract import Phase, Rule, StreamCheck, Violation
from gateway.emulator.device import Device, sized_config
from gateway.emulator.server import RouterEmulator
from gateway.hub import Hub
from gateway.keys import HUB, METRICS, POLLERS
from gateway.metrics import Metrics
from gateway.poller import Clock, Poller
from gateway.routeros import Connector, connect_librouteros
from gateway.ws import WebSocketEndpoint
from gateway.ws_messages import Viewer
from tests.support.timing import seconds
from tests.support.tokens import SECRET

PASSWORD = "secret-pass"


def rss_kib() -> int:
    """This process's resident memory, in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def emulator(interfaces: int = 8, pppoe: int = 0, **kw: Any) -> RouterEmulator:
    """An emulated router (not started) with the harness's credentials."""
    clock = kw.pop("clock", time.monotonic)
    device_kw = {k: kw.pop(k) for k in list(kw) if k not in _EMULATOR_ARGS}
    device = Device(sized_config(interfaces, pppoe, **device_kw), clock=clock)
    return RouterEmulator(device, password=PASSWORD, **kw)


_EMULATOR_ARGS = {"max_sessions", "over_limit", "write_chunk", "username", "tls"}


LOOPBACK_LIMITS: Final = {"connections_per_address": 0, "handshakes_per_second": 0}
"""Every test client connects from 127.0.0.1, so the per-address limits (meant for clients on
the Internet) are off unless a test sets them; the other limits keep their defaults."""


def gateway_settings(
    emulators: Mapping[str, RouterEmulator],
    poll: Mapping[str, object] | None = None,
    *,
    limits: Mapping[str, object] | None = None,
    auth: Mapping[str, object] | None = None,
    **server: Any,
) -> Settings:
    """Settings for a gateway in front of these (already started) emulators; with ``auth``,
    jwt mode with the tests' HS256 secret (``tests.support.tokens.SECRET``) and those keys."""
    for router_id, emu in emulators.items():
        assert emu.port, f"start emulator {router_id!r} first (async with running(...))"
    jwt_auth = {"mode": "jwt", "jwt_secret_env": "GATEWAY_TEST_JWT_SECRET", **(auth or {})}
    return settings_from_dict(
        {
            "server": {"host": "127.0.0.1", "port": 0, **server},
            "auth": jwt_auth if auth is not None else {},
            "limits": {**LOOPBACK_LIMITS, **(limits or {})},
            "poll": {"interval": 0.5, "timeout": 1.0, "linger": 2.0, **(poll or {})},
            "routers": [
                {
                    "id": router_id,
                    "host": "127.0.0.1",
                    "port": emu.port,
                    "username": "admin",
                    "password": PASSWORD,
                }
                for router_id, emu in emulators.items()
            ],
        },
        source="test",
        env={"GATEWAY_TEST_JWT_SECRET": SECRET},
    )


@dataclass
class Gateway:
    """A running gateway: its app, base URL, and an HTTP session to talk to it."""

    app: web.Application
    server: TestServer
    http: aiohttp.ClientSession

    @property
    def hub(self) -> Hub:
        return self.app[HUB]

    @property
    def pollers(self) -> dict[str, Poller]:
        return self.app[POLLERS]

    @property
    def metrics(self) -> Metrics:
        return self.app[METRICS]

    def viewers(self) -> list[Viewer]:
        """Every websocket connected to the gateway now."""
        return [s for s in self.hub.connected() if isinstance(s, Viewer)]

    @property
    def endpoint(self) -> WebSocketEndpoint:
        """The object serving ``/ws`` (the app holds it only as its route's handler)."""
        for route in self.app.router.routes():
            owner = getattr(route.handler, "__self__", None)
            if isinstance(owner, WebSocketEndpoint):
                return owner
        raise AssertionError("no /ws route")

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def get_json(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.url(path), timeout=aiohttp.ClientTimeout(total=5)) as r:
            return r.status, await r.json()

    async def viewer(self, **kw: Any) -> aiohttp.ClientWebSocketResponse:
        """Open a websocket and consume the hello."""
        ws: aiohttp.ClientWebSocketResponse = await self.http.ws_connect(
            self.url("/ws"), timeout=aiohttp.ClientWSTimeout(5), **kw
        )
        hello = await receive(ws)
        assert hello["type"] == "hello"
        return ws


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float | None = None) -> Any:
    """The next JSON message (a deadline always applies)."""
    msg = await ws.receive(timeout=timeout if timeout is not None else seconds(5))
    assert msg.type is aiohttp.WSMsgType.TEXT, f"expected a text frame, got {msg.type} {msg.data}"
    return orjson.loads(msg.data)


async def receive_until(
    ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float | None = None
) -> Any:
    """Skip messages until one of type ``kind`` arrives."""
    deadline = time.monotonic() + (timeout if timeout is not None else seconds(5))
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {kind!r} message in time")
        message = await receive(ws, left)
        if message["type"] == kind:
            return message


STRUCTURE: Final = frozenset({Rule.ORDER, Rule.SHAPE, Rule.SIZE, Rule.SEQ})
"""The contract's rules a test holds the gateway to by default: order, shape, size and seq.

Silences depend on the machine's pace (they are the load test's business), and a resume
answered with ``reset`` is what some tests ask for (they check ``reset`` themselves)."""


def holds(found: list[Violation], rules: frozenset[Rule] = STRUCTURE) -> None:
    """Fail naming every violation of ``rules`` in ``found`` (``gateway.contract``)."""
    broken = [str(v) for v in found if v.rule in rules]
    assert not broken, "; ".join(broken)


async def subscribe(
    ws: aiohttp.ClientWebSocketResponse,
    router: str,
    *,
    check: StreamCheck | None = None,
    **fields: Any,
) -> tuple[Any, Any]:
    """Subscribe; returns the status and history messages that must come first, in that order.

    The answer is checked against the contract (``gateway.contract``: status first, then the
    history messages through the one without ``more``, all of one ``reset``, frames in order).
    A history in several messages is returned as one, with every frame. ``check`` (a viewer's
    checker that goes on judging its live frames) is used when given.
    """
    if check is None:
        check = StreamCheck()
    source = fields.get("source", "interfaces")
    check.subscribe(router, time.monotonic(), since=fields.get("since"), source=source)
    await ws.send_str(orjson.dumps({"type": "subscribe", "router": router, **fields}).decode())
    return await subscribe_answer(ws, router, check, source=source)


async def subscribe_answer(
    ws: aiohttp.ClientWebSocketResponse,
    router: str,
    check: StreamCheck,
    timeout: float | None = None,
    *,
    others: bool = False,
    source: str = "interfaces",
) -> tuple[Any, Any]:
    """The status and history that answer a subscribe to ``router``'s ``source``, read and held
    to the contract by ``check``; with ``others``, messages about other routers or sources before
    the status (a connection streaming them already) are skipped: the status and history come
    one right after the other all the same."""
    deadline = time.monotonic() + (timeout if timeout is not None else seconds(5))
    status: Any = None
    chunks: list[Any] = []
    while check.phase(router, source) is not Phase.LIVE:
        message = await receive(ws, max(deadline - time.monotonic(), 0.001))
        if (
            others
            and check.phase(router, source) is Phase.STATUS
            and (message.get("router"), message.get("source", "interfaces")) != (router, source)
        ):
            continue
        assert message["type"] != "error", message
        holds(check.receive(message, time.monotonic()))
        if message["type"] == "status":
            status = message
        elif message["type"] == "history":
            chunks.append(message)
    return status, merge_history(chunks)


def merge_history(chunks: list[Any]) -> Any:
    """The history messages of one subscribe as one message with every frame, in order (what a
    client may rely on in them is ``gateway.contract``'s to check)."""
    return {**chunks[-1], "frames": [frame for chunk in chunks for frame in chunk["frames"]]}


@contextlib.asynccontextmanager
async def running(*emulators: RouterEmulator) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for emu in emulators:
            await stack.enter_async_context(emu)
        yield


@contextlib.asynccontextmanager
async def gateway(
    settings: Settings,
    *,
    clock: Clock = time.monotonic,
    heartbeat: float | None = None,
    idle_logout: float | None = None,
    connect: Connector = connect_librouteros,
) -> AsyncIterator[Gateway]:
    """Run the gateway on a real loopback port until the block ends."""
    app = create_app(
        settings, clock=clock, heartbeat=heartbeat, idle_logout=idle_logout, connect=connect
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        try:
            yield Gateway(app, server, http)
        finally:
            await server.close()


# -- helpers for the app tests ----------------------------------------------------------


PRINT: Final = "/interface/print"
"""The one command the gateway sends each tick."""


def prints(emu: RouterEmulator) -> int:
    """How many ``/interface/print`` requests the emulated router has answered so far."""
    return emu.commands[PRINT]


async def send(ws: aiohttp.ClientWebSocketResponse, message: object) -> None:
    """Send one client message as a JSON text frame."""
    await ws.send_str(orjson.dumps(message).decode())


async def subscribe_also(
    ws: aiohttp.ClientWebSocketResponse, router: str, timeout: float
) -> tuple[Any, Any]:
    """Subscribe on a connection that may already stream other routers.

    Returns the router's status and history, which must come in that order, one right after
    the other (``gateway.contract``); messages about other routers on the way are skipped.
    """
    check = StreamCheck()
    check.subscribe(router, time.monotonic())
    await send(ws, {"type": "subscribe", "router": router})
    status, history = await subscribe_answer(ws, router, check, timeout, others=True)
    assert history["router"] == router, history
    return status, history


async def next_traffic(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> Any:
    """The next ``traffic`` message, failing on anything but heartbeats and status in between."""
    deadline = time.monotonic() + timeout
    while True:
        message = await receive(ws, max(deadline - time.monotonic(), 0.001))
        if message["type"] == "traffic":
            return message
        assert message["type"] in ("heartbeat", "status"), message


def metric(text: str, name: str, labels: str = "") -> float:
    """One sample's value from Prometheus text: ``metric(t, "gateway_viewers", 'router="a"')``."""
    braces = f"{{{labels}}}" if labels else ""
    match = re.search(rf"^{re.escape(name + braces)} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"no sample {name}{braces} in /metrics"
    return float(match.group(1))


def sample(gw: Gateway, name: str, **labels: str) -> float:
    """A metric's current value in the gateway's own registry (0 when never touched)."""
    value = gw.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def metrics_text(gw: Gateway) -> str:
    async with gw.http.get(gw.url("/metrics")) as response:
        assert response.status == 200
        return await response.text()


class PollClock:
    """One clock for an emulated router and the gateway that polls it, exact to the poll of one
    command (``/interface/print`` unless told).

    Rates are counter deltas over the poller's sample times, and the emulator integrates its
    counters over its own clock. On a real clock the two read time a moment apart (the reply's
    trip back to the poller), which on a busy machine is several milliseconds of a few hundred:
    too much for a 0.5% check. This clock removes the gap: each time the router receives an
    ``/interface/print`` the clock takes the real time once, the router counts traffic up to that
    instant (``router``), and the poller's next reading (the sample time it takes on the reply)
    is that same instant (``gateway``). Otherwise the gateway sees real time, so its cadence,
    back-off and linger behave as in production; the router's time stands still between polls,
    so traffic set or added by a test between two polls belongs wholly to the next poll.
    """

    def __init__(self, command: str = PRINT) -> None:
        # The command whose requests set the instants (a source's print).
        self.command = command
        # Attached once the emulator exists (its Device needs this clock first).
        self.emulator: RouterEmulator | None = None
        self._seen = -1
        self._now = time.monotonic()
        # True from a print's instant until the gateway has read it as its sample time.
        self._unread = False
        # The instant of each print, by its count: what a test divides added bytes by.
        self.instants: dict[int, float] = {}

    def _update(self) -> None:
        if self.emulator is None:
            return
        count = self.emulator.commands[self.command]
        if count != self._seen:
            self._seen = count
            self._now = time.monotonic()
            self.instants[count] = self._now
            self._unread = True

    def router(self) -> float:
        self._update()
        return self._now

    def gateway(self) -> float:
        self._update()
        if self._unread:
            self._unread = False
            return self._now
        return time.monotonic()
