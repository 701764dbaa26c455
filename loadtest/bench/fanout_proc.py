"""Starting and stopping the benchmarks' server processes: emulator, gateway, Redis, baselines.

Every server runs in its own process and prints the address it listens on as its first line(s)
on stdout; these helpers wait for those lines, and stop the process (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent
ROOT: Final = HERE.parents[1]
"""The repository: every server runs from there, as ``make`` runs them."""
PYTHON: Final = sys.executable


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


def start_emulator(interfaces: int, pppoe: int = 0, max_sessions: int = 20) -> Server:
    """``gateway emulate`` on a free port, with its control API on another."""
    return spawn(
        [
            PYTHON,
            "-m",
            "gateway",
            "emulate",
            "--port",
            "0",
            "--control-port",
            "0",
            "--interfaces",
            str(interfaces),
            "--pppoe",
            str(pppoe),
            "--pppoe-session",
            "0",
            "--max-sessions",
            str(max_sessions),
            "--log-level",
            "WARNING",
        ],
        [r"emulator on [\d.]+:(\d+) ", r"control API on http://[\d.]+:(\d+)/"],
    )


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


def start_gateway(
    router_port: int,
    interval: float,
    history: int = 300,
    redis_url: str = "",
    root: str | None = None,
) -> Server:
    """``gateway serve`` with one router (id ``r1``, the emulator's admin/admin account); in
    cluster mode with ``redis_url``; with ``root``, the gateway of that source tree (``python
    -m`` imports it from its directory)."""
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
    fd, name = tempfile.mkstemp(prefix="bench-gateway-", suffix=".toml")
    with os.fdopen(fd, "w") as f:
        f.write(config)
    server = spawn(
        [PYTHON, "-m", "gateway", "serve", "--config", name, "--log-level", "WARNING"],
        [r"gateway listening on http://[\d.]+:(\d+)/"],
        cwd=root,
    )
    server.files.append(Path(name))
    return server


def start_script(script: str, *args: str) -> Server:
    """One of the baseline servers beside this file (prints ``listening on http://host:port/``)."""
    return spawn([PYTHON, str(HERE / script), *args], [r"listening on http://[\d.]+:(\d+)/"])


def machine() -> str:
    import platform

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
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
