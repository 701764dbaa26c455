"""Reading a RouterOS API session's replies: the router's exact text, and in bulk.

librouteros' own reader drops bytes that do not decode and turns values into Python types by
their look (``yes`` into ``True``, ``007`` stays text but ``7`` becomes ``7``), so two different
interface names could reach viewers as one, and a name could come back as another word. Here
(:class:`ExactApi`, :class:`ExactProtocol`) every value is the router's text, decoded by
:func:`gateway.core.text.decode_word`.

The poller's requests (``/interface/print`` and the other sources' prints, ``BULK_COMMANDS``)
are thousands of rows on a big router, and librouteros reads a reply a few bytes per await:
their replies are read in bulk instead (``ExactApi.read_rows`` over a
:class:`ReadAheadTransport`, with the pure :class:`gateway.core.reply.ReplyReader`), into the
same rows. Traps, ``!fatal`` and anything unusual in it are still read, and raised, by
librouteros.

librouteros logs every word it sends and receives at DEBUG, the login's ``=password=`` and
``=response=`` included. Importing this module puts a redacting filter on the library's logger
(see ``gateway.redact``): every path to a router reads through here (``gateway.routeros``,
``gateway.routeros_login``), so the filter is in place before any word is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Final

from librouteros.api import AsyncApi
from librouteros.connections import AsyncSocketTransport
from librouteros.exceptions import ConnectionClosed
from librouteros.protocol import AsyncApiProtocol, decode_length, determine_length
from librouteros.types import ReplyDict, ROSType

from gateway.core.reply import ReplyReader
from gateway.core.text import decode_word, split_attribute
from gateway.redact import install_filter

__all__ = [
    "BULK_COMMANDS",
    "READ_SIZE",
    "ExactApi",
    "ExactProtocol",
    "ReadAheadTransport",
    "Row",
]

# Before any session can exist: the library logs login words (see the module docstring).
_library_logger = logging.getLogger("librouteros")
install_filter(_library_logger)

Row = Mapping[str, str]
"""One reply row: attribute name to the value exactly as the router sent it (always text)."""


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
