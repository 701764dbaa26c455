"""Gateway replicas in cluster mode as real processes, and viewers that record what they get.

The replicas are ``gateway serve`` processes (``gateway.process``) sharing one configuration:
one emulated router (in the test's process, so a test reads its request counter directly) and
one real redis-server (``tests.support.redis``). Each ``Watcher`` is one websocket viewer that
reads in a task of its own and holds every message to the contract in cluster mode
(``gateway.contract``, ``cluster=True``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson

from gateway import process
from gateway.contract import StreamCheck, Violation
from gateway.core.cluster import lease_ttl_ms
from gateway.emulator.server import RouterEmulator
from tests.support.gateway import PASSWORD, STRUCTURE, metric, receive, subscribe
from tests.support.timing import seconds

ROUTER: Final = "core-1"


@dataclass(frozen=True)
class Timing:
    """The poll settings of a test's cluster, and the lease TTL they make (seconds)."""

    interval: float = 0.25
    timeout: float = 1.0
    linger: float = 1.0

    @property
    def ttl(self) -> float:
        return lease_ttl_ms(self.interval, self.timeout) / 1000


def write_config(path: Path, emu: RouterEmulator, redis_url: str, timing: Timing) -> Path:
    """A configuration for replicas in front of ``emu`` sharing ``redis_url``."""
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = 0
shutdown_grace = 3.0
drain_hold = 0.0

[poll]
interval = {timing.interval}
timeout = {timing.timeout}
linger = {timing.linger}
backoff_initial = 0.1
backoff_max = 0.5

[cluster]
redis_url = "{redis_url}"

[[routers]]
id = "{ROUTER}"
host = "127.0.0.1"
port = {emu.port}
username = "admin"
password_env = "CORE1_PASSWORD"
"""
    )
    return path


@contextlib.asynccontextmanager
async def replicas(config: Path, count: int) -> AsyncIterator[list[process.Child]]:
    """``count`` gateway processes on ``config``, started together; killed when the block ends
    (a test that ends one itself, e.g. with ``kill()``, leaves it ended)."""
    children: list[process.Child] = []
    try:
        for index in range(count):
            child = await process.start(
                process.command("serve", "--config", str(config)),
                name=f"replica-{index}",
                env={"CORE1_PASSWORD": PASSWORD},
                merged=True,
            )
            children.append(child)
        await asyncio.gather(*(c.ready_on(process.GATEWAY_READY, seconds(15)) for c in children))
        yield children
    finally:
        await asyncio.gather(*(c.kill() for c in children))


def logs(children: list[process.Child]) -> str:
    """What the replicas printed, for a failure message."""
    return "\n".join(f"--- {c.name}\n{c.output()}" for c in children)


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=seconds(5))) as response:
        return response.status, await response.json(content_type=None)


async def lease_held(http: aiohttp.ClientSession, replica: process.Child) -> float:
    """The replica's ``gateway_cluster_lease_held`` for the router."""
    timeout = aiohttp.ClientTimeout(total=seconds(5))
    async with http.get(f"{replica.url}/metrics", timeout=timeout) as response:
        text = await response.text()
    return metric(text, "gateway_cluster_lease_held", f'router="{ROUTER}"')


async def holders(http: aiohttp.ClientSession, group: list[process.Child]) -> list[int]:
    """The indexes (in ``group``) of the replicas that hold the router's lease."""
    held = await asyncio.gather(*(lease_held(http, r) for r in group))
    return [i for i, value in enumerate(held) if value == 1]


class Watcher:
    """One websocket viewer of one source of the router (interfaces unless told): its frames,
    statuses and contract violations.

    ``open`` connects to a replica and subscribes (optionally resuming ``since``); a task then
    reads every message until the connection ends or ``close``. ``frames`` holds ``(seq, ts,
    arrival)`` of the live traffic frames, ``history`` the seqs of the subscribe's history.
    """

    def __init__(self, http: aiohttp.ClientSession, source: str = "interfaces") -> None:
        self.http = http
        self.source = source
        # The row lists of the live frames, newest last.
        self.rows: list[list[dict[str, Any]]] = []
        self.check = StreamCheck(cluster=True)
        self.frames: list[tuple[int, float, float]] = []
        self.history: list[int] = []
        self.statuses: list[dict[str, Any]] = []
        self.violations: list[Violation] = []
        self.ended = asyncio.Event()
        self.reset: bool | None = None
        # The reading task, from open() to close() (or the connection's end).
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    @property
    def last_seq(self) -> int | None:
        return self.check.last_seq(ROUTER, self.source)

    @property
    def status(self) -> dict[str, Any]:
        return self.statuses[-1] if self.statuses else {}

    async def open(self, replica: process.Child, since: int | None = None) -> None:
        self.ended.clear()
        ws = await self.http.ws_connect(
            f"{replica.url}/ws", timeout=aiohttp.ClientWSTimeout(seconds(5))
        )
        self._ws = ws
        self.check.connect(time.monotonic())
        hello = await receive(ws)
        self.violations += self.check.receive(hello, time.monotonic())
        fields: dict[str, Any] = {} if since is None else {"since": since}
        if self.source != "interfaces":
            fields["source"] = self.source
        status, history = await subscribe(ws, ROUTER, check=self.check, **fields)
        self.statuses.append(status)
        self.history = [frame["seq"] for frame in history["frames"]]
        self.reset = history["reset"]
        self._task = asyncio.create_task(self._read(ws))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            while True:
                msg = await ws.receive(timeout=seconds(20))
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    return  # closed (or an error): the connection ended
                message = orjson.loads(msg.data)
                now = time.monotonic()
                self.violations += [
                    v for v in self.check.receive(message, now) if v.rule in STRUCTURE
                ]
                if message["type"] == "traffic":
                    self.frames.append((message["seq"], message["ts"], now))
                    self.rows.append(message[message.get("source", "interfaces")])
                elif message["type"] == "status":
                    self.statuses.append(message)
        finally:
            self.ended.set()

    def seqs(self) -> list[int]:
        return [seq for seq, _, _ in self.frames]

    async def close(self) -> None:
        task, self._task = self._task, None
        if self._ws is not None:
            with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                async with asyncio.timeout(seconds(2)):
                    await self._ws.close()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
