"""The load test's command-line options and the settings read from them.

Locust's own parser takes the options (``events.init_command_line_parser``); every option also
has an environment variable (``LOCUST_...``), so a run can be configured either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def add_options(parser: Any) -> None:
    """Add the gateway checks' options to Locust's parser."""
    # Locust's own parser, not an argument group: only it takes include_in_web_ui.
    parser.add_argument(
        "--emulator-control",
        default="",
        env_var="LOCUST_EMULATOR_CONTROL",
        help="the emulators' control URLs, comma-separated ROUTER=URL (a bare URL when the "
        "gateway has one router); enables the one-request-per-interval check",
    )
    parser.add_argument(
        "--request-max",
        type=float,
        default=2.0,
        env_var="LOCUST_REQUEST_MAX",
        help="seconds: the client timeout and the slowest request allowed",
    )
    parser.add_argument(
        "--frame-p99-max",
        type=float,
        default=1000.0,
        env_var="LOCUST_FRAME_P99_MAX",
        help="milliseconds: the largest 99th percentile of frame delay (now - ts) allowed",
    )
    parser.add_argument(
        "--frame-gap-max",
        type=float,
        default=0.0,
        env_var="LOCUST_FRAME_GAP_MAX",
        help="seconds without a traffic frame while a router is up before it counts as a "
        "failure; 0 = 2 x the router's poll interval + --router-timeout",
    )
    parser.add_argument(
        "--router-timeout",
        type=float,
        default=3.0,
        env_var="LOCUST_ROUTER_TIMEOUT",
        help="seconds: the gateway's poll timeout (for the default --frame-gap-max)",
    )
    parser.add_argument(
        "--poll-slack",
        type=float,
        default=2.0,
        env_var="LOCUST_POLL_SLACK",
        help="router requests allowed per router beyond one per poll interval",
    )
    parser.add_argument(
        "--replicas",
        default="",
        env_var="LOCUST_REPLICAS",
        help="the gateway replicas' base URLs, comma-separated: users spread over them round "
        "robin (default: --host alone; routers are read from --host)",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        default=False,
        env_var="LOCUST_CLUSTER",
        help="the replicas run in cluster mode: seq may jump forward at a takeover (right "
        "after a status), and a viewer that reconnects resumes on the next replica",
    )
    parser.add_argument(
        "--gateway-token",
        default="",
        env_var="LOCUST_GATEWAY_TOKEN",
        include_in_web_ui=False,
        help="a JWT for a gateway in auth mode jwt (websocket subprotocol bearer.<token>, "
        "REST Authorization: Bearer)",
    )
    parser.add_argument(
        "--summary-json",
        default="",
        env_var="LOCUST_SUMMARY_JSON",
        help="write the measured figures and the checks' verdicts to this file",
    )


@dataclass(frozen=True, slots=True)
class Settings:
    request_max: float = 2.0
    frame_p99_max: float = 1000.0
    frame_gap_max: float = 0.0
    router_timeout: float = 3.0
    poll_slack: float = 2.0
    controls: tuple[tuple[str, str], ...] = ()
    replicas: tuple[str, ...] = ()
    cluster: bool = False
    token: str = ""
    summary_json: str = ""

    @classmethod
    def from_options(cls, options: Any) -> Settings:
        if options is None:
            return cls()
        controls = []
        for item in (s.strip() for s in options.emulator_control.split(",")):
            if not item:
                continue
            router, sep, url = item.partition("=")
            if not sep:
                router, url = "", item
            controls.append((router.strip(), url.strip().rstrip("/")))
        replicas = tuple(u.strip().rstrip("/") for u in options.replicas.split(",") if u.strip())
        return cls(
            request_max=options.request_max,
            frame_p99_max=options.frame_p99_max,
            frame_gap_max=options.frame_gap_max,
            router_timeout=options.router_timeout,
            poll_slack=options.poll_slack,
            controls=tuple(controls),
            replicas=replicas,
            cluster=bool(options.cluster),
            token=options.gateway_token,
            summary_json=options.summary_json,
        )
