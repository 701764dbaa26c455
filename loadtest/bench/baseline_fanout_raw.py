"""Fan-out floor: the same frame bytes written to N sockets, with nothing else in the way.

No asyncio, no websocket library: one epoll loop accepts connections, answers the websocket
handshake, and once per interval builds the frame (as the gateway would) and calls
``socket.send`` with the same bytes on every connected socket. With ``--per-customer`` it sends
viewer k the frame of customer k (round robin), each frame holding that customer's interface
alone, the rows encoded once at start: the sizes a customer portal's viewers get, for nothing
but a concatenation per customer per tick. With ``--deflate`` it agrees to permessage-deflate
with viewers that offer it and sends them the frame deflated once per tick (zlib, as the
gateway deflates), the rows encoded once at start. What the client sends is read
and thrown away. No keepalive pings, no slow-consumer policy, no per-viewer state beyond the
socket: this is the least a Python process can do to deliver a frame, the floor the other
servers are measured against.

Run: ``python loadtest/bench/baseline_fanout_raw.py --port 0`` (prints the URL it listens on).
"""

from __future__ import annotations

import argparse
import contextlib
import select
import socket
import time

from common import fanout_options, listening
from fanout_source import FrameSource
from fanout_wire import handshake_response

from gateway.wire import deflate as deflate_payload
from gateway.wire import deflated_text_frame, text_frame


def serve(args: argparse.Namespace) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(1024)
    listener.setblocking(False)
    listening(args.host, listener.getsockname()[1])
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    per_customer = args.per_customer
    deflate = args.deflate
    source = FrameSource(
        args.router, args.interfaces, args.interval, pppoe=args.pppoe, fixed=per_customer or deflate
    )
    # The viewers (by file descriptor) that agreed to permessage-deflate.
    packed: set[int] = set()
    # Sockets still in the handshake, with what they sent so far; and the upgraded ones.
    handshaking: dict[int, tuple[socket.socket, bytes]] = {}
    viewers: dict[int, socket.socket] = {}
    next_tick = time.monotonic() + args.interval
    while True:
        for fd, _ in ep.poll(max(0.0, next_tick - time.monotonic())):
            if fd == listener.fileno():
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    handshaking[sock.fileno()] = (sock, b"")
                    ep.register(sock.fileno(), select.EPOLLIN)
                continue
            if fd in handshaking:
                sock, head = handshaking[fd]
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                head += data
                answer = handshake_response(head, deflate=deflate) if b"\r\n\r\n" in head else None
                if not data or (answer is None and b"\r\n\r\n" in head):
                    del handshaking[fd]
                    ep.unregister(fd)
                    sock.close()
                elif answer is None:
                    handshaking[fd] = (sock, head)
                else:
                    del handshaking[fd]
                    sock.send(answer)
                    viewers[fd] = sock
                    if deflate and b"permessage-deflate" in answer:
                        packed.add(fd)
                continue
            viewer = viewers.get(fd)
            if viewer is None:
                continue
            try:
                data = viewer.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                del viewers[fd]
                packed.discard(fd)
                ep.unregister(fd)
                viewer.close()
        if time.monotonic() >= next_tick:
            next_tick += args.interval
            if per_customer:
                # Viewer k gets customer k's frame (round robin): the sizes the gateway sends.
                frames = [text_frame(f) for f in source.next_per_customer()]
                count = len(frames)
                for k, sock in enumerate(list(viewers.values())):
                    try:  # noqa: SIM105
                        sock.send(frames[k % count])
                    except (BlockingIOError, ConnectionError):
                        pass
                continue
            body = source.next()
            frame = text_frame(body)
            if packed:
                # Deflated once for every viewer that agreed, as the gateway does.
                compressed = deflated_text_frame(deflate_payload((body,)))
                for fd, sock in list(viewers.items()):
                    try:  # noqa: SIM105
                        sock.send(compressed if fd in packed else frame)
                    except (BlockingIOError, ConnectionError):
                        pass
                continue
            for sock in list(viewers.values()):
                # try/except, not contextlib.suppress: a context manager per send would cost
                # more than the floor is allowed to.
                try:  # noqa: SIM105
                    sock.send(frame)
                except (BlockingIOError, ConnectionError):
                    pass  # the floor keeps no queue: a full or dead socket misses this frame


def main() -> None:
    parser = fanout_options(__doc__)
    parser.add_argument("--pppoe", type=int, default=0, help="PPPoE customers of the router")
    parser.add_argument(
        "--per-customer",
        action="store_true",
        help="send each viewer one customer's own frame (round robin over the customers)",
    )
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="agree to permessage-deflate with viewers that offer it; deflate each frame once",
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        serve(args)


if __name__ == "__main__":
    main()
