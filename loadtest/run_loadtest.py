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

This file holds the options and one variant's run; the rest is beside it, by concern:
``rig_processes`` (starting the emulators and gateways, reading their CPU and ``/metrics``),
``rig_cluster`` (the cluster variant's Redis and its checks), ``rig_faults`` (the fault
schedule), ``rig_outcome`` (what a variant's run found) and ``rig_report`` (the summaries).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import aiohttp
from rig_cluster import RedisInfo, cluster_problems, start_redis
from rig_faults import ci_schedule, full_schedule, run_schedule
from rig_outcome import VARIANTS, Outcome, Usage, Variant
from rig_processes import (
    HTTP_TIMEOUT,
    START_DEADLINE,
    cpu_seconds,
    gateway_config,
    read_metrics,
    start_emulators,
    started,
    wait_ready,
)
from rig_report import compare, report, tail

from gateway import process

HERE: Final = Path(__file__).resolve().parent
LOCUSTFILE: Final = HERE / "locustfile.py"
LOCUST_OVERRUN: Final = 45.0
"""Seconds Locust may run past its ``-t`` (start-up, stopping users, the summary)."""


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
            redis_url, info = await start_redis(stack, folder, children)

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
                    if lines := tail(log):
                        print(f"\n-- last lines of {variant.name}/{log.name} --\n{lines}")
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
