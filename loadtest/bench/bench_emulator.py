"""Benchmark: can the emulator keep up with a load test?

Two measurements, each against the emulator in its own process (so client and server do not
share one core's event loop):

1. ``/interface/print`` of 2,000 interfaces: latency over one librouteros session, with the
   gateway's ``.proplist`` and without one (every attribute).
2. 200 concurrent sessions, each polling ``/interface/print`` once a second for the duration:
   requests served per second and the latency distribution.

Run: ``make bench-emulator`` or ``python loadtest/bench/bench_emulator.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import time

import librouteros
from common import emulate_args, percentile

from gateway.process import EMULATOR_READY, Child, command, started

PROPLIST = ".id,name,type,running,disabled,rx-byte,tx-byte,rx-packet,tx-packet"


def emulating(interfaces: int, pppoe: int) -> contextlib.AbstractAsyncContextManager[Child]:
    """``gateway emulate`` in its own process on a free port (``.port``); SIGTERM at the end."""
    argv = command(*emulate_args(interfaces, pppoe, 1000, control=False))
    return started(argv, ready=EMULATOR_READY, deadline=30, ending="terminate")


async def big_print(port: int, rounds: int) -> None:
    api = await librouteros.async_connect("127.0.0.1", "admin", "admin", port=port, timeout=30)
    for label, words in (("with .proplist", (f"=.proplist={PROPLIST}",)), ("all attributes", ())):
        times = []
        rows = 0
        for _ in range(rounds):
            started = time.perf_counter()
            rows = len([r async for r in api.rawCmd("/interface/print", *words)])
            times.append(time.perf_counter() - started)
        print(
            f"  print {rows} interfaces, {label}: median {statistics.median(times) * 1000:.0f} ms,"
            f" p95 {percentile(times, 0.95) * 1000:.0f} ms ({rounds} rounds, librouteros client)"
        )
    await api.close()


async def many_sessions(port: int, sessions: int, seconds: float) -> None:
    latencies: list[float] = []
    errors = 0

    async def session(i: int) -> None:
        nonlocal errors
        api = await librouteros.async_connect("127.0.0.1", "admin", "admin", port=port, timeout=10)
        await asyncio.sleep(i / sessions)  # spread the sessions over the second
        deadline = time.monotonic() + seconds
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                [r async for r in api.rawCmd("/interface/print", f"=.proplist={PROPLIST}")]
                latencies.append(time.perf_counter() - started)
            except Exception:  # noqa: BLE001 - counted and reported, the benchmark goes on
                errors += 1
            next_at += 1.0
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await api.close()

    started = time.monotonic()
    await asyncio.gather(*(session(i) for i in range(sessions)))
    elapsed = time.monotonic() - started
    print(
        f"  {sessions} sessions polling 1/s for {seconds:g} s:"
        f" {len(latencies) / elapsed:.0f} req/s,"
        f" latency median {statistics.median(latencies) * 1000:.1f} ms,"
        f" p99 {percentile(latencies, 0.99) * 1000:.1f} ms, errors {errors}"
    )


def own_cost(interfaces: int, pppoe: int, rounds: int) -> None:
    """The emulator's own share: building and encoding the reply, without any client."""
    from gateway.emulator import Device, RouterEmulator, sized_config
    from gateway.emulator.session import ApiSession

    device = Device(sized_config(interfaces, pppoe, pppoe_session=0))
    server = RouterEmulator(device)
    session = ApiSession(device, username="admin", password="admin")
    session.handle(["/login", "=name=admin", "=password=admin"])
    for label, words in (("with .proplist", [f"=.proplist={PROPLIST}"]), ("all attributes", [])):
        times = []
        size = 0
        for _ in range(rounds):
            started = time.perf_counter()
            size = len(server.encode(session.handle(["/interface/print", *words]).sentences))
            times.append(time.perf_counter() - started)
        print(
            f"  emulator's own time, {label}: median {statistics.median(times) * 1000:.0f} ms"
            f" for {size / 1024:.0f} KiB of reply"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sessions", type=int, default=200)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    async with emulating(1700, 300) as emulator:
        print("2,000 interfaces (1,700 static + 300 PPPoE):")
        await big_print(emulator.port, 20)
        own_cost(1700, 300, 20)
    async with emulating(24, 40) as emulator:
        print("typical router (24 static + 40 PPPoE interfaces):")
        await many_sessions(emulator.port, args.sessions, args.seconds)


if __name__ == "__main__":
    asyncio.run(main())
