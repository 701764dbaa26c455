"""Reading a reply's rows from bytes in bulk: the same rows however the bytes arrive."""

from __future__ import annotations

from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.reply import ReplyReader
from gateway.core.text import MARK, ascii_is_text, decode_word, encoding_problem
from gateway.emulator.codec import encode_length


def sentence(*words: bytes) -> bytes:
    return b"".join(encode_length(len(word)) + word for word in words) + b"\x00"


# Rows with a long word (two-byte length prefix), a non-ASCII name, a value holding "=" and an
# empty value; then !empty, a row-less !re, and !done; then what a next reply would start with.
LONG: Final = b"=comment=" + b"x" * 300
REPLY: Final = (
    sentence(b"!re", b"=.id=*1", b"=name=ether1", b"=rx-byte=123", LONG)
    + sentence(b"!re", b"=.id=*2", "=name=ether-café".encode(), b"=comment=a=b", b"=mtu=")
    + sentence(b"!empty")
    + sentence(b"!re")
    + sentence(b"!done")
)
ROWS: Final = [
    {".id": "*1", "name": "ether1", "rx-byte": "123", "comment": "x" * 300},
    {".id": "*2", "name": "ether-café", "comment": "a=b", "mtu": ""},
]
NEXT: Final = sentence(b"!re", b"=name=next")


def read(chunks: list[bytes], encoding: str = "utf-8") -> tuple[ReplyReader, bytes]:
    """The reader after taking ``chunks`` in turn until it finished, and every byte it left
    (its rest, then the chunks it was not given)."""
    reader = ReplyReader(encoding)
    for index, chunk in enumerate(chunks):
        if reader.feed(chunk):
            return reader, reader.rest() + b"".join(chunks[index + 1 :])
    return reader, reader.rest()


def test_rows_are_the_routers_text() -> None:
    """Each !re becomes a row of the router's text; !empty and attribute-less rows add none."""
    reader, rest = read([REPLY + NEXT])
    assert reader.done
    assert not reader.stopped
    assert reader.rows == ROWS
    assert rest == NEXT


def test_split_anywhere_reads_the_same() -> None:
    """A reply split at any byte, even inside a length prefix, gives the same rows and rest."""
    stream = REPLY + NEXT
    for cut in range(1, len(stream)):
        reader, rest = read([stream[:cut], stream[cut:]])
        assert (reader.done, reader.rows, rest) == (True, ROWS, NEXT), cut


def test_byte_by_byte_reads_the_same() -> None:
    """A reply fed one byte at a time gives the same rows, and reports done at its last byte."""
    reader = ReplyReader("utf-8")
    finished = [reader.feed(bytes([byte])) for byte in REPLY]
    assert finished == [False] * (len(REPLY) - 1) + [True]
    assert reader.rows == ROWS
    assert reader.rest() == b""


@pytest.mark.parametrize(
    "other",
    [
        sentence(b"!trap", b"=message=no such command prefix"),
        sentence(b"!fatal", b"session terminated on request"),
        b"\x00",  # an empty sentence
        sentence(b"!whatever"),
        sentence(b"!re", b"=name=x")[:-1] + b"\xf0\x00\x00\x00\x01x\x00",  # a 5-byte prefix
        sentence(b"!" + b"r" * 200),  # a reply word too long for any of ours
    ],
    ids=["trap", "fatal", "empty", "unknown", "five-byte-prefix", "long-reply-word"],
)
def test_it_stops_before_a_sentence_it_does_not_read(other: bytes) -> None:
    """From a sentence it does not take on, every byte is left to the caller, rows kept."""
    first = sentence(b"!re", b"=name=a")
    stream = first + other + sentence(b"!done")
    reader, rest = read([stream])
    assert (reader.stopped, reader.done) == (True, False)
    assert reader.rows == [{"name": "a"}]
    assert rest == other + sentence(b"!done")


def test_every_zero_length_word_ends_a_sentence() -> None:
    """A zero length written in two bytes (80 00) ends the sentence, as librouteros reads it."""
    stream = sentence(b"!re", b"=name=a")[:-1] + b"\x80\x00" + sentence(b"!done")
    assert read([stream])[0].rows == [{"name": "a"}]


def test_later_attributes_replace_earlier_ones_and_done_can_carry_a_row() -> None:
    """A repeated attribute keeps its last value; ``!done =ret=`` is a row (librouteros' rule)."""
    stream = sentence(b"!re", b"=name=a", b"=name=b", b".tag=7", b"=flag") + sentence(
        b"!done", b"=ret=*3"
    )
    assert read([stream])[0].rows == [{"name": "b", ".tag": "7", "flag": ""}, {"ret": "*3"}]


def test_undecodable_bytes_are_escaped_not_dropped() -> None:
    """A name that does not decode is shown with escapes, exactly as decode_word shows it."""
    stream = sentence(b"!re", b"=name=nu\xf1ez") + sentence(b"!done")
    assert read([stream])[0].rows == [{"name": f"nu{MARK}\\xf1ez"}]


def test_feeding_a_finished_reader_is_refused() -> None:
    """Bytes after the end belong to the next reply: a finished reader says so."""
    reader, _ = read([sentence(b"!done")])
    with pytest.raises(ValueError, match="rest"):
        reader.feed(b"\x00")


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf-8", True),
        ("ascii", True),
        ("latin-1", True),
        ("cp1252", True),
        ("koi8-r", True),
        ("cp932", False),
        ("iso2022_jp", False),
        ("raw_unicode_escape", False),
    ],
)
def test_ascii_is_its_own_text_only_where_that_is_sure(encoding: str, expected: bool) -> None:
    """Only codecs that read each byte alike, whatever precedes it, skip decoding ASCII words."""
    assert encoding_problem(encoding) is None
    assert ascii_is_text(encoding) is expected


ENCODINGS: Final = ["utf-8", "ascii", "latin-1", "cp1252", "cp1251", "koi8-r", "mac-roman"]


@given(raw=st.binary(max_size=40).map(lambda b: bytes(x & 0x7F for x in b)))
def test_where_ascii_is_its_own_text_decode_word_agrees(raw: bytes) -> None:
    """In every codec ``ascii_is_text`` accepts, decode_word of an ASCII word is the word."""
    for encoding in ENCODINGS:
        assert ascii_is_text(encoding)
        assert decode_word(raw, encoding) == raw.decode("ascii")
