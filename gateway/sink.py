"""One viewer's outgoing side: prebuilt frames written without waiting, and the slow-consumer rule.

A ``Sink`` never awaits. A viewer that cannot keep up does not slow the others: while its socket
is backed up, new traffic frames for it are skipped (the latest wins), and one that stays behind
is reported once (its viewer closes it with 4408 and its buffers are freed). The rule, as the
README's "Websocket protocol" section states it: a subscriber is behind when more than 1 MiB of
what was written to it is unsent, or when it has accepted nothing for 10 s.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final, Protocol

# A subscriber is "behind" once this much of what we wrote is still unsent...
BEHIND_BYTES: Final = 1024 * 1024
# ...or once its socket has not drained for this long.
BEHIND_SECONDS: Final = 10.0
# Above this much unsent data, traffic frames for the subscriber are skipped (latest wins):
# the socket is backed up, so a newer frame will serve the viewer better than a queue of old ones.
SKIP_BYTES: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """The slow-consumer rule's numbers (``server.slow_consumer_bytes`` and ``_seconds``).

    ``behind_bytes`` unsent (a history being taken aside) or ``behind_seconds`` without taking
    anything make a viewer "behind"; past ``skip_bytes`` (a quarter of ``behind_bytes``) its
    live frames are skipped, latest wins. One object per app, shared by every sink.
    """

    behind_bytes: int = BEHIND_BYTES
    behind_seconds: float = BEHIND_SECONDS

    @property
    def skip_bytes(self) -> int:
        return self.behind_bytes // 4


DEFAULT_LIMITS: Final = Limits()

# Sink.fed_at of a viewer never fed (one shared float, not one per viewer).
NEVER: Final = float("-inf")


class Transport(Protocol):
    """The part of ``asyncio.WriteTransport`` a sink uses (a seam for unit tests)."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...


def plain_socket(transport: Transport) -> socket.socket | None:
    """The socket of a plain (not TLS) asyncio selector transport, or None.

    ``_sock`` is asyncio's own attribute (private, but the same from 3.4 to 3.14); TLS and other
    transports have none, and their sinks write through the transport. Sending on this socket
    object (never on a copy of its file descriptor) cannot reach another connection: once the
    transport closes it, a send fails with EBADF. ``tests/gateway/test_sink.py`` fails if a new
    Python stops offering it, rather than letting every write take the slower path unnoticed.
    """
    sock = getattr(transport, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


class Sink:
    """One viewer's outgoing side: writes prebuilt frames and watches for falling behind.

    Every write is synchronous; the sink never awaits. When the viewer falls behind,
    ``fell_behind()`` is called once (the viewer closes the websocket with 4408 from its own
    task). When it is found dead (a ping of ``Hub.heartbeat`` unanswered for a whole period),
    ``died()`` is called once instead (the viewer drops the connection: no close handshake with
    a dead peer). Both call the callbacks given here; the websocket viewer, one object per
    connection, is a subclass that overrides them instead.

    Behind means more than ``limits.behind_bytes`` unsent (1 MiB by default), or nothing
    accepted for ``limits.behind_seconds`` (10 s). A backfill (``write(..., backfill=True)``,
    once per history message) may be much larger than 1 MiB in all; its bytes are allowed on top
    of the limit until they have drained, so a big history on a slow link is not mistaken for a
    stalled viewer while the viewer is still taking data.
    """

    deflate: ClassVar[bool] = False
    """Whether this sink's connection agreed to permessage-deflate: then it is written the
    compressed form of a message (``TextMessage.frame``). A class attribute (the websocket
    viewer's subclass for such connections sets it), so it costs a connection nothing."""

    __slots__ = (
        "_allowance",
        "_callbacks",
        "_clock",
        "_sock",
        "_unsent_after",
        "awaiting_pong",
        "behind",
        "dropped",
        "fed_at",
        "limits",
        "restricted",
        "stuck_since",
        "transport",
        "written",
    )

    def __init__(
        self,
        transport: Transport,
        on_behind: Callable[[], None] | None = None,
        *,
        on_dead: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.transport = transport
        # The rule's numbers (one object per app); read only while data waits unsent, never on
        # the hot path.
        self.limits = limits
        # The transport's own socket, to send on directly while nothing waits in the transport
        # (see write()); None when that is not known to be safe.
        self._sock = plain_socket(transport)
        # (on_behind, on_dead), or None when a subclass overrides fell_behind() and died().
        self._callbacks = None if on_behind is on_dead is None else (on_behind, on_dead)
        self._clock = clock
        # Monotonic time of the last traffic frame written; set by Topic.publish. A viewer fed
        # recently needs no heartbeat: the frames are its heartbeat (see Hub.heartbeat).
        self.fed_at = NEVER
        # True from a heartbeat ping until the viewer sends anything (its pong); still True at
        # the next heartbeat means the peer is dead. Cleared by the viewer's read loop.
        self.awaiting_pong = False
        # Since when the viewer has accepted nothing while data waited; None while it takes data.
        self.stuck_since: float | None = None
        # Unsent bytes right after our previous write: less than that now means it read some.
        self._unsent_after = 0
        # Backfill bytes still allowed above the limit; shrinks as the backlog drains.
        self._allowance = 0
        self.behind = False
        # Traffic frames skipped for this viewer while its socket was backed up.
        self.dropped = 0
        # Frames written to this viewer (any kind: its audit line's messages out).
        self.written = 0
        # Whether this viewer sees a customer's share only (its token scopes rows): it is shown
        # statuses without the router's error text (``gateway.core.messages.public_status``).
        self.restricted = False

    def write(self, frame: bytes, droppable: bool = False, backfill: bool = False) -> bool | None:
        """Write one frame. Returns True if it was written (counted in ``written``), None if it
        was skipped (a droppable frame while the socket is backed up; counted in ``dropped``),
        False if the sink takes nothing more (behind, or its transport is closing).

        ``droppable`` frames (live traffic) are skipped while the socket is backed up (the next
        frame will be newer); others (status, history, errors) are always queued, as a viewer
        needs them to make sense of what follows.
        """
        transport = self.transport
        if self.behind or transport.is_closing():
            return False
        self.written += 1  # taken back below if the frame is skipped
        unsent = transport.get_write_buffer_size()
        if unsent:
            limits = self.limits
            if unsent < self._unsent_after:
                self.stuck_since = None  # it accepted some data since our last write
            elif self.stuck_since is None:
                self.stuck_since = self._clock()
            elif self._clock() - self.stuck_since > limits.behind_seconds:
                self.written -= 1
                self.fall_behind()
                return False
            self._allowance = min(self._allowance, unsent)
            excess = unsent - self._allowance
            if excess + len(frame) > limits.behind_bytes and not backfill:
                self.written -= 1
                self.fall_behind()
                return False
            if droppable and excess > limits.skip_bytes:
                self.written -= 1
                self.dropped += 1
                self._unsent_after = unsent
                return None
        else:
            if self._allowance or self._unsent_after or self.stuck_since is not None:
                self.stuck_since = None  # it drained: whatever was waiting has gone
                self._allowance = self._unsent_after = 0
            if not backfill:
                # The socket keeps up: the hot path, kept short. What a partial send leaves
                # queued is not measured (0 is assumed): the next write sees a backlog it cannot
                # credit as progress and starts the stall clock then, one write early at worst.
                sock = self._sock
                if sock is None:
                    transport.write(frame)
                    return True
                # Nothing waits in the transport, so sending on its socket keeps the byte order,
                # and skips transport.write()'s own checks: about 5% of the gateway's CPU per
                # frame at 10,000 viewers (loadtest/RESULTS.md, "The direct send, measured").
                try:
                    sent = sock.send(frame)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    transport.write(frame)  # the transport meets the error and closes itself
                    return True
                if sent != len(frame):
                    transport.write(frame[sent:])  # the rest waits in the transport, in order
                return True
        transport.write(frame)
        if backfill:
            self._allowance += len(frame)
        self._unsent_after = transport.get_write_buffer_size()
        return True

    def fall_behind(self) -> None:
        """The viewer is behind: take nothing more, and report it (``fell_behind``) once."""
        if not self.behind:
            self.behind = True
            self.fell_behind()

    def dead(self) -> None:
        """The peer did not answer a ping for a whole heartbeat period: stop writing, drop it."""
        if not self.behind:
            self.behind = True
            self.died()

    def fell_behind(self) -> None:
        """Called once when the viewer falls behind (while the hub iterates its subscribers)."""
        if self._callbacks is not None and self._callbacks[0] is not None:
            self._callbacks[0]()

    def died(self) -> None:
        """Called once when the peer is found dead; ``on_dead``, else ``on_behind``."""
        if self._callbacks is not None:
            callback = self._callbacks[1] or self._callbacks[0]
            if callback is not None:
                callback()
