"""Router text decoded without loss: the same bytes give the same text, different bytes differ."""

from __future__ import annotations

import codecs
import encodings
import encodings.aliases
import itertools
import pkgutil
from typing import Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.text import (
    MARK,
    decode_word,
    encode_word,
    encoding_problem,
    has_escapes,
    split_attribute,
)


def _codec_names() -> set[str]:
    """Every encoding name Python knows: the aliases, what they name, and every module of the
    ``encodings`` package (the standard list)."""
    aliases = encodings.aliases.aliases
    modules = {module.name for module in pkgutil.iter_modules(encodings.__path__)}
    return set(aliases) | set(aliases.values()) | modules


ACCEPTED: Final = sorted(
    {codecs.lookup(name).name for name in _codec_names() if encoding_problem(name) is None}
)
"""Every codec a router's ``encoding`` may name, once each (aliases folded)."""

ONE_AND_TWO_BYTES: Final = [bytes([a]) for a in range(256)] + [
    bytes([a, b]) for a in range(256) for b in range(256)
]


@pytest.mark.parametrize(
    ("raw", "encoding", "text"),
    [
        (b"ether1", "utf-8", "ether1"),
        ("ether-café".encode(), "utf-8", "ether-café"),
        ("ether-офис".encode("cp1251"), "cp1251", "ether-офис"),
        (b"<pppoe-nu\xf1ez>", "latin-1", "<pppoe-nuñez>"),
        (b"a\\xf1b", "utf-8", "a\\xf1b"),
        (b"", "utf-8", ""),
    ],
)
def test_text_that_decodes_is_exact(raw: bytes, encoding: str, text: str) -> None:
    """Names in the router's encoding read exactly as written, backslashes included."""
    assert decode_word(raw, encoding) == text
    assert not has_escapes(decode_word(raw, encoding))


def test_undecodable_bytes_stay_visible_and_distinct() -> None:
    """A latin-1 name read as UTF-8 keeps its byte, visibly; it never equals the name without."""
    shown = decode_word(b"<pppoe-nu\xf1ez>", "utf-8")
    assert shown == f"<pppoe-nu{MARK}\\xf1ez>"
    assert shown != decode_word(b"<pppoe-nuez>", "utf-8")
    assert shown != decode_word(b"<pppoe-nu\xe9ez>", "utf-8")
    assert has_escapes(shown)


@pytest.mark.parametrize(
    ("raw", "encoding", "text"),
    [
        (b"x\x98y", "cp1251", f"x{MARK}\\x98y"),  # the one byte cp1251 leaves undefined
        (b"x\x80y", "ascii", f"x{MARK}\\x80y"),
        (b"\xc3", "utf-8", f"{MARK}\\xc3"),  # a UTF-8 sequence cut short
        (b"a\xff\xfeb", "utf-8", f"a{MARK}\\xff{MARK}\\xfeb"),
    ],
)
def test_each_undecodable_byte_is_spelled_out(raw: bytes, encoding: str, text: str) -> None:
    """Every byte that does not decode is shown as U+FFFD and its hex value, in place."""
    assert decode_word(raw, encoding) == text


def test_a_replacement_character_the_router_sent_is_escaped_too() -> None:
    """A real U+FFFD in a name cannot pose as an escape: it is shown escaped itself."""
    sent = f"a{MARK}\\xf1".encode()
    shown = decode_word(sent, "utf-8")
    assert shown == f"a{MARK}\\ufffd\\xf1"
    assert shown != decode_word(b"a\xf1", "utf-8")


@pytest.mark.parametrize("encoding", ["utf-8", "ascii", "cp1251"])
def test_different_bytes_never_give_the_same_text(encoding: str) -> None:
    """Every byte string up to four pieces long from a nasty alphabet decodes to its own text."""
    pieces = [b"a", b"\\", b"x", b"f", b"1", b"\xf1", b"\x98", b"\xc3", b"\xa9", b"\xef\xbf\xbd"]
    seen: dict[str, bytes] = {}
    for n in range(5):
        for combination in itertools.product(pieces, repeat=n):
            raw = b"".join(combination)
            text = decode_word(raw, encoding)
            assert seen.setdefault(text, raw) == raw, (text, raw, seen[text])
            assert decode_word(raw, encoding) == text


@pytest.mark.parametrize(
    ("word", "pair"),
    [
        ("=name=ether1", ("name", "ether1")),
        ("=name=007", ("name", "007")),
        ("=running=yes", ("running", "yes")),
        ("=comment=a=b", ("comment", "a=b")),
        ("=name= x ", ("name", " x ")),
        ("=comment=", ("comment", "")),
        ("=flag", ("flag", "")),
        (".tag=5", (".tag", "5")),
    ],
)
def test_attributes_split_without_conversion(word: str, pair: tuple[str, str]) -> None:
    """An attribute's value is the text after the second ``=``, whatever it looks like."""
    assert split_attribute(word) == pair


# -- every accepted encoding ----------------------------------------------------------------------


def test_the_common_code_pages_are_accepted() -> None:
    """The code pages routers are set up in are all usable as a router's encoding."""
    for name in ("utf-8", "latin-1", "cp1252", "cp1251", "cp1250", "koi8-r", "cp932", "gbk"):
        assert codecs.lookup(name).name in ACCEPTED, name
    assert len(ACCEPTED) > 50


@pytest.mark.parametrize(
    "name",
    [
        "utf-8-sig",  # drops a byte order mark: two words, one text
        "utf-7",  # "+AEE-" reads "A"
        "unicode_escape",  # "\\x41" reads "A"
        "utf-16",
        "utf-32-le",
        "cp037",  # EBCDIC
        "hz",  # "~{" shifts
        "idna",
        "punycode",
        "base64",  # bytes to bytes
        "rot13",
        "no-such-encoding",
        "utf\x00",
    ],
)
def test_encodings_that_do_not_read_ascii_as_ascii_are_refused(name: str) -> None:
    """Codecs that cannot read API words (or read two byte strings as one text) are refused."""
    assert encoding_problem(name) is not None


@pytest.mark.parametrize("encoding", ACCEPTED)
def test_no_two_words_of_one_or_two_bytes_share_a_text(encoding: str) -> None:
    """For every accepted encoding, every one- and two-byte word reads as its own text."""
    seen: dict[str, bytes] = {}
    for raw in ONE_AND_TWO_BYTES:
        text = decode_word(raw, encoding)
        first = seen.setdefault(text, raw)
        assert first == raw, f"{first!r} and {raw!r} both read {text!r}"
    assert len(seen) == len(ONE_AND_TWO_BYTES)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ACCEPTED), st.binary(max_size=12))
def test_any_word_reads_back_as_its_bytes(encoding: str, raw: bytes) -> None:
    """Longer words too: what a word is shown as always encodes back to exactly that word."""
    assert encode_word(decode_word(raw, encoding), encoding) == raw


def test_cp932_look_alikes_stay_two_names() -> None:
    """In cp932, ED 40 and FA 5C both decode to 纊: the one that encodes back is shown as
    text, the other spelled out byte by byte, so a filter for one never matches the other."""
    canonical = decode_word(b"<pppoe-\xed\x40>", "cp932")
    other = decode_word(b"<pppoe-\xfa\x5c>", "cp932")
    assert canonical == "<pppoe-\u7e8a>"
    assert other == f"<pppoe-{MARK}\\xfa{MARK}\\x5c>"
    assert has_escapes(other)
    assert not has_escapes(canonical)


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        (b"\\u0041", "raw-unicode-escape"),  # reads "A", like b"A"
        (b"A\x1b(B", "iso2022_jp"),  # a shift back to ASCII that changes nothing
    ],
)
def test_words_that_decode_like_other_words_are_spelled_out(raw: bytes, encoding: str) -> None:
    """Bytes that decode to the text of other bytes never show as that text."""
    text = decode_word(raw, encoding)
    assert encode_word(text, encoding) == raw
    assert text != raw.decode(encoding)
    assert has_escapes(text)


def test_encode_word_refuses_text_no_word_reads_as() -> None:
    """A MARK that starts no escape is not a decoded word."""
    with pytest.raises(ValueError, match="starts no escape"):
        encode_word(f"a{MARK}b", "utf-8")
