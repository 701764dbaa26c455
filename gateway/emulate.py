"""``gateway emulate``: one RouterOS API emulator, run from the command line.

What the emulated router is made of its options (its version and logins, its size, its TLS),
the line it prints at start-up, and running it (plus its HTTP control port, when asked for)
until SIGINT or SIGTERM. The options themselves, and their checks that need nothing else, are
``gateway.cli``'s.
"""

from __future__ import annotations

import argparse
import ssl
from typing import Final

from aiohttp import web

from gateway.emulator.control import create_control_app
from gateway.emulator.device import Device, DeviceConfig, sized_config
from gateway.emulator.server import RouterEmulator
from gateway.emulator.tls import Certificate, anonymous_context, make_certificate
from gateway.emulator.version import Version
from gateway.listen_file import host_port, listen_url
from gateway.serve import site_port, stop_event

__all__ = [
    "DEFAULT_VERSION",
    "LEGACY_VERSION",
    "emulated_config",
    "emulated_version",
    "emulator_tls",
    "login_methods",
    "population",
    "run_emulator",
]


DEFAULT_VERSION: Final = "7.18.2"
"""The RouterOS version ``gateway emulate`` acts as when none is given."""
LEGACY_VERSION: Final = "6.42.12"
"""The version ``--legacy-login`` alone acts as: the last release before the 6.43 login."""


def emulated_version(ros_version: str | None, legacy_login: bool) -> Version:
    """The version ``gateway emulate`` acts as; ValueError (naming the option) for a contradiction.

    The version alone decides the login; ``--legacy-login`` only says "older than 6.43", so with
    no ``--ros-version`` it picks 6.42.12, and with a 6.43+ version it contradicts it.
    """
    if ros_version is None:
        return Version.parse(LEGACY_VERSION if legacy_login else DEFAULT_VERSION)
    try:
        version = Version.parse(ros_version)
    except ValueError as exc:
        raise ValueError(f"--ros-version: {exc}") from None
    if legacy_login and version.plain_login:
        raise ValueError(
            f"--legacy-login contradicts --ros-version {version}: RouterOS 6.43 and later log "
            f"in with /login =name= =password=; drop --legacy-login, or give a version before "
            f"6.43 (e.g. {LEGACY_VERSION})"
        )
    return version


def login_methods(version: Version) -> str:
    """Which logins an emulated router of ``version`` accepts, as its start-up line says."""
    if not version.plain_login:
        return "MD5 challenge login only"
    if version.challenge_login:
        return "plain and MD5 challenge logins"
    return "plain login only"


def population(device: Device) -> str:
    """What an emulated router holds, as its start-up line says: ``9 interfaces`` and, when it
    has any, its simple queues, PPP sessions and hotspot users."""
    parts = [f"{len(device.interfaces)} interfaces"]
    for count, what in (
        (len(device.queues), "simple queues"),
        (len(device.ppp_active), "PPP sessions"),
        (len(device.hotspot_active), "hotspot users"),
    ):
        if count:
            parts.append(f"{count} {what}")
    return ", ".join(parts)


def emulator_tls(args: argparse.Namespace) -> tuple[ssl.SSLContext | None, str]:
    """The emulator's TLS context from ``--tls*`` options, and a line describing it.

    Raises TlsSetupError (files unreadable or unusable, or no ``cryptography`` to generate a
    certificate with).
    """
    if args.tls_anonymous:
        return anonymous_context(), "api-ssl without a certificate (anonymous DH, TLS 1.2)"
    if not args.tls:
        return None, ""
    if args.tls_cert is not None:
        certificate = Certificate.from_files(args.tls_cert, args.tls_key)
        what = args.tls_cert
    else:
        names = sorted({args.host, "127.0.0.1", "localhost"})
        certificate = make_certificate(args.identity, names)
        what = f"a self-signed certificate for {', '.join(names)}"
    return certificate.server_context(), (
        f"api-ssl with {what}, SHA-256 fingerprint {certificate.fingerprint}"
    )


def emulated_config(args: argparse.Namespace) -> DeviceConfig:
    """The emulated router's configuration from ``gateway emulate``'s options (checked first:
    ValueError for a contradictory version)."""
    return sized_config(
        args.interfaces,
        args.pppoe,
        version=emulated_version(args.ros_version, args.legacy_login),
        identity=args.identity,
        encoding=args.encoding,
        pppoe_session=args.pppoe_session,
        pppoe_queues=args.pppoe_queues,
        queues=args.queues,
        hotspot=args.hotspot,
        hotspot_session=args.hotspot_session,
        seed=args.seed,
    )


async def run_emulator(args: argparse.Namespace) -> None:
    tls, tls_line = emulator_tls(args)
    config = emulated_config(args)
    emulator = RouterEmulator(
        Device(config),
        host=args.host,
        port=args.port if args.port is not None else (8728 if tls is None else 8729),
        username=args.username,
        password=args.password,
        max_sessions=args.max_sessions,
        over_limit=args.over_limit,
        tls=tls,
    )
    stop = stop_event()
    try:
        await emulator.start()
    except OSError as exc:
        where = host_port(args.host, emulator.port)
        raise SystemExit(f"gateway emulate: cannot listen on {where}: {exc.strerror}") from None
    runner: web.AppRunner | None = None
    print(
        f"RouterOS {config.version} emulator on {host_port(args.host, emulator.port)} "
        f"({population(emulator.device)}, user {args.username!r}, "
        f"{login_methods(config.version)})",
        flush=True,
    )
    if tls_line:
        print(tls_line, flush=True)
    try:
        if args.control_port is not None:
            runner = web.AppRunner(create_control_app(emulator), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, args.host, args.control_port)
            try:
                await site.start()
            except OSError as exc:
                where = host_port(args.host, args.control_port)
                raise SystemExit(
                    f"gateway emulate: --control-port: cannot listen on {where}: {exc.strerror}"
                ) from None
            port = site_port(site, args.control_port)
            print(f"control API on {listen_url(args.host, port)}stats", flush=True)
        await stop.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        await emulator.stop()
