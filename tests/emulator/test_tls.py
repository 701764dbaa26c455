"""The emulator's api-ssl, seen by plain TLS clients: anonymous DH like a router without a
certificate, or a real certificate whose fingerprint is the one it reports."""

from __future__ import annotations

import asyncio
import hashlib
import ssl

import librouteros
import pytest

from gateway.emulator.tls import anonymous_context, format_fingerprint, make_certificate
from tests.support.emulators import CLIENT_TIMEOUT, DEADLINE, Routers, rows_of
from tests.support.timing import within


def client_context(ciphers: str, *, tls13: bool = True) -> ssl.SSLContext:
    """A client that checks nothing and offers ``ciphers`` (and TLS 1.3 unless told not to)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers(ciphers)
    if not tls13:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


async def handshake(port: int, context: ssl.SSLContext) -> ssl.SSLObject:
    """Open a TLS connection to the emulator and return its TLS session (then close it)."""
    _, writer = await within(asyncio.open_connection("127.0.0.1", port, ssl=context), DEADLINE)
    try:
        session = writer.get_extra_info("ssl_object")
        assert isinstance(session, ssl.SSLObject)
        return session
    finally:
        writer.transport.abort()


async def test_anonymous_api_ssl_negotiates_adh_over_tls_1_2(routers: Routers) -> None:
    """A client offering everything (TLS 1.3 too) gets TLS 1.2, an ADH suite and no certificate."""
    router = await routers.start(tls=anonymous_context())
    session = await handshake(router.port, client_context("ALL:@SECLEVEL=0"))
    assert session.version() == "TLSv1.2"
    cipher = session.cipher()
    assert cipher is not None
    assert cipher[0].startswith("ADH-")
    assert session.getpeercert(binary_form=True) is None


@pytest.mark.parametrize(
    "ciphers",
    ["DEFAULT:ADH:@SECLEVEL=0", "HIGH:!aNULL"],
    ids=["openssl3-default-plus-adh", "authenticated-only"],
)
async def test_anonymous_api_ssl_refuses_clients_without_anonymous_suites(
    routers: Routers, ciphers: str
) -> None:
    """Like a router with no certificate, it cannot serve a client that offers no aNULL suite."""
    router = await routers.start(tls=anonymous_context())
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await handshake(router.port, client_context(ciphers))


async def test_certificate_api_ssl_presents_the_certificate_it_reports(routers: Routers) -> None:
    """The certificate the emulator presents has the SHA-256 fingerprint it reports."""
    certificate = make_certificate("router")
    router = await routers.start(tls=certificate.server_context())
    session = await handshake(router.port, client_context("HIGH:!aNULL"))
    der = session.getpeercert(binary_form=True)
    assert der is not None
    assert format_fingerprint(hashlib.sha256(der).hexdigest()) == certificate.fingerprint


async def test_librouteros_speaks_the_api_inside_tls(routers: Routers) -> None:
    """librouteros with an ADH-capable context logs in and reads interfaces over api-ssl."""
    router = await routers.start(tls=anonymous_context())
    api = await within(
        librouteros.async_connect(
            "127.0.0.1",
            router.username,
            router.password,
            port=router.port,
            timeout=CLIENT_TIMEOUT,
            ssl_wrapper=client_context("aNULL:@SECLEVEL=0", tls13=False),
        ),
        DEADLINE,
    )
    try:
        assert len(await rows_of(api("/interface/print"))) == 9
    finally:
        await api.close()
    assert router.logins == 1
