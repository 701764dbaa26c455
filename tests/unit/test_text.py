"""Router text decoded without loss: the same bytes give the same text, different bytes differ."""

from __future__ import annotations

import itertools

import pytest

from gateway.core.text import MARK, decode_word, has_escapes, split_attribute


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
