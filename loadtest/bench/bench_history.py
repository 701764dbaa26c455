"""What a subscribe's history backfill costs the gateway, for a big router with a full ring.

In process, no sockets: a ``Topic`` holding a full ring of a router with 300 PPPoE customers and
8 ports (~47 KB a frame), and subscribers whose transports only count what they are given. For
each kind of request it prints the event-loop time one subscribe takes (median of several), the
bytes and messages it writes, and its largest message:

- ``first of a tick``: a frame was published just before, so nothing is shared yet;
- ``same tick``: another subscriber asked for the same history since the last frame (a burst of
  reconnects, a page opened by many people at once).

Requests: the whole ring unfiltered (old clients, scripts, Locust), the whole ring filtered to 3
interfaces (the dashboard's chart step before it asked for its window), and the dashboard's
chart step for a 1-minute window (``history_seconds: 60``). The numbers in ``loadtest/RESULTS.md``
come from this script; it runs in a few seconds.

``--memory CUSTOMERS`` measures instead what a full ring holds (tracemalloc) for a router with
that many customers, and what one publish costs.

Run: ``python loadtest/bench/bench_history.py [--ring 300 900] [--repeat 9] [--memory 2000]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.core.filters import InterfaceFilter
from gateway.core.frames import traffic_frame
from gateway.core.model import InterfaceRate
from gateway.sink import Sink
from gateway.topic import Topic

CUSTOMERS = 300
CHARTED = ["<pppoe-user0007>", "<pppoe-user0123>", "ether1"]


@dataclass
class CountingTransport:
    """A socket that takes everything at once and only counts it."""

    sizes: list[int] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        self.sizes.append(len(data))

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


def rates(seq: int, count: int = CUSTOMERS) -> list[InterfaceRate]:
    ports = [
        InterfaceRate(f"*{i:X}", f"ether{i}", "ether", True, False, 1e9 + seq, 1e8, 1e5, 1e4)
        for i in range(1, 9)
    ]
    customers = [
        InterfaceRate(
            f"*{0x100000 + i:X}",
            f"<pppoe-user{i:04d}>",
            "pppoe-in",
            True,
            False,
            12_345_678.9 + seq,
            2_345_678.1,
            1234.5,
            567.8,
        )
        for i in range(count)
    ]
    return ports + customers


class Ring:
    """A topic with a full ring, one frame a second of wall time, and a way to add the next."""

    def __init__(self, size: int, customers: int = CUSTOMERS) -> None:
        self.seq = 0
        self.now = 1_764_377_000.0
        self.customers = customers
        self.topic = Topic("isp", size, wall=lambda: self.now)
        for _ in range(size):
            self.publish()

    def publish(self) -> None:
        self.seq += 1
        self.now += 1.0
        frame = traffic_frame(
            "isp", self.seq, self.now, 1.0, False, rates(self.seq, self.customers)
        )
        self.topic.publish(frame)


def ring_memory(size: int, customers: int) -> None:
    """What a full ring holds (tracemalloc: every Python allocation the topic keeps), for a
    router of ``customers`` PPPoE interfaces and 8 ports, and what a publish costs."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    ring = Ring(size, customers)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    rows = size * (customers + 8)
    json = sum(len(frame.json) for frame in ring.topic.history)
    times = []
    for _ in range(20):
        frame = traffic_frame(
            "isp", ring.seq + 1, ring.now, 1.0, False, rates(ring.seq + 1, customers)
        )
        ring.seq += 1
        started = time.process_time()
        ring.topic.publish(frame)
        times.append(time.process_time() - started)
    print(
        f"ring of {size} frames of {customers + 8:,} interfaces: {held / 1e6:,.1f} MB held"
        f" ({held / rows:.0f} bytes per row; the frames' JSON alone: {json / rows:.0f}),"
        f" publish to no viewer {statistics.median(times) * 1e3:.2f} ms"
    )


Subscribe = Callable[[Topic, Sink], object]


def measure(
    ring: Ring, subscribe: Subscribe, *, fresh: bool, repeat: int
) -> tuple[float, list[int]]:
    """Median seconds per subscribe, and the sizes of what the last one wrote."""
    times = []
    transport = CountingTransport()
    for _ in range(repeat):
        if fresh:
            ring.publish()  # a new frame: nothing encoded for the previous tick is reused
        else:
            subscribe(ring.topic, Sink(CountingTransport()))  # someone asked just before
        transport = CountingTransport()
        sink = Sink(transport)
        started = time.perf_counter()
        subscribe(ring.topic, sink)
        times.append(time.perf_counter() - started)
        ring.topic.unsubscribe(sink)
    return statistics.median(times), transport.sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ring", type=int, nargs="+", default=[300, 900], help="ring sizes")
    parser.add_argument("--repeat", type=int, default=9, help="subscribes measured per row")
    parser.add_argument(
        "--memory",
        type=int,
        default=0,
        metavar="CUSTOMERS",
        help="only measure what a full ring (the first --ring size) holds for a router with"
        " this many PPPoE customers",
    )
    args = parser.parse_args()
    if args.memory:
        ring_memory(args.ring[0], args.memory)
        return
    everything = InterfaceFilter.all()
    charted = InterfaceFilter.of(CHARTED)
    requests: list[tuple[str, Subscribe]] = [
        ("whole ring, unfiltered", lambda t, s: t.subscribe(s, everything)),
        ("whole ring, 3 interfaces", lambda t, s: t.subscribe(s, charted)),
        ("60 s, 3 interfaces", lambda t, s: t.subscribe(s, charted, seconds=60.0)),
    ]
    print(f"load average {os.getloadavg()[0]:.2f}; {CUSTOMERS} PPPoE customers + 8 ports")
    print(
        f"{'ring':>5}  {'request':<26} {'when':<17} {'ms':>8} {'bytes':>12} {'msgs':>5} {'max':>10}"
    )
    for size in args.ring:
        ring = Ring(size)
        frame = len(ring.topic.history[-1].json)
        print(f"{size:>5}  (a frame is {frame:,} bytes)")
        for name, subscribe in requests:
            for fresh, when in ((True, "first of a tick"), (False, "same tick")):
                seconds, sizes = measure(ring, subscribe, fresh=fresh, repeat=args.repeat)
                print(
                    f"{size:>5}  {name:<26} {when:<17} {seconds * 1000:>8.2f} "
                    f"{sum(sizes):>12,} {len(sizes):>5} {max(sizes):>10,}"
                )


if __name__ == "__main__":
    main()
