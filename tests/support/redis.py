"""A real ``redis-server`` (Debian's) on a free loopback port, for the cluster tests.

No persistence (``--save '' --appendonly no``): a restart starts empty, as the cluster's Redis may.
Without the program the test is skipped locally and fails in CI (``tests.support.needs``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator

from gateway import process
from tests.support.needs import missing
from tests.support.timing import seconds

READY = r"Ready to accept connections"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process on ``port``; ``stop`` and ``start`` again keep the port (and
    lose the data: a restart)."""

    def __init__(self, program: str, port: int) -> None:
        self.program = program
        self.port = port
        # The running process, from start() to stop(); only this object ends it.
        self._child: process.Child | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        argv = [
            self.program,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self._child = await process.start(argv, name="redis-server")
        try:
            await self._child.expect(READY, seconds(10))
        except BaseException:
            await self.stop()
            raise

    def pause(self) -> None:
        """Freeze the server (SIGSTOP: a stalled Redis, or a partition). Connections are still
        accepted by the kernel and what clients send waits in the sockets, to be run on
        ``resume``, whether or not the clients still wait for it."""
        assert self._child is not None
        os.kill(self._child.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT)."""
        assert self._child is not None
        os.kill(self._child.pid, signal.SIGCONT)

    async def stop(self) -> None:
        """End the server at once (SIGKILL: as when its node fails)."""
        child, self._child = self._child, None
        if child is not None:
            await child.kill()


@contextlib.asynccontextmanager
async def redis_server() -> AsyncIterator[RedisServer]:
    """A running redis-server, stopped when the block ends."""
    program = shutil.which("redis-server")
    if program is None:
        missing("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(program, free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
