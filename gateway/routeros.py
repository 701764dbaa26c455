"""RouterClient: one persistent RouterOS API session per router, over librouteros' async API.

librouteros' exceptions are translated here into the gateway's own (``gateway.router_errors``:
unavailable, timeout, auth failed, protocol error, TLS failure; exported here too), so the rest
of the gateway never sees a library type. librouteros sends no command tags, so one connection
carries one command at a time, and after a timeout or an error in the middle of a reply the
stream is out of step: the connection is then discarded, never reused.

The router client is three modules, and only they import librouteros: this one (the session,
its deadlines and the error translation), ``gateway.routeros_login`` (opening a session: TCP,
api-ssl through ``gateway.api_ssl``, login; :func:`connect_librouteros`, the default
:data:`Connector`) and ``gateway.routeros_reply`` (reading replies as the router's exact text,
in bulk for the poller's requests: :class:`ExactApi`). Their public names are exported here too.

librouteros logs every word it sends and receives at DEBUG, the login's ``=password=`` and
``=response=`` included. Importing this module puts a redacting filter on the library's logger
(``gateway.routeros_reply`` does, see ``gateway.redact``): every path to a router goes through
here, so the filter is in place before any word is sent, whether the gateway runs from the CLI
or inside another application.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, cast

from librouteros.api import AsyncApi
from librouteros.exceptions import (
    ConnectionClosed,
    FatalError,
    LibRouterosError,
    MultiTrapError,
    ProtocolError,
    TrapError,
)

from gateway.config import RouterSettings
from gateway.faults import UnexpectedErrors
from gateway.router_errors import (
    RouterAuthFailed,
    RouterError,
    RouterProtocolError,
    RouterTimeout,
    RouterTlsError,
    RouterUnavailable,
)
from gateway.routeros_login import challenge_response, connect_librouteros
from gateway.routeros_reply import (
    BULK_COMMANDS,
    ExactApi,
    ExactProtocol,
    ReadAheadTransport,
    Row,
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
