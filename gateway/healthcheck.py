"""``gateway healthcheck``: exit 0 when the gateway on this host answers ``/healthz``.

The container image's ``HEALTHCHECK`` runs ``python -m gateway.healthcheck`` every few seconds, so
this module imports only the standard library and the configuration loader (about 50 ms, against
300 ms for the whole command line). Exit status follows Docker's convention: 0 healthy,
1 unhealthy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Final

from gateway.config import ConfigError, ServerSettings, load_settings
from gateway.listen_file import health_url, listen_url, read_listen_file

DEFAULT_PORT: Final = ServerSettings().port


def default_urls(env: Mapping[str, str] = os.environ) -> list[str]:
    """The gateway's ``/healthz`` URLs on this host, in the order to try them.

    First choice: the URLs the running process wrote after binding, to the file named by
    ``GATEWAY_LISTEN_FILE`` (it knows its ``--config``, ``--host`` and ``--port``; see
    ``gateway.listen_file``). Without that file, a guess: host and port of the configuration
    (``GATEWAY_CONFIG`` with its ``GATEWAY_SERVER_*`` overrides); without a configuration file,
    ``GATEWAY_SERVER_HOST`` and ``GATEWAY_SERVER_PORT``, else 127.0.0.1:8080. A wildcard
    address is reached on the loopback of its family (``0.0.0.0`` -> ``127.0.0.1``, ``::`` ->
    ``::1``).
    """
    urls: list[str] = []
    for url in read_listen_file(env):
        try:
            urls.append(health_url(url))
        except ValueError:
            continue  # a line the server did not write; the others may still do
    if urls:
        return urls
    return [health_url(listen_url(*_configured(env)))]


def default_url(env: Mapping[str, str] = os.environ) -> str:
    """The first of :func:`default_urls`."""
    return default_urls(env)[0]


def _configured(env: Mapping[str, str]) -> tuple[str, int]:
    """Host and port of the configuration (see :func:`default_urls`)."""
    host = env.get("GATEWAY_SERVER_HOST", "")
    port = env.get("GATEWAY_SERVER_PORT", "")
    path = env.get("GATEWAY_CONFIG")
    if path and os.path.exists(path):
        try:
            server = load_settings(path, env).server
            return server.host or "0.0.0.0", server.port
        except ConfigError:
            pass  # the server itself reports a broken configuration; probe the default
    # An empty host listens on every address, IPv4 included.
    return host or "0.0.0.0", int(port) if port.strip().isdigit() else DEFAULT_PORT


def check(url: str, timeout: float) -> int:
    """GET ``url`` within ``timeout`` seconds, ignoring proxy settings: 0 on HTTP 200, else 1."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            status: int = response.status
    except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
        print(f"gateway healthcheck: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


def check_any(urls: Sequence[str], timeout: float) -> int:
    """0 as soon as one of ``urls`` answers 200, all within ``timeout`` seconds; else 1.

    One answer is enough: a process listening on several addresses is as healthy on each.
    """
    deadline = time.monotonic() + timeout
    for url in urls:
        left = deadline - time.monotonic()
        if left <= 0:
            print(f"gateway healthcheck: no answer within {timeout:g} s", file=sys.stderr)
            return 1
        if check(url, left) == 0:
            return 0
    return 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options, shared by ``gateway healthcheck`` and ``python -m``."""
    parser.add_argument(
        "--url",
        default=None,
        help="what to probe (default: /healthz where the gateway on this host says it listens "
        "($GATEWAY_LISTEN_FILE), else at the configured host and port)",
    )
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for an answer")


def run(args: argparse.Namespace) -> int:
    return check_any([args.url] if args.url else default_urls(), args.timeout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway healthcheck", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
