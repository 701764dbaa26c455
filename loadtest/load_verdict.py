"""The run's verdict, read from Locust's statistics and ``RUN`` when Locust quits: every check,
the figures the summary prints (``--summary-json``), and the process's exit code.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from load_run import RUN, WS
from locust.stats import StatsEntry

logger = logging.getLogger("loadtest")


def _percentiles(entry: Any) -> dict[str, float]:
    if not entry.num_requests:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0, "count": 0.0}
    return {
        "p50": float(entry.get_response_time_percentile(0.5)),
        "p99": float(entry.get_response_time_percentile(0.99)),
        "max": float(entry.max_response_time),
        "count": float(entry.num_requests),
    }


def judge(environment: Any) -> dict[str, Any]:
    """Every check of the run; ``problems`` lists the broken ones, each naming what broke."""
    stats = environment.stats
    settings = RUN.settings
    problems = list(RUN.setup_problems)
    entries = list(stats.entries.values())
    frames = [e for e in entries if e.method == WS and e.name.startswith("traffic ")]
    requests = [e for e in entries if e not in frames and not e.name.startswith("silence ")]

    if stats.total.num_failures:
        rows = sorted(stats.errors.values(), key=lambda e: -e.occurrences)
        listed = "; ".join(f"{e.to_name()} x{e.occurrences}" for e in rows[:6])
        problems.append(f"{stats.total.num_failures} failures: {listed}")
    limit_ms = settings.request_max * 1000
    for entry in requests:
        if entry.max_response_time > limit_ms:
            problems.append(
                f"slow request: {entry.method} {entry.name} took up to "
                f"{entry.max_response_time:.0f} ms (limit {limit_ms:.0f} ms)"
            )
    for entry in frames:
        p99 = entry.get_response_time_percentile(0.99)
        if p99 > settings.frame_p99_max:
            problems.append(
                f"slow frames: {entry.name} delay p99 {p99:.0f} ms "
                f"(limit {settings.frame_p99_max:g} ms)"
            )
    for entry in entries:
        if entry.name.startswith("silence ") and entry.num_requests:
            problems.append(
                f"frame silence: {entry.name} went quiet {entry.num_requests} times while up, "
                f"longest {entry.max_response_time / 1000:.1f} s"
            )
    rest = [e for e in requests if e.name == "/api/routers/[id]/traffic"]
    if RUN.viewers_empty:
        problems.append(f"{RUN.viewers_empty} viewers received no traffic frame")
    if RUN.viewers_stopped and not sum(e.num_requests for e in frames):
        problems.append("no traffic frame reached any viewer")
    if RUN.viewers_stopped or rest:
        for router in RUN.routers:
            if router not in RUN.seen_frames:
                problems.append(f"no traffic frame of router {router!r} was seen")

    router_requests = {}
    for router, start in RUN.counts_start.items():
        end = RUN.counts_end.get(router)
        interval = RUN.intervals.get(router)
        if end is None or interval is None:
            continue
        duration = end.at - start.at
        count = end.count - start.count
        allowed = duration / interval + settings.poll_slack
        router_requests[router] = {
            "requests": count,
            "seconds": round(duration, 1),
            "interval": interval,
            "per_interval": round(count * interval / duration, 3) if duration > 0 else 0.0,
            "allowed": round(allowed, 1),
        }
        if count > allowed:
            problems.append(
                f"router {router!r} got {count} requests in {duration:.1f} s: more than one "
                f"per {interval:g} s poll interval (allowed {allowed:.0f})"
            )

    all_frames = StatsEntry(stats, "traffic", WS)
    for entry in frames:
        all_frames.extend(entry)
    return {
        "passed": not problems,
        "problems": problems,
        "users": environment.runner.target_user_count if environment.runner else 0,
        "seconds": round(stats.last_request_timestamp - stats.start_time, 1)
        if stats.last_request_timestamp
        else 0.0,
        "requests": stats.total.num_requests,
        "failures": stats.total.num_failures,
        "frames": all_frames.num_requests,
        "frame_delay_ms": _percentiles(all_frames),
        "rest_ms": _percentiles(rest[0]) if rest else _percentiles(StatsEntry(stats, "-", "GET")),
        "slowest_request_ms": max((e.max_response_time for e in requests), default=0),
        "router_requests": router_requests,
        "replicas": {url: RUN.connections.get(url, 0) for url in RUN.hosts},
        "viewers": {
            "stopped": RUN.viewers_stopped,
            "received_nothing": RUN.viewers_empty,
            "reconnects": RUN.reconnects,
            "closes": {str(k): v for k, v in sorted(RUN.closes.items())},
        },
    }


def on_quitting(environment: Any, **_: Any) -> None:
    verdict = judge(environment)
    if RUN.settings.summary_json:
        with open(RUN.settings.summary_json, "w", encoding="utf-8") as out:
            json.dump(verdict, out, indent=2)
    frames = verdict["frame_delay_ms"]
    logger.info(
        "gateway checks: %d frames, delay p50 %.0f ms p99 %.0f ms; slowest request %.0f ms; "
        "router requests per interval %s",
        verdict["frames"],
        frames["p50"],
        frames["p99"],
        verdict["slowest_request_ms"],
        {r: v["per_interval"] for r, v in verdict["router_requests"].items()} or "not measured",
    )
    if verdict["passed"]:
        logger.info("gateway checks: PASSED")
        return
    for problem in verdict["problems"]:
        logger.error("gateway check FAILED: %s", problem)
    environment.process_exit_code = 1
