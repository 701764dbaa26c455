"""The load test's report: a summary per variant, and a table comparing the variants."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rig_outcome import Outcome, cpu_percent, stream_lag_ms


def report(args: argparse.Namespace, outcome: Outcome) -> None:
    """Print one variant's summary: the load, the faults applied, Locust's figures and checks,
    the gateways' and Redis's figures, and PASSED or FAILED."""
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


def tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file ("" when it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
