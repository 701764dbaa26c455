"""The few websocket bytes the benchmark clients and the raw-send floor need.

The benchmark clients must cost far less than the servers they measure, so they do not run a
websocket library: they send one prebuilt handshake, one prebuilt subscribe frame, answer pings,
and read frames with just enough parsing to find ``"seq"`` and ``"ts"`` in a traffic frame.
Frames are built and split by ``gateway.wire``, the gateway's own framing. Client frames are
masked with the all-zero key (RFC 6455 requires a mask, not a random one), so masking costs
nothing.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

import orjson

from gateway.wire import ZERO_MASK, Opcode, deflate, frame

# A fixed Sec-WebSocket-Key (the RFC's own example) and the accept value it must produce.
KEY: Final = "dGhlIHNhbXBsZSBub25jZQ=="
GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Plain ints, for the per-frame comparisons of a client that reads 200,000 frames a second.
OP_TEXT: Final = int(Opcode.TEXT)
OP_CLOSE: Final = int(Opcode.CLOSE)
OP_PING: Final = int(Opcode.PING)

TRAFFIC_PREFIX: Final = b'{"type":"traffic"'


def accept_value(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` answer to ``key``."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


OFFER: Final = "permessage-deflate; client_max_window_bits"
"""The permessage-deflate offer browsers make (Chromium, Firefox)."""
ANSWER: Final = "permessage-deflate; server_no_context_takeover"
"""The gateway's answer to it (``gateway.wire.deflate_answer``)."""


def handshake_request(host: str, port: int, path: str = "/ws", *, deflate: bool = False) -> bytes:
    """A client's opening handshake; with ``deflate``, offering permessage-deflate as browsers
    do."""
    offer = f"Sec-WebSocket-Extensions: {OFFER}\r\n" if deflate else ""
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
        f"{offer}\r\n"
    ).encode()


def handshake_response(request: bytes, *, deflate: bool = False) -> bytes | None:
    """The server's 101 answer to a client handshake, or None if it carries no key; with
    ``deflate``, agreeing to permessage-deflate as the gateway does when the client offered it."""
    key = None
    offered = False
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"sec-websocket-key":
            key = value.strip().decode()
        elif name == b"sec-websocket-extensions" and b"permessage-deflate" in value:
            offered = True
    if key is None:
        return None
    agreed = f"Sec-WebSocket-Extensions: {ANSWER}\r\n" if deflate and offered else ""
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_value(key)}\r\n{agreed}\r\n"
    ).encode()


def client_frame(opcode: Opcode, payload: bytes) -> bytes:
    """A final client-to-server frame, masked with the zero key (payload bytes unchanged)."""
    return frame(opcode, payload, mask=ZERO_MASK)


def subscribe_frame(
    router: str,
    interfaces: list[object] | None = None,
    history: int | None = None,
    *,
    compressed: bool = False,
) -> bytes:
    """A subscribe to ``router``: every interface, or those ``interfaces`` (name globs and
    ``{"exact": name}`` entries) name; with the ring's history, or ``history`` frames of it.
    ``compressed``: deflated (RSV1), as a browser sends it once permessage-deflate is agreed."""
    message: dict[str, object] = {"type": "subscribe", "router": router}
    if interfaces is not None:
        message["interfaces"] = interfaces
    if history is not None:
        message["history"] = history
    if not compressed:
        return client_frame(Opcode.TEXT, orjson.dumps(message))
    plain = client_frame(Opcode.TEXT, deflate((orjson.dumps(message),)))
    return bytes((plain[0] | 0x40,)) + plain[1:]  # RSV1: "this message is compressed"


def traffic_seq_ts(payload: bytes) -> tuple[int, float] | None:
    """``(seq, ts)`` of a traffic frame, found by position (keys come in the documented order:
    ``type, v, router, seq, ts``); None for any other message."""
    if not payload.startswith(TRAFFIC_PREFIX):
        return None
    i = payload.find(b'"seq":', 17, 200)
    j = payload.find(b",", i)
    k = payload.find(b'"ts":', j, j + 40)
    m = payload.find(b",", k)
    return int(payload[i + 6 : j]), float(payload[k + 5 : m])
