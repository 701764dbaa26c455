"""Benchmark: how hard do N viewers make the router work, seed design against the gateway?

For N = 10, 100 and 1,000 viewers of one emulated router (24 static interfaces and 40 PPPoE
customers; the api service's default limit of 20 sessions), answering as fast as it can or, as
a busy production router does, 250 ms per reply (the emulator's ``slow`` fault, applied to the
login and the print alike), three designs in turn:

- ``seed``: the seed design (``baseline_server.py``): each viewer polls REST every 2 s; the server
  answers from a 5 s cache or asks the router per request (one API session per request, 3 s
  deadline, no single-flight);
- ``gateway-rest``: the same viewers polling the gateway's ``/api/routers/{id}/traffic``;
- ``gateway-ws``: N websocket viewers subscribed to the router (``fanout_client.py --hold``).

Viewers start at random moments over the first 2 s (jitter), then keep their own 2 s cadence
(a viewer waits for its answer before its next poll, as a careful page would). After a warm-up
the router's counters are reset and read again at the end of the window: router requests
(``/interface/print``) per second, logins and TCP connections per second, the most API sessions
open at once, and connections refused for the session limit. Viewer side: answers per second,
errors, latency p50/p99. Server CPU over the window.

The emulated router runs in its own process (this script with ``--serve-router``), with the
emulator's control API plus ``GET /load`` for the session peak and refusals.

Run: ``python loadtest/bench/bench_router_load.py`` (about 10 minutes; ``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
from aiohttp import web
from common import (
    HERE,
    PYTHON,
    ROOT,
    Server,
    cpu_ns,
    load,
    machine,
    percentile,
    spawn,
    start_gateway,
    start_script,
)

DESIGNS: Final = ("seed", "gateway-rest", "gateway-ws")
PERIOD: Final = 2.0  # seconds between one viewer's polls
JITTER: Final = 2.0  # viewers' first polls spread over this many seconds
CLIENT_TIMEOUT: Final = 10.0
PATH: Final = "/api/routers/r1/traffic"


# -- the emulated router, in its own process ---------------------------------------------------


async def serve_router(args: argparse.Namespace) -> None:
    from gateway.emulator.control import EMULATOR, create_control_app
    from gateway.emulator.device import Device, sized_config
    from gateway.emulator.server import RouterEmulator

    device = Device(sized_config(args.interfaces, args.pppoe, pppoe_session=0))
    emulator = RouterEmulator(device, max_sessions=args.max_sessions)
    await emulator.start()

    async def load_stats(request: web.Request) -> web.Response:
        emu = request.app[EMULATOR]
        return web.json_response(
            emu.stats()
            | {"peak_sessions": emu.peak_sessions, "refused_sessions": emu.refused_sessions}
        )

    app = create_control_app(emulator)
    app.router.add_get("/load", load_stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    control = server.sockets[0].getsockname()[1]
    print(f"router on 127.0.0.1:{emulator.port}", flush=True)
    print(f"control on http://127.0.0.1:{control}/", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await emulator.stop()


def start_router(args: argparse.Namespace) -> Server:
    command = [PYTHON, __file__, "--serve-router", "--interfaces", str(args.interfaces)]
    command += ["--pppoe", str(args.pppoe), "--max-sessions", str(args.max_sessions)]
    return spawn(command, [r"router on [\d.]+:(\d+)", r"control on http://[\d.]+:(\d+)/"])


# -- REST viewers ------------------------------------------------------------------------------


@dataclass
class Answers:
    """What the REST viewers saw inside the measured window."""

    # The window (monotonic); nothing counts until it is set.
    start: float = float("inf")
    end: float = float("inf")
    ok: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)

    def record(self, sent: float, status: int | None) -> None:
        now = time.monotonic()
        if not self.start <= sent < self.end:
            return
        if status == 200:
            self.ok += 1
        else:
            self.errors += 1
        self.latencies.append(now - sent)


async def rest_viewer(port: int, delay: float, stop: float, answers: Answers) -> None:
    """One dashboard polling every PERIOD over one keep-alive connection (raw HTTP/1.1)."""
    await asyncio.sleep(delay)
    request = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    next_at = time.monotonic()
    while next_at < stop:
        sent = time.monotonic()
        status: int | None = None
        try:
            async with asyncio.timeout(CLIENT_TIMEOUT):
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(match.group(1)) if match else 0)
                status = int(head[9:12])
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            if writer is not None:
                writer.close()
            reader = writer = None
        answers.record(sent, status)
        next_at += PERIOD
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    if writer is not None:
        writer.close()


# -- one run -----------------------------------------------------------------------------------


@dataclass
class Row:
    delay: float
    design: str
    viewers: int
    seconds: float
    router: dict[str, Any]
    answers: Answers
    server_cpu: float

    @property
    def prints(self) -> float:
        commands = self.router["commands"]
        assert isinstance(commands, dict)
        return int(commands.get("/interface/print", 0)) / self.seconds


@contextlib.asynccontextmanager
async def viewers_ws(port: int, n: int, hold: float) -> AsyncIterator[None]:
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        str(HERE / "fanout_client.py"),
        "--port",
        str(port),
        "--viewers",
        str(n),
        "--hold",
        str(hold),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 120)
    if b'"connected"' not in line:
        proc.kill()
        raise SystemExit(f"websocket viewers did not connect: {line!r}")
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await proc.wait()


async def run_one(
    delay: float, design: str, n: int, args: argparse.Namespace, router: Server
) -> Row:
    """One design with n viewers against a fresh router that takes ``delay`` s per reply."""
    router_port, control = router.ports
    if design == "seed":
        server = start_script("baseline_server.py", "--router-port", str(router_port))
    else:
        server = start_gateway(router_port, args.interval)
    answers = Answers()
    async with aiohttp.ClientSession() as http:
        try:
            if delay > 0:
                fault = {"mode": "slow", "delay": delay}
                async with http.post(f"http://127.0.0.1:{control}/faults", json=fault) as response:
                    response.raise_for_status()
            await asyncio.sleep(1.0)
            begin = time.monotonic()
            stop = begin + JITTER + args.warmup + args.seconds + 1.0
            tasks: list[asyncio.Task[None]] = []
            ws: contextlib.AbstractAsyncContextManager[None] = contextlib.nullcontext()
            if design == "gateway-ws":
                ws = viewers_ws(server.port, n, JITTER + args.warmup + args.seconds + 2.0)
            else:
                rng = random.Random(n)
                tasks = [
                    asyncio.create_task(
                        rest_viewer(server.port, rng.uniform(0, JITTER), stop, answers)
                    )
                    for _ in range(n)
                ]
            async with ws:
                await asyncio.sleep(JITTER + args.warmup)
                base = f"http://127.0.0.1:{control}"
                async with http.post(f"{base}/reset-stats") as response:
                    response.raise_for_status()
                cpu0 = cpu_ns(server.pid)
                answers.start = time.monotonic()
                answers.end = answers.start + args.seconds
                await asyncio.sleep(args.seconds)
                async with http.get(f"{base}/load") as response:
                    stats = await response.json()
                cpu1 = cpu_ns(server.pid)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            server.stop()
    cpu = (cpu1 - cpu0) / 1e9 / args.seconds
    return Row(delay, design, n, args.seconds, stats, answers, cpu)


def report(row: Row) -> str:
    r = row.router
    per_s = row.seconds
    a = row.answers
    answered = a.ok + a.errors
    latency = (
        f"{percentile(a.latencies, 0.5) * 1000:.0f} / {percentile(a.latencies, 0.99) * 1000:.0f}"
        if a.latencies
        else "-"
    )
    return (
        f"| {row.delay * 1000:.0f} ms | {row.viewers:,} | {row.design} | {row.prints:.2f}"
        f" | {r['logins'] / per_s:.2f}"
        f" | {r['connections'] / per_s:.2f} | {r['peak_sessions']}"
        f" | {r['refused_sessions'] / per_s:.1f}"
        f" | {answered / per_s:.0f} | {a.errors / per_s:.1f} | {latency}"
        f" | {row.server_cpu * 100:.0f}% |"
    )


HEADER: Final = (
    "| router reply | N | design | router requests/s | logins/s | connections/s"
    " | peak API sessions | refused/s | viewer polls/s | errors/s | latency p50 / p99 ms"
    " | server CPU |\n"
    "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


async def main_async(args: argparse.Namespace) -> list[Row]:
    print(f"machine: {machine()}")
    print(f"load average at start: {load()}")
    print(
        f"router: {args.interfaces} static + {args.pppoe} PPPoE interfaces, api service limit"
        f" {args.max_sessions} sessions; gateway poll interval {args.interval:g} s;"
        f" viewers poll every {PERIOD:g} s; window {args.seconds:g} s after"
        f" {JITTER + args.warmup:g} s"
    )
    rows: list[Row] = []
    for delay in (float(v) for v in args.delays.split(",")):
        for n in (int(v) for v in args.viewers.split(",")):
            for design in args.designs.split(","):
                router = start_router(args)
                try:
                    row = await run_one(delay, design, n, args, router)
                finally:
                    router.stop()
                rows.append(row)
                print(f"  {report(row)}  load {load()}", flush=True)
    print(f"load average at end: {load()}")
    print()
    print(HEADER)
    for row in rows:
        print(report(row))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", default="10,100,1000", help="comma-separated N")
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=5.0, help="after the jittered start")
    parser.add_argument("--interval", type=float, default=1.0, help="gateway poll interval")
    parser.add_argument("--interfaces", type=int, default=24)
    parser.add_argument("--pppoe", type=int, default=40)
    parser.add_argument("--max-sessions", type=int, default=20, help="the api service's limit")
    parser.add_argument(
        "--delays",
        default="0,0.25",
        help="router profiles: extra seconds the router takes per reply (login and print),"
        " comma-separated; 0 is the emulator as fast as it goes",
    )
    parser.add_argument("--json", default="", help="also write every result to this file")
    parser.add_argument("--serve-router", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_router:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_router(args))
        return
    unknown = set(args.designs.split(",")) - set(DESIGNS)
    if unknown:
        parser.error(f"unknown design(s) {sorted(unknown)}; choose from {', '.join(DESIGNS)}")
    os.chdir(ROOT)
    rows = asyncio.run(main_async(args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                [
                    {
                        "router_delay": r.delay,
                        "design": r.design,
                        "viewers": r.viewers,
                        "router": r.router,
                        "ok": r.answers.ok,
                        "errors": r.answers.errors,
                        "latencies_ms": [round(x * 1000, 1) for x in r.answers.latencies],
                        "server_cpu": r.server_cpu,
                    }
                    for r in rows
                ],
                f,
            )


if __name__ == "__main__":
    main()
