"""The websocket wire: frames as RFC 6455 writes them, read back by an independent parser."""

from __future__ import annotations

import pytest
from websockets.frames import Close, Frame
from websockets.frames import Opcode as TheirOpcode
from websockets.streams import StreamReader

from gateway.wire import (
    NO_STATUS,
    PING,
    ZERO_MASK,
    CloseCode,
    Opcode,
    WireError,
    close_frame,
    close_reason,
    frame,
    parse_close,
    pong_frame,
    split_frames,
    text_frame,
)


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


def independent_parse(data: bytes, *, mask: bool = False) -> tuple[Frame, bytes]:
    """One frame read by python-websockets' own parser, and the bytes left after it."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=mask)
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
