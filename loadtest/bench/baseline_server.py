"""The seed design, as a baseline for the router-load benchmark: ask the router per request.

What dashboards did before the gateway: every browser polls ``GET /api/routers/{id}/traffic``
every 2 s, and the web server answers from a 5 s cache or, when the cache is older, asks the
router itself: it opens a RouterOS API session (librouteros ``async_connect``), runs
``/interface/print``, closes the session, all within a 3 s deadline. There is no single-flight:
every request that finds the cache stale asks the router, so when the cache expires under load
all the requests arriving during the refresh hit the router at once, each with its own session.
A failed refresh leaves the cache stale, so the next requests try again.

Run: ``python loadtest/bench/baseline_server.py --router-port 8728`` (prints the URL it listens on).
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

import librouteros
import orjson
from aiohttp import web
from common import serve_app, serve_forever, server_options

PROPLIST = ".id,name,type,running,disabled,rx-byte,tx-byte,rx-packet,tx-packet"
CACHE_SECONDS = 5.0
TIMEOUT = 3.0


@dataclass
class Router:
    host: str
    port: int
    username: str
    password: str
    # The last good answer (JSON) and when it was fetched (loop time); shared by all requests.
    body: bytes | None = None
    fetched_at: float = float("-inf")

    async def fetch(self) -> bytes:
        """One session per call: connect, log in, print, close."""
        api = await librouteros.async_connect(
            self.host, self.username, self.password, port=self.port, timeout=TIMEOUT
        )
        try:
            rows = [row async for row in api.rawCmd("/interface/print", f"=.proplist={PROPLIST}")]
        finally:
            await api.close()
        return orjson.dumps({"interfaces": rows})


ROUTER = web.AppKey("router", Router)


async def traffic(request: web.Request) -> web.Response:
    router = request.app[ROUTER]
    loop = asyncio.get_running_loop()
    if router.body is None or loop.time() - router.fetched_at > CACHE_SECONDS:
        try:
            async with asyncio.timeout(TIMEOUT):
                body = await router.fetch()
        except TimeoutError:
            return web.json_response({"error": "router timeout"}, status=504)
        except Exception as exc:  # noqa: BLE001 - the seed design answers any failure with 502
            return web.json_response({"error": f"router: {exc!r}"[:200]}, status=502)
        router.body, router.fetched_at = body, loop.time()
    return web.Response(body=router.body, content_type="application/json")


async def serve(args: argparse.Namespace) -> None:
    app = web.Application()
    app[ROUTER] = Router(args.router_host, args.router_port, args.username, args.password)
    app.router.add_get("/api/routers/{id}/traffic", traffic)
    await serve_app(app, args.host, args.port)


def main() -> None:
    parser = server_options(__doc__)
    parser.add_argument("--router-host", default="127.0.0.1")
    parser.add_argument("--router-port", type=int, default=8728)
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="admin")
    serve_forever(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
