"""Router text as exact text: API words decoded without loss, attributes split without conversion.

RouterOS stores names and comments as the bytes their writer sent, in whatever code page that
was (Winbox on Windows writes the ANSI code page, WebFig and REST write UTF-8), and the API
sends those bytes as they are. The gateway decodes them with the router's ``encoding`` setting.
Two rules keep that safe, because viewers and tokens select interfaces by name:

- The same bytes always give the same text, and different bytes always give different text.
  Bytes that do not decode are never dropped (``<pppoe-nu\\xf1ez>`` must not become
  ``<pppoe-nuez>``, the name of another customer) nor replaced by one shared character, and
  bytes that decode to text which other bytes also decode to (cp932 reads both ``ED 40`` and
  ``FA 5C`` as ``纊``) are not shown as that text.
- A value is text, never a guess at a type: ``yes``, ``007`` and ``1e3`` stay those words.

Only ASCII-compatible text encodings are accepted (:func:`encoding_problem`): API words are
ASCII-keyed (``=name=``, ``!re``), and a codec such as UTF-16 or UTF-7 would not even read them.

Pure: no I/O, no library types. The RouterOS API client (``gateway.routeros``) calls these for
every word it reads.
"""

from __future__ import annotations

import codecs
import functools
import re
import sys
from typing import Final

__all__ = [
    "MARK",
    "ascii_is_text",
    "decode_word",
    "encode_word",
    "encoding_problem",
    "has_escapes",
    "split_attribute",
]

MARK: Final = "\ufffd"
"""Starts every escape in decoded text: U+FFFD, the replacement character people recognise.

Each byte that is not shown as text becomes ``MARK + "\\xNN"`` (``NN``: its value in lower-case
hex) and a U+FFFD that the router really sent becomes ``MARK + "\\ufffd"``, so in decoded text
every ``MARK`` starts an escape. Decoded text is thus a sequence of escapes and runs of text
without ``MARK``, and :func:`encode_word` turns it back into the bytes it came from: each escape
into its byte (or U+FFFD in the encoding), each run of text into its encoding.
:func:`decode_word` shows bytes as text only where that gives them back exactly, so two byte
strings never share a text.
"""

_HANDLER: Final = "gateway.routeros.undecodable"

# Bytes that do not decode are first carried as lone surrogates U+DC00 + byte (like Python's
# "surrogateescape", which refuses bytes below 0x80 that some codecs reject); the translation
# below turns them into escapes. A lone surrogate that a codec really decoded (a
# "raw-unicode-escape" word can spell one) is translated the same way; the check against the
# raw bytes in decode_word then finds that it does not stand for its byte, and escapes it.
_BYTE_ESCAPES: Final = tuple(f"{MARK}\\x{byte:02x}" for byte in range(256))
_ESCAPES: Final[dict[int, str]] = {0xDC00 + byte: _BYTE_ESCAPES[byte] for byte in range(256)} | {
    ord(MARK): f"{MARK}\\ufffd"
}
# One escape as decode_word writes it: the byte's hex digits, or none for a sent U+FFFD.
_ESCAPE: Final = re.compile(re.escape(MARK) + r"(?:\\x([0-9a-f]{2})|\\ufffd)")

_PRINTABLE_ASCII: Final = "".join(map(chr, range(0x20, 0x7F)))


def _carry_undecodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(chr(0xDC00 + byte) for byte in bad), error.end


# A named codec error handler is the codec machinery's own extension point; registering the
# same function under the same name again (a re-import) changes nothing.
codecs.register_error(_HANDLER, _carry_undecodable)


def encoding_problem(name: str) -> str | None:
    """Why ``name`` cannot be a router's ``encoding``, or None when it can.

    It must be a text codec Python knows (not ``base64`` or ``zlib``, which turn bytes into
    bytes) in which every printable ASCII character is its own byte, both ways and as a whole
    string: RouterOS API words are ASCII (``=name=``, ``!re``, ``.id``), so a codec that reads
    them otherwise (UTF-16, UTF-7's ``+``, ``unicode_escape``'s backslash, ``utf-8-sig``'s
    byte order mark, EBCDIC) cannot read a reply at all.
    """
    try:
        info = codecs.lookup(name)
        ascii_bytes = _PRINTABLE_ASCII.encode("ascii")
        # lookup() also finds bytes-to-bytes codecs, which cannot encode text.
        if _PRINTABLE_ASCII.encode(info.name) != ascii_bytes:
            return "printable ASCII is not encoded as ASCII"
        if ascii_bytes.decode(info.name) != _PRINTABLE_ASCII:
            return "printable ASCII is not decoded as ASCII"
        for char in _PRINTABLE_ASCII:
            if char.encode(info.name) != char.encode("ascii"):
                return f"{char!r} is not encoded as itself"
            if char.encode("ascii").decode(info.name) != char:
                return f"{char!r} is not decoded as itself"
    except LookupError as exc:
        # Unknown names, and bytes-to-bytes codecs ("... is not a text encoding").
        return "not a text encoding" if "text encoding" in str(exc) else "unknown encoding"
    except (UnicodeError, ValueError, TypeError):
        # UnicodeError: idna refuses some ASCII; others: codecs with odd contracts.
        return "printable ASCII cannot be encoded"
    return None


_ASCII: Final = bytes(range(0x80))

# Codecs that read every byte on its own, the same way each time: an ASCII word is its own text
# in them when each ASCII byte is (the others are checked by their decoding table).
_STATELESS: Final = frozenset({"utf-8", "ascii", "iso8859-1"})


@functools.lru_cache(maxsize=64)
def ascii_is_text(encoding: str) -> bool:
    """Whether :func:`decode_word` of every ASCII word (bytes below 0x80) in ``encoding`` is the
    word read as ASCII, so a reader may skip it for such words.

    True for UTF-8, ASCII and latin-1, and for the single-byte table codecs (cp1252, koi8-r, ...)
    whose table reads each ASCII byte as itself and writes it back: all of them read a byte the
    same way whatever comes before it. False for every other codec, even when it reads printable
    ASCII as ASCII: in a stateful codec an ASCII escape byte changes how the next bytes read
    (``iso2022_jp``), and ``raw_unicode_escape`` reads the ASCII ``\\u0041`` as ``A``.
    Raises ``LookupError`` for an unknown encoding.
    """
    info = codecs.lookup(encoding)
    if info.name not in _STATELESS:
        module = sys.modules.get(getattr(info.decode, "__module__", None) or "")
        table = getattr(module, "decoding_table", None)
        if not isinstance(table, str) or table[:0x80] != _ASCII.decode("ascii"):
            return False
    try:
        text = _ASCII.decode(info.name)
        return text == _ASCII.decode("ascii") and all(
            char.encode(info.name) == char.encode("ascii") for char in text
        )
    except UnicodeError:
        return False


def decode_word(raw: bytes, encoding: str) -> str:
    """Decode one API word (the bytes after its length prefix) in the router's ``encoding``.

    ``encoding`` must be one :func:`encoding_problem` accepts (the configuration checks it);
    an unknown one raises ``LookupError``.

    Text that gives back exactly ``raw`` when encoded again is returned as it is (the common
    case). Otherwise the parts that do are shown as text and every other byte as
    ``\\ufffd\\xNN`` (:data:`MARK`), and a U+FFFD that was really sent as ``\\ufffd\\\\ufffd``:

    - bytes that do not decode: ``b"nu\\xf1ez"`` in UTF-8 gives ``"nu\\ufffd\\\\xf1ez"``, shown
      ``nu�\\xf1ez``;
    - bytes that decode to text that encodes to other bytes: in cp932 ``FA 5C`` and ``ED 40``
      both read ``纊``, which encodes to ``ED 40``; so ``ED 40`` is shown ``纊`` and ``FA 5C`` is
      shown ``�\\xfa�\\x5c``.

    Either way :func:`encode_word` of the result is ``raw``, so different words never give the
    same text. Costs one decode and one encode per word; only words that are not shown as
    plain text take the slower, character by character path.
    """
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        pass
    else:
        if MARK not in text and _encodes_to(text, encoding, raw):
            return text
    shown = raw.decode(encoding, _HANDLER).translate(_ESCAPES)
    if _shows(shown, encoding, raw):
        return shown
    shown = _decode_piecewise(raw, encoding)
    if _shows(shown, encoding, raw):
        return shown
    # Pieces that encode back one by one need not encode back together (a stateful codec, or
    # one that encodes a pair of characters as one sequence): spell out every byte.
    return _escape_bytes(raw)


def encode_word(text: str, encoding: str) -> bytes:
    """The bytes that :func:`decode_word` read as ``text``: its exact inverse.

    Each escape gives its byte (``\\ufffd\\ufffd`` gives U+FFFD in ``encoding``), each run of text
    between escapes its encoding. Raises ``ValueError`` when ``text`` is not something
    ``decode_word`` returns (a ``MARK`` that starts no escape) or does not encode.
    """
    out = bytearray()
    position = 0
    try:
        for escape in _ESCAPE.finditer(text):
            out += _encode_run(text[position : escape.start()], encoding)
            digits = escape.group(1)
            out += bytes.fromhex(digits) if digits is not None else MARK.encode(encoding)
            position = escape.end()
        out += _encode_run(text[position:], encoding)
    except UnicodeError as exc:
        raise ValueError(f"not text of encoding {encoding!r}: {exc}") from None
    return bytes(out)


def _encode_run(run: str, encoding: str) -> bytes:
    if MARK in run:
        raise ValueError(f"{MARK!r} that starts no escape")
    return run.encode(encoding)


def _encodes_to(text: str, encoding: str, raw: bytes) -> bool:
    try:
        return text.encode(encoding) == raw
    except UnicodeError:
        return False


def _shows(shown: str, encoding: str, raw: bytes) -> bool:
    """Whether ``shown`` reads back as exactly ``raw``."""
    try:
        return encode_word(shown, encoding) == raw
    except ValueError:
        return False


def _decode_piecewise(raw: bytes, encoding: str) -> str:
    """``raw`` decoded one character (or undecodable byte) at a time: each piece that reads back
    as its own bytes is shown as text, every other piece as the escapes of its bytes."""
    decoder = codecs.getincrementaldecoder(encoding)(_HANDLER)
    parts: list[str] = []
    start = 0
    for end in range(1, len(raw) + 1):
        text = decoder.decode(raw[end - 1 : end])
        if text:
            parts.append(_piece(raw[start:end], text, encoding))
            start = end
    text = decoder.decode(b"", final=True)
    if text or start < len(raw):
        # Trailing bytes that gave no text (a shift sequence) are spelled out, never dropped.
        parts.append(_piece(raw[start:], text, encoding))
    return "".join(parts)


def _piece(chunk: bytes, text: str, encoding: str) -> str:
    shown = text.translate(_ESCAPES)
    return shown if _shows(shown, encoding, chunk) else _escape_bytes(chunk)


def _escape_bytes(raw: bytes) -> str:
    return "".join(_BYTE_ESCAPES[byte] for byte in raw)


def has_escapes(text: str) -> bool:
    """Whether decoded text shows bytes as escapes (or a U+FFFD the router sent)."""
    return MARK in text


def split_attribute(word: str) -> tuple[str, str]:
    """Split an attribute word ``=name=value`` into ``(name, value)``, the value as sent.

    The value keeps every character, ``=`` included (``=comment=a=b`` gives ``("comment",
    "a=b")``), and is never converted: ``=name=007`` gives ``"007"``, ``=running=yes`` gives
    ``"yes"``. A word without the second ``=`` has an empty value; an API attribute word
    (``.tag=5``) splits the same way without its leading ``=``.
    """
    body = word[1:] if word.startswith("=") else word
    name, _, value = body.partition("=")
    return name, value
