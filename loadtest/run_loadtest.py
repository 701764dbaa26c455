"""The load test end to end: emulated routers, the gateway, Locust, and router faults meanwhile.

    python loadtest/run_loadtest.py             # 500 users for 60 s under the full fault schedule
    python loadtest/run_loadtest.py --ci        # 100 users for 20 s, one router hang in the middle
    python loadtest/run_loadtest.py --help      # every option

It starts one ``gateway emulate --control-port`` per router and ``gateway serve`` with a
generated config (everything on 127.0.0.1, ports picked by the OS, files in a temporary
folder), waits for them with deadlines, then runs Locust headless with ``loadtest/locustfile.py``
while it switches faults on the first router through its emulator's control API: a hang, a
dropped connection, slow replies, a reboot. The schedule starts when the first viewer reaches
the gateway. At the end it prints a summary, stops every process it started (by PID: SIGTERM,
then SIGKILL after a deadline) and exits 1 if Locust's checks failed, a process died, a fault
could not be applied or anything overran its deadline.

The point: no request hangs and no viewer goes quiet while the router misbehaves, and the
router still gets one request per poll interval whatever the number of viewers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp

HERE: Final = Path(__file__).resolve().parent
LOCUSTFILE: Final = HERE / "locustfile.py"
START_DEADLINE: Final = 20.0
"""Seconds a process may take to start listening."""
STOP_DEADLINE: Final = 10.0
"""Seconds a process may take to exit after SIGTERM before it is killed."""
LOCUST_OVERRUN: Final = 45.0
"""Seconds Locust may run past its ``-t`` (start-up, stopping users, the summary)."""
HTTP_TIMEOUT: Final = aiohttp.ClientTimeout(total=2.0)


@dataclass(frozen=True, slots=True)
class Step:
    """One fault, switched on ``at`` seconds after the first viewer arrived."""

    at: float
    what: str
    path: str
    body: dict[str, object] | None = None


def full_schedule(duration: float) -> list[Step]:
    """A hang (10 s in a 60 s run), a dropped connection, slow replies, a reboot; the last
    quarter of the run is left clean so everything has recovered when Locust judges it."""
    hang = min(10.0, duration / 6)
    slow = min(8.0, duration * 0.13)
    return [
        Step(0.15 * duration, f"hang for {hang:g} s", "/faults", {"mode": "hang", "for": hang}),
        Step(0.45 * duration, "drop connections for 1 s", "/faults", {"mode": "drop", "for": 1}),
        Step(
            0.55 * duration,
            f"slow replies (2.5 s) for {slow:g} s",
            "/faults",
            {"mode": "slow", "delay": 2.5, "for": slow},
        ),
        Step(0.75 * duration, "reboot", "/reboot"),
    ]


def ci_schedule(duration: float) -> list[Step]:
    """One hang in the middle of the run."""
    hang = round(duration / 4, 1)
    return [Step(0.35 * duration, f"hang for {hang:g} s", "/faults", {"mode": "hang", "for": hang})]


# -- child processes --------------------------------------------------------------------------


@dataclass
class Child:
    """A process this script started: its stdout lines are kept and copied to its log."""

    name: str
    proc: asyncio.subprocess.Process
    log: Path
    lines: list[str] = field(default_factory=list)
    # Set on each new stdout line; the waiter in expect() re-checks and re-arms it.
    _new_line: asyncio.Event = field(default_factory=asyncio.Event)
    # Copies stdout to the log until the process closes it; owned here, cancelled by stop().
    _pump: asyncio.Task[None] | None = None

    def start_pump(self) -> None:
        self._pump = asyncio.create_task(self._read(), name=f"stdout:{self.name}")

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log.open("a", encoding="utf-8") as out:
            async for raw in self.proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                out.write(line + "\n")
                out.flush()
                self.lines.append(line)
                self._new_line.set()

    async def expect(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first stdout line matching ``pattern``; fails if none comes within ``timeout``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if match := regex.search(line):
                    return match
            seen = len(self.lines)
            if self.proc.returncode is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log}"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name} did not print {pattern!r} in {timeout:g} s")
            self._new_line.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 0.5)):
                    await self._new_line.wait()

    async def stop(self) -> int:
        """SIGTERM, then SIGKILL after the deadline; returns the exit code."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_DEADLINE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        code = self.proc.returncode
        assert code is not None
        return code


async def spawn(
    name: str, argv: Sequence[str], folder: Path, env: dict[str, str] | None = None
) -> Child:
    log = folder / f"{name}.log"
    stderr = log.open("a", encoding="utf-8")
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
    finally:
        stderr.close()  # the child holds its own copy
    child = Child(name, proc, log)
    child.start_pump()
    return child


@contextlib.asynccontextmanager
async def started(children: list[Child]) -> AsyncIterator[list[Child]]:
    """Stop every child (in reverse order) however the block ends."""
    try:
        yield children
    finally:
        for child in reversed(children):
            await child.stop()


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    locust_code: int | None = None
    verdict: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def gateway_config(path: Path, ports: Sequence[int], interval: float, timeout: float) -> None:
    routers = "".join(
        f"""
[[routers]]
id = "core-{i}"
name = "Load-test router {i}"
host = "127.0.0.1"
port = {port}
username = "admin"
password_env = "LOADTEST_ROUTER_PASSWORD"
"""
        for i, port in enumerate(ports, start=1)
    )
    path.write_text(
        f"""# Generated by loadtest/run_loadtest.py
[server]
host = "127.0.0.1"
port = 0
shutdown_grace = 5.0

[poll]
interval = {interval}
timeout = {timeout}
{routers}"""
    )


async def wait_ready(http: aiohttp.ClientSession, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(f"{url}/readyz", timeout=HTTP_TIMEOUT) as response:
                if response.status == 200:
                    return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway at {url} was not ready within {timeout:g} s")
        await asyncio.sleep(0.1)  # pacing between probes


async def first_viewer(http: aiohttp.ClientSession, url: str, locust: Child) -> None:
    """Wait until a websocket viewer is subscribed: the load has reached the gateway."""
    deadline = time.monotonic() + START_DEADLINE
    while locust.proc.returncode is None:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError, KeyError):
            async with http.get(f"{url}/api/routers", timeout=HTTP_TIMEOUT) as response:
                body = await response.json()
            if any(r["viewers"] for r in body["routers"]):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no viewer reached the gateway within {START_DEADLINE:g} s")
        await asyncio.sleep(0.1)  # pacing between polls


async def run_schedule(
    http: aiohttp.ClientSession,
    control: str,
    steps: Sequence[Step],
    gateway: str,
    locust: Child,
    outcome: Outcome,
) -> None:
    """Apply each fault at its time, counted from the first viewer's arrival."""
    await first_viewer(http, gateway, locust)
    t0 = time.monotonic()
    for step in steps:
        await asyncio.sleep(max(0.0, t0 + step.at - time.monotonic()))  # the schedule's clock
        at = time.monotonic() - t0
        try:
            async with http.post(
                control + step.path, json=step.body or {}, timeout=HTTP_TIMEOUT
            ) as response:
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {await response.text()}")
            outcome.applied.append(f"{at:5.1f} s  {step.what}")
        except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
            outcome.problems.append(f"fault {step.what!r} at {at:.1f} s not applied: {exc}")


async def gateway_metrics(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """``gateway_router_requests_total`` by outcome, summed over routers."""
    totals: dict[str, float] = {}
    async with http.get(f"{url}/metrics", timeout=HTTP_TIMEOUT) as response:
        text = await response.text()
    for match in re.finditer(
        r'^gateway_router_requests_total\{[^}]*outcome="(\w+)"[^}]*\} ([0-9.e+]+)$', text, re.M
    ):
        totals[match.group(1)] = totals.get(match.group(1), 0.0) + float(match.group(2))
    return totals


async def run(args: argparse.Namespace, folder: Path) -> Outcome:
    outcome = Outcome()
    password = secrets.token_urlsafe(12)
    python = sys.executable
    children: list[Child] = []
    async with started(children), aiohttp.ClientSession() as http:
        controls: list[str] = []
        ports: list[int] = []
        for i in range(1, args.routers + 1):
            emulator = await spawn(
                f"emulator-{i}",
                [
                    python,
                    "-m",
                    "gateway",
                    "emulate",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--control-port",
                    "0",
                    "--password",
                    password,
                    "--interfaces",
                    str(args.interfaces),
                    "--pppoe",
                    str(args.pppoe),
                    "--seed",
                    str(i),
                    "--log-level",
                    "WARNING",
                ],
                folder,
            )
            children.append(emulator)
            ports.append(int((await emulator.expect(r":(\d+) \(", START_DEADLINE)).group(1)))
            match = await emulator.expect(r"(http://127\.0\.0\.1:\d+)/stats", START_DEADLINE)
            controls.append(match.group(1))

        config = folder / "gateway.toml"
        gateway_config(config, ports, args.interval, args.timeout)
        gateway = await spawn(
            "gateway",
            [python, "-m", "gateway", "serve", "--config", str(config), "--log-level", "INFO"],
            folder,
            env={"LOADTEST_ROUTER_PASSWORD": password},
        )
        children.append(gateway)
        url = (await gateway.expect(r"(http://127\.0\.0\.1:\d+)/", START_DEADLINE)).group(1)
        await wait_ready(http, url, START_DEADLINE)
        print(f"gateway {url}  emulators {', '.join(controls)}  logs {folder}", flush=True)

        summary = folder / "summary.json"
        mapping = ",".join(f"core-{i}={c}" for i, c in enumerate(controls, start=1))
        locust_argv = [
            python,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--only-summary",
            "-u",
            str(args.users),
            "-r",
            str(args.spawn_rate),
            "-t",
            f"{args.duration:g}s",
            "--host",
            url,
            "--emulator-control",
            mapping,
            "--router-timeout",
            f"{args.timeout:g}",
            "--frame-p99-max",
            f"{args.frame_p99_max:g}",
            "--summary-json",
            str(summary),
            *args.locust_arg,
        ]
        started_at = time.monotonic()
        # Locust writes to this terminal directly: its summary is part of the report.
        locust_proc = await asyncio.create_subprocess_exec(
            *locust_argv, stdin=asyncio.subprocess.DEVNULL
        )
        locust = Child("locust", locust_proc, folder / "locust.log")
        children.append(locust)
        schedule = None
        if args.schedule:
            schedule = asyncio.create_task(
                run_schedule(http, controls[0], args.schedule, url, locust, outcome)
            )
        try:
            outcome.locust_code = await asyncio.wait_for(
                locust_proc.wait(), args.duration + LOCUST_OVERRUN
            )
        except TimeoutError:
            outcome.problems.append(
                f"locust still running {time.monotonic() - started_at:.0f} s after its start"
            )
            outcome.locust_code = await locust.stop()
        if schedule is not None:
            if not schedule.done():
                schedule.cancel()
            try:
                await schedule
            except asyncio.CancelledError:
                outcome.problems.append("the fault schedule had not finished when Locust ended")
            except RuntimeError as exc:
                outcome.problems.append(f"fault schedule: {exc}")
        for control in controls:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.post(
                    f"{control}/faults", json={"mode": "none"}, timeout=HTTP_TIMEOUT
                ):
                    pass
        try:
            outcome.metrics = await gateway_metrics(http, url)
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome.problems.append(f"gateway /metrics unreadable after the run: {exc}")
        for child in children[:-1]:
            if child.proc.returncode is not None:
                outcome.problems.append(
                    f"{child.name} exited during the run with {child.proc.returncode}"
                )
        if summary.exists():
            outcome.verdict = json.loads(summary.read_text())
        else:
            outcome.problems.append("locust wrote no summary")
    # Every child has stopped now. The gateway and the emulators must have exited cleanly on
    # SIGTERM (the gateway drains within its grace), and the gateway must not have logged an
    # error or a traceback: a fault on the router is a warning, never an error of the gateway.
    for child in children:
        if child.name != "locust" and child.proc.returncode != 0:
            outcome.problems.append(f"{child.name} exited with {child.proc.returncode} on SIGTERM")
    log = (folder / "gateway.log").read_text(errors="replace")
    errors = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
    if errors:
        outcome.problems.append(f"the gateway logged {len(errors)} errors, first: {errors[0]}")
    return outcome


# -- the report -------------------------------------------------------------------------------


def report(args: argparse.Namespace, outcome: Outcome) -> bool:
    v = outcome.verdict
    passed = outcome.locust_code == 0 and not outcome.problems and bool(v.get("passed"))
    print("\n== load test summary ==")
    faults = "off" if not args.schedule else ("CI (one hang)" if args.ci else "full schedule")
    print(
        f"users {args.users}, {args.duration:g} s, spawn rate {args.spawn_rate:g}/s, "
        f"{args.routers} router(s) polled every {args.interval:g} s, faults: {faults}"
    )
    for line in outcome.applied:
        print(f"  fault at {line}")
    if v:
        frames, rest = v["frame_delay_ms"], v["rest_ms"]
        print(
            f"requests {v['requests']} ({v['frames']} frames, {rest['count']:.0f} REST reads), "
            f"failures {v['failures']}"
        )
        print(
            f"frame delay p50 {frames['p50']:.0f} ms, p99 {frames['p99']:.0f} ms, "
            f"max {frames['max']:.0f} ms (p99 limit {args.frame_p99_max:g} ms)"
        )
        print(
            f"REST p50 {rest['p50']:.0f} ms, p99 {rest['p99']:.0f} ms; "
            f"slowest request {v['slowest_request_ms']:.0f} ms"
        )
        for router, r in v["router_requests"].items():
            print(
                f"router {router}: {r['requests']} requests in {r['seconds']} s = "
                f"{r['per_interval']} per {r['interval']:g} s interval (allowed {r['allowed']})"
            )
        viewers = v["viewers"]
        print(
            f"viewers {viewers['stopped']}, received nothing {viewers['received_nothing']}, "
            f"reconnects {viewers['reconnects']}, server closes {viewers['closes'] or 'none'}"
        )
        for problem in v["problems"]:
            print(f"  check failed: {problem}")
    if outcome.metrics:
        outcomes = ", ".join(f"{k} {n:.0f}" for k, n in sorted(outcome.metrics.items()))
        print(f"gateway router requests: {outcomes}")
    print(f"locust exit code {outcome.locust_code}")
    for problem in outcome.problems:
        print(f"  problem: {problem}")
    print("PASSED" if passed else "FAILED", flush=True)
    return passed


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the gateway and emulated routers on loopback, load them with Locust "
        "while faults are switched on the router, and print a summary.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--ci", action="store_true", help="the short run: 100 users, 20 s, one hang"
    )
    parser.add_argument("-u", "--users", type=int, help="Locust users (default 500; --ci 100)")
    parser.add_argument("-t", "--duration", type=float, help="seconds (default 60; --ci 20)")
    parser.add_argument("-r", "--spawn-rate", type=float, help="users started per second")
    parser.add_argument("--no-faults", action="store_true", help="run without the fault schedule")
    parser.add_argument(
        "--routers", type=int, default=1, help="emulated routers (one process each)"
    )
    parser.add_argument("--interval", type=float, default=1.0, help="the gateway's poll interval")
    parser.add_argument("--timeout", type=float, default=3.0, help="the gateway's poll timeout")
    parser.add_argument("--interfaces", type=int, default=8, help="static interfaces per router")
    parser.add_argument("--pppoe", type=int, default=0, help="PPPoE interfaces per router")
    parser.add_argument(
        "--frame-p99-max", type=float, default=1000.0, help="frame delay p99 limit, ms"
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the processes' logs to this folder")
    parser.add_argument(
        "--locust-arg",
        action="append",
        default=[],
        help="one more argument for locust (repeat it), e.g. --locust-arg=--csv=out",
    )
    args = parser.parse_args(argv)
    if args.users is None:
        args.users = 100 if args.ci else 500
    if args.duration is None:
        args.duration = 20.0 if args.ci else 60.0
    if args.spawn_rate is None:
        args.spawn_rate = 50.0 if args.ci else 100.0
    if args.routers < 1 or args.users < 1 or args.duration <= 0:
        parser.error("--routers, --users and --duration must be positive")
    if args.no_faults:
        args.schedule = []
    else:
        args.schedule = (ci_schedule if args.ci else full_schedule)(args.duration)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gateway-loadtest-") as tmp:
        folder = Path(tmp)
        try:
            outcome = asyncio.run(run(args, folder))
        except RuntimeError as exc:
            outcome = Outcome(problems=[str(exc)])
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        passed = report(args, outcome)
        if not passed:
            for log in sorted(folder.glob("*.log")):
                if tail := _tail(log):
                    print(f"\n-- last lines of {log.name} --\n{tail}")
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for item in folder.iterdir():
                shutil.copy2(item, args.keep_logs / item.name)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
