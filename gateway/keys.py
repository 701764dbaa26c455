"""Every ``web.AppKey`` of the gateway, in one place."""

from __future__ import annotations

from aiohttp import web

from gateway.state import AppState

APP = web.AppKey("gateway", AppState)
