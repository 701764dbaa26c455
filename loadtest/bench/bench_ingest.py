"""Benchmark: what does reading big routers cost the gateway? (ingest: socket bytes to frames)

Three parts, each against emulated routers in a process of their own (their CPU is not the
gateway's):

- ``rows``: one router of 2,000 interfaces (1,700 static + 300 PPPoE) polled once a second by
  the real ``gateway serve`` with one websocket viewer, and, in the same run against the same
  router, a process that merely reads the same reply with stock librouteros (``async_connect``,
  ``rawCmd("/interface/print", "=.proplist=...")``) at the same cadence: the floor the issue
  compares with. Each process's CPU time (``/proc/PID/task/*/schedstat``) is read half an
  interval after a poll, over windows of ``--polls`` polls, ``--windows`` times; per window,
  CPU per interface row per poll. Reported: medians, their ratio, and the gateway's share of a
  core at 1 Hz.
- ``region``: an ISP region in one gateway process: ``--routers`` emulated routers of 2,000
  interfaces each at 1 Hz and ``--viewers`` websocket viewers spread evenly over them (each
  router's viewers are one ``fanout_client.py`` process, which measures the gateway's CPU and
  every frame's delay from poll completion to the kernel's receipt timestamp over ``--frames``
  frames). Each viewer watches the router's ports (``--region-interfaces``, default
  ``ether*,sfp*``: 25 interfaces, a NOC dashboard's share): whole-router frames to 1,000
  viewers are 280 MB/s of websocket data, which the viewer processes of a 2-core machine cannot
  read beside 20 emulated routers (``--region-interfaces ""`` asks for them all the same).
  Viewers ask for no history: a thousand backfills at once are a burst of their own, not the
  steady cost measured here.
  Reported: the gateway's CPU (share of a core), frame delay p50 / p99, RSS.
- ``profile``: where the time goes, in this process: the stages of one poll of a 2,000-interface
  reply (bulk read, row parsing, rates, frame building, encoding) per row, and a cProfile of
  polls through the real client (``RouterClient`` over loopback to the emulator process).

Targets (issue 12): gateway <= 0.3 x stock librouteros per row; a 2,000-interface router at 1 Hz
<= 2.5 % of a core; the region <= 50 % of a core. Exit status 1 if one is missed.

Run: ``python loadtest/bench/bench_ingest.py [--only rows,region,profile]`` (about 6 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from common import (
    CLIENT,
    PYTHON,
    Server,
    cpu_ns,
    load,
    machine,
    parts,
    rss_kib,
    serve_config,
    spawn,
    stage_times,
    watch,
)

from gateway.core.model import PROPLIST

PARTS: Final = ("rows", "region", "profile")
STATIC: Final = 1700
PPPOE: Final = 300
ROUTER_LINE: Final = r"router on [\d.]+:(\d+)"


# -- processes: the emulated routers, the stock reader, the gateway ---------------------------


async def serve_routers(count: int, static: int, pppoe: int) -> None:
    """``count`` emulated routers in this process, each printing the port it listens on."""
    from gateway.emulator.device import Device, sized_config
    from gateway.emulator.server import RouterEmulator

    emulators = []
    for index in range(count):
        device = Device(sized_config(static, pppoe, pppoe_session=0, seed=index + 1))
        emulator = RouterEmulator(device, max_sessions=100)
        await emulator.start()
        emulators.append(emulator)
        print(f"router on 127.0.0.1:{emulator.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for emulator in emulators:
            await emulator.stop()


def start_routers(count: int, static: int = STATIC, pppoe: int = PPPOE) -> Server:
    command = [PYTHON, __file__, "--serve-routers", str(count)]
    command += ["--static", str(static), "--pppoe", str(pppoe)]
    return spawn(command, [ROUTER_LINE] * count, timeout=60.0 + 5.0 * count)


async def stock_reader(port: int, interval: float) -> None:
    """Stock librouteros reading the poller's request once per ``interval``; a line per poll."""
    import librouteros

    api = await librouteros.async_connect("127.0.0.1", "admin", "admin", port=port, timeout=30)
    words = f"=.proplist={','.join(PROPLIST)}"
    next_at = time.monotonic()
    while True:
        rows = len([row async for row in api.rawCmd("/interface/print", words)])
        print(f"polled {rows}", flush=True)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


def start_gateway(ports: list[int], interval: float, history: int) -> Server:
    """``gateway serve`` with one router per port (ids ``r1``, ``r2``, ...)."""
    routers = "".join(
        f"""
[[routers]]
id = "r{index}"
host = "127.0.0.1"
port = {port}
username = "admin"
password = "admin"
"""
        for index, port in enumerate(ports, 1)
    )
    config = f"""\
[server]
host = "127.0.0.1"
port = 0
max_connections = 20000
shutdown_grace = 2.0

[limits]
connections_per_address = 0
handshakes_per_second = 0

[poll]
interval = {interval}
history = {history}
{routers}"""
    return serve_config(config, prefix="bench-ingest-")


# -- rows: the gateway against stock librouteros, same run ------------------------------------


@dataclass
class Ticks:
    """Polls seen from one process, as they happen: how many, and the rows of the last."""

    count: int = 0
    rows: int = 0
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def tick(self, rows: int) -> None:
        self.count += 1
        self.rows = rows
        self.event.set()
        self.event = asyncio.Event()

    async def after(self, count: int, timeout: float) -> None:
        """Wait until ``count`` polls have been seen."""
        async with asyncio.timeout(timeout):
            while self.count < count:
                await self.event.wait()


async def watch_stock(proc: asyncio.subprocess.Process, ticks: Ticks) -> None:
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        if line.startswith(b"polled "):
            ticks.tick(int(line.split()[1]))


async def watch_gateway(port: int, router: str, ticks: Ticks) -> None:
    """One websocket viewer of ``router``: a tick per traffic frame."""
    await watch(
        port,
        [{"type": "subscribe", "router": router}],
        lambda data: ticks.tick(len(data["interfaces"])),
    )


async def cpu_per_row(pid: int, ticks: Ticks, polls: int, interval: float) -> float:
    """CPU microseconds per row per poll of ``pid`` over the next ``polls`` polls, read half an
    interval after a poll at both ends."""
    await ticks.after(ticks.count + 1, interval * 10)
    await asyncio.sleep(interval / 2)
    start, cpu0 = ticks.count, cpu_ns(pid)
    await ticks.after(start + polls, interval * (polls + 10))
    await asyncio.sleep(interval / 2)
    done, cpu1 = ticks.count, cpu_ns(pid)
    return (cpu1 - cpu0) / 1e3 / ((done - start) * ticks.rows)


async def rows_part(args: argparse.Namespace) -> dict[str, Any]:
    routers = start_routers(1)
    gateway = start_gateway(routers.ports, args.interval, args.history)
    stock = await asyncio.create_subprocess_exec(
        PYTHON,
        __file__,
        "--stock-reader",
        str(routers.port),
        "--interval",
        str(args.interval),
        stdout=asyncio.subprocess.PIPE,
    )
    gateway_ticks, stock_ticks = Ticks(), Ticks()
    watchers = [
        asyncio.create_task(watch_gateway(gateway.port, "r1", gateway_ticks)),
        asyncio.create_task(watch_stock(stock, stock_ticks)),
    ]
    ours: list[float] = []
    theirs: list[float] = []
    try:
        # Warm up: both past their first polls (connect, login, the first baseline).
        await gateway_ticks.after(3, 60)
        await stock_ticks.after(3, 60)
        for window in range(args.windows):
            gw, lr = await asyncio.gather(
                cpu_per_row(gateway.pid, gateway_ticks, args.polls, args.interval),
                cpu_per_row(stock.pid, stock_ticks, args.polls, args.interval),
            )
            ours.append(gw)
            theirs.append(lr)
            print(
                f"  window {window + 1}: gateway {gw:.1f} us/row, stock librouteros {lr:.1f}"
                f" us/row, ratio {gw / lr:.2f}; load {load()}",
                flush=True,
            )
        rows = gateway_ticks.rows
        gateway_rss = rss_kib(gateway.pid)
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        with contextlib.suppress(ProcessLookupError):
            stock.terminate()
        await stock.wait()
        gateway.stop()
        routers.stop()
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    return {
        "rows": rows,
        "gateway_us_per_row": ours,
        "stock_us_per_row": theirs,
        "gateway_median": ours_median,
        "stock_median": theirs_median,
        "ratio": ours_median / theirs_median,
        "ratio_per_window_median": statistics.median(
            g / s for g, s in zip(ours, theirs, strict=True)
        ),
        "core_share_at_1hz": ours_median * rows / 1e6,
        "gateway_rss_mib": gateway_rss / 1024,
    }


# -- region: many big routers, many viewers, one gateway --------------------------------------


async def viewers(
    port: int, router: str, count: int, frames: int, pid: int, interfaces: str
) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        str(CLIENT),
        "--port",
        str(port),
        "--router",
        router,
        "--interfaces",
        interfaces,
        "--history",
        "0",
        "--viewers",
        str(count),
        "--frames",
        str(frames),
        "--server-pid",
        str(pid),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    result: dict[str, Any] = {}
    while line := await proc.stdout.readline():
        message = json.loads(line)
        if message.get("event") == "result":
            result = message
    await proc.wait()
    if not result:
        raise SystemExit(f"the viewers of {router} gave no result")
    return result


async def region_part(args: argparse.Namespace) -> dict[str, Any]:
    routers = start_routers(args.routers)
    gateway = start_gateway(routers.ports, args.interval, args.region_history)
    per_router = args.viewers // args.routers
    try:
        # Every router polled a few times before the viewers come (logins, first baselines).
        await asyncio.sleep(5 * args.interval)
        results = await asyncio.gather(
            *(
                viewers(
                    gateway.port,
                    f"r{index}",
                    per_router,
                    args.frames,
                    gateway.pid,
                    args.region_interfaces,
                )
                for index in range(1, args.routers + 1)
            )
        )
        rss = rss_kib(gateway.pid)
    finally:
        gateway.stop()
        routers.stop()
    shares = [r["server_cpu_s"] / r["seconds"] for r in results]
    return {
        "routers": args.routers,
        "viewers": per_router * args.routers,
        "cpu_share_median": statistics.median(shares),
        "cpu_share_max": max(shares),
        "delay_p50_ms_median": statistics.median(r["delay_p50_ms"] for r in results),
        "delay_p99_ms_median": statistics.median(r["delay_p99_ms"] for r in results),
        "delay_p99_ms_max": max(r["delay_p99_ms"] for r in results),
        "missed": sum(r["missed"] for r in results),
        "frame_bytes": statistics.median(r["frame_bytes"] for r in results),
        "gateway_rss_mib": rss / 1024,
    }


# -- profile: where the time goes ---------------------------------------------------------------


def poll_stages(rounds: int) -> list[tuple[str, float]]:
    """Microseconds per row of each stage of one poll, on a reply the emulator builds."""
    import orjson

    from gateway.core.frames import traffic_frame
    from gateway.core.model import Sample, parse_interface_row
    from gateway.core.rates import compute_rates
    from gateway.core.reply import ReplyReader
    from gateway.emulator.device import Device, sized_config
    from gateway.emulator.server import RouterEmulator
    from gateway.emulator.session import ApiSession

    device = Device(sized_config(STATIC, PPPOE, pppoe_session=0))
    emulator = RouterEmulator(device)
    session = ApiSession(device, username="admin", password="admin")
    session.handle(["/login", "=name=admin", "=password=admin"])
    command = ["/interface/print", f"=.proplist={','.join(PROPLIST)}"]
    replies = [emulator.encode(session.handle(command).sentences) for _ in range(2)]

    def read(data: bytes) -> list[dict[str, str]]:
        reader = ReplyReader("utf-8")
        reader.feed(data)
        return reader.rows

    def sample(at: float, rows: list[dict[str, str]]) -> Sample:
        return Sample(at, tuple(s for s in map(parse_interface_row, rows) if s is not None))

    rows = [read(data) for data in replies]
    before, after = sample(0.0, rows[0]), sample(1.0, rows[1])
    rates = compute_rates(before, after)
    frame = traffic_frame("r1", 1, 1.0, 1.0, False, rates)
    stages: list[tuple[str, Callable[[], object]]] = [
        ("bulk read (bytes to rows of text)", lambda: read(replies[1])),
        ("row parsing", lambda: sample(1.0, rows[1])),
        ("rates", lambda: compute_rates(before, after)),
        ("frame building", lambda: traffic_frame("r1", 1, 1.0, 1.0, False, rates)),
        ("JSON encoding (orjson)", lambda: orjson.dumps(frame)),
    ]
    return stage_times(stages, len(after.interfaces), rounds)


async def profile_polls(polls: int) -> tuple[float, str]:
    """CPU microseconds per row of polls through the real client (parse, rates, frame, publish
    to one subscriber), and the cProfile of them (top functions by own time)."""
    from gateway.config import settings_from_dict
    from gateway.core.filters import InterfaceFilter
    from gateway.core.frames import traffic_frame
    from gateway.core.model import Sample, parse_interface_row
    from gateway.core.rates import compute_rates
    from gateway.routeros import RouterClient
    from gateway.topic import Topic

    class Viewer:
        behind = False
        deflate = False
        restricted = False
        fed_at = 0.0

        def write(self, frame: bytes, droppable: bool = False, backfill: bool = False) -> bool:
            return True

    routers = start_routers(1)
    try:
        entry = {"id": "r1", "host": "127.0.0.1", "port": routers.port, "username": "admin"}
        settings = settings_from_dict({"routers": [{**entry, "password": "admin"}]}, source="b")
        client = RouterClient(settings.routers[0], 30.0)
        topic = Topic("r1", 300)
        topic.subscribe(Viewer(), InterfaceFilter.all())  # type: ignore[arg-type]
        previous: list[Sample | None] = [None]

        async def poll(seq: int) -> int:
            rows = await client.print_interfaces(PROPLIST)
            parsed = (parse_interface_row(row) for row in rows)
            sample = Sample(time.monotonic(), tuple(s for s in parsed if s is not None))
            rates = compute_rates(previous[0], sample)
            previous[0] = sample
            topic.publish(traffic_frame("r1", seq, time.time(), 1.0, False, rates))
            return len(rows)

        count = await poll(0)
        await poll(1)
        cpu0 = time.process_time()
        for seq in range(polls):
            await poll(seq + 2)
        per_row = (time.process_time() - cpu0) / polls / count * 1e6
        profiler = cProfile.Profile()
        profiler.enable()
        for seq in range(polls):
            await poll(seq + 2 + polls)
        profiler.disable()
        await client.close()
    finally:
        routers.stop()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
    return per_row, text.getvalue()


# -- main ----------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    print(f"machine: {machine()}")
    print(f"load average at start: {load()}")
    missed = []
    if "profile" in args.only:
        print("\n## profile: one poll of 2,001 interfaces, per row")
        for label, micros in poll_stages(30):
            print(f"  {label}: {micros:.2f} us/row")
        per_row, text = await profile_polls(10)
        print(f"  whole poll through the real client, this process's CPU: {per_row:.1f} us/row")
        print(text)
    if "rows" in args.only:
        print(
            f"\n## rows: one router of {STATIC + PPPOE:,} interfaces at {args.interval:g} s,"
            f" one viewer; stock librouteros reading the same reply in the same run"
        )
        rows = await rows_part(args)
        print(json.dumps(rows))
        print(
            f"| {rows['rows']:,} | {rows['gateway_median']:.1f} | {rows['stock_median']:.1f}"
            f" | {rows['ratio']:.2f} | {rows['core_share_at_1hz'] * 100:.2f} % |"
        )
        if rows["ratio"] > 0.3:
            missed.append("rows: gateway > 0.3 x stock librouteros")
        if rows["core_share_at_1hz"] > 0.025:
            missed.append("rows: > 2.5 % of a core at 1 Hz")
    if "region" in args.only:
        print(
            f"\n## region: {args.routers} routers x {STATIC + PPPOE:,} interfaces at"
            f" {args.interval:g} s, {args.viewers:,} viewers, one gateway process"
        )
        region = await region_part(args)
        print(json.dumps(region))
        share = region["cpu_share_median"] * 100
        print(
            f"| {region['routers']} | {region['viewers']:,} | {share:.0f} %"
            f" | {region['delay_p50_ms_median']:.0f} / {region['delay_p99_ms_median']:.0f}"
            f" (worst router {region['delay_p99_ms_max']:.0f}) | {region['missed']}"
            f" | {region['gateway_rss_mib']:.0f} MiB |"
        )
        if region["cpu_share_median"] > 0.5:
            missed.append("region: > 50 % of a core")
    print(f"\nload average at end: {load()}")
    for line in missed:
        print(f"MISSED: {line}")
    return 1 if missed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--polls", type=int, default=10, help="polls per window (rows)")
    parser.add_argument("--windows", type=int, default=5, help="windows (rows)")
    parser.add_argument("--history", type=int, default=300, help="frames kept (rows)")
    parser.add_argument("--routers", type=int, default=20, help="routers (region)")
    parser.add_argument("--viewers", type=int, default=1000, help="viewers in all (region)")
    parser.add_argument("--frames", type=int, default=20, help="frames measured (region)")
    parser.add_argument("--region-history", type=int, default=60, help="frames kept (region)")
    parser.add_argument(
        "--region-interfaces",
        default="ether*,sfp*",
        help="name globs each region viewer watches (comma-separated; empty: every interface)",
    )
    parser.add_argument("--serve-routers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--static", type=int, default=STATIC, help=argparse.SUPPRESS)
    parser.add_argument("--pppoe", type=int, default=PPPOE, help=argparse.SUPPRESS)
    parser.add_argument("--stock-reader", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_routers:
        asyncio.run(serve_routers(args.serve_routers, args.static, args.pppoe))
        return
    if args.stock_reader:
        asyncio.run(stock_reader(args.stock_reader, args.interval))
        return
    args.only = parts(parser, args.only, PARTS)
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
