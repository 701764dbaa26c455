"""What the benchmarks share, by section: their server processes (each prints the address it
listens on first; ``spawn`` waits for it, ``Server.stop`` ends it), readings of another process
from ``/proc``, the viewers' client (``fanout_client.py``: its command line, its JSON lines, a
window's figures), figures and reports, the baseline servers' side, and an aiohttp viewer.

Only the standard library is imported at the top: the raw-send floor and the viewers' client
import this module too, and must stay lean.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from aiohttp import web

HERE: Final = Path(__file__).resolve().parent
ROOT: Final = HERE.parents[1]
"""The repository: every server runs from there, as ``make`` runs them."""
PYTHON: Final = sys.executable
LISTENING: Final = r"listening on http://[\d.]+:(\d+)/"
"""The line a baseline server prints once it listens (see ``listening``)."""


# -- processes ------------------------------------------------------------------------------------


@dataclass
class Server:
    """A running server process and the ports it printed."""

    proc: subprocess.Popen[bytes]
    ports: list[int]
    # Processes this one depends on (an emulated router behind a gateway); stopped after it.
    behind: list[Server] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return self.ports[0]

    def stop(self) -> None:
        for server in (self, *self.behind):
            proc = server.proc
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            for path in server.files:
                path.unlink(missing_ok=True)


def spawn(
    args: list[str], patterns: list[str], timeout: float = 30.0, cwd: str | None = None
) -> Server:
    """Start ``args`` (in ``cwd``, the repository by default) and wait for one stdout line
    matching each of ``patterns`` in turn; each pattern's group 1, if it has one, is a port."""
    # Unbuffered: select() must see every line still unread.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, cwd=cwd or ROOT, bufsize=0)
    assert proc.stdout is not None
    ports: list[int] = []
    deadline = time.monotonic() + timeout
    for pattern in patterns:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, left))
            line = proc.stdout.readline() if ready else b""
            if not line:
                proc.kill()
                raise SystemExit(f"{' '.join(args[:4])}... did not start")
            match = re.search(pattern, line.decode())
            if match:
                if match.groups():
                    ports.append(int(match.group(1)))
                break
    return Server(proc, ports)


def emulate_args(
    interfaces: int, pppoe: int, max_sessions: int, *, pppoe_session: float = 0, control: bool
) -> list[str]:
    """The arguments of ``gateway emulate`` on a free port (and, with ``control``, its control
    API on another): ``interfaces`` static ones, ``pppoe`` customers whose sessions last
    ``pppoe_session`` seconds on average (0: forever), at most ``max_sessions`` API sessions."""
    return [
        *("emulate", "--port", "0"),
        *(("--control-port", "0") if control else ()),
        *("--interfaces", str(interfaces), "--pppoe", str(pppoe)),
        *("--pppoe-session", f"{pppoe_session:g}", "--max-sessions", str(max_sessions)),
        *("--log-level", "WARNING"),
    ]


def start_emulator(
    interfaces: int,
    pppoe: int = 0,
    max_sessions: int = 20,
    *,
    pppoe_session: float = 0,
    timeout: float = 30.0,
) -> Server:
    """``gateway emulate`` on a free port (``.port``), with its control API on another
    (``.ports[1]``); see ``emulate_args``."""
    args = emulate_args(interfaces, pppoe, max_sessions, pppoe_session=pppoe_session, control=True)
    patterns = [r"emulator on [\d.]+:(\d+) ", r"control API on http://[\d.]+:(\d+)/"]
    return spawn([PYTHON, "-m", "gateway", *args], patterns, timeout=timeout)


def start_redis() -> Server:
    """Debian's ``redis-server`` on a free port of 127.0.0.1, without persistence."""
    program = shutil.which("redis-server")
    if program is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as sock:  # a free port: redis-server's --port 0 means no TCP at all
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return spawn(
        [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        [r"port=(\d+)", r"Ready to accept connections"],
    )


def serve_config(config: str, prefix: str = "bench-gateway-", root: str | None = None) -> Server:
    """``gateway serve`` with ``config`` (TOML text, written to a temporary file removed when
    the server stops); with ``root``, the gateway of that source tree (``python -m`` imports it
    from its directory)."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".toml")
    with os.fdopen(fd, "w") as f:
        f.write(config)
    server = spawn(
        [PYTHON, "-m", "gateway", "serve", "--config", name, "--log-level", "WARNING"],
        [r"gateway listening on http://[\d.]+:(\d+)/"],
        cwd=root,
    )
    server.files.append(Path(name))
    return server


def start_gateway(
    router_port: int,
    interval: float,
    history: int = 300,
    redis_url: str = "",
    root: str | None = None,
) -> Server:
    """``gateway serve`` with one router (id ``r1``, the emulator's admin/admin account); in
    cluster mode with ``redis_url``; with ``root``, the gateway of that source tree."""
    cluster = f'\n[cluster]\nredis_url = "{redis_url}"\n' if redis_url else ""
    config = f"""\
[server]
host = "127.0.0.1"
port = 0
max_connections = 20000
shutdown_grace = 2.0

# Every load generator here connects from 127.0.0.1: the per-address limits are for the Internet.
[limits]
connections_per_address = 0
handshakes_per_second = 0

[poll]
interval = {interval}
history = {history}
{cluster}

[[routers]]
id = "r1"
name = "Benchmark router"
host = "127.0.0.1"
port = {router_port}
username = "admin"
password = "admin"
"""
    return serve_config(config, root=root)


def start_script(script: str, *args: str) -> Server:
    """One of the baseline servers beside this file (prints ``listening``'s line)."""
    return spawn([PYTHON, str(HERE / script), *args], [LISTENING])


def pin(cpu0: Sequence[int], cpu1: Sequence[int]) -> None:
    """Processes ``cpu0`` on CPU 0 (what is measured) and ``cpu1`` on CPU 1 (the rest)."""
    for pid in cpu0:
        os.sched_setaffinity(pid, {0})
    for pid in cpu1:
        os.sched_setaffinity(pid, {1})


# -- /proc readings of another process -------------------------------------------------------------


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid``, in nanoseconds (``/proc/PID/task/*/schedstat``)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended between listing and reading
    return total


def cpu_ticks(pid: int) -> int:
    """``utime + stime`` of ``pid`` in clock ticks (``/proc/PID/stat``; coarser, a cross-check)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid``, in KiB (``VmRSS``)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


# -- the viewers' client (fanout_client.py) --------------------------------------------------------


CLIENT: Final = HERE / "fanout_client.py"


def client_command(
    ports: Sequence[int],
    viewers: int,
    frames: int,
    warmup: int,
    interval: float,
    server_pids: Sequence[int],
    *options: str,
) -> list[str]:
    """``fanout_client.py`` connecting ``viewers`` (spread over ``ports``) and measuring the
    ``server_pids`` over a window of ``frames`` frames after ``warmup`` ones; ``options`` are
    more of its options (``--help``)."""
    return [
        *(PYTHON, str(CLIENT), "--port", ",".join(str(p) for p in ports)),
        *("--viewers", str(viewers), "--frames", str(frames), "--warmup", str(warmup)),
        *("--interval", str(interval)),
        *("--server-pid", ",".join(str(p) for p in server_pids)),
        *options,
    ]


def client_events(label: str, output: bytes, returncode: int | None) -> dict[str, dict[str, Any]]:
    """The client's JSON lines by ``event`` (``connected``, ``result``); SystemExit naming
    ``label`` when it failed or gave no result."""
    events = [json.loads(line) for line in output.decode().splitlines() if line]
    by_kind = {e["event"]: e for e in events}
    if returncode != 0 or "result" not in by_kind:
        raise SystemExit(f"{label}: client failed ({returncode})")
    return by_kind


class Window:
    """The figures of one measured window, from the client's ``result``."""

    result: dict[str, Any]

    @property
    def delivered(self) -> int:
        return int(self.result["delivered"])

    @property
    def cpu_us(self) -> float:
        """Server CPU per delivered frame, microseconds (every measured process)."""
        return float(self.result["server_cpu_s"]) * 1e6 / max(1, self.delivered)

    @property
    def missed(self) -> int:
        """Frames of the window not delivered, and gaps in ``seq``."""
        return int(self.result["missed"]) + int(self.result["gaps"])


def window_options(parser: argparse.ArgumentParser, *, repeat: int) -> None:
    """The options of a benchmark that measures windows with the client: frames, warm-up,
    rounds, the frames' interval and size, the gateway's ring, pinning, output."""
    parser.add_argument(
        "--frames",
        type=int,
        default=20,
        help="frames in each measured window (20 at 1 s = one 20 s heartbeat period, so every"
        " server's keepalive work is in each window once)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="frames before the window")
    parser.add_argument(
        "--repeat", type=int, default=repeat, help="runs per set-up and N (medians)"
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between frames")
    parser.add_argument("--interfaces", type=int, default=8, help="static ones (and lo)")
    parser.add_argument("--history", type=int, default=300, help="the gateways' history ring")
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin the servers to CPU 0 and the rest (client, emulator, Redis) to CPU 1",
    )
    parser.add_argument("--verbose", action="store_true", help="print each frame's delays")
    parser.add_argument("--json", default="", help="also write every result to this file")


# -- figures and reports ---------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """The ``p`` quantile (0 to 1) of ``values`` by rank; nan when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def stage_times(
    stages: Sequence[tuple[str, Callable[[], object]]], rows: int, rounds: int
) -> list[tuple[str, float]]:
    """Each stage's median time over ``rounds`` runs, in microseconds per row of ``rows``."""
    out = []
    for label, work in stages:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        out.append((label, statistics.median(times) / rows * 1e6))
    return out


def machine() -> str:
    """The machine: CPU model and cores, memory, kernel and Python."""
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // (1024 * 1024)
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{platform.machine()} {model}, {os.cpu_count()} cores, {mem} GiB, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def load() -> str:
    """The load averages over 1, 5 and 15 minutes."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def parts(parser: argparse.ArgumentParser, only: str, known: Sequence[str]) -> list[str]:
    """The parts of a benchmark ``--only`` names (comma-separated); a usage error for one not
    in ``known``."""
    chosen = [part for part in only.split(",") if part]
    unknown = set(chosen) - set(known)
    if unknown:
        parser.error(f"unknown part(s) {sorted(unknown)}; choose from {tuple(known)}")
    return chosen


def finish(verdicts: list[str]) -> None:
    """Print the targets' verdicts ("met: ..." or "MISSED: ...") and exit, 1 if one is missed."""
    for line in verdicts:
        print(line)
    sys.exit(1 if any(line.startswith("MISSED") for line in verdicts) else 0)


# -- the baseline servers' side --------------------------------------------------------------------


def listening(host: str, port: int) -> None:
    """Say where the server listens, as ``start_script`` waits for it (``LISTENING``)."""
    print(f"listening on http://{host}:{port}/", flush=True)


def server_options(description: str | None) -> argparse.ArgumentParser:
    """A baseline server's parser: ``--host`` and ``--port`` (0: a free one)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    return parser


def fanout_options(description: str | None) -> argparse.ArgumentParser:
    """A fan-out baseline's parser: the server's, and the frames it sends (``FrameSource``)."""
    parser = server_options(description)
    parser.add_argument("--router", default="r1")
    parser.add_argument("--interfaces", type=int, default=8)
    parser.add_argument("--interval", type=float, default=1.0)
    return parser


def serve_forever(main: Coroutine[Any, Any, None]) -> None:
    """Run a server's ``main`` until it is interrupted (Ctrl-C: no traceback)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main)


async def serve_app(app: web.Application, host: str, port: int) -> None:
    """Serve ``app`` on ``host:port``, say where (``listening``) and serve until cancelled."""
    from aiohttp import web  # here: the floor and the client import this module, not aiohttp

    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    listening(host, server.sockets[0].getsockname()[1])
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def ticks(interval: float) -> AsyncIterator[None]:
    """Once every ``interval`` seconds, on a fixed schedule (a late tick does not shift the
    next ones)."""
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    while True:
        next_tick += interval
        await asyncio.sleep(max(0.0, next_tick - loop.time()))
        yield


async def watch(
    port: int, subscribes: Sequence[dict[str, object]], on_frame: Callable[[dict[str, Any]], object]
) -> None:
    """One websocket viewer of the gateway on ``port`` (aiohttp): sends ``subscribes`` and calls
    ``on_frame`` with every traffic frame until the connection ends or the task is cancelled."""
    import aiohttp  # here: the floor and the client import this module, not aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"http://127.0.0.1:{port}/ws", max_msg_size=0) as ws,
    ):
        for subscribe in subscribes:
            await ws.send_json(subscribe)
        async for message in ws:
            data = json.loads(message.data)
            if data.get("type") == "traffic":
                on_frame(data)
