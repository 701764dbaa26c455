"""Command line: ``gateway emulate`` (and, as they land, ``serve`` and ``demo``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from gateway.emulator.control import create_control_app
from gateway.emulator.device import Device, Version, sized_config
from gateway.emulator.server import OVER_LIMIT_MODES, RouterEmulator


def _emulate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "emulate",
        help="run a RouterOS API emulator",
        description=(
            "A RouterOS API emulator speaking the real binary protocol (TCP, like port 8728), "
            "for trying the gateway and dashboards without touching production routers. "
            "Counters advance at realistic, varying rates; PPPoE customers come and go. "
            "Faults (hang, slow, drop, refuse, trap, fatal, auth) are switched at run time "
            'over the control port: GET /stats, POST /faults {"mode":"hang","for":10}, '
            "POST /reboot, POST /reset-counters."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8728, help="API port (0 picks a free one)")
    p.add_argument("--username", default="admin", help="the API user's name")
    p.add_argument("--password", default="admin", help="the API user's password")
    p.add_argument(
        "--interfaces", type=int, default=8, help="static interfaces (ether, sfp, bridge, vlan)"
    )
    p.add_argument("--pppoe", type=int, default=0, help="dynamic <pppoe-...> customer sessions")
    p.add_argument(
        "--pppoe-session",
        type=float,
        default=600.0,
        help="mean PPPoE session length in seconds before a customer re-dials (0 = never)",
    )
    p.add_argument(
        "--ros-version",
        default="7.18.2",
        help="RouterOS version to act as: 6.x or 7.x (date formats, the lo row, !empty)",
    )
    p.add_argument("--identity", default="MikroTik", help="/system/identity name")
    p.add_argument("--encoding", default="utf-8", help="text encoding of names on the wire")
    p.add_argument(
        "--legacy-login",
        action="store_true",
        help="pre-6.43 MD5 challenge login instead of the plain /login =name= =password=",
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
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Realtime gateway between MikroTik routers and browser dashboards.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _emulate_parser(sub)
    return parser


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run_emulator(args: argparse.Namespace) -> None:
    config = sized_config(
        args.interfaces,
        args.pppoe,
        version=Version.parse(args.ros_version),
        identity=args.identity,
        encoding=args.encoding,
        pppoe_session=args.pppoe_session,
        seed=args.seed,
    )
    emulator = RouterEmulator(
        Device(config),
        host=args.host,
        port=args.port,
        username=args.username,
        password=args.password,
        legacy_login=args.legacy_login,
        max_sessions=args.max_sessions,
        over_limit=args.over_limit,
    )
    await emulator.start()
    runner: web.AppRunner | None = None
    print(
        f"RouterOS {config.version} emulator on {args.host}:{emulator.port} "
        f"({len(emulator.device.interfaces)} interfaces, user {args.username!r})",
        flush=True,
    )
    try:
        if args.control_port is not None:
            runner = web.AppRunner(create_control_app(emulator), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, args.host, args.control_port)
            await site.start()
            print(f"control API on http://{args.host}:{args.control_port}/stats", flush=True)
        await _wait_for_signal()
    finally:
        if runner is not None:
            await runner.cleanup()
        await emulator.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "emulate":
            try:
                Version.parse(args.ros_version)
            except ValueError as exc:
                print(f"gateway emulate: --ros-version: {exc}", file=sys.stderr)
                return 2
            asyncio.run(run_emulator(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
