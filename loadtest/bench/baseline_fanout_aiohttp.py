"""Fan-out baseline: the naive aiohttp server, ``await ws.send_str(...)`` to each client in turn.

This is aiohttp's own broadcast example: a set of ``WebSocketResponse`` objects and a loop that
awaits ``send_str`` on each. The frame is encoded to JSON once per interval (as the gateway
does); aiohttp then encodes the text and builds the websocket frame once per client. By default
the websockets get a 20 s heartbeat (ping/pong), as the gateway keeps its viewers alive on the
same period; ``--heartbeat 0`` leaves it out, as aiohttp's example does.

Run: ``python loadtest/bench/baseline_fanout_aiohttp.py --port 0`` (prints the URL it listens on).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from common import fanout_options, serve_app, serve_forever, ticks
from fanout_source import FrameSource

CLIENTS = web.AppKey("clients", set[web.WebSocketResponse])
HEARTBEAT = web.AppKey("heartbeat", float)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=request.app[HEARTBEAT] or None, compress=False)
    await ws.prepare(request)
    clients = request.app[CLIENTS]
    clients.add(ws)
    try:
        async for _ in ws:
            pass  # subscribe messages: everyone gets the one router anyway
    finally:
        clients.discard(ws)
    return ws


async def broadcast(clients: set[web.WebSocketResponse], source: FrameSource) -> None:
    async for _ in ticks(source.interval):
        text = source.next().decode()
        for ws in list(clients):
            try:  # noqa: SIM105 - cheaper per client than a context manager
                await ws.send_str(text)
            except ConnectionError:
                pass  # a client gone mid-broadcast; its handler cleans up


def create_app(source: FrameSource, heartbeat: float) -> web.Application:
    app = web.Application()
    app[CLIENTS] = set()
    app[HEARTBEAT] = heartbeat
    app.router.add_get("/ws", websocket)

    async def broadcaster(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(broadcast(app[CLIENTS], source))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(broadcaster)
    return app


async def serve(args: argparse.Namespace) -> None:
    source = FrameSource(args.router, args.interfaces, args.interval)
    await serve_app(create_app(source, args.heartbeat), args.host, args.port)


def main() -> None:
    parser = fanout_options(__doc__)
    parser.add_argument("--heartbeat", type=float, default=20.0, help="seconds; 0: none")
    serve_forever(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
