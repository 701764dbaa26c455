"""The websocket wire, pure: the frames the gateway writes by hand, a parser for them, and the
close codes it sends.

aiohttp does the handshake, reads what clients send and writes the closing handshake. The hot
path does not go through it: a traffic frame is framed once here (``text_frame``) and the same
bytes go to every viewer's socket, and the heartbeat is one prebuilt ping plus a text frame.
Everything here follows RFC 6455 section 5 (framing), takes bytes and returns bytes, and does no
I/O, so the benchmark clients in ``loadtest/bench/`` and the tests use the same code to build and
read frames (the model is python-websockets' ``frames.py``).

Server frames are final and unmasked; client frames must be masked, and the benchmark clients
mask with the all-zero key (the RFC asks for a mask, not a random one), which leaves the payload
as it is.

``CloseCode`` is the one list of the close codes the gateway sends and what a client should do
on each. The README's "Close codes" table, the dashboard's ``web/static/js/socket.js`` and the
Locust checker follow it; a test reads those files and fails when they disagree.
"""

from __future__ import annotations

import enum
import struct
from typing import Final, Literal

__all__ = [
    "ABNORMAL",
    "PING",
    "ZERO_MASK",
    "CloseCode",
    "Opcode",
    "Reconnect",
    "WireError",
    "close_frame",
    "frame",
    "parse_close",
    "ping_frame",
    "pong_frame",
    "split_frames",
    "text_frame",
    "text_header",
]


class WireError(ValueError):
    """Bytes that are not a frame this module builds or reads; the message says what is wrong."""


class Opcode(enum.IntEnum):
    """The frame types of RFC 6455 section 5.2."""

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


Reconnect = Literal["retry", "slow", "stop"]
"""What a client does after a close: reconnect with the usual backoff (``retry``), with a longer
one (``slow``), or not at all until something changes on its side (``stop``)."""


class CloseCode(enum.IntEnum):
    """Every close code the gateway sends (README, "Close codes"), and the client's answer.

    ``reconnect`` says what a client does on each; ``meaning`` is one line for people.
    """

    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    BAD_TOKEN = 4401
    SLOW_CONSUMER = 4408
    TOO_MANY_MESSAGES = 4429

    @property
    def reconnect(self) -> Reconnect:
        return _CLOSE_TABLE[self][0]

    @property
    def meaning(self) -> str:
        return _CLOSE_TABLE[self][1]


_CLOSE_TABLE: Final[dict[CloseCode, tuple[Reconnect, str]]] = {
    CloseCode.GOING_AWAY: ("retry", "the server is shutting down or restarting"),
    CloseCode.POLICY_VIOLATION: ("stop", "the page's origin is not allowed"),
    CloseCode.MESSAGE_TOO_BIG: ("retry", "a client message was over 64 KiB"),
    CloseCode.INTERNAL_ERROR: ("retry", "an internal error"),
    CloseCode.TRY_AGAIN_LATER: ("slow", "a connection limit is reached"),
    CloseCode.BAD_TOKEN: ("stop", "the token is missing, invalid or expired"),
    CloseCode.SLOW_CONSUMER: ("retry", "the viewer stopped reading"),
    CloseCode.TOO_MANY_MESSAGES: ("slow", "the client kept sending past the message rate"),
}

NO_STATUS: Final = 1005
"""What ``parse_close`` reports for a close frame without a code (RFC 6455 section 7.1.5); never
sent on the wire."""

ABNORMAL: Final = 1006
"""What a connection that ended without a close frame (a dropped peer) reports (RFC 6455
section 7.1.5); never sent on the wire."""

ZERO_MASK: Final = b"\x00\x00\x00\x00"
"""The masking key that leaves a client frame's payload unchanged."""

_CONTROL_LIMIT: Final = 125  # the largest payload of a control frame (RFC 6455 section 5.5)


def text_header(n: int) -> bytes:
    """The header of a final, unmasked text frame with an ``n``-byte payload."""
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n)
    return struct.pack("!BBQ", 0x81, 127, n)


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame carrying ``payload`` (UTF-8 text: JSON, here)."""
    return text_header(len(payload)) + payload


def frame(opcode: Opcode | int, payload: bytes, *, mask: bytes | None = None) -> bytes:
    """A final frame of any type: unmasked (server to client) when ``mask`` is None, else masked
    with that 4-byte key (client to server). Control frames (close, ping, pong) take at most 125
    bytes (``WireError`` beyond)."""
    n = len(payload)
    if opcode >= Opcode.CLOSE and n > _CONTROL_LIMIT:
        raise WireError(f"a control frame carries at most 125 bytes, not {n}")
    masked = 0 if mask is None else 0x80
    if n < 126:
        head = bytes((0x80 | opcode, masked | n))
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, masked | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, masked | 127, n)
    if mask is None:
        return head + payload
    if len(mask) != 4:
        raise WireError(f"a masking key is 4 bytes, not {len(mask)}")
    return head + mask + _apply_mask(payload, mask)


def ping_frame(payload: bytes = b"") -> bytes:
    """A server ping (at most 125 bytes of payload)."""
    return frame(Opcode.PING, payload)


def pong_frame(payload: bytes) -> bytes:
    """A server pong, echoing the payload of the ping it answers (at most 125 bytes)."""
    return frame(Opcode.PONG, payload)


MAX_CLOSE_REASON: Final = 123
"""Bytes a close frame's reason may hold: a control frame carries at most 125 bytes (RFC 6455,
section 5.5), two of them the code."""


def close_reason(reason: str) -> bytes:
    """``reason`` in UTF-8, cut to ``MAX_CLOSE_REASON`` bytes at a character boundary (with an
    ellipsis when cut). A longer reason would make the close frame invalid, and a browser would
    fail the connection with 1006 instead of reporting the code that was sent."""
    data = reason.encode()
    if len(data) <= MAX_CLOSE_REASON:
        return data
    cut = data[: MAX_CLOSE_REASON - 3].decode(errors="ignore").encode()
    return cut + "\u2026".encode()


def close_frame(code: int, reason: str = "") -> bytes:
    """A server close frame: the 2-byte code, then the reason (``close_reason``)."""
    return frame(Opcode.CLOSE, struct.pack("!H", code) + close_reason(reason))


PING: Final = ping_frame()
"""The heartbeat's ping: final, unmasked, no payload (``b"\\x89\\x00"``)."""


def split_frames(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The complete server frames at the start of ``data`` as ``(opcode, payload)`` pairs, and the
    incomplete rest (to put in front of the next read).

    Reads what the gateway writes: final, unmasked frames without extension bits. Anything else
    (a masked frame, a fragment, a reserved bit set) raises ``WireError`` naming it, at the
    offending frame, so a reader checking the wire sees the first wrong byte.
    """
    frames: list[tuple[int, bytes]] = []
    i = 0
    end = len(data)
    while end - i >= 2:
        first = data[i]
        n = data[i + 1]
        if first & 0xF0 != 0x80 or n & 0x80:
            raise WireError(_unexpected(first, n, i))
        head = 2
        if n == 126:
            if end - i < 4:
                break
            n = (data[i + 2] << 8) | data[i + 3]
            head = 4
        elif n == 127:
            if end - i < 10:
                break
            n = int.from_bytes(data[i + 2 : i + 10], "big")
            head = 10
        if end - i < head + n:
            break
        frames.append((first & 0x0F, data[i + head : i + head + n]))
        i += head + n
    return frames, data[i:]


def parse_close(payload: bytes) -> tuple[int, str]:
    """The code and reason of a close frame's payload; ``(NO_STATUS, "")`` when it has none.

    ``WireError`` for a one-byte payload or a reason that is not UTF-8 (RFC 6455 section 5.5.1).
    """
    if not payload:
        return NO_STATUS, ""
    if len(payload) < 2:
        raise WireError("a close frame's payload is empty or at least 2 bytes, not 1")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError:
        raise WireError("a close frame's reason is not UTF-8") from None
    return int.from_bytes(payload[:2], "big"), reason


def _unexpected(first: int, second: int, at: int) -> str:
    if second & 0x80:
        what = "a masked frame (a server never masks)"
    elif not first & 0x80:
        what = "a fragment (the gateway sends every message in one frame)"
    else:
        what = f"reserved bits {first & 0x70:#04x} set (no extension was negotiated)"
    return f"at byte {at}: {what}"


def _apply_mask(payload: bytes, mask: bytes) -> bytes:
    """``payload`` XOR the repeated 4-byte ``mask`` (RFC 6455 section 5.3)."""
    n = len(payload)
    if not n or mask == ZERO_MASK:
        return payload
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")
