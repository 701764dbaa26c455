"""Command line: ``gateway serve``, ``gateway demo`` and ``gateway emulate``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from typing import Final

from aiohttp import web

from gateway.app import create_app, drain
from gateway.config import ConfigError, LogFormat, Settings, load_settings
from gateway.core.text import encoding_problem
from gateway.demo import demo_settings, running_demo_routers
from gateway.emulator.control import create_control_app
from gateway.emulator.device import Device, DeviceConfig, sized_config
from gateway.emulator.server import OVER_LIMIT_MODES, RouterEmulator
from gateway.emulator.tls import Certificate, TlsSetupError, anonymous_context, make_certificate
from gateway.emulator.version import Version
from gateway.healthcheck import add_arguments as add_healthcheck_arguments
from gateway.healthcheck import run as run_healthcheck
from gateway.listen_file import (
    LISTEN_FILE_ENV,
    host_port,
    listen_url,
    remove_listen_file,
    write_listen_file,
)
from gateway.logs import configure as configure_logging
from gateway.logs import use_format
from gateway.redact import protect_handlers, settings_secrets
from gateway.routeros import connect_librouteros

DEFAULT_VERSION: Final = "7.18.2"
"""The RouterOS version ``gateway emulate`` acts as when none is given."""
LEGACY_VERSION: Final = "6.42.12"
"""The version ``--legacy-login`` alone acts as: the last release before the 6.43 login."""


def _common() -> argparse.ArgumentParser:
    """Options every command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    common.add_argument(
        "--log-format",
        choices=("text", "json"),
        # Absent unless given, so that the configuration's server.log_format can apply.
        default=argparse.SUPPRESS,
        help="text lines, or one JSON object a line for log pipelines; when not given, the "
        "configuration's server.log_format (serve, demo), else text",
    )
    return common


def _emulate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "emulate",
        parents=[_common()],
        help="run a RouterOS API emulator",
        description=(
            "A RouterOS API emulator speaking the real binary protocol (TCP, like port 8728), "
            "for trying the gateway and dashboards without touching production routers. "
            "Counters advance at realistic, varying rates; PPPoE customers and hotspot users "
            "come and go, with their /ppp/active and /ip/hotspot/active rows and dynamic "
            "simple queues. "
            "Faults (hang, slow, drop, refuse, trap, fatal, auth) are switched at run time "
            'over the control port: GET /stats, POST /faults {"mode":"hang","for":10}, '
            "POST /reboot, POST /reset-counters."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="API port: 8728, or 8729 with TLS (0 picks a free one)",
    )
    tls = p.add_mutually_exclusive_group()
    tls.add_argument(
        "--tls",
        action="store_true",
        help="serve api-ssl with a certificate: --tls-cert/--tls-key, or a generated "
        "self-signed one (needs the cryptography package); prints its SHA-256 fingerprint",
    )
    tls.add_argument(
        "--tls-anonymous",
        action="store_true",
        help="serve api-ssl without a certificate, like a router with none set: TLS 1.2, "
        "anonymous Diffie-Hellman suites only",
    )
    p.add_argument("--tls-cert", default=None, help="PEM certificate (chain) for --tls")
    p.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    p.add_argument("--username", default="admin", help="the API user's name")
    p.add_argument("--password", default="admin", help="the API user's password")
    p.add_argument(
        "--interfaces", type=int, default=8, help="static interfaces (ether, sfp, bridge, vlan)"
    )
    p.add_argument(
        "--pppoe",
        type=int,
        default=0,
        help="PPPoE customers: each one online is a dynamic <pppoe-USER> interface, a "
        "/ppp/active row and (see --pppoe-queues) a dynamic <pppoe-USER> simple queue with its "
        "plan, counting what the interface counts; all three come and go together",
    )
    p.add_argument(
        "--pppoe-session",
        type=float,
        default=600.0,
        help="mean PPPoE session length in seconds before a customer re-dials (0 = never)",
    )
    p.add_argument(
        "--pppoe-queues",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="give PPPoE customers a rate limit, hence a dynamic simple queue each; "
        "--no-pppoe-queues for a router that shapes them some other way",
    )
    p.add_argument(
        "--queues",
        type=int,
        default=0,
        help="static simple queues, one per customer with an address and a plan (max-limit); "
        "the comment holds the customer id; listed before the dynamic queues",
    )
    p.add_argument(
        "--hotspot",
        type=int,
        default=0,
        help="hotspot users: each one logged in is an /ip/hotspot/active row and a dynamic "
        "<hotspot-USER> simple queue; they log out and in again (a new .id, counters from zero)",
    )
    p.add_argument(
        "--hotspot-session",
        type=float,
        default=1800.0,
        help="mean hotspot session length in seconds before a user logs out (0 = never, "
        "though a voucher user's hour still ends)",
    )
    p.add_argument(
        "--ros-version",
        default=None,
        help="RouterOS version to act as: 6.x or 7.x; it decides the login (the MD5 challenge "
        "before 6.43, both up to 6.45.0, the plain login after), date formats, the lo row and "
        f"!empty; when not given {DEFAULT_VERSION}, or {LEGACY_VERSION} with --legacy-login",
    )
    p.add_argument("--identity", default="MikroTik", help="/system/identity name")
    p.add_argument("--encoding", default="utf-8", help="text encoding of names on the wire")
    p.add_argument(
        "--legacy-login",
        action="store_true",
        help="act as a router older than 6.43 (the MD5 challenge login only); refused with a "
        "--ros-version of 6.43 or later",
    )
    p.add_argument("--max-sessions", type=int, default=20, help="concurrent API sessions")
    p.add_argument(
        "--over-limit",
        choices=OVER_LIMIT_MODES,
        default="close",
        help="what a connection past --max-sessions gets: closed at once, never answered, "
        "or !fatal",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed of the traffic pattern")
    p.add_argument(
        "--control-port",
        type=int,
        default=None,
        help="HTTP control port (stats, faults, reboot, reset-counters); off when not given",
    )


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        parents=[_common()],
        help="run the gateway",
        description="Run the gateway with a TOML configuration file (see README).",
    )
    p.add_argument(
        "--config",
        default=os.environ.get("GATEWAY_CONFIG"),
        help="configuration file (default: $GATEWAY_CONFIG)",
    )


def _demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        parents=[_common()],
        help="emulated routers plus the gateway, on loopback",
        description=(
            "Start three emulated routers in this process (an office router, an ISP router "
            "with hundreds of PPPoE customers coming and going, and a flaky router that hangs "
            "now and then) and the gateway in front of them, then print the dashboard URL."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    # Defaults follow GATEWAY_SERVER_HOST/PORT, as `serve` does, so a container's HEALTHCHECK
    # (which reads them) finds a demo started without options.
    p.add_argument(
        "--host",
        default=os.environ.get("GATEWAY_SERVER_HOST", "127.0.0.1"),
        help="address the gateway listens on ($GATEWAY_SERVER_HOST)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=os.environ.get("GATEWAY_SERVER_PORT", "8080"),
        help="gateway port ($GATEWAY_SERVER_PORT)",
    )


def _healthcheck_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "healthcheck",
        help="exit 0 when the gateway on this host answers /healthz",
        description=(
            "Probe the gateway's liveness endpoint on this host, as the container image's "
            "HEALTHCHECK does: exit 0 when it answers 200 in time, else 1."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_healthcheck_arguments(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Realtime gateway between MikroTik routers and browser dashboards.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serve_parser(sub)
    _demo_parser(sub)
    _emulate_parser(sub)
    _healthcheck_parser(sub)
    return parser


def _stop_event() -> asyncio.Event:
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


def _site_port(site: web.TCPSite, default: int) -> int:
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
    stop = _stop_event()
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


def _sizes_problem(args: argparse.Namespace) -> str:
    """What is wrong with the emulator's sizes (counts and mean session lengths), or ``""``."""
    if args.interfaces < 1:
        return f"--interfaces: a router has at least one interface, got {args.interfaces}"
    for option in ("pppoe", "queues", "hotspot", "pppoe_session", "hotspot_session"):
        value = getattr(args, option)
        if value < 0:
            return f"--{option.replace('_', '-')}: expected 0 or more, got {value}"
    return ""


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
    stop = _stop_event()
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
            port = _site_port(site, args.control_port)
            print(f"control API on {listen_url(args.host, port)}stats", flush=True)
        await stop.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        await emulator.stop()


def _tls_options_problem(args: argparse.Namespace) -> str:
    """What is wrong with the ``--tls*`` options together, or ``""``."""
    if (args.tls_cert is None) != (args.tls_key is None):
        return "--tls-cert and --tls-key go together"
    if args.tls_cert is not None and not args.tls:
        return "--tls-cert and --tls-key need --tls (--tls-anonymous serves no certificate)"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    chosen: LogFormat | None = getattr(args, "log_format", None)
    configure_logging(getattr(args, "log_level", "INFO"), chosen or "text")
    # The last line of defence (gateway.redact): secret shapes now, known secrets once loaded.
    protect_handlers()
    try:
        if args.command == "serve":
            if not args.config:
                print("gateway serve: --config FILE (or GATEWAY_CONFIG) is needed", file=sys.stderr)
                return 2
            try:
                settings = load_settings(args.config)
            except ConfigError as exc:
                print(f"gateway: {exc}", file=sys.stderr)
                return 2
            protect_handlers(settings_secrets(settings))
            if chosen is None:
                use_format(settings.server.log_format)
            asyncio.run(serve(settings))
        elif args.command == "healthcheck":
            return run_healthcheck(args)
        elif args.command == "demo":
            try:
                asyncio.run(run_demo(args))
            except ConfigError as exc:
                # A GATEWAY_<SECTION>_* variable the demo's settings refused.
                print(f"gateway: {exc}", file=sys.stderr)
                return 2
        elif args.command == "emulate":
            try:
                emulated_version(args.ros_version, args.legacy_login)
            except ValueError as exc:
                print(f"gateway emulate: {exc}", file=sys.stderr)
                return 2
            problem = encoding_problem(args.encoding)
            if problem is not None:
                # The gateway accepts no other encoding, and no router speaks one.
                print(
                    f"gateway emulate: --encoding: {args.encoding!r}: {problem} (RouterOS API "
                    "words are ASCII)",
                    file=sys.stderr,
                )
                return 2
            try:
                args.password.encode(args.encoding)
            except UnicodeEncodeError:
                print(
                    f"gateway emulate: --password: has characters that --encoding "
                    f"{args.encoding!r} cannot carry",
                    file=sys.stderr,
                )
                return 2
            problem = _tls_options_problem(args) or _sizes_problem(args)
            if problem:
                print(f"gateway emulate: {problem}", file=sys.stderr)
                return 2
            try:
                asyncio.run(run_emulator(args))
            except TlsSetupError as exc:
                print(f"gateway emulate: TLS: {exc}", file=sys.stderr)
                return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
