"""The websocket wire: frames as RFC 6455 writes them, read back by an independent parser."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, Frame
from websockets.frames import Opcode as TheirOpcode
from websockets.streams import StreamReader

from gateway.wire import (
    DEFLATE_MIN,
    NO_STATUS,
    PING,
    ZERO_MASK,
    CloseCode,
    Opcode,
    TextMessage,
    WireError,
    close_frame,
    close_reason,
    deflate_answer,
    frame,
    inflate,
    parse_close,
    pong_frame,
    split_frames,
    split_messages,
    text_frame,
)
from tests.support.fakes import payload

ANSWER = "permessage-deflate; server_no_context_takeover"


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, "8100"),
        (125, "817d"),
        (126, "817e007e"),
        (65535, "817effff"),
        (65536, "817f0000000000010000"),
    ],
)
def test_text_frame_header_follows_rfc6455(size: int, header: str) -> None:
    """Prebuilt frames are final, unmasked text frames with the RFC 6455 length forms."""
    frame = text_frame(b"x" * size)
    assert frame[: len(header) // 2].hex() == header
    assert len(frame) == len(header) // 2 + size


def independent_parse(
    data: bytes, *, mask: bool = False, extensions: Sequence[Extension] | None = None
) -> tuple[Frame, bytes]:
    """One frame read by python-websockets' own parser (decoded by its ``extensions``), and
    the bytes left after it."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=mask, extensions=extensions)
    try:
        next(parser)
    except StopIteration as done:
        parsed: Frame = done.value
        return parsed, bytes(reader.buffer)
    raise AssertionError("the frame is incomplete")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70_000])
def test_a_text_frame_is_what_another_implementation_reads(size: int) -> None:
    """A traffic frame of any size reads back, byte for byte, in an independent parser."""
    body = bytes(i % 251 for i in range(size))
    parsed, rest = independent_parse(text_frame(body))
    assert (parsed.opcode, parsed.fin, parsed.data, rest) == (TheirOpcode.TEXT, True, body, b"")
    assert (parsed.rsv1, parsed.rsv2, parsed.rsv3) == (False, False, False)


def test_control_frames_are_what_another_implementation_reads() -> None:
    """The heartbeat's ping, a pong and a close frame read back as what they say."""
    ping, _ = independent_parse(PING)
    assert (ping.opcode, ping.data) == (TheirOpcode.PING, b"")
    pong, _ = independent_parse(pong_frame(b"are you there"))
    assert (pong.opcode, pong.data) == (TheirOpcode.PONG, b"are you there")
    close, _ = independent_parse(close_frame(CloseCode.SLOW_CONSUMER, "slow consumer"))
    assert close.opcode == TheirOpcode.CLOSE
    assert Close.parse(close.data) == Close(4408, "slow consumer")


@pytest.mark.parametrize("key", [ZERO_MASK, b"\x01\x02\x03\x04", b"\xff\x00\xa5\x5a"])
def test_a_masked_client_frame_is_what_another_implementation_reads(key: bytes) -> None:
    """A benchmark client's frame, masked with any key, unmasks to the payload it carried."""
    body = b'{"type":"subscribe","router":"core-1"}' * 5
    parsed, _ = independent_parse(frame(Opcode.TEXT, body, mask=key), mask=True)
    assert parsed.data == body


def test_a_control_frame_over_125_bytes_is_refused() -> None:
    """A ping or pong too long for RFC 6455 is an error naming the limit, not a bad frame."""
    with pytest.raises(WireError, match="at most 125 bytes, not 126"):
        pong_frame(b"x" * 126)


def test_split_frames_takes_complete_frames_and_keeps_the_rest() -> None:
    """Frames cut anywhere by the network come out whole and in order once their bytes arrive."""
    frames = [text_frame(b"a" * 10), PING, text_frame(b"b" * 300), text_frame(b"c" * 70_000)]
    stream = b"".join(frames)
    expected = [(0x1, b"a" * 10), (0x9, b""), (0x1, b"b" * 300), (0x1, b"c" * 70_000)]
    for cut in sorted({0, 1, 2, 3, 11, 12, 13, 14, 15, 300, 316, 317, 320, len(stream) - 1}):
        first, rest = split_frames(stream[:cut])
        second, left = split_frames(rest + stream[cut:])
        assert first + second == expected, cut
        assert left == b""


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (frame(Opcode.TEXT, b"hi", mask=b"\x01\x02\x03\x04"), "a masked frame"),
        (b"\x01\x02hi", "a fragment"),
        (b"\xc1\x02hi", "reserved bits 0x40 set"),
    ],
)
def test_split_frames_names_a_frame_the_gateway_never_writes(data: bytes, what: str) -> None:
    """A frame the gateway cannot have written is reported with what is wrong and where."""
    with pytest.raises(WireError, match=f"at byte 2: {what}"):
        split_frames(PING + data)


def test_close_payloads_read_back() -> None:
    """A close frame's code and reason read back; no code reads as 1005; one byte is an error."""
    close = close_frame(CloseCode.BAD_TOKEN, "the token has expired")
    assert parse_close(split_frames(close)[0][0][1]) == (4401, "the token has expired")
    assert parse_close(b"") == (NO_STATUS, "") == (1005, "")
    with pytest.raises(WireError, match="not 1"):
        parse_close(b"\x03")


@pytest.mark.parametrize("reason", ["", "token expired", "é" * 40, "x" * 124, "€" * 100])
def test_a_close_reason_fits_a_control_frame(reason: str) -> None:
    """Any reason makes a valid close frame: at most 123 bytes of whole UTF-8 characters,
    marked with an ellipsis when cut; another implementation reads code and reason back."""
    data = close_reason(reason)
    assert len(data) <= 123
    text = data.decode()  # whole characters only
    assert text == reason or (text.endswith("\u2026") and reason.startswith(text[:-1]))
    parsed = Close.parse(close_frame(4401, reason)[2:])
    assert parsed.code == 4401
    assert parsed.reason == text


# -- permessage-deflate (RFC 7692) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("offers", "answer"),
    [
        # What browsers, aiohttp and python-websockets offer.
        (["permessage-deflate; client_max_window_bits"], ANSWER),
        (["permessage-deflate; client_max_window_bits=15"], ANSWER),
        (["permessage-deflate"], ANSWER),
        (["permessage-deflate; server_no_context_takeover"], ANSWER),
        (["permessage-deflate; client_no_context_takeover; client_max_window_bits=9"], ANSWER),
        (["Permessage-Deflate; Client_Max_Window_Bits"], ANSWER),
        # A server window of 2**15 is the gateway's: agreed, and said back.
        (["permessage-deflate; server_max_window_bits=15"], f"{ANSWER}; server_max_window_bits=15"),
        (
            ['permessage-deflate; server_max_window_bits="15"'],
            f"{ANSWER}; server_max_window_bits=15",
        ),
        # A smaller server window is declined; a later offer in the list is taken instead.
        (["permessage-deflate; server_max_window_bits=10"], None),
        (["permessage-deflate; server_max_window_bits=10, permessage-deflate"], ANSWER),
        (["permessage-deflate; server_max_window_bits=10", "permessage-deflate"], ANSWER),
        # Malformed or unknown: declined.
        (["permessage-deflate; client_max_window_bits=7"], None),
        (["permessage-deflate; client_max_window_bits=015"], None),
        (["permessage-deflate; server_no_context_takeover=1"], None),
        (["permessage-deflate; client_no_context_takeover; client_no_context_takeover"], None),
        (["permessage-deflate; x_custom"], None),
        (["permessage-deflate; client_max_window_bits=="], None),
        (["x-webkit-deflate-frame"], None),
        ([""], None),
        ([], None),
    ],
)
def test_deflate_is_agreed_on_the_gateways_terms(offers: list[str], answer: str | None) -> None:
    """Offers the gateway can honour get server_no_context_takeover; the rest plain frames."""
    assert deflate_answer(offers) == answer


def independent_inflate(frame_bytes: bytes) -> bytes:
    """A compressed frame read and inflated by python-websockets, as a client that agreed to
    ``server_no_context_takeover`` would (it inflates a frame only if RSV1 is set)."""
    extension = PerMessageDeflate(
        remote_no_context_takeover=True,
        local_no_context_takeover=False,
        remote_max_window_bits=15,
        local_max_window_bits=15,
    )
    parsed, rest = independent_parse(frame_bytes, extensions=[extension])
    assert rest == b""
    assert (parsed.opcode, parsed.fin) == (TheirOpcode.TEXT, True)
    return bytes(parsed.data)


@pytest.mark.parametrize("size", [DEFLATE_MIN, 5_000, 70_000, 1_000_000])
def test_a_deflated_message_is_what_another_implementation_inflates(size: int) -> None:
    """A compressed frame has RSV1 set, the right length form, and inflates to the message."""
    body = orjson.dumps([{"name": f"<pppoe-user{i:04}>", "rx_bps": i * 1.5} for i in range(size)])
    body = body[:size]
    message = TextMessage(body[: size // 3], body[size // 3 :])
    assert message.packed[0] == 0xC1  # final, RSV1, text
    assert independent_inflate(message.packed) == body
    assert message.deflated
    assert split_frames(message.packed, deflate=True) == ([(Opcode.TEXT, body)], b"")


def test_each_deflated_message_stands_alone() -> None:
    """Messages deflated one after another each inflate with a fresh window, in any order."""
    bodies = [b'{"seq":%d,"pad":"%s"}' % (i, b"ab" * 400) for i in range(3)]
    frames = [TextMessage(b).packed for b in reversed(bodies)]
    for compressed, body in zip(frames, reversed(bodies), strict=True):
        assert independent_inflate(compressed) == body


def test_a_short_message_goes_plain_even_to_those_who_agreed() -> None:
    """Under DEFLATE_MIN bytes a message is not worth deflating: its compressed form is plain."""
    message = TextMessage(b"x" * (DEFLATE_MIN - 1))
    assert message.packed is message.plain
    assert not message.deflated
    assert message.frame(True) == text_frame(b"x" * (DEFLATE_MIN - 1))


def test_a_message_is_framed_and_deflated_once_however_many_ask() -> None:
    """Every viewer of a message shares its frames: asking again returns the same bytes."""
    message = TextMessage(b"a" * 2000, b"b" * 2000)
    assert message.plain is message.plain
    assert message.packed is message.packed
    assert message.frame(False) is message.plain
    assert message.frame(True) is message.packed
    assert payload(message.plain) == b"a" * 2000 + b"b" * 2000


def test_split_messages_reports_compressed_frames_as_they_came() -> None:
    """A reader of a deflate connection sees which frames are compressed, payload untouched."""
    packed = TextMessage(b"c" * 3000).packed
    frames, _ = split_messages(PING + packed + text_frame(b"plain"), deflate=True)
    assert frames == [
        (Opcode.PING, False, b""),
        (Opcode.TEXT, True, packed[2:]),  # a short header: 3,000 "c" deflate to a few bytes
        (1, False, b"plain"),
    ]
    assert inflate(frames[1][2]) == b"c" * 3000
    with pytest.raises(WireError, match="at byte 0: reserved bits 0x40 set"):
        split_messages(packed)
    with pytest.raises(WireError, match="only RSV1, and on data frames only"):
        split_messages(b"\xc9\x00", deflate=True)  # a compressed ping
