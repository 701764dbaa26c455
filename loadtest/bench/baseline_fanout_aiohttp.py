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
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    while True:
        next_tick += source.interval
        await asyncio.sleep(max(0.0, next_tick - loop.time()))
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
    app = create_app(source, args.heartbeat)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, reuse_address=True, backlog=1024)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    print(f"listening on http://{args.host}:{server.sockets[0].getsockname()[1]}/", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--router", default="r1")
    parser.add_argument("--interfaces", type=int, default=8)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--heartbeat", type=float, default=20.0, help="seconds; 0: none")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
