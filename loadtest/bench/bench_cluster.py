"""Benchmark: what does cluster mode's Redis hop cost the frames and the gateway's CPU?

In one run, for each total number of viewers N (1,000 and 5,000 by default), two set-ups push one
router's traffic frames (9 interfaces, about 1.4 KB, one a second) to N websocket viewers on
loopback:

- ``single``: one ``gateway serve`` polling an emulated router (``gateway emulate``): what
  ``bench_fanout.py`` measures as ``gateway``;
- ``cluster``: a ``redis-server`` and ``--replicas`` (3) ``gateway serve`` processes in cluster
  mode sharing it, the N viewers spread evenly over them. One replica holds the router's lease
  and polls; each frame goes from it to the router's Redis stream (one script per poll) and
  from there to every replica (its own included: one blocking ``XREAD`` each), which fans it
  out to its viewers as in one process;
- ``replica``: one ``gateway serve`` in cluster mode with its Redis, all N viewers on it: the
  Redis hop alone, without the cost of running several processes. Between ``single`` and
  ``cluster``, it says which of the two a difference comes from.

Pinning (two cores or more, as ``bench_fanout.py``): every gateway process on CPU 0, so the
gateway side has one core in both set-ups and the figures compare the work, not a second
core's parallelism; Redis, the emulator and the viewers' client on CPU 1. The viewers are one
``fanout_client.py`` process (see its docstring), which measures over a window of exactly K
frames, sampled halfway between frames:

- gateway CPU per delivered frame: the gateway processes' CPU time summed
  (``/proc/PID/task/*/schedstat``) over the window, divided by the frames delivered in it;
  Redis's CPU in the same window is reported apart (and as a share of the gateways');
- delay from poll completion (the frame's ``ts``, stamped by the polling replica) to the
  kernel's receive timestamp on the viewer's socket (``SO_TIMESTAMPNS``), p50 / p99 over every
  delivery, and the typical frame's p99 (the median over the window's frames of each frame's
  p99): on a machine shared with other work a frame late for everyone moves the first a lot
  and the second little;
- missed frames (gaps in ``seq``, frames of the window not delivered);
- in cluster mode, the stream lag: from the polling replica appending a frame to the stream to
  a replica reading it (``gateway_cluster_stream_lag_seconds``, mean over every replica and
  every frame from the viewers' connecting to the window's end): the hop itself, without the
  fan-out.

Each figure is the median over ``--repeat`` rounds of every set-up in turn (range in
brackets). Then the targets, each marked met or MISSED: at each N the cluster adds at most 5 ms
to the single process's delay p99 (both measures), and at most 10 % to its gateway CPU per
delivered frame. Exit status 1 if one is missed.

Run: ``python loadtest/bench/bench_cluster.py`` (about 10 minutes; ``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
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
    start_emulator,
    start_gateway,
    start_redis,
    window_options,
)

SETUPS: Final = ("single", "replica", "cluster")
P99_BUDGET_MS: Final = 5.0
"""The most the Redis hop may add to the delay p99."""
CPU_BUDGET: Final = 1.10
"""The most the cluster's gateway CPU per delivered frame may be, as a multiple of one
process's."""
SETTLE: Final = 1.0
"""Seconds between the servers' start and the viewers' connecting."""


@dataclass
class Rig:
    """The processes of one set-up, stopped in this order: the gateways (replicas release their
    leases), Redis, the emulator."""

    emulator: Server
    gateways: list[Server] = field(default_factory=list)
    redis: Server | None = None

    def stop(self) -> None:
        for server in (*self.gateways, self.redis, self.emulator):
            if server is not None:
                server.stop()


def title(setup: str, replicas: int) -> str:
    return {
        "single": "one process",
        "replica": "one replica + Redis",
        "cluster": f"{replicas} replicas + Redis",
    }[setup]


def start(setup: str, args: argparse.Namespace) -> Rig:
    rig = Rig(start_emulator(args.interfaces))
    try:
        url = ""
        if setup != "single":
            rig.redis = start_redis()
            url = f"redis://127.0.0.1:{rig.redis.port}/0"
        for _ in range(args.replicas if setup == "cluster" else 1):
            rig.gateways.append(start_gateway(rig.emulator.port, args.interval, args.history, url))
    except BaseException:
        rig.stop()
        raise
    return rig


@dataclass
class Run(Window):
    """One measured window of one set-up (``fanout_client.py``'s result); ``cpu_us`` is every
    gateway process's CPU per delivered frame."""

    setup: str
    viewers: int
    result: dict[str, Any]

    @property
    def redis_us(self) -> float:
        """Redis CPU per delivered frame, microseconds."""
        return float(self.result["aux_cpu_s"]) * 1e6 / max(1, self.delivered)

    @property
    def p50(self) -> float:
        return float(self.result["delay_p50_ms"])

    @property
    def p99(self) -> float:
        return float(self.result["delay_p99_ms"])

    @property
    def frame_p99(self) -> float:
        """The typical frame's p99: the median over the window's frames of each frame's p99
        delay, ms. A frame late for every viewer (the core taken away for a moment by another
        process) moves it little, unlike the p99 over every delivery."""
        return statistics.median(float(p99) for _, p99, _ in self.result["per_frame_ms"])

    @property
    def lag(self) -> float:
        """Mean stream lag, ms (cluster mode only; nan otherwise)."""
        return float(self.result.get("lag_ms", math.nan))


def stream_lag(gateways: list[Server]) -> tuple[float, float]:
    """Every gateway's ``gateway_cluster_stream_lag_seconds`` (from the polling replica's
    append to a replica's read of each frame) summed: seconds and frames so far."""
    total = count = 0.0
    for gateway in gateways:
        url = f"http://127.0.0.1:{gateway.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        for name, value in re.findall(
            r"^gateway_cluster_stream_lag_seconds_(sum|count) ([0-9.e+-]+)$", text, re.M
        ):
            if name == "sum":
                total += float(value)
            else:
                count += float(value)
    return total, count


@dataclass
class Row:
    """Every run of one set-up at one N: each figure is the median over the runs (a run
    disturbed from outside moves the median little), with the range in ``spread``."""

    setup: str
    viewers: int
    runs: list[Run]

    def median(self, figure: str) -> float:
        return statistics.median(float(getattr(run, figure)) for run in self.runs)

    def spread(self, figure: str, digits: int = 1) -> str:
        values = [float(getattr(run, figure)) for run in self.runs]
        if len(values) < 2:
            return ""
        return f" ({min(values):.{digits}f}-{max(values):.{digits}f})"

    @property
    def cpu_us(self) -> float:
        return self.median("cpu_us")

    @property
    def p99(self) -> float:
        return self.median("p99")

    @property
    def frame_p99(self) -> float:
        return self.median("frame_p99")

    @property
    def missed(self) -> int:
        return sum(run.missed for run in self.runs)

    @property
    def frames(self) -> int:
        return sum(self.viewers * int(run.result["frames"]) for run in self.runs)


def run_one(setup: str, viewers: int, args: argparse.Namespace) -> Run:
    rig = start(setup, args)
    try:
        if args.pin:  # gateways on CPU 0; Redis and the emulator on CPU 1 (with the client)
            others = (rig.redis, rig.emulator)
            pin([g.pid for g in rig.gateways], [o.pid for o in others if o is not None])
        time.sleep(SETTLE)  # the servers' start-up work is done before the window opens
        command = client_command(
            [g.port for g in rig.gateways],
            viewers,
            args.frames,
            args.warmup,
            args.interval,
            [g.pid for g in rig.gateways],
            "--aux-pid",
            str(rig.redis.pid) if rig.redis is not None else "",
        )
        if args.pin:
            command += ["--cpu", "1"]
        # The client's first line says every viewer is connected: the stream lag counts from
        # there (the connection storm before delays the frames it overlaps).
        with subprocess.Popen(command, stdout=subprocess.PIPE) as client:
            assert client.stdout is not None
            first = client.stdout.readline()
            lag0 = stream_lag(rig.gateways) if rig.redis is not None else (0.0, 0.0)
            try:
                rest, _ = client.communicate(timeout=900)
            except subprocess.TimeoutExpired:
                client.kill()
                raise SystemExit(f"{setup} x {viewers}: client overran 900 s") from None
        by_kind = client_events(f"{setup} x {viewers}", first + rest, client.returncode)
        run = Run(setup, viewers, by_kind["result"])
        if rig.redis is not None:
            total, count = stream_lag(rig.gateways)
            frames = count - lag0[1]
            run.result["lag_ms"] = 1000 * (total - lag0[0]) / frames if frames else math.nan
    finally:
        rig.stop()
    redis_part = (
        f", Redis {run.redis_us:5.2f} us/frame, stream lag {run.lag:4.1f} ms"
        if setup != "single"
        else ""
    )
    print(
        f"  {setup:8} N={viewers:6}: gateways {run.cpu_us:6.2f} us/frame{redis_part},"
        f" delay p50 {run.p50:6.1f} ms p99 {run.p99:6.1f} ms,"
        f" missed {run.missed}, load {load()}",
        flush=True,
    )
    if args.verbose:
        print(f"    per frame [p50, p99, max] ms: {run.result['per_frame_ms']}", flush=True)
    return run


def markdown(rows: list[Row], replicas: int) -> str:
    single = {r.viewers: r for r in rows if r.setup == "single"}
    lines = [
        "| N | set-up | gateway CPU us / frame | vs one process | Redis CPU us / frame"
        " | delay p50 | delay p99 | p99 vs one process | typical frame's p99 | vs one process"
        " | stream lag | missed |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = single.get(r.viewers)
        ratio = f"{r.cpu_us / base.cpu_us:.2f}x" if base and r is not base else "-"
        p99 = f"{r.p99 - base.p99:+.1f} ms" if base and r is not base else "-"
        typical = f"{r.frame_p99 - base.frame_p99:+.1f} ms" if base and r is not base else "-"
        redis = f"{r.median('redis_us'):.2f}" if r.setup != "single" else "-"
        lag = (
            "-"
            if r.setup == "single" or math.isnan(r.median("lag"))
            else f"{r.median('lag'):.1f} ms"
        )
        lines.append(
            f"| {r.viewers:,} | {title(r.setup, replicas)}"
            f" | {r.cpu_us:.2f}{r.spread('cpu_us', 2)} | {ratio} | {redis}"
            f" | {r.median('p50'):.1f} ms | {r.p99:.1f} ms{r.spread('p99')} | {p99}"
            f" | {r.frame_p99:.1f} ms{r.spread('frame_p99')} | {typical}"
            f" | {lag} | {r.missed} of {r.frames:,} |"
        )
    return "\n".join(lines)


def targets(rows: list[Row]) -> list[str]:
    """The targets, each "met" or "MISSED" with its numbers."""
    by = {(r.setup, r.viewers): r for r in rows}
    out = []
    for n in sorted({r.viewers for r in rows}):
        single, cluster = by.get(("single", n)), by.get(("cluster", n))
        if single is None or cluster is None:
            continue
        ratio = cluster.cpu_us / single.cpu_us
        for label, before, after in (
            ("the delay p99", single.p99, cluster.p99),
            ("the typical frame's delay p99", single.frame_p99, cluster.frame_p99),
        ):
            added = after - before
            out.append(
                f"{'met' if added <= P99_BUDGET_MS else 'MISSED'}: at {n:,} viewers the cluster"
                f" adds <= {P99_BUDGET_MS:g} ms to {label}: {added:+.1f} ms"
                f" ({before:.1f} -> {after:.1f} ms)"
            )
        out.append(
            f"{'met' if ratio <= CPU_BUDGET else 'MISSED'}: at {n:,} viewers gateway CPU per"
            f" delivered frame <= {CPU_BUDGET:.2f}x one process's: {ratio:.2f}x"
            f" ({single.cpu_us:.2f} -> {cluster.cpu_us:.2f} us)"
        )
        out.append(
            f"{'met' if cluster.missed == 0 else 'MISSED'}: at {n:,} viewers the cluster"
            f" delivers every frame: {cluster.missed} missed"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", default="1000,5000", help="comma-separated N (in total)")
    parser.add_argument("--replicas", type=int, default=3, help="gateway processes of the cluster")
    parser.add_argument(
        "--setups",
        default=",".join(SETUPS),
        help=f"comma-separated, of {', '.join(SETUPS)}",
    )
    window_options(parser, repeat=3)
    args = parser.parse_args()
    args.pin = args.pin and (os.cpu_count() or 1) >= 2
    if args.replicas < 2:
        parser.error("--replicas must be 2 or more")
    setups = [s for s in args.setups.split(",") if s]
    if unknown := set(setups) - set(SETUPS):
        parser.error(f"unknown set-up(s) {sorted(unknown)}; choose from {', '.join(SETUPS)}")

    print(f"machine: {machine()}")
    print(f"load average at start: {load()}")
    print(
        f"{args.interfaces} static interfaces + lo per frame, one frame per {args.interval:g} s,"
        f" {args.frames} frames per window after {args.warmup} warm-up frames;"
        f" cluster: {args.replicas} replicas and Redis"
    )
    rows: list[Row] = []
    for n in (int(v) for v in args.viewers.split(",")):
        # Rounds of every set-up in turn, so a disturbance from outside hits each alike.
        runs: dict[str, list[Run]] = {s: [] for s in setups}
        for _ in range(args.repeat):
            for setup in setups:
                runs[setup].append(run_one(setup, n, args))
        rows += [Row(setup, n, runs[setup]) for setup in setups]
    print(f"load average at end: {load()}")
    print()
    print(markdown(rows, args.replicas))
    if args.json:
        with open(args.json, "w") as f:
            every = [r for row in rows for r in row.runs]
            json.dump([{"setup": r.setup, "viewers": r.viewers} | r.result for r in every], f)
    print()
    finish(targets(rows))


if __name__ == "__main__":
    main()
