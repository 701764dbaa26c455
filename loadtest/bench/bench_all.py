"""Every benchmark, one after the other: what ``make bench`` runs.

1. ``bench_emulator.py``: can the RouterOS emulator keep up with a load test?
2. ``bench_router_load.py``: router requests and API sessions, seed design against the gateway.
3. ``bench_fanout.py``: CPU, delay and memory of the gateway's fan-out against a raw-send
   floor, a naive aiohttp server and the websockets library's ``broadcast()``.
4. ``bench_cluster.py``: what cluster mode's Redis hop costs (delay p99, gateway CPU per
   delivered frame): three replicas and Redis against one process.
5. ``bench_history.py``: what a subscribe's history backfill costs for a big router (seconds).
6. ``bench_ingest.py``: what reading big routers costs: CPU per interface row against stock
   librouteros in the same run, an ISP region of 20 big routers, and where the time goes.
7. ``bench_sources.py``: what sources cost: an ISP router of 2,000 PPPoE customers with their
   queues, interfaces and queues watched: router requests per interval, gateway CPU per tick.

Each prints its own tables (the numbers in ``loadtest/RESULTS.md`` come from these), at its
default sizes: run a script on its own to change them. Takes about 45 minutes; the machine should
be otherwise idle (each script prints the load average).

Run: ``python loadtest/bench/bench_all.py [--only ...]`` with a comma-separated subset of
``emulator,router_load,fanout,cluster,history,ingest,sources``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent
BENCHMARKS: Final = ("emulator", "router_load", "fanout", "cluster", "history", "ingest", "sources")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    args = parser.parse_args()
    chosen = [name for name in args.only.split(",") if name]
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {BENCHMARKS}")
    failed = []
    for name in chosen:
        script = HERE / f"bench_{name}.py"
        print(f"== {script.name}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(script)], cwd=HERE.parents[1])
        took = time.monotonic() - started
        print(f"== {script.name}: exit {code} after {took:.0f} s\n", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
