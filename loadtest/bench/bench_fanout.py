"""Benchmark: what does it cost to fan one router's frames out to thousands of viewers?

In one run, for each number of viewers N, these servers each push one traffic frame per second
(the same frame format and size: 9 interfaces, about 1.4 KB) to N websocket viewers on loopback:

- ``gateway``: the real ``gateway serve`` polling an emulated router (``gateway emulate``), with
  its slow-consumer policy (1 MiB / 10 s, latest wins, 4408) and its keepalive as shipped;
- ``floor``: a raw-socket send floor (``baseline_fanout_raw.py``): the same bytes written to N
  sockets with ``socket.send`` in a loop, nothing else;
- ``aiohttp``: a naive aiohttp server doing ``await ws.send_str(...)`` per client
  (``baseline_fanout_aiohttp.py``), with a 20 s heartbeat;
- ``websockets``: the websockets library's ``broadcast()`` (``baseline_fanout_websockets.py``),
  with its default 20 s keepalive pings;
- ``aiohttp-bare``, ``websockets-bare``: the same two without any keepalive.

Each server runs alone, in a fresh process per N, pinned to CPU 0; the viewers are one
``fanout_client.py`` process (raw sockets, one epoll, minimal parsing; see its docstring) pinned
to CPU 1, with the gateway's emulated router. Per run:

- server CPU per delivered frame: the server's CPU time (all threads, ``/proc/PID/task/*/
  schedstat``; ``utime + stime`` from ``/proc/PID/stat`` as a coarser check) over a window of
  exactly K frames, sampled halfway between frames, divided by the frames delivered in the
  window (N x K when none is missed). K = 20 at 1 s is one 20 s keepalive period, so each
  server's keepalive work falls in every window once;
- delay from poll completion to client receipt: kernel receive timestamp (``SO_TIMESTAMPNS``)
  minus the frame's ``ts``, p50 / p99 over every delivered frame;
- memory per viewer: (server RSS with N viewers subscribed - RSS before any) / N;
- missed frames (gaps in ``seq`` and frames of the window not delivered), the client's CPU.

Then the issue's targets, each marked met or MISSED. Exit status 1 if one is missed.

Run: ``python loadtest/bench/bench_fanout.py`` (about 15 minutes; ``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Final

from common import (
    Server,
    Window,
    client_command,
    client_events,
    finish,
    load,
    machine,
    pin,
    rss_kib,
    start_emulator,
    start_gateway,
    window_options,
)
from common import start_script as start_baseline

VARIANTS: Final = (
    "gateway",
    "before",
    "poll",
    "floor",
    "aiohttp",
    "websockets",
    "aiohttp-bare",
    "websockets-bare",
)
DEFAULT_VARIANTS: Final = tuple(v for v in VARIANTS if v not in ("before", "poll"))
RIVALS: Final = ("aiohttp", "websockets", "aiohttp-bare", "websockets-bare")
SCRIPTS: Final = {
    "floor": ("baseline_fanout_raw.py",),
    "aiohttp": ("baseline_fanout_aiohttp.py",),
    "websockets": ("baseline_fanout_websockets.py",),
    "aiohttp-bare": ("baseline_fanout_aiohttp.py", "--heartbeat", "0"),
    "websockets-bare": ("baseline_fanout_websockets.py", "--ping-interval", "0"),
}
SETTLE: Final = 1.5  # seconds between a server's start and its idle RSS reading
TODAY_BYTES: Final = 46_800
"""Bytes per viewer per tick of a 308-interface router's frame, uncompressed (issue 12)."""


@dataclass
class Row(Window):
    variant: str
    viewers: int
    result: dict[str, Any]
    connect: dict[str, Any]
    rss_idle_kib: int

    @property
    def ticks_cpu_us(self) -> float:
        return float(self.result["server_cpu_ticks_s"]) * 1e6 / max(1, self.delivered)

    @property
    def client_cpu_us(self) -> float:
        return float(self.result["client_cpu_s"]) * 1e6 / max(1, self.delivered)

    @property
    def kib_per_viewer(self) -> float:
        return (int(self.result["rss_start_kib"]) - self.rss_idle_kib) / self.viewers


def start(variant: str, args: argparse.Namespace) -> Server:
    common = ["--interfaces", str(args.interfaces), "--interval", str(args.interval)]
    if variant in ("gateway", "before", "poll"):
        emulator = start_emulator(args.interfaces, args.customers)
        root = args.before if variant == "before" else None
        gateway = start_gateway(emulator.port, args.interval, args.history, root=root)
        gateway.behind.append(emulator)
        return gateway
    script, *options = SCRIPTS[variant]
    if args.filters != "all" or args.deflate:
        if variant != "floor":
            raise SystemExit(f"{variant} has no per-viewer filters and no compression")
        options = [*options, "--pppoe", str(args.customers)]
        options.append("--deflate" if args.deflate else "--per-customer")
    return start_baseline(script, "--port", "0", *options, *common)


def run_one(variant: str, viewers: int, frames: int, args: argparse.Namespace) -> Row:
    if variant == "poll":
        viewers = 1  # what polling the router costs the gateway per tick, whatever N
    server = start(variant, args)
    try:
        if args.pin:  # the server on CPU 0; its emulator (if any) and the client on CPU 1
            pin([server.pid], [other.pid for other in server.behind])
        time.sleep(SETTLE)
        idle = rss_kib(server.pid)
        command = client_command(
            [server.port], viewers, frames, args.warmup, args.interval, [server.pid]
        )
        if args.sources:
            command += ["--sources", args.sources]
        if args.filters != "all":
            command += ["--customers", str(args.customers)]
            if args.filters == "distinct":
                command.append("--distinct")
        if args.deflate:
            command.append("--deflate")
            if args.compressing_clients:
                command.append("--compress")
        if args.pin:
            command += ["--cpu", "1"]
        client = subprocess.run(command, stdout=subprocess.PIPE, check=False, timeout=900)
        by_kind = client_events(f"{variant} x {viewers}", client.stdout, client.returncode)
        row = Row(variant, viewers, by_kind["result"], by_kind["connected"], idle)
    finally:
        server.stop()
    print(
        f"  {variant:10} N={viewers:6}: {row.cpu_us:6.2f} us/frame"
        f" (ticks {row.ticks_cpu_us:6.2f}), delay p50 {row.result['delay_p50_ms']:6.1f} ms"
        f" p99 {row.result['delay_p99_ms']:6.1f} ms, {row.kib_per_viewer:5.2f} KiB/viewer,"
        f" missed {row.missed}, client {row.client_cpu_us:5.2f} us/frame,"
        f" connect {row.connect['seconds']:.1f} s, load {load()}",
        flush=True,
    )
    if args.verbose:
        print(f"    per frame [p50, p99, max] ms: {row.result['per_frame_ms']}", flush=True)
    return row


def markdown(rows: list[Row]) -> str:
    floor = {r.viewers: r for r in rows if r.variant == "floor"}
    lines = [
        "| N | server | CPU us / frame | vs floor | delay p50 | delay p99 | KiB / viewer"
        " | missed | bytes / frame on the wire (JSON) | client us / frame |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = floor.get(r.viewers)
        ratio = f"{r.cpu_us / base.cpu_us:.2f}x" if base else "-"
        if r.variant == "poll":
            # One viewer: the CPU of a tick (polling, parsing, encoding, one send).
            ratio = "per tick"
        lines.append(
            f"| {r.viewers:,} | {r.variant} | {r.cpu_us:.2f} | {ratio}"
            f" | {r.result['delay_p50_ms']:.1f} ms | {r.result['delay_p99_ms']:.1f} ms"
            f" | {r.kib_per_viewer:.2f} | {r.missed} of {r.viewers * int(r.result['frames']):,}"
            f" | {r.result['wire_bytes']:,.0f} ({r.result['json_bytes']:,.0f})"
            f" | {r.client_cpu_us:.2f} |"
        )
    return "\n".join(lines)


def poll_shares(rows: list[Row]) -> list[str]:
    """What polling the router (measured with one viewer) adds per delivered frame at each N,
    and the gateway's fan-out alone against the floor."""
    poll = next((r for r in rows if r.variant == "poll"), None)
    if poll is None:
        return []
    tick_us = poll.cpu_us
    out = [f"polling and encoding, one viewer: {tick_us:.0f} us of CPU per tick"]
    floor = {r.viewers: r for r in rows if r.variant == "floor"}
    for r in rows:
        if r.variant in ("gateway", "before") and r.viewers in floor:
            share = tick_us / r.viewers
            fan_out = (r.cpu_us - share) / floor[r.viewers].cpu_us
            out.append(
                f"{r.variant} at {r.viewers:,}: polling {share:.2f} us of its {r.cpu_us:.2f} us"
                f" per frame; the rest {fan_out:.2f}x the floor"
            )
    return out


def targets(rows: list[Row], args: argparse.Namespace) -> list[str]:
    """The issue's targets, each "met" or "MISSED" with its numbers."""
    by = {(r.variant, r.viewers): r for r in rows}
    gateway = [r for r in rows if r.variant == "gateway"]
    out = []

    def verdict(ok: bool, text: str) -> None:
        out.append(f"{'met' if ok else 'MISSED'}: {text}")

    if args.deflate:
        for row in gateway:
            wire, json = float(row.result["wire_bytes"]), float(row.result["json_bytes"])
            agreed = int(row.result["agreed"])
            verdict(
                agreed == row.viewers and wire * 5 <= json,
                f"at {row.viewers:,}, bytes per viewer per tick <= 1/5 of the frame's JSON"
                f" ({agreed:,} viewers agreed to deflate): {wire:,.0f} of {json:,.0f}"
                f" ({json / wire:.1f}x less)",
            )
            verdict(
                wire * 5 <= TODAY_BYTES,
                f"at {row.viewers:,}, bytes per viewer per tick <= 1/5 of the issue's"
                f" {TODAY_BYTES:,} (frames without PPP sessions): {wire:,.0f}",
            )
            base = by.get(("floor", row.viewers))
            if base:
                ratio = row.cpu_us / base.cpu_us
                verdict(
                    ratio <= 1.25,
                    f"at {row.viewers:,}, CPU per delivered frame <= 1.25x the floor at the"
                    f" compressed size: {ratio:.2f}x",
                )
        return out
    if args.filters != "all":
        for row in gateway:
            base = by.get(("floor", row.viewers))
            if base:
                ratio = row.cpu_us / base.cpu_us
                verdict(
                    ratio <= 1.5,
                    f"per-customer fan-out at {row.viewers:,} ({args.filters} filters): CPU per"
                    f" delivered frame <= 1.5x the floor at the same sizes: {ratio:.2f}x",
                )
        return out

    for n in (5000, 10000):
        g, f = by.get(("gateway", n)), by.get(("floor", n))
        if g and f:
            ratio = g.cpu_us / f.cpu_us
            verdict(ratio <= 1.25, f"CPU per frame at {n:,} <= 1.25x the floor: {ratio:.2f}x")
    for g in gateway:
        for label, names in (
            ("both with keepalive", ("aiohttp", "websockets")),
            ("with or without keepalive", RIVALS),
        ):
            rivals = [by[v, g.viewers] for v in names if (v, g.viewers) in by]
            if not rivals:
                continue
            best = min(rivals, key=lambda r: r.cpu_us)
            ratio = best.cpu_us / g.cpu_us
            verdict(
                ratio >= 1.3,
                f"at {g.viewers:,}, >= 1.3x cheaper than the best of aiohttp and websockets,"
                f" {label} ({best.variant}): {ratio:.2f}x",
            )
    if ("gateway", 10000) in by:
        p99 = float(by["gateway", 10000].result["delay_p99_ms"])
        verdict(p99 <= 110, f"p99 delay at 10,000 <= 110 ms: {p99:.1f} ms")
    for g in gateway:
        if g.viewers >= 15000:
            verdict(
                g.missed == 0 and g.result["closed"] == 0,
                f"{g.viewers:,} viewers, {g.result['frames']} frames at 1 Hz, none missed:"
                f" {g.missed} missed, {g.result['closed']} closed",
            )
    if gateway:
        worst = max(gateway, key=lambda r: r.kib_per_viewer)
        verdict(
            worst.kib_per_viewer <= 14,
            f"memory per viewer <= 14 KiB: at most {worst.kib_per_viewer:.2f} KiB"
            f" (at {worst.viewers:,})",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", default="1000,5000,10000", help="comma-separated N")
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, of {', '.join(VARIANTS)} (the -bare ones: no keepalive pings)",
    )
    window_options(parser, repeat=1)
    parser.add_argument(
        "--max-viewers",
        type=int,
        default=15000,
        help="then the gateway alone with this many viewers (0: skip)",
    )
    parser.add_argument("--max-frames", type=int, default=30, help="frames for --max-viewers")
    parser.add_argument("--sources", default="", help="client source addresses, comma-separated")
    parser.add_argument(
        "--customers", type=int, default=0, help="PPPoE customers of the emulated router"
    )
    parser.add_argument(
        "--filters",
        choices=("all", "customer", "distinct"),
        default="all",
        help="what each viewer watches: every interface; its customer's (viewer k: customer"
        " k mod --customers, so viewers of one customer share a filter); or its customer's"
        " with a filter of its own (one distinct filter per viewer)",
    )
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="viewers offer permessage-deflate (as browsers do); the floor deflates each frame"
        " once",
    )
    parser.add_argument(
        "--compressing-clients",
        action="store_true",
        help="with --deflate: viewers send their subscribe compressed, as browsers do",
    )
    parser.add_argument(
        "--before",
        default="",
        help="a source tree of the gateway to compare (variant 'before'), e.g. the previous"
        " main unpacked with `git archive`",
    )
    args = parser.parse_args()
    args.pin = args.pin and (os.cpu_count() or 1) >= 2
    if args.filters != "all" and args.customers < 1:
        parser.error(f"--filters {args.filters} needs --customers")
    variants = [v for v in args.variants.split(",") if v]
    if "before" in variants and not args.before:
        parser.error("variant 'before' needs --before DIR")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variant(s) {sorted(unknown)}; choose from {', '.join(VARIANTS)}")

    print(f"machine: {machine()}")
    print(f"load average at start: {load()}")
    print(
        f"{args.interfaces} static interfaces + lo + {args.customers} PPPoE customers per frame,"
        f" viewers watch {args.filters}, one frame per {args.interval:g} s,"
        f" {args.frames} frames per window after {args.warmup} warm-up frames"
    )
    rows: list[Row] = []
    round_ratios: list[str] = []
    if "poll" in variants:
        # Once: with one viewer, N does not matter.
        variants.remove("poll")
        rows.append(run_one("poll", 1, args.frames, args))
    for n in (int(v) for v in args.viewers.split(",")):
        # Rounds of every variant in turn, so a disturbance from outside hits all of them alike;
        # each variant's run with the median CPU per frame stands for it.
        runs: dict[str, list[Row]] = {v: [] for v in variants}
        for _ in range(args.repeat):
            for variant in variants:
                runs[variant].append(run_one(variant, n, args.frames, args))
        for variant in variants:
            ordered = sorted(runs[variant], key=lambda r: r.cpu_us)
            rows.append(ordered[len(ordered) // 2])
        if "floor" in runs and args.repeat > 1:
            # Each round's ratio to the floor measured in the same round: the machine's drift
            # falls on both alike.
            for variant in variants:
                if variant == "floor":
                    continue
                ratios = sorted(
                    g.cpu_us / f.cpu_us for g, f in zip(runs[variant], runs["floor"], strict=True)
                )
                round_ratios.append(
                    f"{variant} at {n:,}: per round {', '.join(f'{r:.2f}x' for r in ratios)};"
                    f" median {ratios[len(ratios) // 2]:.2f}x"
                )
    if args.max_viewers and "gateway" in variants:
        rows.append(run_one("gateway", args.max_viewers, args.max_frames, args))
    print(f"load average at end: {load()}")
    print()
    print(markdown(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                [
                    {"variant": r.variant, "viewers": r.viewers, "idle_rss_kib": r.rss_idle_kib}
                    | r.result
                    for r in rows
                ],
                f,
                indent=1,
            )
    for line in [*round_ratios, *poll_shares(rows)]:
        print(line)
    print()
    finish(targets(rows, args))


if __name__ == "__main__":
    main()
