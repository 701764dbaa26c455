"""Typed fakes for unit tests of the hub's pieces: transports, a clock, and reading frames back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from gateway.core.sources import DEFAULT_SOURCE, Source
from gateway.history import MESSAGE_LIMIT, history_messages
from gateway.wire import split_frames


class FakeTransport:
    """Records writes; ``backlog`` pretends that much is still unsent. ``deflate``: the
    connection agreed to permessage-deflate (compressed frames are then read back inflated;
    without it, one is an error)."""

    deflate = False

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.backlog = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return self.closing

    def frames(self) -> list[tuple[int, bytes]]:
        """Every websocket frame written, as ``(opcode, payload)``, in order."""
        frames, rest = split_frames(b"".join(self.writes), deflate=self.deflate)
        assert not rest, f"{len(rest)} bytes of an incomplete frame"
        return frames

    def messages(self) -> list[Any]:
        """Every text frame written, decoded as JSON."""
        return [orjson.loads(p) for op, p in self.frames() if op == 0x1]


class DeflateTransport(FakeTransport):
    """A fake transport of a connection that agreed to permessage-deflate."""

    deflate = True


class BufferingTransport(FakeTransport):
    """A socket that takes ``drain(n)`` bytes when told to; everything else waits unsent."""

    def write(self, data: bytes) -> None:
        super().write(data)
        self.backlog += len(data)

    def drain(self, n: int) -> None:
        self.backlog = max(0, self.backlog - n)


class RaisingTransport(FakeTransport):
    """A transport whose write raises while ``fault`` is set (a bug below the hub)."""

    def __init__(self) -> None:
        super().__init__()
        self.fault = True

    def write(self, data: bytes) -> None:
        if self.fault:
            raise RuntimeError("write failed")
        super().write(data)


class Clock:
    """A clock that moves only when a test sets ``now``."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def payload(frame: bytes) -> bytes:
    """The payload of one unmasked websocket frame."""
    (only,), rest = split_frames(frame)
    assert not rest
    return only[1]


def history_chunks(
    router: str,
    reset: bool,
    frames: Sequence[bytes],
    limit: int = MESSAGE_LIMIT,
    *,
    source: Source = DEFAULT_SOURCE,
) -> list[bytes]:
    """``gateway.history.history_messages`` as plain websocket frames, as a viewer gets them."""
    messages = history_messages(router, reset, frames, limit, source=source)
    return [message.plain for message in messages]
