"""Many websocket viewers in one cheap process: the client side of the fan-out benchmark.

One thread, one epoll, raw non-blocking sockets: a prebuilt handshake and subscribe per
connection, then one ``recvmsg`` per readable socket and just enough parsing to find ``seq`` and
``ts`` in each traffic frame (and to answer pings, or the server drops the viewer). Each socket
has ``SO_TIMESTAMPNS`` on, so a frame's receipt time is when the kernel queued it on the
client's socket, not when this process got round to reading it: the delay measured is the
server's, not this client's.

Modes:

- ``--frames K`` (measure): connect ``--viewers``, wait ``--warmup`` frames, then measure a
  window of exactly K frames: the server's CPU time (``/proc/PID``) from halfway between two
  frames to halfway between two frames, every frame's delay, missed frames, the server's RSS.
- ``--hold S``: connect, stay subscribed (answering pings) for S seconds.

Several servers (a cluster's replicas): ``--port`` takes a list, the viewers are spread over
them round robin; ``--server-pid`` takes a list, and the server CPU and RSS are their sums.
``--aux-pid`` names more processes (Redis) whose CPU in the window is reported apart.

With ``--deflate`` every viewer offers permessage-deflate as browsers do; a compressed frame
is inflated only as far as its ``seq`` and ``ts`` (viewer 0's whole, for the JSON's size), and
the bytes on the wire are counted as they came.

Prints one JSON line when every viewer is connected and one with the results at the end.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import resource
import select
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable
from typing import Final

from common import cpu_ns, cpu_ticks, percentile, rss_kib
from fanout_wire import (
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    client_frame,
    handshake_request,
    subscribe_frame,
    traffic_seq_ts,
)

from gateway.wire import Opcode, WireError, inflate, parse_close, split_messages

SO_TIMESTAMPNS: Final = getattr(socket, "SO_TIMESTAMPNS", 35)  # 35 on Linux x86 and arm
IP_BIND_ADDRESS_NO_PORT: Final = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
ANCILLARY: Final = socket.CMSG_SPACE(16)
READ_SIZE: Final = 256 * 1024
CONNECT_RETRIES: Final = 5
HEAD: Final = 160  # bytes of a compressed traffic frame inflated to find its seq and ts
BATCH: Final = 256  # ready sockets: fewer than this in one poll, and the reader naps...
NAP: Final = 0.002  # ...for this long (seconds) before the next


class Conn:
    """One viewer connection."""

    __slots__ = ("handshake", "index", "last_seq", "request", "rest", "sock", "window")

    def __init__(self, sock: socket.socket, request: bytes, index: int) -> None:
        self.sock = sock
        # The handshake request for this connection's server.
        self.request = request
        # The viewer's number, in order of connection attempts (which customer it watches).
        self.index = index
        # The HTTP answer so far while the handshake is under way; None once upgraded.
        self.handshake: bytes | None = b""
        # Bytes of an incomplete frame from the previous read.
        self.rest = b""
        self.last_seq = 0
        self.window = 0


def customer_name(k: int) -> str:
    """The interface of the emulator's customer ``k`` (from 0): ``<pppoe-user0001>``..."""
    return f"<pppoe-user{k + 1:04d}>"


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def total(read: Callable[[int], int], pids: list[int]) -> int:
    """``read(pid)`` summed over ``pids``."""
    return sum(read(pid) for pid in pids)


def emit(event: str, **data: object) -> None:
    print(json.dumps({"event": event, **data}), flush=True)


class Client:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ep = select.epoll()
        self.conns: dict[int, Conn] = {}
        self.connected = 0
        self.connecting = 0
        self.attempts = 0
        self.failures = 0
        self.closed = 0
        self.close_codes: dict[int, int] = {}
        self.pings = 0
        self.gaps = 0
        self.frames_seen = 0
        self.frame_bytes = 0
        self.ports = [int(p) for p in str(args.port).split(",") if p]
        self.requests = [
            handshake_request(args.host, p, args.path, deflate=args.deflate) for p in self.ports
        ]
        self.pids = [int(p) for p in args.server_pid.split(",") if p]
        self.aux_pids = [int(p) for p in args.aux_pid.split(",") if p]
        # Viewers whose handshake agreed to permessage-deflate; bytes of traffic frames as they
        # came (websocket header and payload) and as JSON (inflated: sampled on viewer 0).
        self.agreed = 0
        self.wire_bytes = 0
        self.json_bytes = 0
        self.json_frames = 0
        self.buffer = bytearray(READ_SIZE)
        self.view = memoryview(self.buffer)
        self.buffers = [self.buffer]
        globs = args.interfaces.split(",") if args.interfaces else None
        history = None if args.history < 0 else args.history
        self.history = history
        self.subscribe = subscribe_frame(args.router, globs, history, compressed=args.compress)
        self.sources = args.sources.split(",") if args.sources else []
        # First time each seq was seen (wall clock), for the mid-gap sampling points.
        self.first_seen: dict[int, float] = {}
        # The measured window: frames with lo <= seq <= hi; lo > hi while not measuring.
        self.lo = 1 << 62
        self.hi = 0
        self.delays: list[float] = []
        self.app_delays: list[float] = []
        # Delays of each frame of the window, by seq: spots a frame that was late for everyone.
        self.by_seq: dict[int, list[float]] = {}

    def subscribe_for(self, index: int) -> bytes:
        """Viewer ``index``'s subscribe: the same for all, or (``--customers C``) its customer's
        interface, customer ``index % C``; with ``--distinct``, plus a name of its own that no
        interface has, so every viewer's filter differs while selecting its customer alone."""
        customers = self.args.customers
        if not customers:
            return self.subscribe
        entries: list[object] = [{"exact": customer_name(index % customers)}]
        if self.args.distinct:
            entries.append({"exact": f"<viewer-{index}>"})
        return subscribe_frame(
            self.args.router, entries, self.history, compressed=self.args.compress
        )

    # -- connecting ---------------------------------------------------------------------------

    def open_one(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if self.sources:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((self.sources[self.attempts % len(self.sources)], 0))
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server = self.attempts % len(self.ports)
        self.attempts += 1
        err = sock.connect_ex((self.args.host, self.ports[server]))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self.failures += 1
            return
        self.conns[sock.fileno()] = Conn(sock, self.requests[server], self.attempts - 1)
        self.ep.register(sock.fileno(), select.EPOLLOUT)
        self.connecting += 1

    def drop(self, fd: int, conn: Conn) -> None:
        self.ep.unregister(fd)
        del self.conns[fd]
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.sock.close()
        if conn.handshake is not None:
            self.connecting -= 1
            self.failures += 1
        else:
            self.connected -= 1
            self.closed += 1

    def connect_all(self) -> float:
        started = time.monotonic()
        target = self.args.viewers
        deadline = started + self.args.connect_timeout
        while self.connected < target:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {self.connected} of {target} viewers connected in time")
            if self.failures > CONNECT_RETRIES * max(1, target // 100):
                raise SystemExit(f"too many failed connections ({self.failures})")
            while self.connecting < self.args.connecting and self.connected + self.connecting < (
                target
            ):
                self.open_one()
            for fd, events in self.ep.poll(0.5):
                conn = self.conns.get(fd)
                if conn is None:
                    continue
                if conn.handshake is None:
                    self.on_readable(fd, conn)
                    continue
                if events & select.EPOLLOUT:
                    if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        self.drop(fd, conn)
                        continue
                    conn.sock.send(conn.request)
                    self.ep.modify(fd, select.EPOLLIN)
                elif events & (select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP):
                    self.on_handshake(fd, conn)
        return time.monotonic() - started

    def on_handshake(self, fd: int, conn: Conn) -> None:
        try:
            data = conn.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        assert conn.handshake is not None
        head = conn.handshake + data
        if not data or (b"\r\n\r\n" in head and not head.startswith(b"HTTP/1.1 101")):
            self.drop(fd, conn)
            return
        end = head.find(b"\r\n\r\n")
        if end < 0:
            conn.handshake = head
            return
        conn.handshake = None
        if b"permessage-deflate" in head[:end].lower():
            self.agreed += 1
        conn.rest = head[end + 4 :]
        conn.sock.send(self.subscribe_for(conn.index))
        self.connecting -= 1
        self.connected += 1

    # -- reading ------------------------------------------------------------------------------

    def on_readable(self, fd: int, conn: Conn) -> None:
        try:
            size, ancillary, _, _ = conn.sock.recvmsg_into(self.buffers, ANCILLARY)
        except BlockingIOError:
            return
        except OSError:
            size, ancillary = 0, []
        # One buffer for every read: a fresh 256 KiB bytes object per recvmsg() would cost more
        # in malloc and page faults than the read itself.
        data = self.view[:size].tobytes()
        if not data:
            self.drop(fd, conn)
            return
        now = time.time()
        received = now
        if ancillary:
            sec, nsec = struct.unpack_from("qq", ancillary[0][2])
            received = sec + nsec * 1e-9
        if conn.rest:
            data = conn.rest + data
        frames, conn.rest = split_messages(data, deflate=self.args.deflate)
        for opcode, packed, payload in frames:
            if opcode == OP_TEXT:
                sent = len(payload)
                if packed:
                    # seq and ts are near the start: inflate that much only (a few us), except
                    # on viewer 0, whose frames give the size of the JSON.
                    whole = conn.index == 0
                    payload = inflate(payload, 0 if whole else HEAD)
                found = traffic_seq_ts(payload)
                if found is None:
                    continue
                seq, ts = found
                self.frames_seen += 1
                self.frame_bytes += sent
                self.wire_bytes += sent + (2 if sent < 126 else 4 if sent < 65536 else 10)
                if conn.index == 0:
                    self.json_bytes += len(payload)
                    self.json_frames += 1
                last = conn.last_seq
                if last and seq > last + 1:
                    self.gaps += seq - last - 1
                conn.last_seq = seq
                if seq not in self.first_seen:
                    self.first_seen[seq] = now
                if self.lo <= seq <= self.hi:
                    conn.window += 1
                    self.delays.append(received - ts)
                    self.app_delays.append(now - ts)
                    self.by_seq[seq].append(received - ts)
            elif opcode == OP_PING:
                self.pings += 1
                conn.sock.send(client_frame(Opcode.PONG, payload))
            elif opcode == OP_CLOSE:
                try:
                    code, _ = parse_close(payload)
                except WireError:
                    code = -1  # counted as a close code no server sends
                self.close_codes[code] = self.close_codes.get(code, 0) + 1

    def read_ready(self, timeout: float) -> None:
        """Read every socket that has data, waiting up to ``timeout`` for one.

        After a small batch, nap NAP seconds: data then waits in the kernel and the next batch
        is bigger, so this process wakes far less often (and a server's send rarely finds it
        asleep in epoll_wait, to be woken). Receipt times are the kernel's, so the nap delays
        no measurement.
        """
        events = self.ep.poll(timeout)
        for fd, _ in events:
            conn = self.conns.get(fd)
            if conn is not None:
                self.on_readable(fd, conn)
        if 0 < len(events) < BATCH:
            time.sleep(NAP)

    def pump(self, until: float) -> None:
        """Read whatever arrives until the wall-clock time ``until``."""
        while True:
            left = until - time.time()
            if left <= 0:
                return
            self.read_ready(min(left, 0.2))

    def pump_until_seq(self, seq: int, limit: float) -> float:
        """Read until ``seq`` is first seen; its first arrival time."""
        deadline = time.time() + limit
        while seq not in self.first_seen:
            if time.time() > deadline:
                raise SystemExit(f"frame {seq} never came (seen up to {max(self.first_seen)})")
            self.read_ready(0.2)
        return self.first_seen[seq]

    # -- the two modes ------------------------------------------------------------------------

    def hold(self) -> dict[str, object]:
        self.pump(time.time() + self.args.hold)
        return {"viewers": self.connected, "frames_seen": self.frames_seen, "gaps": self.gaps}

    def measure(self) -> dict[str, object]:
        args = self.args
        interval = args.interval
        pids, aux = self.pids, self.aux_pids
        # The first frame every viewer may have missed is the one in flight while the last
        # connected; warm up past it.
        self.pump(time.time() + interval * 1.2)
        deadline = time.time() + interval * 10
        while not self.first_seen and time.time() < deadline:
            self.pump(time.time() + interval / 4)
        if not self.first_seen:
            raise SystemExit("no traffic frame arrived")
        start_seq = max(self.first_seen) + args.warmup
        at = self.pump_until_seq(start_seq, interval * (args.warmup + 5))
        self.pump(at + interval / 2)
        rss_start = sum(rss_kib(pid) for pid in pids)
        cpu0, ticks0, aux0 = total(cpu_ns, pids), total(cpu_ticks, pids), total(cpu_ns, aux)
        own0, t0 = own_cpu(), time.time()
        self.lo, self.hi = start_seq + 1, start_seq + args.frames
        self.by_seq = {seq: [] for seq in range(self.lo, self.hi + 1)}
        at = self.pump_until_seq(self.hi, interval * (args.frames + 5))
        self.pump(at + interval / 2)
        cpu1, ticks1, aux1 = total(cpu_ns, pids), total(cpu_ticks, pids), total(cpu_ns, aux)
        own1, t1 = own_cpu(), time.time()
        # Stragglers of the last frame still count (none are expected half an interval on).
        self.pump(at + interval * 0.95)
        rss_end = sum(rss_kib(pid) for pid in pids)
        delivered = sum(c.window for c in self.conns.values())
        expected = args.viewers * args.frames
        return {
            "viewers": self.connected,
            "frames": args.frames,
            "first_seq": self.lo,
            "delivered": delivered,
            "missed": expected - delivered,
            "gaps": self.gaps,
            "closed": self.closed,
            "close_codes": self.close_codes,
            "pings": self.pings,
            "seconds": t1 - t0,
            "server_cpu_s": (cpu1 - cpu0) / 1e9,
            "server_cpu_ticks_s": (ticks1 - ticks0) / 100,
            "aux_cpu_s": (aux1 - aux0) / 1e9,
            "client_cpu_s": own1 - own0,
            "rss_start_kib": rss_start,
            "rss_end_kib": rss_end,
            "frame_bytes": self.frame_bytes / max(1, self.frames_seen),
            "wire_bytes": self.wire_bytes / max(1, self.frames_seen),
            "json_bytes": self.json_bytes / max(1, self.json_frames),
            "agreed": self.agreed,
            "delay_p50_ms": percentile(self.delays, 0.50) * 1000,
            "delay_p99_ms": percentile(self.delays, 0.99) * 1000,
            "delay_max_ms": max(self.delays, default=float("nan")) * 1000,
            "delay_mean_ms": statistics.fmean(self.delays) * 1000 if self.delays else 0.0,
            "app_delay_p50_ms": percentile(self.app_delays, 0.50) * 1000,
            "app_delay_p99_ms": percentile(self.app_delays, 0.99) * 1000,
            # Per frame of the window: [p50, p99, max] delay in ms.
            "per_frame_ms": [
                [round(percentile(d, p) * 1000, 1) for p in (0.5, 0.99, 1.0)]
                for d in self.by_seq.values()
            ],
        }

    def close_all(self) -> None:
        # Reset, not FIN: no TIME_WAIT left behind to eat the next run's ports.
        linger = struct.pack("ii", 1, 0)
        for conn in self.conns.values():
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            conn.sock.close()
        self.conns.clear()
        self.ep.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", required=True, help="the server's port, or several (comma-separated)"
    )
    parser.add_argument("--path", default="/ws")
    parser.add_argument("--router", default="r1")
    parser.add_argument("--interfaces", default="", help="comma-separated name globs to watch")
    parser.add_argument(
        "--customers",
        type=int,
        default=0,
        help="viewer k watches only customer k %% C's interface (<pppoe-user0001>...)",
    )
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="with --customers: every viewer's filter is its own (one more name, matching none)",
    )
    parser.add_argument("--history", type=int, default=-1, help="history frames to ask for")
    parser.add_argument(
        "--deflate", action="store_true", help="offer permessage-deflate, as browsers do"
    )
    parser.add_argument(
        "--compress",
        action="store_true",
        help="with --deflate: send the subscribe compressed, as browsers do",
    )
    parser.add_argument("--viewers", type=int, required=True)
    parser.add_argument("--connecting", type=int, default=200, help="handshakes in flight")
    parser.add_argument("--connect-timeout", type=float, default=180.0)
    parser.add_argument("--sources", default="", help="comma-separated source addresses")
    parser.add_argument("--interval", type=float, default=1.0, help="the server's frame interval")
    parser.add_argument("--warmup", type=int, default=3, help="frames before the window")
    parser.add_argument("--frames", type=int, default=0, help="frames in the measured window")
    parser.add_argument("--hold", type=float, default=0.0, help="seconds to stay connected")
    parser.add_argument(
        "--server-pid", default="", help="the server's PID, or several (comma-separated)"
    )
    parser.add_argument(
        "--aux-pid", default="", help="PIDs whose CPU is reported apart (comma-separated)"
    )
    parser.add_argument("--cpu", type=int, default=-1, help="run on this CPU only")
    args = parser.parse_args()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    if bool(args.frames) == bool(args.hold):
        parser.error("give exactly one of --frames and --hold")
    if args.frames and not args.server_pid:
        parser.error("--frames needs --server-pid")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.viewers + 100 > hard:
        raise SystemExit(f"{args.viewers} viewers need more than the {hard} open files allowed")

    client = Client(args)
    own = own_cpu()
    connect_seconds = client.connect_all()
    emit(
        "connected",
        viewers=client.connected,
        seconds=round(connect_seconds, 2),
        failures=client.failures,
        client_cpu_s=round(own_cpu() - own, 2),
    )
    try:
        result = client.measure() if args.frames else client.hold()
    finally:
        client.close_all()
    emit("result", connect_seconds=connect_seconds, connect_failures=client.failures, **result)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
