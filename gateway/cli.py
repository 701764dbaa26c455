"""Command line: ``gateway serve``, ``gateway demo``, ``gateway emulate`` and
``gateway healthcheck``.

This module is the options of each command, their checks, and logging set up before any command
runs; the commands themselves are ``gateway.serve`` (serve, demo), ``gateway.emulate`` and
``gateway.healthcheck``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence

from gateway.config import ConfigError, LogFormat, load_settings
from gateway.core.text import encoding_problem
from gateway.emulate import (
    DEFAULT_VERSION,
    LEGACY_VERSION,
    emulated_config,
    emulated_version,
    login_methods,
    run_emulator,
)
from gateway.emulator.server import OVER_LIMIT_MODES
from gateway.emulator.tls import TlsSetupError
from gateway.healthcheck import add_arguments as add_healthcheck_arguments
from gateway.healthcheck import run as run_healthcheck
from gateway.logs import configure as configure_logging
from gateway.logs import use_format
from gateway.redact import protect_handlers, settings_secrets
from gateway.serve import run_demo, serve

# emulated_config and login_methods live in gateway.emulate; exported here as they always were.
__all__ = ["build_parser", "emulated_config", "login_methods", "main"]


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


def _sizes_problem(args: argparse.Namespace) -> str:
    """What is wrong with the emulator's sizes (counts and mean session lengths), or ``""``."""
    if args.interfaces < 1:
        return f"--interfaces: a router has at least one interface, got {args.interfaces}"
    for option in ("pppoe", "queues", "hotspot", "pppoe_session", "hotspot_session"):
        value = getattr(args, option)
        if value < 0:
            return f"--{option.replace('_', '-')}: expected 0 or more, got {value}"
    return ""


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
