"""RouterClient: one persistent RouterOS API session per router, over librouteros' async API.

This is the only module that imports librouteros. Its exceptions are translated here into the
gateway's own (``gateway.router_errors``: unavailable, timeout, auth failed, protocol error, TLS
failure; exported here too), so the rest of the gateway never sees a library type. librouteros
sends no command tags, so one connection carries one command at a time, and after a timeout or
an error in the middle of a reply the stream is out of step: the connection is then discarded,
never reused.

With ``tls`` the session runs over api-ssl, set up by ``gateway.api_ssl`` (what is checked
follows the router's settings); the password is sent only after the TLS checks have passed.

librouteros logs every word it sends and receives at DEBUG, the login's ``=password=`` and
``=response=`` included. Importing this module puts a redacting filter on the library's logger
(see ``gateway.redact``): every path to a router goes through here, so the filter is in place
before any word is sent, whether the gateway runs from the CLI or inside another application.

Router text is read exactly (:class:`ExactApi`): librouteros' own reader drops bytes that do not
decode and turns values into Python types by their look (``yes`` into ``True``, ``007`` stays
text but ``7`` becomes ``7``), so two different interface names could reach viewers as one, and
a name could come back as another word. Here every value is the router's text, decoded by
:func:`gateway.core.text.decode_word`.

The poller's requests (``/interface/print`` and the other sources' prints, ``BULK_COMMANDS``)
are thousands of rows on a big router, and librouteros reads a reply a few bytes per await:
their replies are read in bulk instead (``ExactApi.read_rows``, with the pure
:class:`gateway.core.reply.ReplyReader`), into the same rows. Traps, ``!fatal``
and anything unusual in it are still read, and raised, by librouteros.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Final, cast

import librouteros
from librouteros.api import AsyncApi
from librouteros.connections import AsyncSocketTransport
from librouteros.exceptions import (
    ConnectionClosed,
    FatalError,
    LibRouterosError,
    MultiTrapError,
    ProtocolError,
    TrapError,
)
from librouteros.protocol import AsyncApiProtocol, decode_length, determine_length
from librouteros.types import ReplyDict, ROSType

from gateway.api_ssl import NOT_API_SSL, start_tls
from gateway.config import RouterSettings
from gateway.core.reply import ReplyReader
from gateway.core.text import decode_word, split_attribute
from gateway.faults import UnexpectedErrors
from gateway.redact import install_filter
from gateway.router_errors import (
    RouterAuthFailed,
    RouterError,
    RouterProtocolError,
    RouterTimeout,
    RouterTlsError,
    RouterUnavailable,
)

__all__ = [
    "BULK_COMMANDS",
    "CONNECT_BACKSTOP",
    "Connector",
    "ExactApi",
    "ExactProtocol",
    "ReadAheadTransport",
    "RouterAuthFailed",
    "RouterClient",
    "RouterError",
    "RouterProtocolError",
    "RouterTimeout",
    "RouterTlsError",
    "RouterUnavailable",
    "Row",
    "challenge_response",
    "connect_librouteros",
]

logger = logging.getLogger(__name__)

# Before any session can exist: the library logs login words (see the module docstring).
_library_logger = logging.getLogger("librouteros")
install_filter(_library_logger)

Row = Mapping[str, str]
"""One reply row: attribute name to the value exactly as the router sent it (always text)."""

# What real routers answer to bad credentials (6.45+/v7, and the pre-6.43 challenge login).
_AUTH_TRAPS: Final = ("invalid user name or password", "cannot log in")
# RouterOS 6.45.1 removed the challenge login but still sends a challenge, then refuses every
# response as bad credentials: with login_method = "token" that is the likelier cause.
_TOKEN_LOGIN_HINT: Final = (
    ' (login_method = "token" is the pre-6.43 challenge login, which RouterOS 6.45.1 and later '
    "refuse whatever the password: remove login_method to use the default)"
)


Connector = Callable[[RouterSettings, float], Awaitable[AsyncApi]]
"""Opens and logs in one session (librouteros ``AsyncApi``) to a router within the deadline it is
given (seconds). :class:`RouterClient` reads every reply through :class:`ExactApi`, whichever
connector opened the session.

It raises a RouterError when it can say what went wrong, anything else for the caller to
translate.
"""

CONNECT_BACKSTOP: Final = 0.5
"""Seconds past the deadline after which the client gives up on a connector that does not keep
its own deadline. The default connector keeps it, and says which step ran out of time. Not a
setting: it only bounds a broken connector; the deadline operators choose is ``timeout``."""


class ExactProtocol(AsyncApiProtocol):  # type: ignore[misc]  # librouteros ships no types
    """librouteros' protocol with a reader that loses nothing: see :func:`decode_word`."""

    async def readWord(self) -> str:
        first = await self.transport.read(1)
        if first == b"\x00":
            return ""  # the end of a sentence
        prefix = first + await self.transport.read(determine_length(first))
        return decode_word(await self.transport.read(decode_length(prefix)), self.encoding)


READ_SIZE: Final = 1 << 20
"""Most bytes one read of a reply in bulk asks for: whatever has arrived, up to this."""


class ReadAheadTransport(AsyncSocketTransport):  # type: ignore[misc]  # librouteros ships no types
    """librouteros' socket transport, plus a read of whatever has arrived (:meth:`read_chunk`)
    and a way to give back bytes read past the end of a reply (:meth:`unread`).

    :meth:`read`, librouteros' read of exactly ``length`` bytes, takes given-back bytes first,
    so the next command, whoever reads it, starts where the last reply ended.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader=reader, writer=writer)
        # Bytes given back by unread(), not yet read again: _ahead from _offset on. Owned by the
        # session's one reader (one command at a time); empty whenever a reply was read to its
        # end and nothing followed it, which is always, with a router that keeps to the protocol.
        self._ahead = b""
        self._offset = 0

    async def read(self, length: int) -> bytes:
        ahead = self._ahead
        if not ahead:
            data: bytes = await super().read(length)
            return data
        start = self._offset
        available = len(ahead) - start
        if available > length:
            self._offset = start + length
            return ahead[start : start + length]
        self._ahead, self._offset = b"", 0
        head = ahead[start:]
        if available == length:
            return head
        tail: bytes = await super().read(length - available)
        return head + tail

    async def read_chunk(self) -> bytes:
        """The bytes that have arrived (given-back ones first), waiting for some if there are
        none. Raises librouteros' ``ConnectionClosed``, as :meth:`read` does, at end of stream."""
        if self._ahead:
            data = self._ahead[self._offset :]
            self._ahead, self._offset = b"", 0
            return data
        chunk: bytes = await self.reader.read(READ_SIZE)
        if not chunk:
            raise ConnectionClosed("Connection unexpectedly closed.")
        return chunk

    def unread(self, data: bytes) -> None:
        """Give back ``data``, read but not used: the next read starts with it."""
        if data:
            self._ahead = data + self._ahead[self._offset :]
            self._offset = 0


BULK_COMMANDS: Final = frozenset(
    {"/interface/print", "/queue/simple/print", "/ip/hotspot/active/print", "/ppp/active/print"}
)
"""Commands whose replies :class:`ExactApi` reads in bulk (:class:`ReplyReader`): the poller's
requests, each of which is thousands of rows on a big router (word by word, librouteros took
72 µs a row of ``/queue/simple/print``, the bulk reader 5: ``loadtest/RESULTS.md``). Every
other command, and login, is read by librouteros word by word."""


class ExactApi(AsyncApi):  # type: ignore[misc]  # librouteros ships no types
    """librouteros' ``AsyncApi`` whose replies are the router's text, word for word.

    Every attribute value is a ``str`` exactly as sent (no ``True`` for ``yes``, no ``int`` for
    ``0``), decoded without loss by :class:`ExactProtocol`. Connection, login, commands, traps
    and ``!fatal`` are librouteros' own. Pass it as ``async_connect(subclass=ExactApi)``.

    The replies of :data:`BULK_COMMANDS` are read in bulk (:meth:`read_rows`) when the session
    runs over a socket (:class:`ReadAheadTransport`; the constructor puts one in place of
    librouteros' own) and librouteros' debug log is off: the same rows, at a fraction of the
    cost. With the debug log on, every word is read (and logged) by librouteros, as before.
    """

    def __init__(self, protocol: AsyncApiProtocol) -> None:
        transport = protocol.transport
        if isinstance(transport, AsyncSocketTransport) and not isinstance(
            transport, ReadAheadTransport
        ):
            transport = ReadAheadTransport(transport.reader, transport.writer)
        if not isinstance(protocol, ExactProtocol) or transport is not protocol.transport:
            # async_connect builds its own protocol: read the same socket through ours.
            protocol = ExactProtocol(transport, protocol.encoding, protocol.timeout)
        super().__init__(protocol)
        # The router's encoding, for the bulk reader (a subclass may wrap the protocol).
        self.encoding: str = protocol.encoding

    async def readSentence(self) -> tuple[str, ReplyDict]:
        reply_word, words = await self.protocol.readSentence()
        attributes: dict[str, ROSType] = dict(split_attribute(word) for word in words)
        return reply_word, attributes

    async def rawCmd(self, cmd: str, *words: str) -> AsyncIterator[ReplyDict]:
        """librouteros' ``rawCmd``: send ``cmd`` with ``words``, then yield the reply's rows."""
        transport = self.protocol.transport
        if (
            cmd not in BULK_COMMANDS
            or not isinstance(transport, ReadAheadTransport)
            or _library_logger.isEnabledFor(logging.DEBUG)
        ):
            async for row in super().rawCmd(cmd, *words):
                yield row
            return
        await self.protocol.writeSentence(cmd, *words)
        for row in await self.read_rows(transport):
            yield row

    async def read_rows(self, transport: ReadAheadTransport) -> Sequence[Row]:
        """The rows of the reply now arriving on ``transport``, as ``readResponse`` gives them.

        Reads in bulk with :class:`ReplyReader`; from a sentence the reader does not take
        (``!trap``, ``!fatal``, anything unusual) on, librouteros' ``readResponse`` reads the
        rest of the reply and raises its errors, the rows read so far coming first. Bytes
        after ``!done`` are given back to the transport.
        """
        reader = ReplyReader(self.encoding)
        while not reader.feed(await transport.read_chunk()):
            pass
        transport.unread(reader.rest())
        if reader.stopped:
            return [*reader.rows, *await self.readResponse()]
        return reader.rows


def _raise_lost_cancellation() -> None:
    """Raise the cancellation that librouteros may have swallowed, if there is one.

    librouteros reads and writes through ``asyncio.wait_for``, which on Python 3.11 returns the
    result instead of raising when the task is cancelled just as the read completes
    (CPython gh-86296). The task then stays marked as cancelling while it carries on: the
    poller's ``stop()`` would wait forever and shutdown would hang. Call this after each library
    call, outside any ``asyncio.timeout`` block (whose own cancellation is settled on exit).
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


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


class RouterClient:
    """One long-lived API session to one router; at most one command in flight.

    ``connect`` (injectable) opens and logs in a session. Every call has a deadline of
    ``timeout`` seconds for connect plus login, and again for each command.
    """

    def __init__(
        self,
        router: RouterSettings,
        timeout: float,
        *,
        connect: Connector = connect_librouteros,
    ) -> None:
        self.router = router
        self.timeout = timeout
        self._connect = connect
        self._where = f"{router.host}:{router.port}"
        # The live session, or None. Only the caller of print_interfaces()/close() touches it,
        # and the lock below keeps that to one at a time.
        self._api: AsyncApi | None = None
        # One command in flight per connection: librouteros cannot match replies to requests.
        self._lock = asyncio.Lock()
        # Library errors we have no translation for: a traceback once per kind until a command
        # succeeds again, not one per poll.
        self._unexpected = UnexpectedErrors(logger, f"{router.id}: router session")

    @property
    def connected(self) -> bool:
        return self._api is not None

    async def run(self, command: str, *words: str) -> list[Row]:
        """Run one command (connecting and logging in first if needed) and return its rows.

        Rows map attribute names to the router's text (see :class:`ExactApi`).
        """
        async with self._lock:
            api = await self._ensure_session()
            in_step = False
            try:
                async with asyncio.timeout(self.timeout):
                    rows = [row async for row in api.rawCmd(command, *words)]
                in_step = True
                _raise_lost_cancellation()
                self._unexpected.recovered()
                # The session is an ExactApi (_ensure_session): every value is a str already.
                return cast(list[Row], rows)
            except TimeoutError:
                raise RouterTimeout(
                    f"{self._where}: no reply to {command} within {self.timeout:g} s"
                ) from None
            except (TrapError, MultiTrapError) as exc:
                # A trap ends with !done: the stream is still in step, keep the session.
                in_step = True
                raise RouterProtocolError(f"{self._where}: {command} failed: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - the translation boundary, re-raised as ours
                raise self._translate(exc, command) from None
            finally:
                # After a timeout, an error or a cancellation mid-reply, the stream is out of
                # step: never reuse it.
                if not in_step:
                    self._discard()

    async def print_interfaces(self, proplist: Sequence[str]) -> list[Row]:
        """``/interface/print`` of only the named properties, in one request."""
        return await self.print_rows("/interface/print", proplist)

    async def print_rows(self, command: str, proplist: Sequence[str]) -> list[Row]:
        """``command`` (a menu's ``print``) of only the named properties, in one request.

        A router that refuses the command (a ``!trap``: no such menu, no permission) raises
        :class:`RouterProtocolError` and keeps the session (``connected`` stays true)."""
        return await self.run(command, f"=.proplist={','.join(proplist)}")

    async def _ensure_session(self) -> AsyncApi:
        if self._api is not None:
            return self._api
        try:
            async with asyncio.timeout(self.timeout + CONNECT_BACKSTOP):
                self._api = await self._connect(self.router, self.timeout)
        except TimeoutError:
            raise RouterTimeout(
                f"{self._where}: no answer to connect and login within {self.timeout:g} s"
            ) from None
        except (TrapError, MultiTrapError) as exc:
            message = str(exc)
            if any(text in message for text in _AUTH_TRAPS):
                raise RouterAuthFailed(
                    f"{self._where}: login as {self.router.username!r} refused: {message}"
                    f"{_TOKEN_LOGIN_HINT if self.router.login_method == 'token' else ''}"
                ) from None
            raise RouterProtocolError(f"{self._where}: login failed: {message}") from None
        except RouterError as exc:
            # Ours, raised inside the login (a bad challenge, an unencodable password): say where.
            if str(exc).startswith(f"{self._where}:"):
                raise
            raise type(exc)(f"{self._where}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - the translation boundary, re-raised as ours
            raise self._translate(exc, "login") from None
        _raise_lost_cancellation()
        if not isinstance(self._api, ExactApi):
            # Another connector's plain librouteros session: read its replies exactly all the same.
            self._api = ExactApi(self._api.protocol)
        logger.debug("%s: logged in", self.router.id)
        return self._api

    def _translate(self, exc: Exception, doing: str) -> RouterError:
        """Turn a library or socket error into ours."""
        where = self._where
        if isinstance(exc, FatalError):
            return RouterUnavailable(f"{where}: router ended the session during {doing}: {exc}")
        if isinstance(exc, ConnectionClosed):
            hint = ""
            if doing == "login" and not self.router.tls:
                # An api-ssl port closes a connection that does not start with a TLS handshake.
                hint = " (too many API sessions, or the port is api-ssl: then set tls = true)"
            return RouterUnavailable(
                f"{where}: connection closed by the router during {doing}{hint}"
            )
        if isinstance(exc, ConnectionRefusedError):
            return RouterUnavailable(f"{where}: connection refused")
        if isinstance(exc, socket.gaierror):
            # The resolver's own words ("Name or service not known") do not say what failed.
            reason = exc.strerror or type(exc).__name__
            return RouterUnavailable(f"{where}: could not resolve the host name ({reason})")
        if isinstance(exc, OSError):
            reason = exc.strerror or type(exc).__name__
            return RouterUnavailable(f"{where}: network error during {doing}: {reason}")
        if isinstance(exc, UnicodeEncodeError):
            # Its text quotes the word it could not encode, which may be the password.
            return RouterProtocolError(
                f"{where}: cannot send {doing}: a word has characters that the router's "
                f"encoding {self.router.encoding!r} cannot carry"
            )
        if isinstance(exc, ProtocolError | LibRouterosError | ValueError | UnicodeError):
            return RouterProtocolError(f"{where}: unreadable reply during {doing}: {exc}")
        self._unexpected.report(exc, doing)
        return RouterProtocolError(f"{where}: unexpected {type(exc).__name__} during {doing}")

    def _discard(self) -> None:
        """Drop the session without talking to the router (its stream may be out of step)."""
        api, self._api = self._api, None
        if api is None:
            return
        transport = getattr(api.protocol.transport, "writer", None)
        if transport is not None:
            transport.transport.abort()

    async def close(self) -> None:
        """Log out politely (``/quit``), within the deadline, then drop the session."""
        async with self._lock:
            api, self._api = self._api, None
            if api is None:
                return
            try:
                async with asyncio.timeout(min(self.timeout, 1.0)):
                    await api.protocol.writeSentence("/quit")
                    await api.protocol.readSentence()
            except (TimeoutError, FatalError, LibRouterosError, OSError):
                pass  # !fatal "session terminated on request" is the expected answer
            finally:
                writer = getattr(api.protocol.transport, "writer", None)
                if writer is not None:
                    writer.transport.abort()
            logger.debug("%s: logged out", self.router.id)
