"""Fan-out baseline: the ``websockets`` library's ``broadcast()``, used the way its docs advise.

A set of connections and, once per interval, ``broadcast(connections, frame, text=True)`` with
the frame's JSON bytes (encoded once; ``text=True`` skips a decode and re-encode). broadcast()
writes synchronously and never waits on a client, but builds the websocket frame once per
connection. The library's defaults otherwise, keepalive pings every 20 s included
(``--ping-interval 0`` turns them off).

Run: ``python loadtest/bench/baseline_fanout_websockets.py --port 0`` (prints the URL it
listens on).
"""

from __future__ import annotations

import argparse

from common import fanout_options, listening, serve_forever, ticks
from fanout_source import FrameSource
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed


async def run(args: argparse.Namespace) -> None:
    source = FrameSource(args.router, args.interfaces, args.interval)
    # Every open connection; added and removed by its own handler.
    clients: set[ServerConnection] = set()

    async def handler(connection: ServerConnection) -> None:
        clients.add(connection)
        try:
            async for _ in connection:
                pass  # subscribe messages: everyone gets the one router anyway
        except ConnectionClosed:
            pass  # the benchmark client resets its connections when done
        finally:
            clients.discard(connection)

    ping_interval = args.ping_interval or None
    async with serve(
        handler, args.host, args.port, ping_interval=ping_interval, backlog=1024
    ) as server:
        listening(args.host, next(iter(server.sockets)).getsockname()[1])
        async for _ in ticks(source.interval):
            broadcast(clients, source.next(), text=True)


def main() -> None:
    parser = fanout_options(__doc__)
    parser.add_argument("--ping-interval", type=float, default=20.0, help="seconds; 0: none")
    serve_forever(run(parser.parse_args()))


if __name__ == "__main__":
    main()
