"""Router text as exact text: API words decoded without loss, attributes split without conversion.

RouterOS stores names and comments as the bytes their writer sent, in whatever code page that
was (Winbox on Windows writes the ANSI code page, WebFig and REST write UTF-8), and the API
sends those bytes as they are. The gateway decodes them with the router's ``encoding`` setting.
Two rules keep that safe, because viewers and tokens select interfaces by name:

- The same bytes always give the same text, and different bytes always give different text.
  Bytes that do not decode are never dropped (``<pppoe-nu\\xf1ez>`` must not become
  ``<pppoe-nuez>``, the name of another customer) nor replaced by one shared character.
- A value is text, never a guess at a type: ``yes``, ``007`` and ``1e3`` stay those words.

Pure: no I/O, no library types. The RouterOS API client (``gateway.routeros``) calls these for
every word it reads.
"""

from __future__ import annotations

import codecs
from typing import Final

__all__ = ["MARK", "decode_word", "has_escapes", "split_attribute"]

MARK: Final = "\ufffd"
"""Starts every escape in decoded text: U+FFFD, the replacement character people recognise.

Each byte that does not decode becomes ``MARK + "\\xNN"`` (``NN``: its value in lower-case hex)
and a U+FFFD that the router really sent becomes ``MARK + "\\ufffd"``, so in decoded text every
``MARK`` starts an escape. Why both: a text in which every U+FFFD starts an escape cannot be the
exact decoding of other bytes (which never contains U+FFFD, or is escaped itself), and the
escapes spell out the bytes, so two byte strings never share a text.
"""

_HANDLER: Final = "gateway.routeros.undecodable"

# Bytes that do not decode are first carried as lone surrogates U+DC00 + byte (like Python's
# "surrogateescape", which refuses bytes below 0x80 that some codecs reject); no codec produces
# a lone surrogate from valid input, so the translation below tells them apart from real text.
_ESCAPES: Final[dict[int, str]] = {0xDC00 + byte: f"{MARK}\\x{byte:02x}" for byte in range(256)} | {
    ord(MARK): f"{MARK}\\ufffd"
}


def _carry_undecodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(chr(0xDC00 + byte) for byte in bad), error.end


# A named codec error handler is the codec machinery's own extension point; registering the
# same function under the same name again (a re-import) changes nothing.
codecs.register_error(_HANDLER, _carry_undecodable)


def decode_word(raw: bytes, encoding: str) -> str:
    """Decode one API word (the bytes after its length prefix) in the router's ``encoding``.

    Bytes that decode give exactly their text. When some do not (the router's code page is not
    ``encoding``), each such byte is shown as ``\\ufffd\\xNN`` and the rest stays as it is
    (``b"nu\\xf1ez"`` in UTF-8 gives ``"nu\\ufffd\\\\xf1ez"``, shown ``nu�\\xf1ez``); a U+FFFD
    that was really sent is shown as ``\\ufffd\\\\ufffd``. See :data:`MARK` for why no two byte
    strings give the same text. Raises ``LookupError`` for an unknown ``encoding`` only.

    Costs one decode per word when everything decodes (the common case): the escaping pass runs
    only for words that need it.
    """
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        pass
    else:
        if MARK not in text:
            return text
    return raw.decode(encoding, _HANDLER).translate(_ESCAPES)


def has_escapes(text: str) -> bool:
    """Whether decoded text shows bytes that did not decode (or a U+FFFD the router sent)."""
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
