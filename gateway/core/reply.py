"""The rows of one RouterOS API reply, read from bytes in bulk: sans-I/O, no library types.

Why: librouteros reads a reply a few bytes at a time (three awaits per word, a task per
sentence), which made reading ``/interface/print`` of a 2,000-interface router cost more than
everything else the gateway does with it. :class:`ReplyReader` takes the reply in chunks as large
as the socket gives them (split anywhere, even inside a length prefix) and turns the data
sentences into rows in one pass.

It reads only the common case and leaves everything else to the caller, unread:

- ``!re`` and ``!done`` sentences become rows: each attribute word ``=name=value`` gives
  ``row[name] = value``, the value as text exactly as sent (see ``gateway.core.text``); a sentence
  with no attribute adds no row; ``!empty`` (RouterOS 7.18+) adds none either. ``!done`` ends the
  reply (:attr:`ReplyReader.done`).
- Any other sentence (``!trap``, ``!fatal``, an empty sentence, a reply word of its own), and a
  sentence holding a length prefix that starts with ``0xF0`` or above, stops the reader at the
  start of that sentence (:attr:`ReplyReader.stopped`): the caller hands :meth:`ReplyReader.rest`
  back to librouteros, which reads the sentence and what follows as it always did, traps and
  errors included.

So the rows are those librouteros' ``AsyncApi.readResponse`` collects from the same bytes,
through the gateway's exact-text reader (``gateway.routeros.ExactApi``: words decoded by
:func:`gateway.core.text.decode_word`, split by :func:`gateway.core.text.split_attribute`): any
zero-length word ends a sentence (a two-byte ``80 00`` too, as in librouteros), later attributes
of the same name replace earlier ones, and nothing after ``!done`` is read (:meth:`rest` returns
it). ``tests/gateway/core/test_reply.py`` checks this against librouteros on generated replies.

Pure: bytes in, rows out; the socket reads are ``gateway.routeros_reply``'s.
"""

from __future__ import annotations

from typing import Final

from gateway.core.text import ascii_is_text, decode_word

__all__ = ["ReplyReader"]

_DATA: Final = frozenset({"!re", "!done", "!empty"})
"""The reply words whose sentences this reader takes; any other goes back to the caller."""


class ReplyReader:
    """Reads the data sentences of one reply (see the module docstring) from bytes fed in chunks.

    ``encoding`` is the router's (one that ``gateway.core.text.encoding_problem`` accepts).
    Feed every chunk read from the socket to :meth:`feed` until it returns True; then
    :attr:`rows` holds the rows read, :attr:`done` says whether ``!done`` was read (else the
    reader :attr:`stopped` before a sentence it leaves to the caller), and :meth:`rest` gives
    the bytes not read, from that sentence or from after ``!done``.
    """

    __slots__ = ("_ascii", "_encoding", "_need", "_pending", "done", "rows", "stopped")

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        # Whether an ASCII word is its own text in this encoding (so needs no decode_word).
        self._ascii = ascii_is_text(encoding)
        # The rows read so far, in order: attribute name -> the router's text.
        self.rows: list[dict[str, str]] = []
        # Set once, by !done or by a sentence left to the caller; feed() takes nothing more.
        self.done = False
        self.stopped = False
        # Bytes fed but not yet read: the start of a sentence whose end has not arrived yet
        # (after done/stopped: everything not read). Reset as each sentence is read.
        self._pending = bytearray()
        # How many pending bytes the next read needs at least (the end of the word it stopped
        # in), so a long sentence arriving in small chunks is not parsed again for each chunk.
        self._need = 0

    def feed(self, data: bytes) -> bool:
        """Read ``data`` (the next bytes of the stream); return True once the reader has
        finished (``!done`` read, or stopped before a sentence it does not read).

        Every complete sentence is read before this returns; an incomplete one waits for more
        data. Raises ``ValueError`` when called after it finished.
        """
        if self.done or self.stopped:
            raise ValueError("the reply was read to its end: pass the rest to the next reader")
        pending = self._pending
        pending += data
        if len(pending) < self._need:
            return False
        buf = bytes(pending)
        read = self._read(buf)
        del pending[:read]
        return self.done or self.stopped

    def rest(self) -> bytes:
        """The bytes fed but not read: after :attr:`done`, what followed ``!done``; after
        :attr:`stopped`, the sentence left to the caller and what followed it."""
        return bytes(self._pending)

    def _read(self, buf: bytes) -> int:
        """Read the sentences of ``buf`` from its start, as far as they are complete and
        taken; return the number of bytes read (always the end of a sentence)."""
        # One pass, inlined: this loop runs ten times per interface per poll. Words are sliced
        # from a latin-1 view of the buffer (one character per byte, one decode for the whole
        # chunk); a word with a byte above 0x7F, or any word in an encoding where ASCII is not
        # its own text, is decoded from its bytes by decode_word instead.
        text = buf.decode("latin-1")
        end = len(buf)
        fast = self._ascii
        encoding = self._encoding
        rows = self.rows
        pos = 0  # the start of the sentence being read
        while pos < end:
            # The reply word: one of _DATA is short (a one-byte length prefix).
            size = buf[pos]
            if size == 0 or size >= 0x80:
                self.stopped = True  # an empty sentence, or a long reply word: not ours
                return pos
            at = pos + 1 + size
            if at > end:
                self._need = at - pos
                return pos
            reply = text[pos + 1 : at]
            if reply not in _DATA:
                self.stopped = True
                return pos
            row: dict[str, str] = {}
            while True:
                if at >= end:
                    self._need = at + 1 - pos
                    return pos
                size = buf[at]
                if size < 0x80:
                    start = at + 1
                elif size < 0xC0:
                    start = at + 2
                    if start > end:
                        self._need = start - pos
                        return pos
                    size = (size & 0x3F) << 8 | buf[at + 1]
                elif size < 0xE0:
                    start = at + 3
                    if start > end:
                        self._need = start - pos
                        return pos
                    size = (size & 0x1F) << 16 | buf[at + 1] << 8 | buf[at + 2]
                elif size < 0xF0:
                    start = at + 4
                    if start > end:
                        self._need = start - pos
                        return pos
                    size = (size & 0x0F) << 24 | buf[at + 1] << 16 | buf[at + 2] << 8 | buf[at + 3]
                else:
                    # librouteros reads no length prefix from 0xF0 up: it raises, in its words.
                    self.stopped = True
                    return pos
                if size == 0:
                    at = start
                    break  # the end of the sentence
                at = start + size
                if at > end:
                    self._need = at - pos
                    return pos
                # split_attribute inlined: "=name=value" (or "name=value"), value may hold "=".
                word = text[start + 1 : at] if buf[start] == 0x3D else text[start:at]
                if fast and word.isascii():
                    name, _, value = word.partition("=")
                else:
                    word = decode_word(buf[start:at], encoding)
                    name, _, value = (word[1:] if word[0] == "=" else word).partition("=")
                row[name] = value
            pos = at
            if row and reply != "!empty":
                rows.append(row)
            if reply == "!done":
                self.done = True
                break
        self._need = 0
        return pos
