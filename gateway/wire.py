"""The websocket wire, pure: the frames the gateway writes by hand, a parser for them, the
permessage-deflate extension (RFC 7692) as the gateway speaks it, and the close codes it sends.

aiohttp does the handshake, reads what clients send and writes the closing handshake. The hot
path does not go through it: a traffic frame is framed once here (``text_frame``) and the same
bytes go to every viewer's socket, and the heartbeat is one prebuilt ping plus a text frame.
Everything here follows RFC 6455 section 5 (framing), takes bytes and returns bytes, and does no
I/O, so the benchmark clients in ``loadtest/bench/`` and the tests use the same code to build and
read frames (the model is python-websockets' ``frames.py``).

Server frames are final and unmasked; client frames must be masked, and the benchmark clients
mask with the all-zero key (the RFC asks for a mask, not a random one), which leaves the payload
as it is.

Compression: with a client that offers permessage-deflate, the gateway agrees with
``server_no_context_takeover`` (``deflate_answer``), so each message it sends is deflated on its
own (``deflate``) and the same compressed bytes suit every viewer that agreed: a message is
deflated once, however many viewers get it (``TextMessage``), and nothing is kept per viewer.
Messages under ``DEFLATE_MIN`` bytes go plain (RSV1 clear), as RFC 7692 allows per message.

``CloseCode`` is the one list of the close codes the gateway sends and what a client should do
on each. The README's "Close codes" table, the dashboard's ``web/static/js/socket.js`` and the
Locust checker follow it; a test reads those files and fails when they disagree.
"""

from __future__ import annotations

import enum
import re
import struct
import zlib
from collections.abc import Sequence
from typing import Final, Literal

__all__ = [
    "ABNORMAL",
    "DEFLATE_MIN",
    "PING",
    "ZERO_MASK",
    "CloseCode",
    "Opcode",
    "Reconnect",
    "TextMessage",
    "WireError",
    "close_frame",
    "deflate",
    "deflate_answer",
    "deflated_text_frame",
    "frame",
    "inflate",
    "parse_close",
    "ping_frame",
    "pong_frame",
    "split_frames",
    "split_messages",
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


# -- permessage-deflate (RFC 7692) -------------------------------------------------------------

DEFLATE_MIN: Final = 512
"""Messages shorter than this (bytes of JSON) go plain even to viewers that agreed to deflate:
deflating a few hundred bytes saves tens of them for a compressor set up each time (about
6 us), which for a customer's one-interface frame is as much CPU as sending it."""

DEFLATE_LEVEL: Final = 6
"""zlib's level for the messages the gateway deflates: each is deflated once for every viewer
that gets it, so the better ratio is worth its CPU (a 309-interface frame: 45 KB to 4.8 KB in
about 0.3 ms, against 5.9 KB in 0.07 ms at level 1)."""

EXTENSION: Final = "permessage-deflate"
# What a client may ask of the extension (RFC 7692 section 7.1), and the window the gateway
# deflates with: 2**15 bytes, the largest, so it cannot honour a smaller server window.
_PARAMETERS: Final = frozenset(
    (
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
    )
)
_WINDOW_BITS: Final = 15
# One extension offer: a token, then parameters; a value is a token or a quoted string.
_TOKEN: Final = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAMETER: Final = re.compile(rf'\s*({_TOKEN})\s*(?:=\s*({_TOKEN}|"[^"\\]*")\s*)?$')
# The empty stored block a sync flush ends with; RFC 7692 strips it from every message.
_TAIL: Final = b"\x00\x00\xff\xff"


def deflate_answer(offers: Sequence[str]) -> str | None:
    """The ``Sec-WebSocket-Extensions`` answer to a client's header(s) ``offers``, or None to
    leave compression off.

    The first ``permessage-deflate`` offer the gateway can honour is accepted, answered with
    ``server_no_context_takeover`` whether or not the client asked (RFC 7692 section 7.1.1.1
    allows it): every message is deflated alone. An offer is declined (the next one is tried)
    when it is malformed, repeats or does not know a parameter, or asks for a server window
    smaller than 2**15 bytes (the window every shared message is deflated with); asking for
    exactly 2**15 is echoed, as section 7.1.2.1 requires. The client's own window and context
    takeover are its business: whatever it sends is inflated by the reader.
    """
    for offer in _split_outside_quotes(",".join(offers), ","):
        name, *parameters = _split_outside_quotes(offer, ";")
        if name.strip().lower() != EXTENSION:
            continue
        answer = _accepted(parameters)
        if answer is not None:
            return answer
    return None


def _accepted(parameters: list[str]) -> str | None:
    """The answer to one offer's parameters, or None if the gateway must decline it."""
    seen: set[str] = set()
    answer = f"{EXTENSION}; server_no_context_takeover"
    for parameter in parameters:
        match = _PARAMETER.match(parameter)
        if match is None:
            return None
        name, value = match.group(1).lower(), match.group(2)
        if name not in _PARAMETERS or name in seen:
            return None
        seen.add(name)
        if value is not None and value.startswith('"'):
            value = value[1:-1]
        if name.endswith("_no_context_takeover"):
            if value is not None:
                return None
        elif name == "client_max_window_bits":
            if value is not None and not _window_bits(value):
                return None
        elif value != str(_WINDOW_BITS):  # server_max_window_bits: only the gateway's own
            return None
        else:
            answer += f"; server_max_window_bits={_WINDOW_BITS}"
    return answer


def _window_bits(value: str) -> bool:
    """Whether ``value`` is a window size RFC 7692 allows: 8 to 15, no leading zero."""
    return value.isdigit() and value[0] != "0" and 8 <= int(value) <= _WINDOW_BITS


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` where it is not inside a quoted string."""
    parts = []
    start = 0
    quoted = False
    for i, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [part for part in parts if part.strip()]


def deflate(parts: Sequence[bytes]) -> bytes:
    """The permessage-deflate payload of the message ``b"".join(parts)``, deflated alone (no
    context from any earlier message: what ``server_no_context_takeover`` promises), in one
    pass over the parts, without joining them first (RFC 7692 section 7.2.1)."""
    compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -_WINDOW_BITS)
    out = [compressor.compress(part) for part in parts]
    out.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    data = b"".join(out)
    return data[: -len(_TAIL)] if data.endswith(_TAIL) else data


def inflate(payload: bytes, limit: int = 0) -> bytes:
    """A permessage-deflate payload inflated, with a fresh window (what a message deflated
    alone needs); at most ``limit`` bytes of it when ``limit`` is not 0. ``WireError`` when it
    is not deflate data."""
    try:
        return zlib.decompressobj(-_WINDOW_BITS).decompress(payload + _TAIL, limit)
    except zlib.error as exc:
        raise WireError(f"a compressed message does not inflate: {exc}") from None


def deflated_text_frame(compressed: bytes) -> bytes:
    """A final, unmasked text frame with RSV1 set (RFC 7692: "this message is compressed")
    carrying ``compressed`` (``deflate``'s output)."""
    return bytes((0xC1,)) + text_header(len(compressed))[1:] + compressed


class TextMessage:
    """One text message to send to many viewers, framed plain and, for those that agreed to
    permessage-deflate, compressed: each at most once, on first demand, then shared.

    ``parts`` are the payload in pieces (a history message is spliced from many frames), copied
    once into each frame. A payload under ``DEFLATE_MIN`` bytes is never deflated: its
    compressed frame is the plain one.
    """

    __slots__ = ("_packed", "_parts", "_plain", "size")

    def __init__(self, *parts: bytes) -> None:
        self._parts = parts
        self.size = sum(map(len, parts))
        self._plain: bytes | None = None
        self._packed: bytes | None = None

    @property
    def plain(self) -> bytes:
        """The message as a plain text frame."""
        frame = self._plain
        if frame is None:
            frame = self._plain = b"".join((text_header(self.size), *self._parts))
        return frame

    @property
    def packed(self) -> bytes:
        """The message for a viewer that agreed to permessage-deflate."""
        frame = self._packed
        if frame is None:
            if self.size < DEFLATE_MIN:
                frame = self._packed = self.plain
            else:
                frame = self._packed = deflated_text_frame(deflate(self._parts))
        return frame

    @property
    def deflated(self) -> bool:
        """Whether the compressed frame was made (a deflate was paid for)."""
        return self._packed is not None and self._packed is not self._plain

    def frame(self, compressed: bool) -> bytes:
        """``packed`` when ``compressed`` (the viewer agreed to deflate), else ``plain``."""
        return self.packed if compressed else self.plain


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


def split_frames(data: bytes, *, deflate: bool = False) -> tuple[list[tuple[int, bytes]], bytes]:
    """The complete server frames at the start of ``data`` as ``(opcode, payload)`` pairs, and the
    incomplete rest (to put in front of the next read).

    Reads what the gateway writes: final, unmasked frames without extension bits, or, with
    ``deflate`` (the connection agreed to permessage-deflate), text frames with RSV1 set, whose
    payloads are inflated. Anything else (a masked frame, a fragment, a reserved bit set where
    none may be) raises ``WireError`` naming it, at the offending frame, so a reader checking
    the wire sees the first wrong byte.
    """
    messages, rest = split_messages(data, deflate=deflate)
    return [(op, inflate(p) if packed else p) for op, packed, p in messages], rest


def split_messages(
    data: bytes, *, deflate: bool = False
) -> tuple[list[tuple[int, bool, bytes]], bytes]:
    """As ``split_frames``, but each frame as ``(opcode, compressed, payload)`` with a
    compressed payload left as it came (RSV1 set; only with ``deflate``, on data frames)."""
    frames: list[tuple[int, bool, bytes]] = []
    i = 0
    end = len(data)
    while end - i >= 2:
        first = data[i]
        n = data[i + 1]
        compressed = deflate and first & 0xF0 == 0xC0 and first & 0x0F in _DATA
        if n & 0x80 or (first & 0xF0 != 0x80 and not compressed):
            raise WireError(_unexpected(first, n, i, deflate))
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
        frames.append((first & 0x0F, bool(first & 0x40), data[i + head : i + head + n]))
        i += head + n
    return frames, data[i:]


# The opcodes that may carry a compressed message (never control frames: RFC 7692 section 6).
_DATA: Final = frozenset((Opcode.TEXT, Opcode.BINARY))


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


def _unexpected(first: int, second: int, at: int, deflate: bool = False) -> str:
    if second & 0x80:
        what = "a masked frame (a server never masks)"
    elif not first & 0x80:
        what = "a fragment (the gateway sends every message in one frame)"
    elif deflate:
        what = f"reserved bits {first & 0x70:#04x} set (only RSV1, and on data frames only)"
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
