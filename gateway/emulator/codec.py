"""RouterOS API wire codec: pure functions and an incremental decoder, no I/O.

A *word* is a length prefix followed by that many bytes; a *sentence* is a run of words ended by
a zero-length word (one ``0x00`` byte). Lengths are big-endian in 1 to 4 bytes, plus a 5-byte form
(``0xF0`` then four bytes) that real routers accept on input. A first byte of ``0xF8`` or above is a
reserved control byte: nothing after it can be parsed, so the decoder refuses the stream.
"""

from __future__ import annotations

from typing import Final

Sentence = tuple[bytes, ...]

MAX_LENGTH: Final = 0xFFFFFFFF
"""The longest word the protocol can describe (the 5-byte form carries 32 bits)."""


class CodecError(ValueError):
    """The byte stream cannot be parsed (a control byte, or a length out of range)."""


def encode_length(length: int, *, long_form: bool = False) -> bytes:
    """Encode a word length in the shortest form, or the 5-byte ``0xF0`` form if asked.

    Lengths of ``0x10000000`` and more always use the 5-byte form.
    """
    if length < 0 or length > MAX_LENGTH:
        raise CodecError(f"word length {length} is out of range")
    if long_form or length >= 0x10000000:
        return b"\xf0" + length.to_bytes(4, "big")
    if length < 0x80:
        return bytes((length,))
    if length < 0x4000:
        return (length | 0x8000).to_bytes(2, "big")
    if length < 0x200000:
        return (length | 0xC00000).to_bytes(3, "big")
    return (length | 0xE0000000).to_bytes(4, "big")


def length_size(first: int) -> int:
    """How many bytes a length prefix takes, from its first byte (1 to 5)."""
    if first < 0x80:
        return 1
    if first < 0xC0:
        return 2
    if first < 0xE0:
        return 3
    if first < 0xF0:
        return 4
    if first == 0xF0:
        return 5
    raise CodecError(f"reserved control byte 0x{first:02X} in the stream")


def decode_length(prefix: bytes) -> int:
    """Decode a complete length prefix (as many bytes as ``length_size`` says)."""
    first = prefix[0]
    size = length_size(first)
    if len(prefix) != size:
        raise CodecError(f"length prefix needs {size} bytes, got {len(prefix)}")
    if size == 5:
        return int.from_bytes(prefix[1:], "big")
    value = int.from_bytes(prefix, "big")
    mask = (0x80, 0xC0, 0xE0, 0xF0)[size - 1] << (8 * (size - 1))
    return value & ~mask


def encode_word(word: bytes) -> bytes:
    return encode_length(len(word)) + word


def encode_sentence(words: Sentence | list[bytes]) -> bytes:
    """Encode words and the terminating zero-length word."""
    return b"".join(encode_word(w) for w in words) + b"\x00"


class SentenceDecoder:
    """Turns a byte stream, fed in chunks split anywhere, into sentences.

    Empty sentences (a lone ``0x00``) are skipped, as the router itself ignores them.
    ``max_word`` bounds the memory a peer can make us hold for one word.
    """

    __slots__ = ("_buffer", "_max_word", "_words")

    def __init__(self, *, max_word: int = 16 * 1024 * 1024) -> None:
        # Bytes received but not yet consumed as a whole word; owned by this decoder only.
        self._buffer = bytearray()
        # Words of the sentence being read; reset after each complete sentence.
        self._words: list[bytes] = []
        self._max_word = max_word

    def feed(self, data: bytes) -> list[Sentence]:
        """Add received bytes; return the sentences they complete, in order."""
        self._buffer += data
        sentences: list[Sentence] = []
        buf = self._buffer
        pos = 0
        while pos < len(buf):
            size = length_size(buf[pos])
            if pos + size > len(buf):
                break
            length = decode_length(bytes(buf[pos : pos + size]))
            if length > self._max_word:
                raise CodecError(f"word of {length} bytes exceeds the limit of {self._max_word}")
            end = pos + size + length
            if end > len(buf):
                break
            if length == 0:
                if self._words:
                    sentences.append(tuple(self._words))
                    self._words = []
            else:
                self._words.append(bytes(buf[pos + size : end]))
            pos = end
        del buf[:pos]
        return sentences

    @property
    def pending(self) -> int:
        """Bytes buffered that do not yet form a whole word."""
        return len(self._buffer)


def split_attribute(word: str) -> tuple[str, str]:
    """Split ``=name=value`` into ``(name, value)``; the value may contain ``=`` or be empty.

    ``=name`` without a second ``=`` (a flag as some clients send it) gives an empty value.
    """
    body = word[1:]
    name, _, value = body.partition("=")
    return name, value
