"""Opening one RouterOS API session: TCP connect, api-ssl when set, and login.

:func:`connect_librouteros` is the gateway's connector (``gateway.routeros.Connector``): it
opens the socket, runs the TLS handshake and checks through ``gateway.api_ssl`` when the router
has ``tls`` (the password is sent only after they have passed), and logs in, all within one
deadline, naming the step that failed or ran out of time. The session it returns reads replies
as exact text (``gateway.routeros_reply.ExactApi``).

Login is the 6.43+ method, answering the pre-6.43 challenge when an old router sends one, or the
challenge alone with ``login_method = "token"`` (:func:`challenge_response`). A password that
the router's ``encoding`` cannot carry is refused without any of its text in the error.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

import librouteros
from librouteros.api import AsyncApi

from gateway.api_ssl import NOT_API_SSL, start_tls
from gateway.config import RouterSettings
from gateway.router_errors import RouterAuthFailed, RouterProtocolError, RouterTimeout
from gateway.routeros_reply import ExactApi, ExactProtocol, ReadAheadTransport, Row

__all__ = ["challenge_response", "connect_librouteros"]


def challenge_response(challenge: str, password: str, encoding: str) -> str:
    """The pre-6.43 login's answer to ``challenge``: ``"00"`` + hex MD5(0x00, password, challenge).

    ``challenge`` is the router's ``=ret=`` (hex of 16 bytes). The password is hashed as the bytes
    the router stores, i.e. in the router's ``encoding`` (librouteros' own ``encode_password``
    takes ASCII only and names the offending character, a piece of the password, in its error).
    Raises :class:`RouterProtocolError` for a challenge that is not hex, and
    :class:`RouterAuthFailed`, without any of the password's text, for a password that the
    encoding cannot carry. Source: the RouterOS API manual, "Initial login" (pre-v6.43).
    """
    try:
        challenge_bytes = bytes.fromhex(challenge)
    except ValueError:
        raise RouterProtocolError("the router sent a login challenge that is not hex") from None
    try:
        password_bytes = password.encode(encoding)
    except UnicodeEncodeError:
        raise RouterAuthFailed(_unencodable_password(encoding)) from None
    digest = hashlib.md5(b"\x00" + password_bytes + challenge_bytes, usedforsecurity=False)
    return "00" + digest.hexdigest()


def _unencodable_password(encoding: str) -> str:
    # Neither the character nor its position: both are pieces of the password.
    return (
        f"the password has characters that the router's encoding {encoding!r} cannot carry "
        "(set the router's encoding to the code page its password was set in)"
    )


def _challenge(rows: Sequence[Row]) -> str | None:
    return next((str(r["ret"]) for r in rows if "ret" in r), None)


async def _login(api: librouteros.api.AsyncApi, username: str, password: str) -> None:
    """Log in with the 6.43+ method, falling back to the challenge when the router sends one.

    librouteros' own ``async_plain`` ignores the reply, so against a pre-6.43 router (which
    answers ``/login =name= =password=`` with a challenge instead of logging in) it would
    "succeed" without a session. A challenge in the reply means an old router: answer it, with
    the password in the connection's encoding (the router's ``encoding`` setting).
    """
    rows = [r async for r in api("/login", name=username, password=password)]
    challenge = _challenge(rows)
    if challenge is not None:
        response = challenge_response(challenge, password, api.protocol.encoding)
        [r async for r in api("/login", name=username, response=response)]


async def _login_token(api: librouteros.api.AsyncApi, username: str, password: str) -> None:
    """The pre-6.43 challenge login alone (``login_method = "token"``): the password never
    crosses the wire, not even once."""
    challenge = _challenge([r async for r in api("/login")])
    if challenge is None:
        raise RouterProtocolError("router sent no login challenge (is it older than 6.43?)")
    response = challenge_response(challenge, password, api.protocol.encoding)
    [r async for r in api("/login", name=username, response=response)]


def _step_timeout(router: RouterSettings, step: str, timeout: float) -> RouterTimeout:
    """The deadline ran out during ``step``: say which, and what may be wrong."""
    where = f"{router.host}:{router.port}"
    if step == "tls":
        return RouterTimeout(f"{where}: no TLS handshake within {timeout:g} s: {NOT_API_SSL}")
    what = "the TCP connect" if step == "connect" else "login"
    return RouterTimeout(f"{where}: no answer to {what} within {timeout:g} s")


async def connect_librouteros(router: RouterSettings, timeout: float) -> AsyncApi:
    """Open and log in one API session (the default connector), all within ``timeout`` seconds.

    Steps: TCP connect; with ``tls``, the TLS handshake and the fingerprint check; login. An
    error names the step that failed or ran out of time. The password is sent only in the last
    step, so never to a router that failed the TLS checks. Replies are read as exact text
    (:class:`ExactApi`).

    A password that the router's ``encoding`` cannot carry is refused before connecting, with
    :class:`RouterAuthFailed` and none of its text (librouteros would raise an encoding error
    that names the character and its position).
    """
    password = router.password.reveal()
    try:
        password.encode(router.encoding)
    except UnicodeEncodeError:
        where = f"{router.host}:{router.port}"
        raise RouterAuthFailed(f"{where}: {_unencodable_password(router.encoding)}") from None
    step = "connect"
    writer: asyncio.StreamWriter | None = None
    logged_in = False
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(router.host, router.port)
            if router.tls:
                step = "tls"
                await start_tls(writer, router, timeout)
            step = "login"
            transport = ReadAheadTransport(reader, writer)
            api = ExactApi(ExactProtocol(transport, router.encoding, timeout))
            login = _login_token if router.login_method == "token" else _login
            await login(api, router.username, password)
            logged_in = True
            return api
    except TimeoutError:
        raise _step_timeout(router, step, timeout) from None
    finally:
        if writer is not None and not logged_in:
            writer.transport.abort()
