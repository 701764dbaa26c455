"""The load test end to end: emulated routers, the gateway, Locust, and router faults meanwhile.

    python loadtest/run_loadtest.py             # 500 users for 60 s under the full fault schedule
    python loadtest/run_loadtest.py --ci        # 100 users for 20 s, one router hang in the middle
    python loadtest/run_loadtest.py --help      # every option

Each run has two variants, one after the other, under the same load and faults:

- ``single``: one ``gateway serve`` process;
- ``cluster``: a ``redis-server`` (Debian's; 127.0.0.1, a free port, no persistence) and three
  ``gateway serve`` processes in cluster mode sharing it, Locust's users spread over the three
  (``--replicas``, and ``--cluster``: the contract checker lets seq jump at a takeover and a
  reconnecting viewer resumes on the next replica). The router must still get one request per
  poll interval for the whole cluster.

For each variant it starts one ``gateway emulate --control-port`` per router, then the gateway
process(es) with a generated config (everything on 127.0.0.1, ports picked by the OS, files in
a temporary folder), waits for them with deadlines, then runs Locust headless with
``loadtest/locustfile.py`` while it switches faults on the first router through its emulator's
control API: a hang, a dropped connection, slow replies, a reboot. The schedule starts when the
first viewer reaches the gateway. Processes are run through ``gateway.process`` (the helper the
tests use). It measures the gateways' CPU (``/proc/PID/stat``) and Redis's (``INFO``:
``used_cpu_sys + used_cpu_user``) over Locust's run. At the end it prints a summary per variant
and one comparing them (frame delay p50/p99, router requests per interval, CPU), stops every
process it started (SIGTERM, then SIGKILL after a deadline) and exits 1 if Locust's checks
failed, a process died or logged an error, a fault could not be applied, anything overran its
deadline, or (cluster) a lease was lost, two replicas held one, or Redis calls failed.

The point: no request hangs and no viewer goes quiet while the router misbehaves, and the
router still gets one request per poll interval whatever the number of viewers and replicas.
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
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway import process

HERE: Final = Path(__file__).resolve().parent
LOCUSTFILE: Final = HERE / "locustfile.py"
START_DEADLINE: Final = 20.0
"""Seconds a process may take to start listening."""
LOCUST_OVERRUN: Final = 45.0
"""Seconds Locust may run past its ``-t`` (start-up, stopping users, the summary)."""
HTTP_TIMEOUT: Final = aiohttp.ClientTimeout(total=2.0)
REDIS_READY: Final = r"Ready to accept connections"
"""The line redis-server prints once it listens."""
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
"""Units of ``/proc/PID/stat``'s CPU times per second."""


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


# -- the variants -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    """How the gateway runs: one process (``single``), or ``replicas`` processes in cluster
    mode sharing one redis-server (``cluster``)."""

    name: str
    replicas: int = 1

    @property
    def cluster(self) -> bool:
        return self.name == "cluster"

    @property
    def title(self) -> str:
        return f"cluster ({self.replicas} replicas)" if self.cluster else "single process"


VARIANTS: Final = ("single", "cluster")


@dataclass
class Usage:
    """CPU seconds a process used over Locust's run, and the run's wall seconds."""

    cpu: float = 0.0
    seconds: float = 0.0

    @property
    def core_percent(self) -> float:
        """The process's CPU as a percentage of one core."""
        return 100 * self.cpu / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Outcome:
    """What one variant's run found: Locust's verdict (its summary JSON) and exit code, the
    faults applied, the problems seen from outside Locust, and the figures of the processes."""

    variant: Variant = field(default_factory=lambda: Variant("single"))
    problems: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    locust_code: int | None = None
    verdict: dict[str, Any] = field(default_factory=dict)
    # Every gateway process's figures from /metrics after the run (see ``gateway_metrics``).
    metrics: list[dict[str, float]] = field(default_factory=list)
    # CPU over Locust's run: each gateway process's, and Redis's (cluster only).
    gateways: list[Usage] = field(default_factory=list)
    redis: Usage | None = None
    # Redis commands processed over Locust's run, and its memory at the end (bytes).
    redis_commands: int = 0
    redis_memory: int = 0

    @property
    def passed(self) -> bool:
        return self.locust_code == 0 and not self.problems and bool(self.verdict.get("passed"))

    def total(self, key: str) -> float:
        return sum(m.get(key, 0.0) for m in self.metrics)


# -- the run ----------------------------------------------------------------------------------


def gateway_config(
    path: Path, ports: Sequence[int], interval: float, timeout: float, redis_url: str = ""
) -> None:
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
    cluster = f'\n[cluster]\nredis_url = "{redis_url}"\n' if redis_url else ""
    path.write_text(
        f"""# Generated by loadtest/run_loadtest.py
[server]
host = "127.0.0.1"
port = 0
shutdown_grace = 5.0

# Every load generator here connects from 127.0.0.1: the per-address limits are for the Internet.
[limits]
connections_per_address = 0
handshakes_per_second = 0

[poll]
interval = {interval}
timeout = {timeout}
{cluster}{routers}"""
    )


def started(
    name: str,
    argv: Sequence[str],
    ready: str,
    folder: Path,
    env: dict[str, str] | None = None,
    merged: bool = False,
) -> contextlib.AbstractAsyncContextManager[process.Child]:
    """A gateway, emulator or Redis process, listening (``ready``: its line), its output in
    ``folder/NAME.log``; stopped with SIGTERM (then SIGKILL after a deadline) when the block
    ends, so its exit code says whether it shut down cleanly."""
    return process.started(
        argv,
        ready=ready,
        deadline=START_DEADLINE,
        name=name,
        env=env,
        log=folder / f"{name}.log",
        ending="terminate",
        merged=merged,
    )


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


def cpu_seconds(pid: int) -> float:
    """``utime + stime`` of a running process (``/proc/PID/stat``), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


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


async def first_viewer(http: aiohttp.ClientSession, url: str, locust: process.Child) -> None:
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
    locust: process.Child,
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


SAMPLE: Final = re.compile(r"^(gateway_\w+?)(?:\{([^}]*)\})? ([0-9.e+-]+|NaN)$", re.M)
LABEL: Final = re.compile(r'(\w+)="([^"]*)"')


def gateway_metrics(text: str) -> dict[str, float]:
    """The figures the summary needs from one gateway's ``/metrics``, summed over routers:
    ``requests_<outcome>`` (router requests), ``frames_sent``, ``lease_held``,
    ``lease_<change>`` (acquired, lost, released), ``redis_errors``, ``degraded``,
    ``lag_sum`` and ``lag_count`` (seconds, the stream lag histogram)."""
    names = {
        "gateway_frames_sent_total": "frames_sent",
        "gateway_cluster_lease_held": "lease_held",
        "gateway_cluster_redis_errors_total": "redis_errors",
        "gateway_cluster_degraded": "degraded",
        "gateway_cluster_stream_lag_seconds_sum": "lag_sum",
        "gateway_cluster_stream_lag_seconds_count": "lag_count",
    }
    out: dict[str, float] = {}
    for match in SAMPLE.finditer(text):
        name, labels = match.group(1), dict(LABEL.findall(match.group(2) or ""))
        value = float(match.group(3))
        if name == "gateway_router_requests_total":
            key = f"requests_{labels.get('outcome', '')}"
        elif name == "gateway_cluster_lease_changes_total":
            key = f"lease_{labels.get('change', '')}"
        elif name in names:
            key = names[name]
        else:
            continue
        out[key] = out.get(key, 0.0) + value
    return out


async def read_metrics(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with http.get(f"{url}/metrics", timeout=HTTP_TIMEOUT) as response:
        return gateway_metrics(await response.text())


async def start_emulators(
    stack: contextlib.AsyncExitStack,
    args: argparse.Namespace,
    folder: Path,
    password: str,
    children: list[process.Child],
) -> tuple[list[int], list[str]]:
    """One emulator per router: their API ports and control URLs."""
    controls: list[str] = []
    ports: list[int] = []
    for i in range(1, args.routers + 1):
        argv = process.command(
            "emulate",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--control-port",
            "0",
            # One argument: a password may start with "-" (token_urlsafe), which argparse
            # would take for an option after a separate "--password".
            f"--password={password}",
            "--interfaces",
            str(args.interfaces),
            "--pppoe",
            str(args.pppoe),
            "--seed",
            str(i),
            "--log-level",
            "WARNING",
        )
        emulator = await stack.enter_async_context(
            started(f"emulator-{i}", argv, process.EMULATOR_READY, folder)
        )
        children.append(emulator)
        ports.append(emulator.port)
        controls.append((await emulator.expect(process.CONTROL_READY, START_DEADLINE))["url"])
    return ports, controls


async def run(args: argparse.Namespace, folder: Path, variant: Variant) -> Outcome:
    outcome = Outcome(variant)
    password = secrets.token_urlsafe(12)
    children: list[process.Child] = []
    # Every child is stopped (SIGTERM, then SIGKILL after a deadline) in reverse order of start,
    # however the run ends: Locust, the gateways (which release their leases in Redis), Redis,
    # the emulators.
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        ports, controls = await start_emulators(stack, args, folder, password, children)

        redis_url = ""
        info: RedisInfo | None = None
        if variant.cluster:
            port = free_port()
            redis = await stack.enter_async_context(
                started("redis", redis_argv(port), REDIS_READY, folder, merged=True)
            )
            children.append(redis)
            redis_url = f"redis://127.0.0.1:{port}/0"
            info = RedisInfo(redis_url)
            stack.push_async_callback(info.close)

        config = folder / "gateway.toml"
        gateway_config(config, ports, args.interval, args.timeout, redis_url)
        argv = process.command("serve", "--config", str(config), "--log-level", "INFO")
        env = {"LOADTEST_ROUTER_PASSWORD": password}
        names = (
            [f"gateway-{i}" for i in range(1, variant.replicas + 1)]
            if variant.cluster
            else ["gateway"]
        )
        # Started together: each takes a second or two to import and listen.
        gateways = list(
            await asyncio.gather(
                *(
                    stack.enter_async_context(
                        started(name, argv, process.GATEWAY_READY, folder, env)
                    )
                    for name in names
                )
            )
        )
        children += gateways
        urls = [g.url for g in gateways]
        await asyncio.gather(*(wait_ready(http, url, START_DEADLINE) for url in urls))
        where = f"redis {redis_url}  " if redis_url else ""
        print(
            f"{variant.title}: gateway {', '.join(urls)}  {where}"
            f"emulators {', '.join(controls)}  logs {folder}",
            flush=True,
        )

        summary = folder / "summary.json"
        mapping = ",".join(f"core-{i}={c}" for i, c in enumerate(controls, start=1))
        cluster_args = ["--replicas", ",".join(urls), "--cluster"] if variant.cluster else []
        locust_argv = [
            sys.executable,
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
            urls[0],
            *cluster_args,
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
        cpu_start = [cpu_seconds(g.pid) for g in gateways]
        redis_start = await info.read() if info is not None else None
        started_at = time.monotonic()
        # Locust writes to this terminal directly: its summary is part of the report.
        locust = await process.start(locust_argv, name="locust", capture=False)
        stack.push_async_callback(locust.stop)
        children.append(locust)
        schedule = None
        if args.schedule:
            schedule = asyncio.create_task(
                run_schedule(http, controls[0], args.schedule, urls[0], locust, outcome)
            )
        try:
            outcome.locust_code = await locust.wait(args.duration + LOCUST_OVERRUN)
        except TimeoutError:
            outcome.problems.append(
                f"locust still running {time.monotonic() - started_at:.0f} s after its start"
            )
            outcome.locust_code = await locust.stop()
        seconds = time.monotonic() - started_at
        for gateway, before in zip(gateways, cpu_start, strict=True):
            with contextlib.suppress(OSError):  # a gateway that died: reported below
                outcome.gateways.append(Usage(cpu_seconds(gateway.pid) - before, seconds))
        if info is not None and redis_start is not None:
            try:
                cpu, commands, memory = await info.read()
            except RuntimeError as exc:
                outcome.problems.append(str(exc))
            else:
                outcome.redis = Usage(cpu - redis_start[0], seconds)
                outcome.redis_commands = commands - redis_start[1]
                outcome.redis_memory = memory
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
        for gateway in gateways:
            try:
                outcome.metrics.append(await read_metrics(http, gateway.url))
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome.problems.append(f"{gateway.name} /metrics unreadable after the run: {exc}")
        if variant.cluster:
            outcome.problems += cluster_problems(outcome, args.routers)
        for child in children[:-1]:
            if child.returncode is not None:
                outcome.problems.append(
                    f"{child.name} exited during the run with {child.returncode}"
                )
        if summary.exists():
            outcome.verdict = json.loads(summary.read_text())
        else:
            outcome.problems.append("locust wrote no summary")
    # Every child has stopped now. The gateways, Redis and the emulators must have exited
    # cleanly on SIGTERM (a gateway drains within its grace), and no gateway may have logged an
    # error or a traceback: a fault on the router is a warning, never an error of the gateway.
    for child in children:
        if child.name != "locust" and child.returncode != 0:
            outcome.problems.append(f"{child.name} exited with {child.returncode} on SIGTERM")
    for name in names:
        log = (folder / f"{name}.log").read_text(errors="replace")
        errors = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
        if errors:
            outcome.problems.append(f"{name} logged {len(errors)} errors, first: {errors[0]}")
    return outcome


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


# -- the report -------------------------------------------------------------------------------


def report(args: argparse.Namespace, outcome: Outcome) -> None:
    v = outcome.verdict
    print(f"\n== load test summary: {outcome.variant.title} ==")
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
        if outcome.variant.cluster:
            spread = ", ".join(str(n) for n in v.get("replicas", {}).values())
            print(f"websocket connections per replica: {spread}")
        for problem in v["problems"]:
            print(f"  check failed: {problem}")
    if outcome.metrics:
        outcomes = ", ".join(
            f"{k.removeprefix('requests_')} {sum(m.get(k, 0.0) for m in outcome.metrics):.0f}"
            for k in sorted({k for m in outcome.metrics for k in m if k.startswith("requests_")})
        )
        print(f"gateway router requests: {outcomes}")
    if outcome.gateways:
        each = " + ".join(f"{u.cpu:.1f}" for u in outcome.gateways)
        print(
            f"gateway CPU {each} s = {cpu_percent(outcome.gateways):.1f} % of one core "
            f"over {outcome.gateways[0].seconds:.0f} s"
        )
    if outcome.variant.cluster and outcome.metrics:
        sent = " / ".join(f"{m.get('frames_sent', 0):.0f}" for m in outcome.metrics)
        changes = ", ".join(
            f"{change} {outcome.total(f'lease_{change}'):.0f}"
            for change in ("acquired", "lost", "released")
        )
        print(f"frames sent per replica {sent}; lease changes: {changes}")
        lag = stream_lag_ms(outcome)
        print(
            f"stream lag (holder's append to a replica's read) mean "
            f"{'-' if lag is None else f'{lag:.1f}'} ms; Redis errors "
            f"{outcome.total('redis_errors'):.0f}"
        )
    if outcome.redis is not None:
        print(
            f"Redis CPU {outcome.redis.cpu:.2f} s = {outcome.redis.core_percent:.1f} % of one "
            f"core; {outcome.redis_commands} commands "
            f"({outcome.redis_commands / max(outcome.redis.seconds, 1e-9):.0f}/s); "
            f"memory {outcome.redis_memory / 1e6:.1f} MB"
        )
    print(f"locust exit code {outcome.locust_code}")
    for problem in outcome.problems:
        print(f"  problem: {problem}")
    print("PASSED" if outcome.passed else "FAILED", flush=True)


def cpu_percent(usages: Sequence[Usage]) -> float:
    """The processes' CPU together, as a percentage of one core."""
    return sum(u.core_percent for u in usages)


def stream_lag_ms(outcome: Outcome) -> float | None:
    count = outcome.total("lag_count")
    return 1000 * outcome.total("lag_sum") / count if count else None


def compare(outcomes: Sequence[Outcome]) -> None:
    """One table of the variants side by side."""
    print("\n== variants compared ==")
    width = 26

    def row(label: str, cells: Sequence[str]) -> None:
        print(f"{label:34}" + "".join(f"{c:>{width}}" for c in cells))

    def delay(o: Outcome, p: str) -> str:
        return f"{o.verdict['frame_delay_ms'][p]:.0f} ms" if o.verdict else "-"

    def per_interval(o: Outcome) -> str:
        routers = o.verdict.get("router_requests", {}) if o.verdict else {}
        return " / ".join(str(r["per_interval"]) for r in routers.values()) or "-"

    row("", [o.variant.title for o in outcomes])
    row("frame delay p50", [delay(o, "p50") for o in outcomes])
    row("frame delay p99", [delay(o, "p99") for o in outcomes])
    row("frames received", [str(o.verdict.get("frames", "-")) for o in outcomes])
    row("router requests per interval", [per_interval(o) for o in outcomes])
    row("gateway CPU, % of one core", [f"{cpu_percent(o.gateways):.1f} %" for o in outcomes])
    row(
        "Redis CPU, % of one core",
        [f"{o.redis.core_percent:.1f} %" if o.redis else "-" for o in outcomes],
    )
    lags = [stream_lag_ms(o) for o in outcomes]
    row("stream lag, mean", ["-" if lag is None else f"{lag:.1f} ms" for lag in lags])
    row("verdict", ["PASSED" if o.passed else "FAILED" for o in outcomes])


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the gateway (one process, then a cluster of replicas sharing a Redis) "
        "and emulated routers on loopback, load them with Locust while faults are switched on "
        "the router, and print a summary.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--ci", action="store_true", help="the short run: 100 users, 20 s, one hang"
    )
    parser.add_argument(
        "--variant",
        choices=(*VARIANTS, "both"),
        default="both",
        help="one gateway process, a cluster of replicas sharing a Redis, or both in turn",
    )
    parser.add_argument(
        "--replicas", type=int, default=3, help="gateway processes of the cluster variant"
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
    if args.replicas < 2:
        parser.error("--replicas must be 2 or more (one process is the single variant)")
    if args.no_faults:
        args.schedule = []
    else:
        args.schedule = (ci_schedule if args.ci else full_schedule)(args.duration)
    names = VARIANTS if args.variant == "both" else (args.variant,)
    args.variants = [Variant(n, args.replicas if n == "cluster" else 1) for n in names]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="gateway-loadtest-") as tmp:
        for variant in args.variants:
            folder = Path(tmp) / variant.name
            folder.mkdir()
            try:
                outcome = asyncio.run(run(args, folder, variant))
            except (RuntimeError, process.ChildError) as exc:
                outcome = Outcome(variant, problems=[str(exc)])
            except KeyboardInterrupt:
                print("interrupted", file=sys.stderr)
                return 130
            report(args, outcome)
            outcomes.append(outcome)
            if not outcome.passed:
                for log in sorted(folder.glob("*.log")):
                    if tail := _tail(log):
                        print(f"\n-- last lines of {variant.name}/{log.name} --\n{tail}")
        if len(outcomes) > 1:
            compare(outcomes)
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            shutil.copytree(tmp, args.keep_logs, dirs_exist_ok=True)
    passed = all(o.passed for o in outcomes)
    print("\nPASSED" if passed else "\nFAILED", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
