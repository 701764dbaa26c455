"""api-ssl through the gateway: routers without a certificate come up, and a configured CA file or
fingerprint authenticates the router before the password leaves the gateway.

Every test runs the real gateway and its real librouteros session against the emulator serving
real TLS on loopback (anonymous DH only, like api-ssl without a certificate, or a certificate).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest

from gateway.config import Settings, settings_from_dict
from gateway.emulator.server import RouterEmulator
from gateway.emulator.tls import Certificate, anonymous_context, make_certificate
from tests.support.gateway import PASSWORD, Gateway, emulator, gateway, receive, running, subscribe
from tests.support.timing import seconds

TIMEOUT: Final = 1.0
POLL: Final = {
    "interval": 0.25,
    "timeout": TIMEOUT,
    "linger": 2.0,
    "backoff_initial": 0.2,
    "backoff_max": 0.5,
}


def tls_settings(port: int, tmp_path: Path, **router: object) -> Settings:
    """Settings for one router "core" on ``port``, with extra router keys (``tls`` etc.)."""
    return settings_from_dict(
        {
            "server": {"host": "127.0.0.1", "port": 0},
            "poll": POLL,
            "routers": [
                {
                    "id": "core",
                    "host": "127.0.0.1",
                    "port": port,
                    "username": "admin",
                    "password": PASSWORD,
                    **router,
                }
            ],
        },
        source="test",
        base_dir=tmp_path,
    )


def pem_file(tmp_path: Path, name: str, certificate: Certificate) -> str:
    """Write ``certificate`` (not its key) to ``tmp_path/name``; returns the name."""
    (tmp_path / name).write_bytes(certificate.cert_pem)
    return name


async def first_status(
    ws: aiohttp.ClientWebSocketResponse, states: tuple[str, ...], timeout: float
) -> Any:
    """The first ``status`` message in one of ``states``; traffic on the way is skipped."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no status in {states} within {timeout:.1f} s"
        message = await receive(ws, left)
        if message["type"] == "status" and message["state"] in states:
            return message


async def traffic_flows(gw: Gateway, ws: aiohttp.ClientWebSocketResponse) -> None:
    """The router comes up and at least two consecutive traffic frames reach the viewer."""
    await subscribe(ws, "core")
    up = await first_status(ws, ("up", "down"), seconds(TIMEOUT + 3))
    assert up["state"] == "up", up["error"]
    frames: list[Any] = []
    deadline = time.monotonic() + seconds(5)
    while len(frames) < 2:
        message = await receive(ws, max(deadline - time.monotonic(), 0.001))
        if message["type"] == "traffic":
            frames.append(message)
    assert frames[1]["seq"] == frames[0]["seq"] + 1
    assert frames[1]["interfaces"], "a traffic frame with no interfaces"
    assert frames[1]["stale"] is False


@contextlib.asynccontextmanager
async def watching(settings: Settings) -> AsyncIterator[tuple[Gateway, Any]]:
    """A gateway with one viewer connected (not yet subscribed); yields both."""
    async with gateway(settings) as gw:
        ws = await gw.viewer()
        try:
            yield gw, ws
        finally:
            await ws.close()


@contextlib.asynccontextmanager
async def serving(
    emu: RouterEmulator, tmp_path: Path, **router: object
) -> AsyncIterator[tuple[Gateway, Any]]:
    """Start ``emu``, then a gateway in front of it with these router keys, and one viewer."""
    async with running(emu), watching(tls_settings(emu.port, tmp_path, **router)) as watched:
        yield watched


async def goes_down(gw: Gateway, ws: aiohttp.ClientWebSocketResponse) -> str:
    """Subscribe and return the error of the ``down`` status, which must come within the
    deadline; the same error is in ``/api/routers`` and never contains the password."""
    started = time.monotonic()
    await subscribe(ws, "core")
    down = await first_status(ws, ("up", "down"), seconds(TIMEOUT + 3))
    took = time.monotonic() - started
    assert down["state"] == "down", "the router came up"
    assert took <= seconds(TIMEOUT + 0.5), f"down after {took:.2f} s"
    error: str = down["error"]
    assert PASSWORD not in error
    status, body = await gw.get_json("/api/routers")
    assert status == 200
    assert body["routers"][0]["last_error"] == error
    return error


def no_login_sent(emu: RouterEmulator) -> bool:
    """Whether the router has never received a ``/login`` (so never the password)."""
    return emu.commands["/login"] == 0 and emu.logins == 0


# -- routers without a certificate -------------------------------------------------------------


async def test_router_without_certificate_comes_up_with_tls_true(tmp_path: Path) -> None:
    """api-ssl without a certificate (anonymous DH over TLS 1.2 only) comes up with tls = true."""
    emu = emulator(tls=anonymous_context())
    async with serving(emu, tmp_path, tls=True) as (gw, ws):
        await traffic_flows(gw, ws)
    assert emu.logins == 1


async def test_anonymous_router_is_refused_when_a_ca_file_is_configured(tmp_path: Path) -> None:
    """With tls_ca_file set, a router offering only anonymous TLS stays down, and says why."""
    ca = pem_file(tmp_path, "ca.pem", make_certificate("router"))
    emu = emulator(tls=anonymous_context())
    async with serving(emu, tmp_path, tls=True, tls_ca_file=ca) as (gw, ws):
        error = await goes_down(gw, ws)
    assert "anonymous TLS is refused" in error
    assert "certificate" in error
    assert no_login_sent(emu)


async def test_anonymous_router_is_refused_when_a_fingerprint_is_pinned(tmp_path: Path) -> None:
    """With tls_fingerprint set, a router offering only anonymous TLS stays down, and says why."""
    pinned = make_certificate("router").fingerprint
    emu = emulator(tls=anonymous_context())
    async with serving(emu, tmp_path, tls=True, tls_fingerprint=pinned) as (gw, ws):
        error = await goes_down(gw, ws)
    assert "anonymous TLS is refused" in error
    assert no_login_sent(emu)


# -- routers with a certificate ----------------------------------------------------------------


async def test_certificate_router_comes_up_unauthenticated(tmp_path: Path) -> None:
    """tls = true alone also reaches a router that has a (self-signed) certificate."""
    emu = emulator(tls=make_certificate("router").server_context())
    async with serving(emu, tmp_path, tls=True) as (gw, ws):
        await traffic_flows(gw, ws)


async def test_router_certificate_as_ca_file_comes_up(tmp_path: Path) -> None:
    """The router's own self-signed certificate as tls_ca_file authenticates it: it comes up."""
    certificate = make_certificate("router")
    emu = emulator(tls=certificate.server_context())
    async with serving(
        emu, tmp_path, tls=True, tls_ca_file=pem_file(tmp_path, "router.pem", certificate)
    ) as (gw, ws):
        await traffic_flows(gw, ws)


async def test_certificate_issued_by_the_ca_file_comes_up(tmp_path: Path) -> None:
    """A router certificate issued by the operator's CA verifies against that CA: it comes up."""
    ca = make_certificate("NOC CA", ca=True)
    leaf = make_certificate("core", ["127.0.0.1"], issuer=ca)
    emu = emulator(tls=leaf.server_context())
    async with serving(emu, tmp_path, tls=True, tls_ca_file=pem_file(tmp_path, "ca.pem", ca)) as (
        gw,
        ws,
    ):
        await traffic_flows(gw, ws)


async def test_wrong_ca_keeps_the_router_down_without_sending_the_password(
    tmp_path: Path,
) -> None:
    """A certificate that does not verify against tls_ca_file: down, the error says so, no login."""
    emu = emulator(tls=make_certificate("router").server_context())
    other = pem_file(tmp_path, "other-ca.pem", make_certificate("someone else", ca=True))
    async with serving(emu, tmp_path, tls=True, tls_ca_file=other) as (gw, ws):
        error = await goes_down(gw, ws)
    assert "certificate did not verify against tls_ca_file" in error
    assert str(tmp_path / "other-ca.pem") in error
    assert "self-signed certificate" in error
    assert no_login_sent(emu)


async def test_certificate_for_another_address_keeps_the_router_down(tmp_path: Path) -> None:
    """A certificate from the right CA that names another address fails the host name check."""
    ca = make_certificate("NOC CA", ca=True)
    leaf = make_certificate("edge", ["192.0.2.7", "edge.example.net"], issuer=ca)
    emu = emulator(tls=leaf.server_context())
    async with serving(emu, tmp_path, tls=True, tls_ca_file=pem_file(tmp_path, "ca.pem", ca)) as (
        gw,
        ws,
    ):
        error = await goes_down(gw, ws)
    assert "did not verify against tls_ca_file" in error
    assert "127.0.0.1" in error
    assert "mismatch" in error
    assert no_login_sent(emu)


async def test_pinned_fingerprint_comes_up(tmp_path: Path) -> None:
    """The certificate's SHA-256 fingerprint pinned (any case, colons or not): the router is up."""
    certificate = make_certificate("router")
    emu = emulator(tls=certificate.server_context())
    async with running(emu):
        for pinned in (certificate.fingerprint, certificate.fingerprint.replace(":", "").lower()):
            settings = tls_settings(emu.port, tmp_path, tls=True, tls_fingerprint=pinned)
            async with watching(settings) as (gw, ws):
                await traffic_flows(gw, ws)


async def test_wrong_fingerprint_keeps_the_router_down_and_shows_the_one_received(
    tmp_path: Path,
) -> None:
    """A fingerprint mismatch: down, the error shows the fingerprint received, no login."""
    served = make_certificate("router")
    pinned = make_certificate("router").fingerprint
    emu = emulator(tls=served.server_context())
    async with serving(emu, tmp_path, tls=True, tls_fingerprint=pinned) as (gw, ws):
        error = await goes_down(gw, ws)
    assert "fingerprint mismatch" in error
    assert served.fingerprint in error
    assert pinned in error
    assert no_login_sent(emu)


# -- the wrong kind of port --------------------------------------------------------------------


async def test_plain_api_to_a_tls_port_fails_fast_with_a_hint(tmp_path: Path) -> None:
    """tls = false against an api-ssl port: down within the deadline, suggesting tls = true."""
    emu = emulator(tls=anonymous_context())
    async with serving(emu, tmp_path) as (gw, ws):
        error = await goes_down(gw, ws)
    assert "set tls = true" in error


async def test_tls_to_a_plain_api_port_fails_fast_with_a_hint(tmp_path: Path) -> None:
    """tls = true against a plain api port: down within the deadline, naming the api-ssl port."""
    emu = emulator()
    async with serving(emu, tmp_path, tls=True) as (gw, ws):
        error = await goes_down(gw, ws)
    assert "api-ssl port" in error
    assert "set tls = false" in error


async def test_tls_to_a_silent_port_times_out_in_the_handshake(tmp_path: Path) -> None:
    """A port that accepts but never answers TLS: down at the deadline, naming the handshake."""
    held: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # keep the connection open, say nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with watching(tls_settings(port, tmp_path, tls=True)) as (gw, ws):
            error = await goes_down(gw, ws)
    finally:
        for writer in held:
            writer.transport.abort()
        server.close()
        await server.wait_closed()
    assert f"no TLS handshake within {TIMEOUT:g} s" in error
    assert "api-ssl port" in error


def old_tls_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A server context that speaks no TLS newer than ``version`` (1.0 or 1.1), like the api-ssl
    of an old router, with a certificate."""
    context = make_certificate("router").server_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 are deprecated: yes
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = version
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
async def test_a_router_with_only_old_tls_is_told_apart_from_a_wrong_port(
    tmp_path: Path, version: str
) -> None:
    """A router whose api-ssl speaks only TLS 1.0 or 1.1 stays down with that reason (the
    gateway needs 1.2 or later), not with advice about the port."""
    context = old_tls_context(getattr(ssl.TLSVersion, version))
    handshakes = 0

    async def old_router(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The handshake on memory buffers, so the router's alert is sent before it hangs up
        # (asyncio's own server-side TLS drops the connection without it).
        nonlocal handshakes
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_side=True)
        try:
            while True:
                try:
                    tls.do_handshake()
                    handshakes += 1  # never: the versions do not meet
                    break
                except ssl.SSLWantReadError:
                    writer.write(outgoing.read())
                    data = await reader.read(65536)
                    if not data:
                        break
                    incoming.write(data)
        except ssl.SSLError:
            pass
        writer.write(outgoing.read())
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(old_router, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with watching(tls_settings(port, tmp_path, tls=True)) as (gw, ws):
            error = await goes_down(gw, ws)
    finally:
        server.close()
        await server.wait_closed()
    assert "only TLS older than 1.2" in error
    assert "requires TLS 1.2 or later" in error
    assert "api-ssl port" not in error
    assert handshakes == 0
