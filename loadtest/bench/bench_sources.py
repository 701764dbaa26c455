"""Benchmark: what do sources cost? An ISP router of 2,000 PPPoE customers, each a
``<pppoe-USER>`` interface and a dynamic simple queue (2,000 queues), watched whole: its
interfaces and its queues.

Two parts, the emulated router in a process of its own (its CPU is not the gateway's):

- ``profile``: in this process, one poll of the router's 2,000 queues through the real client
  (``RouterClient.print_rows`` over loopback), per row: the reply read word by word by
  librouteros against the bulk reader (``gateway.core.reply.ReplyReader``, what
  ``gateway.routeros.BULK_COMMANDS`` selects), and the stages after it (row parsing, rates,
  frame building with the PPP joins, encoding). The same for the 2,000 interfaces, for scale.
- ``wire``: the real ``gateway serve`` polling the router once a second, one websocket viewer
  subscribed to both its interfaces and its queues (no history), for ``--seconds``: the router's
  requests per interval, per command (from the emulator's ``/stats``), and the gateway's CPU per
  tick (``/proc/PID/task/*/schedstat``). Run with customers who never drop (``--churn 0``) and
  with the emulator's default churn (a re-dial every ``--churn`` seconds on average per
  customer: 2,000 customers at 600 s are three re-dials a second), where new sessions bring
  the PPP sessions read forward (at most once per ``sessions_interval / 10``). For scale, the
  same router with interfaces only watched.

Expected: two requests per interval (one ``/interface/print``, one ``/queue/simple/print``),
plus ``/ppp/active/print`` once per ``sessions_interval`` (30 s) without churn; no
``/ip/hotspot/active/print`` (nobody watches it).

Run: ``python loadtest/bench/bench_sources.py [--only profile,wire]`` (about 5 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any, Final

import aiohttp
import orjson
from common import (
    Server,
    cpu_ns,
    load,
    machine,
    parts,
    rss_kib,
    serve_config,
    stage_times,
    start_emulator,
    watch,
)

PARTS: Final = ("profile", "wire")
CUSTOMERS: Final = 2000
INTERFACES: Final = "/interface/print"
QUEUES: Final = "/queue/simple/print"
HOTSPOT: Final = "/ip/hotspot/active/print"
SESSIONS: Final = "/ppp/active/print"


def start_router(customers: int, churn: float) -> Server:
    """``gateway emulate``: 8 ports and ``customers`` PPPoE customers with dynamic queues."""
    return start_emulator(8, customers, 20, pppoe_session=churn, timeout=60.0)


def start_gateway(port: int, interval: float) -> Server:
    config = f"""\
[server]
host = "127.0.0.1"
port = 0

[poll]
interval = {interval}
history = 60

[[routers]]
id = "isp"
host = "127.0.0.1"
port = {port}
username = "admin"
password = "admin"
"""
    return serve_config(config, prefix="bench-sources-")


# -- profile -------------------------------------------------------------------------------------


async def profile_part(polls: int) -> dict[str, Any]:
    """Per row: a poll of the queues (and of the interfaces) through the real client, word by
    word and in bulk, and the stages after the read."""
    from gateway import routeros
    from gateway.config import settings_from_dict
    from gateway.core.frames import queue_frame, traffic_frame
    from gateway.core.model import PROPLIST, Sample, parse_interface_row
    from gateway.core.rates import compute_queue_rates, compute_rates
    from gateway.core.sessions import SessionBook
    from gateway.core.sources import (
        QUEUE_PROPLIST,
        SESSION_PROPLIST,
        Reading,
        parse_queue_row,
        parse_session_row,
    )

    router = start_router(CUSTOMERS, 0)
    result: dict[str, Any] = {}
    try:
        entry = {"id": "isp", "host": "127.0.0.1", "port": router.port, "username": "admin"}
        settings = settings_from_dict({"routers": [{**entry, "password": "admin"}]}, source="b")
        client = routeros.RouterClient(settings.routers[0], 30.0)
        shipped = routeros.BULK_COMMANDS
        for command, proplist in ((QUEUES, QUEUE_PROPLIST), (INTERFACES, PROPLIST)):
            for mode, bulk in (
                ("word by word", shipped - {command}),
                ("bulk", shipped | {command}),
            ):
                routeros.BULK_COMMANDS = bulk  # type: ignore[misc]  # the one switch measured
                rows = await client.print_rows(command, proplist)
                cpu0 = time.process_time()
                for _ in range(polls):
                    rows = await client.print_rows(command, proplist)
                per_row = (time.process_time() - cpu0) / polls / len(rows) * 1e6
                result[f"{command} {mode}"] = per_row
                print(f"  {command} read {mode}: {per_row:.2f} us/row ({len(rows)} rows)")
        routeros.BULK_COMMANDS = shipped  # type: ignore[misc]
        queue_rows = await client.print_rows(QUEUES, QUEUE_PROPLIST)
        interface_rows = await client.print_interfaces(PROPLIST)
        session_rows = await client.print_rows(SESSIONS, SESSION_PROPLIST)
        await client.close()
    finally:
        router.stop()

    book = SessionBook()
    sessions = [s for s in map(parse_session_row, session_rows) if s is not None]
    book.update(sessions, 0.0, time.time())
    queues = [q for q in map(parse_queue_row, queue_rows) if q is not None]
    earlier = Reading(0.0, tuple(queues))
    now = Reading(1.0, tuple(queues))
    rates = compute_queue_rates(earlier, now)
    frame = queue_frame("isp", 1, 1.0, 1.0, False, now, rates, book.view())
    interfaces = [s for s in map(parse_interface_row, interface_rows) if s is not None]
    sample = Sample(1.0, tuple(interfaces))
    irates = compute_rates(Sample(0.0, tuple(interfaces)), sample)
    iframe = traffic_frame("isp", 1, 1.0, 1.0, False, irates, book.view())
    stages = [
        ("queues: row parsing", lambda: [parse_queue_row(row) for row in queue_rows]),
        ("queues: rates", lambda: compute_queue_rates(earlier, now)),
        (
            "queues: frame building (with PPP joins)",
            lambda: queue_frame("isp", 1, 1.0, 1.0, False, now, rates, book.view()),
        ),
        ("queues: JSON encoding", lambda: orjson.dumps(frame)),
        ("interfaces: row parsing", lambda: [parse_interface_row(row) for row in interface_rows]),
        ("interfaces: rates", lambda: compute_rates(Sample(0.0, tuple(interfaces)), sample)),
        (
            "interfaces: frame building (with PPP joins)",
            lambda: traffic_frame("isp", 1, 1.0, 1.0, False, irates, book.view()),
        ),
        ("interfaces: JSON encoding", lambda: orjson.dumps(iframe)),
    ]
    for label, micros in stage_times(stages, len(queue_rows), 20):
        result[label] = micros
        print(f"  {label}: {micros:.2f} us/row")
    result["queue_frame_bytes"] = len(orjson.dumps(frame))
    result["interface_frame_bytes"] = len(orjson.dumps(iframe))
    print(
        f"  frames: queues {result['queue_frame_bytes']:,} bytes,"
        f" interfaces {result['interface_frame_bytes']:,} bytes"
    )
    return result


# -- wire ----------------------------------------------------------------------------------------


async def stats(http: aiohttp.ClientSession, port: int) -> dict[str, int]:
    async with http.get(f"http://127.0.0.1:{port}/stats") as response:
        data = await response.json()
    return {str(k): int(v) for k, v in data["commands"].items()}


async def watch_sources(
    port: int, sources: list[str], frames: dict[str, int], progress: asyncio.Event
) -> None:
    """One websocket viewer of the router's ``sources``, counting frames per source (and
    setting ``progress`` at each)."""

    def count(data: dict[str, Any]) -> None:
        frames[data["source"]] = frames.get(data["source"], 0) + 1
        progress.set()

    subscribes = [
        {"type": "subscribe", "router": "isp", "source": source, "history": 0} for source in sources
    ]
    await watch(port, subscribes, count)


async def wire_run(
    sources: list[str], churn: float, seconds: float, interval: float
) -> dict[str, Any]:
    router = start_router(CUSTOMERS, churn)
    control = router.ports[1]
    gateway = start_gateway(router.port, interval)
    frames: dict[str, int] = {}
    progress = asyncio.Event()
    task = asyncio.create_task(watch_sources(gateway.port, sources, frames, progress))
    try:
        async with aiohttp.ClientSession() as http:
            # Past the login, the first baselines and the first PPP sessions read.
            async with asyncio.timeout(60):
                while frames.get(sources[-1], 0) < 3:
                    await progress.wait()
                    progress.clear()
            before, cpu0, started = (
                await stats(http, control),
                cpu_ns(gateway.pid),
                time.monotonic(),
            )
            ticks0 = dict(frames)
            await asyncio.sleep(seconds)  # the observation window
            after, cpu1, ended = await stats(http, control), cpu_ns(gateway.pid), time.monotonic()
        rss = rss_kib(gateway.pid)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await task
        gateway.stop()
        router.stop()
    took = ended - started
    intervals = took / interval
    ticks = frames[sources[0]] - ticks0[sources[0]]
    per_interval = {
        command: (after.get(command, 0) - before.get(command, 0)) / intervals
        for command in (INTERFACES, QUEUES, SESSIONS, HOTSPOT)
    }
    return {
        "sources": sources,
        "churn_s": churn,
        "seconds": took,
        "requests_per_interval": per_interval,
        "requests_per_interval_total": sum(per_interval.values()),
        "sessions_reads": after.get(SESSIONS, 0) - before.get(SESSIONS, 0),
        "ticks": ticks,
        "gateway_cpu_ms_per_tick": (cpu1 - cpu0) / 1e6 / max(ticks, 1),
        "gateway_core_share": (cpu1 - cpu0) / 1e9 / took,
        "gateway_rss_mib": rss / 1024,
    }


def show(run: dict[str, Any]) -> None:
    r = run["requests_per_interval"]
    print(
        f"| {' + '.join(run['sources'])} | {run['churn_s']:g} | "
        f"{r[INTERFACES]:.2f} | {r[QUEUES]:.2f} | {r[SESSIONS]:.3f} | {r[HOTSPOT]:.2f} | "
        f"{run['requests_per_interval_total']:.2f} | {run['gateway_cpu_ms_per_tick']:.1f} | "
        f"{run['gateway_core_share'] * 100:.1f} % | {run['gateway_rss_mib']:.0f} MiB |",
        flush=True,
    )


async def main_async(args: argparse.Namespace) -> int:
    print(f"machine: {machine()}")
    print(f"load average at start: {load()}")
    if "profile" in args.only:
        print(f"\n## profile: one poll of {CUSTOMERS:,} queues and of the interfaces, per row")
        print(json.dumps(await profile_part(args.polls)))
    if "wire" in args.only:
        print(
            f"\n## wire: {CUSTOMERS:,} PPPoE customers with queues at {args.interval:g} s,"
            f" {args.seconds:g} s windows"
        )
        print(
            "| watched | churn (s) | /interface/print | /queue/simple/print | /ppp/active/print"
            " | /ip/hotspot/active/print | requests per interval | gateway CPU per tick (ms)"
            " | share of a core | RSS |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        runs = [
            (["interfaces"], 0.0),
            (["interfaces", "queues"], 0.0),
            (["interfaces", "queues"], args.churn),
        ]
        for sources, churn in runs:
            run = await wire_run(sources, churn, args.seconds, args.interval)
            show(run)
            print(json.dumps(run), file=sys.stderr)
        print(f"load average at end: {load()}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    parser.add_argument("--polls", type=int, default=10, help="profile: polls per mode")
    parser.add_argument("--seconds", type=float, default=60.0, help="wire: window per run")
    parser.add_argument("--interval", type=float, default=1.0, help="the poll interval")
    parser.add_argument(
        "--churn", type=float, default=600.0, help="wire: mean PPPoE session (s) of the churn run"
    )
    args = parser.parse_args()
    args.only = parts(parser, args.only, PARTS)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
