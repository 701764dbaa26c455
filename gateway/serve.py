"""Running the gateway from the command line: ``gateway serve`` and ``gateway demo``.

The gateway is served until SIGINT or SIGTERM, then drained within ``shutdown_grace``; the
addresses it listens on are printed and, when ``GATEWAY_LISTEN_FILE`` asks for it, written for
the health probe. The stop signal and the ports a started site listens on are also what
``gateway emulate`` (``gateway.emulate``) uses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import Iterator, Sequence
from typing import Final

from aiohttp import web

from gateway.app import create_app, drain
from gateway.config import Settings
from gateway.demo import demo_settings, running_demo_routers
from gateway.listen_file import (
    LISTEN_FILE_ENV,
    host_port,
    listen_url,
    remove_listen_file,
    write_listen_file,
)
from gateway.logs import use_format
from gateway.routeros import connect_librouteros

__all__ = [
    "YOUNG_GENERATION",
    "collector_for_serving",
    "run_demo",
    "serve",
    "site_port",
    "stop_event",
]

YOUNG_GENERATION: Final = 20_000
"""Container objects allocated (net of those freed) between two young collections of CPython's
cycle collector while the gateway serves; CPython's default is 700.

Why: a poll of a 2,000-interface router allocates about 8,000 containers that live until the
tick ends (reply rows, samples, rates, frame rows). At 700 the collector ran about ten young
collections per tick, each scanning those live rows and promoting them to older generations,
so that a full collection of the whole process followed every ten seconds or so: 3-9 ms of CPU
a tick, 10-15 % of it (``loadtest/RESULTS.md``, "Ingest"). The rows are freed by reference
counting when the tick ends (they form no cycles), so at this threshold a tick's allocations
no longer trigger collections; cycles (a caught exception and its frames) are still collected,
after at most this many net allocations, in pauses of a few milliseconds."""


@contextlib.contextmanager
def collector_for_serving() -> Iterator[None]:
    """Tune the cycle collector for serving (see :data:`YOUNG_GENERATION`), and restore it after.

    Also moves every object alive now (the modules, the application, the configuration: about
    55,000 containers) out of the collector's sight with ``gc.freeze``: they live as long as
    the process, and a full collection no longer scans them each time.
    """
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM; install it first, so an early signal is not lost."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _site_addresses(site: web.TCPSite) -> list[tuple[str, int]]:
    """Every (address, port) a started site listens on (ports the OS picked for port 0 too)."""
    server = site._server
    if not isinstance(server, asyncio.base_events.Server):
        return []
    return [sock.getsockname()[:2] for sock in server.sockets]


def site_port(site: web.TCPSite, default: int) -> int:
    """The port a site really listens on (the one the OS picked for port 0)."""
    addresses = _site_addresses(site)
    return addresses[0][1] if addresses else default


def _tell_listen_file(urls: Sequence[str]) -> str | None:
    """Write ``urls`` to the file named by ``GATEWAY_LISTEN_FILE`` for the health probe; the
    file's path, or None when it is not asked for or cannot be written (one warning: the
    gateway serves all the same, and the probe falls back to the configuration)."""
    path = os.environ.get(LISTEN_FILE_ENV)
    if not path:
        return None
    try:
        write_listen_file(path, urls)
    except OSError as exc:
        logging.getLogger("gateway").warning(
            "cannot write %s=%s (%s): the health probe falls back to the configured address",
            LISTEN_FILE_ENV,
            path,
            exc.strerror or exc,
        )
        return None
    return path


async def serve(settings: Settings) -> None:
    """Run the gateway until SIGTERM or SIGINT, then drain within ``shutdown_grace``."""
    stop = stop_event()
    loop = asyncio.get_running_loop()
    grace = settings.server.shutdown_grace
    app = create_app(settings, connect=connect_librouteros)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=grace)
    deadline = loop.time() + grace
    await runner.setup()
    listen_file: str | None = None
    try:
        site = web.TCPSite(
            runner, settings.server.host, settings.server.port, reuse_address=True, backlog=1024
        )
        try:
            await site.start()
        except OSError as exc:
            where = host_port(settings.server.host, settings.server.port)
            raise SystemExit(f"gateway: cannot listen on {where}: {exc.strerror}") from None
        urls = [listen_url(host, port) for host, port in _site_addresses(site)]
        listen_file = _tell_listen_file(urls)
        print(f"gateway listening on {' and '.join(urls)}", flush=True)
        with collector_for_serving():
            await stop.wait()
        deadline = loop.time() + grace
        logging.getLogger("gateway").info("draining (grace %g s)", grace)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace * 0.5):
                await drain(app)
        # Keep answering probes (503) a moment longer, so a load balancer that polls
        # readiness sees this replica leave before its listener closes.
        await asyncio.sleep(min(settings.server.drain_hold, grace / 4))
    finally:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.1, deadline - loop.time())):
                await runner.cleanup()
        if listen_file is not None:
            remove_listen_file(listen_file)


async def run_demo(args: argparse.Namespace) -> None:
    async with running_demo_routers() as emulators:
        settings = demo_settings(emulators, host=args.host, port=args.port)
        if getattr(args, "log_format", None) is None:
            use_format(settings.server.log_format)  # GATEWAY_SERVER_LOG_FORMAT
        await serve(settings)
