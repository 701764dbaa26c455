"""The emulator's control API (``--control-port``): stats, faults, reboot, reset-counters.

Tests in the same process call the same methods on ``RouterEmulator`` directly.
"""

from __future__ import annotations

from aiohttp import web

from gateway.emulator.server import Fault, RouterEmulator

EMULATOR = web.AppKey("emulator", RouterEmulator)


async def get_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[EMULATOR].stats())


async def post_faults(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "body: expected JSON"}, status=400)
    try:
        fault = Fault.parse(body)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    await request.app[EMULATOR].set_fault(fault)
    return web.json_response({"mode": fault.mode, "delay": fault.delay, "for": fault.duration})


async def post_reboot(request: web.Request) -> web.Response:
    await request.app[EMULATOR].reboot()
    return web.json_response({"ok": True})


async def post_reset_counters(request: web.Request) -> web.Response:
    request.app[EMULATOR].reset_counters()
    return web.json_response({"ok": True})


async def post_reset_stats(request: web.Request) -> web.Response:
    request.app[EMULATOR].reset_stats()
    return web.json_response({"ok": True})


def create_control_app(emulator: RouterEmulator) -> web.Application:
    """The control app for one emulated router."""
    app = web.Application()
    app[EMULATOR] = emulator
    app.router.add_get("/stats", get_stats)
    app.router.add_post("/faults", post_faults)
    app.router.add_post("/reboot", post_reboot)
    app.router.add_post("/reset-counters", post_reset_counters)
    app.router.add_post("/reset-stats", post_reset_stats)
    return app
