"""The emulator's wire codec: every length form, split reads, the words real clients send."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.emulator.codec import (
    CodecError,
    SentenceDecoder,
    decode_length,
    encode_length,
    encode_sentence,
    split_attribute,
)

# Every boundary of the length encoding, and the byte forms from the protocol notes.
KNOWN = [
    (0, "00"),
    (0x7F, "7f"),
    (0x80, "8080"),
    (130, "8082"),
    (256, "8100"),
    (0x3FFF, "bfff"),
    (0x4000, "c04000"),
    (2097140, "dffff4"),
    (0x200000, "e0200000"),
    (268435440, "effffff0"),
    (0x10000000, "f010000000"),
]


@pytest.mark.parametrize(("length", "hex_bytes"), KNOWN)
def test_known_length_bytes(length: int, hex_bytes: str) -> None:
    """Lengths encode to the exact bytes a real router uses, and decode back."""
    assert encode_length(length).hex() == hex_bytes
    assert decode_length(bytes.fromhex(hex_bytes)) == length


@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_length_round_trip(length: int) -> None:
    """Any length round-trips, in the short form and in the 5-byte 0xF0 form."""
    assert decode_length(encode_length(length)) == length
    long = encode_length(length, long_form=True)
    assert long[0] == 0xF0
    assert decode_length(long) == length


@given(
    st.lists(
        st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=6),
        min_size=1,
        max_size=5,
    ),
    st.data(),
)
def test_sentences_survive_any_split(sentences: list[list[bytes]], data: st.DataObject) -> None:
    """Sentences split across reads at any byte come out whole and in order."""
    stream = b"".join(encode_sentence(s) for s in sentences)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=12)))
    decoder = SentenceDecoder()
    out = []
    last = 0
    for cut in [*cuts, len(stream)]:
        out.extend(decoder.feed(stream[last:cut]))
        last = cut
    assert out == [tuple(s) for s in sentences]
    assert decoder.pending == 0


def test_words_at_every_length_boundary() -> None:
    """Words of 127, 128, 256 (prefix 81 00), 16383, 16384 and 2 MiB bytes decode intact."""
    words = [b"x" * n for n in (1, 127, 128, 256, 0x3FFF, 0x4000, 0x200000)]
    decoder = SentenceDecoder()
    assert decoder.feed(encode_sentence(words)) == [tuple(words)]


def test_five_byte_length_on_input() -> None:
    """A word whose length uses the 5-byte 0xF0 form is accepted on input."""
    word = b"=comment=" + b"y" * 20
    raw = encode_length(len(word), long_form=True) + word + b"\x00"
    assert SentenceDecoder().feed(raw) == [(word,)]


def test_empty_sentences_are_ignored() -> None:
    """A lone zero byte between sentences is skipped, as the router does."""
    raw = b"\x00\x00" + encode_sentence([b"/system/identity/print"]) + b"\x00"
    assert SentenceDecoder().feed(raw) == [(b"/system/identity/print",)]


def test_control_byte_is_refused() -> None:
    """A reserved control byte (0xF8 and up) makes the stream unreadable: a clear error."""
    with pytest.raises(CodecError, match="control byte 0xF8"):
        SentenceDecoder().feed(b"\xf8\x00")


def test_oversized_word_is_refused() -> None:
    """A peer cannot make the decoder buffer a word larger than its limit."""
    with pytest.raises(CodecError, match="exceeds the limit"):
        SentenceDecoder(max_word=1000).feed(encode_length(5000))


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("=name=ether1", ("name", "ether1")),
        ("=comment=a=b=c", ("comment", "a=b=c")),
        ("=once=", ("once", "")),
        ("=once", ("once", "")),
        ("=password=", ("password", "")),
    ],
)
def test_split_attribute(word: str, expected: tuple[str, str]) -> None:
    """Values may contain '=' or be empty; '=once' without a value is a flag."""
    assert split_attribute(word) == expected
