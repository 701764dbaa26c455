"""The bulk reader of ``/interface/print`` gives what librouteros gives, byte for byte of input.

The reference is librouteros' own reply loop (``AsyncApi.readResponse``) reading words through
the gateway's exact-text protocol (``ExactProtocol``, attributes split by ``split_attribute``),
over librouteros' own socket transport. The bulk path is ``ExactApi.read_rows`` over a
``ReadAheadTransport``. Both read the same bytes, delivered in the same chunks, from a typed
stand-in for ``asyncio.StreamReader`` (``read(n)`` returns at most ``n`` bytes of what has
arrived, ``b""`` at the end); the outcome compared is the rows or the exception (type, text,
trap fields), the bytes left unread for the next command, and whether the session was closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from librouteros.api import AsyncApi
from librouteros.connections import AsyncSocketTransport
from librouteros.exceptions import ConnectionClosed

from gateway.core.model import parse_interface_row
from gateway.core.text import split_attribute
from gateway.routeros import ExactApi, ExactProtocol, ReadAheadTransport


class Chunks:
    """What ``asyncio.StreamReader.read`` gives: the stream's chunks as they arrived, at most
    ``n`` bytes per read, then ``b""`` for the end of the stream."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = [chunk for chunk in chunks if chunk]

    async def read(self, n: int) -> bytes:
        if not self._chunks:
            return b""
        chunk = self._chunks[0]
        if len(chunk) > n:
            self._chunks[0] = chunk[n:]
            return chunk[:n]
        del self._chunks[0]
        return chunk

    def left(self) -> bytes:
        return b"".join(self._chunks)


class Writer:
    """What the transport needs of ``asyncio.StreamWriter`` to close the session (``!fatal``)."""

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        return None


class Reference(AsyncApi):  # type: ignore[misc]  # librouteros ships no types
    """librouteros' reply loop with the gateway's exact text: the path the bulk reader replaces."""

    async def readSentence(self) -> tuple[str, dict[str, str]]:
        reply_word, words = await self.protocol.readSentence()
        return reply_word, dict(split_attribute(word) for word in words)


@dataclass(frozen=True)
class Outcome:
    """What one read of a reply did: its rows or its error, what it left, whether it closed."""

    result: object
    left: bytes
    closed: bool


def _result_of(exc: Exception) -> object:
    return (
        "raised",
        type(exc),
        str(exc),
        getattr(exc, "message", None),
        getattr(exc, "category", None),
    )


async def _outcome(call: Callable[[], Awaitable[Sequence[object]]]) -> object:
    try:
        return ("rows", list(await call()))
    except Exception as exc:  # noqa: BLE001 - the error is what is compared
        return _result_of(exc)


async def by_librouteros(chunks: Sequence[bytes], encoding: str) -> Outcome:
    reader, writer = Chunks(chunks), Writer()
    transport = AsyncSocketTransport(cast(Any, reader), cast(Any, writer))
    api = Reference(ExactProtocol(transport, encoding, None))
    result = await _outcome(api.readResponse)
    return Outcome(result, reader.left(), writer.closed)


async def in_bulk(chunks: Sequence[bytes], encoding: str) -> Outcome:
    reader, writer = Chunks(chunks), Writer()
    transport = AsyncSocketTransport(cast(Any, reader), cast(Any, writer))
    api = ExactApi(ExactProtocol(transport, encoding, None))
    bulk = api.protocol.transport
    assert isinstance(bulk, ReadAheadTransport)
    result = await _outcome(lambda: api.read_rows(bulk))
    left = b""
    try:
        while True:
            left += await bulk.read_chunk()
    except ConnectionClosed:
        pass
    return Outcome(result, left, writer.closed)


def compare(stream: bytes, cuts: Sequence[int], encoding: str) -> Outcome:
    """Read ``stream`` cut at ``cuts`` both ways; they must agree. Returns the outcome."""
    points = sorted({cut for cut in cuts if 0 < cut < len(stream)})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    expected = asyncio.run(by_librouteros(chunks, encoding))
    got = asyncio.run(in_bulk(chunks, encoding))
    assert got == expected
    return got


# -- generated replies -------------------------------------------------------------------------


def length_prefix(length: int, size: int) -> bytes:
    """``length`` in the ``size``-byte form (1 to 4; 5 is the 0xF0 form librouteros refuses)."""
    if size == 5:
        return b"\xf0" + length.to_bytes(4, "big")
    marker = (0x00, 0x80, 0xC0, 0xE0)[size - 1]
    return (length | marker << (8 * (size - 1))).to_bytes(size, "big")


def canonical_size(length: int) -> int:
    return 1 if length < 0x80 else 2 if length < 0x4000 else 3 if length < 0x200000 else 4


@st.composite
def words(draw: st.DrawFn, word: bytes, clean: bool) -> bytes:
    """``word`` with a length prefix in a form that can carry it (mostly the shortest); unless
    ``clean``, now and then the five-byte form or a reserved control byte, which librouteros
    refuses."""
    shortest = canonical_size(len(word))
    size = draw(st.sampled_from([shortest] * 6 + list(range(shortest, 5))))
    if not clean:
        trouble = draw(st.integers(0, 30))
        if trouble == 0:
            return bytes([draw(st.integers(0xF8, 0xFF))]) + word
        if trouble == 1:
            size = 5
    return length_prefix(len(word), size) + word


NAMES: Final = [".id", "name", "type", "running", "rx-byte", "message", "category", "ret", ""]
TEXT: Final = st.text(alphabet=st.sampled_from("ab =*<>-_.09é東ñ\ufffd\\\x00\x1b"), max_size=12)


@st.composite
def values(draw: st.DrawFn, encoding: str) -> bytes:
    kind = draw(st.sampled_from(["text", "text", "bytes", "long", "huge"]))
    if kind == "bytes":
        return draw(st.binary(max_size=12))
    if kind == "long":
        return b"v" * draw(st.integers(100, 300))
    if kind == "huge":
        return b"w" * draw(st.sampled_from([0x3FFF, 0x4000 - 7, 0x4001]))
    return draw(TEXT).encode(encoding, errors="replace")


@st.composite
def attribute_words(draw: st.DrawFn, encoding: str) -> bytes:
    kind = draw(st.sampled_from(["attribute"] * 8 + ["api", "bare", "plain"]))
    if kind == "api":
        return b".tag=" + draw(values(encoding))
    if kind == "bare":
        return b"=" + draw(st.sampled_from(NAMES)).encode()
    if kind == "plain":
        return draw(values(encoding)) or b"x"
    return b"=" + draw(st.sampled_from(NAMES)).encode() + b"=" + draw(values(encoding))


# Replies a router sends when all is well, and (in the unclean streams) the others.
CLEAN_REPLY_WORDS: Final = [b"!re"] * 8 + [b"!done", b"!empty", b"!other"]
REPLY_WORDS: Final = [*CLEAN_REPLY_WORDS, b"!trap", b"!fatal", b""]


@st.composite
def sentences(draw: st.DrawFn, encoding: str, clean: bool) -> bytes:
    reply = draw(st.sampled_from(CLEAN_REPLY_WORDS if clean else REPLY_WORDS))
    body = [draw(attribute_words(encoding)) for _ in range(draw(st.integers(0, 5)))]
    if reply == b"!fatal" and body and draw(st.booleans()):
        body[0] = draw(values(encoding)) or b"reason"
    parts = [draw(words(word, clean)) for word in ([reply] if reply else []) + body]
    end = draw(st.sampled_from([b"\x00"] * 8 + [b"\x80\x00"]))
    return b"".join(parts) + end


ENCODINGS: Final = ["utf-8", "ascii", "latin-1", "cp1252", "cp932", "iso2022_jp"]


@st.composite
def replies(draw: st.DrawFn) -> tuple[bytes, list[int], str]:
    encoding = draw(st.sampled_from(ENCODINGS))
    # Most replies are well formed: then only the rows decide the outcome, not an error.
    clean = draw(st.integers(0, 2)) > 0
    count = draw(st.integers(0, 6))
    body = b"".join(draw(sentences(encoding, clean)) for _ in range(count))
    stream = body + b"\x05!done\x00"
    ending = draw(st.sampled_from(["done", "done", "more", "cut"]))
    if ending == "more":
        stream += draw(sentences(encoding, clean))
    elif ending == "cut":
        stream = stream[: draw(st.integers(0, len(stream)))]
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=8))
    return stream, cuts, encoding


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reply=replies())
def test_generated_replies_read_the_same_in_bulk(reply: tuple[bytes, list[int], str]) -> None:
    """Any reply, however it arrives, gives the same rows or the same error, leaves the same
    bytes for the next command and closes the session alike, in bulk as through librouteros."""
    compare(*reply)


def sentence(*words: bytes) -> bytes:
    return b"".join(length_prefix(len(w), canonical_size(len(w))) + w for w in words) + b"\x00"


def test_a_reply_split_at_every_byte_reads_the_same() -> None:
    """Rows, a long word, non-ASCII and undecodable names, !empty: cut anywhere, same rows."""
    stream = (
        sentence(b"!re", b"=.id=*1", "=name=ether-café".encode(), b"=comment=" + b"c" * 200)
        + sentence(b"!re", b"=.id=*2", b"=name=nu\xf1ez", b"=rx-byte=12")
        + sentence(b"!empty")
        + sentence(b"!done")
        + sentence(b"!re", b"=name=next")
    )
    for cut in range(len(stream) + 1):
        outcome = compare(stream, [cut], "utf-8")
        assert outcome.left == sentence(b"!re", b"=name=next")


# -- real outputs (shared/routeros/REAL-OUTPUTS.md), as the API sends them ------------------------


def stats_row(number: int, name: str, running: bool, counters: tuple[int, int, int, int]) -> bytes:
    """One row of §3 (``/interface/print stats``, RouterOS v7 docs) as API words."""
    rx_byte, tx_byte, rx_packet, tx_packet = counters
    words = [
        b"!re",
        f"=.id=*{number:X}".encode(),
        f"=name={name}".encode(),
        b"=type=ether",
        b"=running=" + (b"true" if running else b"false"),
        b"=disabled=false",
        f"=rx-byte={rx_byte}".encode(),
        f"=tx-byte={tx_byte}".encode(),
        f"=rx-packet={rx_packet}".encode(),
        f"=tx-packet={tx_packet}".encode(),
    ]
    return sentence(*words)


STATS: Final = (
    stats_row(1, "ether1", True, (205149015, 147887338, 158132, 150015))
    + stats_row(2, "ether2", True, (32400148, 335690764, 19, 216509))
    + stats_row(3, "ether3", True, (944043040, 32392350, 617271, 17))
    + stats_row(4, "ether4", True, (7038417, 32398973, 9, 4))
    + stats_row(5, "ether5", True, (7036903, 32502437, 5, 9))
    + stats_row(6, "sfp1", False, (0, 0, 0, 0))
    + sentence(b"!done")
)

REAL: Final = {
    "interface-stats": STATS,
    "monitor-traffic": sentence(
        b"!re",
        b"=name=Ether1_Primary_PIS",
        b"=rx-bits-per-second=159176",
        b"=tx-bits-per-second=227456",
        b"=rx-packets-per-second=182",
        b"=tx-packets-per-second=37",
        b"=fp-rx-bits-per-second=135416",
    )
    + sentence(b"!done"),
    "system-resource": sentence(
        b"!re",
        b"=uptime=5h34m8s",
        b"=version=6.47.9 (long-term)",
        b"=build-time=Feb/08/2021 12:48:33",
        b"=free-memory=1037193216",
        b"=cpu=Intel(R)",
        b"=board-name=x86",
    )
    + sentence(b"!done"),
    "bad-login": sentence(b"!trap", b"=message=invalid user name or password (6)")
    + sentence(b"!done"),
    "unknown-command": sentence(
        b"!trap", b"=category=0", b"=message=no such command or directory (adress)"
    )
    + sentence(b"!trap", b"=message=no such command prefix")
    + sentence(b"!done"),
    "interrupted": sentence(b"!re", b"=.id=*A", b"=.dead=true")
    + sentence(b"!trap", b"=category=2", b"=message=interrupted")
    + sentence(b"!done"),
    "quit": sentence(b"!fatal", b"session terminated on request"),
    "empty-7.18": sentence(b"!empty") + sentence(b"!done"),
    "add-ret": sentence(b"!done", b"=ret=*3"),
}


@pytest.mark.parametrize("name", list(REAL))
def test_real_outputs_read_the_same_in_bulk(name: str) -> None:
    """Replies real routers send (rows, traps, !fatal, !empty, !done with =ret=) read alike,
    whole or cut at every byte."""
    stream = REAL[name]
    for cut in range(len(stream) + 1):
        compare(stream, [cut], "utf-8")


def test_real_interface_rows_become_the_documented_counters() -> None:
    """The documented ``print stats`` rows read in bulk give their exact counters and flags."""
    outcome = compare(STATS, [], "utf-8")
    kind, rows = cast(tuple[str, list[dict[str, str]]], outcome.result)
    assert kind == "rows"
    samples = [parse_interface_row(row) for row in rows]
    assert [(s.name, s.rx_byte, s.tx_packet, s.running) for s in samples if s is not None] == [
        ("ether1", 205149015, 150015, True),
        ("ether2", 32400148, 216509, True),
        ("ether3", 944043040, 17, True),
        ("ether4", 7038417, 4, True),
        ("ether5", 7036903, 9, True),
        ("sfp1", 0, 0, False),
    ]


def test_a_trap_after_rows_raises_as_librouteros_does() -> None:
    """Rows then a trap: no rows, librouteros' own trap error, and the session stays in step."""
    outcome = compare(REAL["interrupted"] + sentence(b"!re", b"=name=next"), [], "utf-8")
    assert outcome.result == (
        "raised",
        __import__("librouteros.exceptions").exceptions.TrapError,
        "interrupted",
        "interrupted",
        "2",
    )
    assert outcome.left == sentence(b"!re", b"=name=next")
