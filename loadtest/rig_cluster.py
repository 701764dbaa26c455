"""The cluster variant's part of the load test: its redis-server, reading Redis's figures, and
what must not go wrong in a cluster that nothing disturbs (leases, Redis calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from pathlib import Path
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError
from rig_outcome import Outcome
from rig_processes import started

from gateway import process

REDIS_READY: Final = r"Ready to accept connections"
"""The line redis-server prints once it listens."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for redis-server, which
    cannot pick one itself: ``--port 0`` switches TCP off)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_argv(port: int) -> list[str]:
    """Debian's redis-server on ``port`` of 127.0.0.1, without persistence (the cluster needs
    none: README, "Cluster mode"). RuntimeError when it is not installed."""
    program = shutil.which("redis-server")
    if program is None:
        raise RuntimeError(
            "the cluster variant needs redis-server (apt-get install redis-server), "
            "or run --variant single"
        )
    return [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]


class RedisInfo:
    """Reads a redis-server's ``INFO``: CPU seconds, commands processed, memory."""

    def __init__(self, url: str) -> None:
        self._client = Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)

    async def read(self) -> tuple[float, int, int]:
        """``used_cpu_sys + used_cpu_user`` (seconds), ``total_commands_processed`` and
        ``used_memory`` (bytes). RuntimeError when Redis does not answer within 3 s."""
        try:
            async with asyncio.timeout(3.0):
                info = await self._client.info()
        except (RedisError, OSError, TimeoutError) as exc:
            raise RuntimeError(f"Redis INFO unreadable: {exc}") from None
        cpu = float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        return cpu, int(info["total_commands_processed"]), int(info["used_memory"])

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(2.0):
                await self._client.aclose()


async def start_redis(
    stack: contextlib.AsyncExitStack, folder: Path, children: list[process.Child]
) -> tuple[str, RedisInfo]:
    """A redis-server for the cluster, stopped when ``stack`` closes: its URL, and its ``INFO``
    reader (closed with the stack)."""
    port = free_port()
    redis = await stack.enter_async_context(
        started("redis", redis_argv(port), REDIS_READY, folder, merged=True)
    )
    children.append(redis)
    url = f"redis://127.0.0.1:{port}/0"
    info = RedisInfo(url)
    stack.push_async_callback(info.close)
    return url, info


def cluster_problems(outcome: Outcome, routers: int) -> list[str]:
    """What went wrong in the cluster although nothing in the run stops a replica or Redis:
    a lease lost (a takeover), a lease held by two replicas, a Redis call failed."""
    problems = []
    if lost := outcome.total("lease_lost"):
        problems.append(f"leases lost {lost:.0f} times without a replica or Redis failing")
    if outcome.total("lease_held") > routers:
        problems.append(
            f"{outcome.total('lease_held'):.0f} leases held for {routers} router(s) after the run"
        )
    if errors := outcome.total("redis_errors"):
        problems.append(f"{errors:.0f} Redis calls failed")
    if outcome.total("degraded"):
        problems.append("a replica was degraded (Redis unreachable) after the run")
    return problems
