"""Every ``web.AppKey`` of the gateway, in one place: the few things the HTTP views share.

The websocket endpoint takes what it needs when ``gateway.app`` builds it, and reads no key.
"""

from __future__ import annotations

from aiohttp import web

from gateway.auth import Verifier
from gateway.config import RouterSettings, Settings
from gateway.hub import Hub
from gateway.lifecycle import Lifecycle
from gateway.metrics import Metrics
from gateway.poller import Poller

SETTINGS = web.AppKey("settings", Settings)
HUB = web.AppKey("hub", Hub)
METRICS = web.AppKey("metrics", Metrics)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
POLLERS = web.AppKey[dict[str, Poller]]("pollers")
"""One poller per router id, created at start-up (``gateway.app``), stopped at cleanup."""
ROUTERS = web.AppKey[dict[str, RouterSettings]]("routers")
"""Every configured router's settings by id (the REST views' lookup)."""
VERIFIER = web.AppKey("verifier", Verifier)
"""Checks tokens (REST and websocket) against the keys of the moment (``gateway.keyfiles``)."""
