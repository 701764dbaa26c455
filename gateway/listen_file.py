"""Where the gateway really listens, told to the container's health probe through a file.

``gateway serve`` and ``gateway demo`` write the URL of every socket they bound, after binding,
one per line, to the file named by ``GATEWAY_LISTEN_FILE`` (the image sets a path under
``/tmp``). ``gateway healthcheck`` prefers that file to guessing from the configuration: the
process knows its ``--config``, ``--host`` and ``--port`` and the port the OS picked, the probe
does not. A wildcard address is probed on the loopback address of its family.

Standard library only: the probe imports this every few seconds.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "LISTEN_FILE_ENV",
    "health_url",
    "host_port",
    "listen_url",
    "read_listen_file",
    "remove_listen_file",
    "write_listen_file",
]

LISTEN_FILE_ENV: Final = "GATEWAY_LISTEN_FILE"
"""The environment variable naming the file (unset: no file is written)."""

_LOOPBACK: Final = {"0.0.0.0": "127.0.0.1", "::": "::1"}
"""A wildcard address and the loopback address of the same family, where a probe reaches it."""


def host_port(host: str, port: int) -> str:
    """``HOST:PORT``, an IPv6 address in brackets (``[::]:8080``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen_url(host: str, port: int) -> str:
    """``http://HOST:PORT/`` for a bound address, an IPv6 address in brackets."""
    return f"http://{host_port(host, port)}/"


def health_url(url: str) -> str:
    """The ``/healthz`` URL a probe on the same host asks for a listening URL.

    A wildcard host becomes the loopback of its family (``0.0.0.0`` -> ``127.0.0.1``,
    ``::`` -> ``::1``: an IPv6-only listener does not answer on 127.0.0.1). Raises ValueError
    for a URL without a host or port.
    """
    parts = urlsplit(url.strip())
    host, port = parts.hostname, parts.port
    if host is None or port is None:
        raise ValueError(f"not a listening URL: {url!r}")
    host = _LOOPBACK.get(_canonical(host), host)
    return f"{listen_url(host, port).removesuffix('/')}/healthz"


def _canonical(host: str) -> str:
    """An IP address in its compressed form (``0:0::0`` is ``::``), any other host unchanged."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def write_listen_file(path: str | os.PathLike[str], urls: Iterable[str]) -> None:
    """Replace the file at ``path`` with ``urls``, one per line, atomically (a probe reading
    it meanwhile sees the old file or the new one, never half of it). Raises OSError."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        partial.write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
        partial.replace(target)
    except OSError:
        partial.unlink(missing_ok=True)
        raise


def read_listen_file(env: Mapping[str, str] = os.environ) -> list[str]:
    """The URLs in the file named by ``GATEWAY_LISTEN_FILE``; empty when it is unset, absent
    or unreadable (the probe then falls back to the configuration)."""
    name = env.get(LISTEN_FILE_ENV)
    if not name:
        return []
    try:
        text = Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def remove_listen_file(path: str | os.PathLike[str]) -> None:
    """Remove the file on the way out: it describes a running process only. Never raises."""
    with contextlib.suppress(OSError):
        Path(path).unlink(missing_ok=True)
