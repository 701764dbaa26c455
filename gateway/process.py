"""The gateway's own commands as child processes: start, wait until listening, read, stop.

The test suite and the load test run the real program (``gateway serve``, ``demo``,
``emulate``) the way an operator does, and need the same few things each time: start it with a
deadline on the line that says where it listens, the URL or port from that line, everything it
printed (for assertions, and for the failure message when it died), and an end that cannot hang
(SIGTERM, then SIGKILL after a deadline). This module is that one helper; the model is
uvicorn's test helper ``run_server``.

Each child's output is read as it comes by two tasks the child owns (stdout and stderr, so
neither pipe fills up and blocks the program), kept in memory, and copied to a log file when
one is given. Only the code that started a child stops it, through its ``Child``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

__all__ = [
    "CONTROL_READY",
    "EMULATOR_READY",
    "GATEWAY_READY",
    "STOP_DEADLINE",
    "Child",
    "ChildError",
    "Completed",
    "command",
    "run",
    "start",
    "started",
]

GATEWAY_READY: Final = r"gateway listening on (?P<url>http://[^/\s]+:(?P<port>\d+))/"
"""The line ``gateway serve`` and ``gateway demo`` print once they listen (stdout)."""

EMULATOR_READY: Final = r" emulator on (?P<host>\S+):(?P<port>\d+) \("
"""The line ``gateway emulate`` prints once its API port listens (stdout)."""

CONTROL_READY: Final = r"control API on (?P<url>http://[^/\s]+:(?P<port>\d+))/stats"
"""The line ``gateway emulate --control-port`` prints once the control API listens (stdout)."""

STOP_DEADLINE: Final = 10.0
"""Seconds a child may take to exit after SIGTERM before it gets SIGKILL."""

Stream = Literal["stdout", "stderr"]
Ending = Literal["terminate", "kill"]


class ChildError(RuntimeError):
    """A child did not start as expected: it exited, or did not print its line in time. The
    message names the child and what it waited for, and ends with the child's last output."""


def command(*args: str) -> list[str]:
    """``python -m gateway ARGS`` with this interpreter."""
    return [sys.executable, "-m", "gateway", *args]


@dataclass(frozen=True, slots=True)
class Completed:
    """A child that ran to its end: exit code and everything it printed."""

    returncode: int
    stdout: str
    stderr: str


class Child:
    """One started process: its output so far, its ready line's URL and port, and its end.

    Created by :func:`start`; the owner ends it with :meth:`stop` or :meth:`kill` (the
    :func:`started` context does that however its block ends).
    """

    def __init__(
        self, name: str, proc: asyncio.subprocess.Process, log: Path | None, capture: bool
    ) -> None:
        self.name = name
        self.proc = proc
        self.log = log
        # Every line printed so far (without line ends), per stream; appended by the readers.
        self.lines: dict[Stream, list[str]] = {"stdout": [], "stderr": []}
        # The line that matched the ready pattern (``started``/``expect``), for url and port.
        self.ready: re.Match[str] | None = None
        # Set on each new line; whoever waits in expect() clears it, then re-checks the lines.
        self._news = asyncio.Event()
        # The readers of stdout and stderr: owned here, ended at EOF, awaited by wait().
        self._readers: list[asyncio.Task[None]] = []
        if capture:
            self._readers = [
                asyncio.create_task(self._read(proc.stdout, "stdout"), name=f"{name}:stdout"),
                asyncio.create_task(self._read(proc.stderr, "stderr"), name=f"{name}:stderr"),
            ]

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    @property
    def url(self) -> str:
        """The base URL (no trailing slash) on the ready line: ``http://127.0.0.1:PORT``."""
        if self.ready is None or self.ready.groupdict().get("url") is None:
            raise ChildError(f"{self.name} has no URL: its ready line was not seen")
        return self.ready["url"]

    @property
    def port(self) -> int:
        """The port on the ready line."""
        if self.ready is None or self.ready.groupdict().get("port") is None:
            raise ChildError(f"{self.name} has no port: its ready line was not seen")
        return int(self.ready["port"])

    def output(self, stream: Stream = "stdout") -> str:
        """Everything the child printed on ``stream`` so far."""
        return "".join(line + "\n" for line in self.lines[stream])

    async def _read(self, pipe: asyncio.StreamReader | None, stream: Stream) -> None:
        if pipe is None:
            return
        out = self.log.open("a", encoding="utf-8") if self.log is not None else None
        try:
            async for raw in pipe:
                line = raw.decode(errors="replace").rstrip("\n")
                self.lines[stream].append(line)
                if out is not None:
                    out.write(line + "\n")
                    out.flush()
                self._news.set()
        finally:
            if out is not None:
                out.close()
            self._news.set()

    async def expect(
        self, pattern: str, timeout: float, *, stream: Stream = "stdout", after: int = 0
    ) -> re.Match[str]:
        """The first line on ``stream`` (from line ``after`` on) that ``pattern`` matches.

        Raises ChildError when the child exits first or nothing matches within ``timeout``
        seconds, with the child's last output in the message.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = after
        while True:
            lines = self.lines[stream]
            for line in lines[seen:]:
                if match := regex.search(line):
                    return match
            seen = max(seen, len(lines))
            if self.proc.returncode is not None and all(r.done() for r in self._readers):
                raise ChildError(
                    f"{self.name} exited with {self.proc.returncode} before printing "
                    f"{pattern!r}{self._tail()}"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildError(
                    f"{self.name} did not print {pattern!r} within {timeout:g} s{self._tail()}"
                )
            self._news.clear()
            # Woken by a new line; the process's exit is seen by the readers' EOF, or at least
            # every half second (an exit without output).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 0.5)):
                    await self._news.wait()

    async def ready_on(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait for the ready line (see :func:`started`); it gives ``url`` and ``port``."""
        self.ready = await self.expect(pattern, timeout)
        return self.ready

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` while the child runs (SIGSTOP and SIGCONT too)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    async def wait(self, timeout: float) -> int:
        """The exit code, within ``timeout`` seconds (TimeoutError otherwise); then the rest of
        its output is read."""
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await self._drain(timeout)
        return code

    async def stop(self, timeout: float = STOP_DEADLINE) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds; the exit code.

        SIGTERM is what Kubernetes and operators send: the gateway drains and exits 0.
        """
        if self.proc.returncode is None:
            self.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.send_signal(signal.SIGKILL)
                await self.proc.wait()
        return await self._ended()

    async def kill(self) -> int:
        """SIGKILL (a crash, not a drain; it also ends a stopped process); the exit code."""
        if self.proc.returncode is None:
            self.send_signal(signal.SIGKILL)
            await self.proc.wait()
        return await self._ended()

    async def _ended(self) -> int:
        await self._drain(STOP_DEADLINE)
        code = self.proc.returncode
        assert code is not None
        return code

    async def _drain(self, timeout: float) -> None:
        """Let the readers reach the end of the pipes; cancel them past ``timeout`` (a
        grandchild may hold a pipe open)."""
        if not self._readers:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.gather(*self._readers, return_exceptions=True)
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)

    def _tail(self, lines: int = 20) -> str:
        shown = [f"  {s}: {line}" for s in ("stdout", "stderr") for line in self.lines[s]]
        where = f"; log {self.log}" if self.log is not None else ""
        if not shown:
            return f" (it printed nothing{where})"
        return f"{where}; its last output:\n" + "\n".join(shown[-lines:])


async def start(
    argv: Sequence[str],
    *,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    capture: bool = True,
    merged: bool = False,
) -> Child:
    """Start ``argv`` (see :func:`command`), standard input closed.

    ``env`` is added to this process's environment. With ``capture`` (the default) stdout and
    stderr are read into the ``Child`` (and appended to ``log`` when given); without, the child
    writes to this process's own stdout and stderr (Locust's summary in the load test). With
    ``merged``, stderr goes into stdout: one stream, in the order the child wrote it.
    """
    pipe = asyncio.subprocess.PIPE if capture else None
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=pipe,
        stderr=asyncio.subprocess.STDOUT if merged and capture else pipe,
        env={**os.environ, **(env or {})},
    )
    return Child(name or Path(argv[0]).name, proc, log, capture)


@contextlib.asynccontextmanager
async def started(
    argv: Sequence[str],
    *,
    ready: str | None,
    deadline: float,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    ending: Ending = "kill",
    merged: bool = False,
) -> AsyncIterator[Child]:
    """Start ``argv``, wait up to ``deadline`` seconds for a stdout line matching ``ready``
    (its ``url`` and ``port`` groups become the child's), and end the child when the block
    ends: ``kill`` (a test's leftover, at once) or ``terminate`` (SIGTERM, then SIGKILL after
    ``STOP_DEADLINE``). A child that already exited is left as it is. ``merged``: see
    :func:`start`."""
    child = await start(argv, name=name, env=env, log=log, merged=merged)
    try:
        if ready is not None:
            await child.ready_on(ready, deadline)
        yield child
    finally:
        if ending == "terminate":
            await child.stop()
        else:
            await child.kill()


async def run(
    argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
) -> Completed:
    """Run ``argv`` to its end within ``timeout`` seconds (killed otherwise, and TimeoutError):
    its exit code and output, for commands that are meant to stop by themselves (a bad option,
    ``--help``)."""
    child = await start(argv, env=env)
    try:
        code = await child.wait(timeout)
    finally:
        if child.returncode is None:
            await child.kill()
    return Completed(code, child.output("stdout"), child.output("stderr"))
