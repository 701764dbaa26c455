"""A topic's history, pure: the frames kept for backfill and resume, which of them a subscriber
gets, and the ``history`` messages that carry them.

No message is 1 MiB or larger (``MESSAGE_LIMIT``, counted before any compression): a backfill
arrives as several ``history`` messages (``history_messages``), and a subscriber may ask for
less of it (``backfill_start``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import orjson

from gateway.core.rows import Rows, encode
from gateway.core.sources import DEFAULT_SOURCE, Source
from gateway.wire import TextMessage

MESSAGE_LIMIT: Final = 1024 * 1024
"""Every message the gateway writes has a payload smaller than this (1 MiB), whatever the
history: client libraries refuse larger ones by default (python-websockets at 1 MiB, aiohttp
from exactly ``max_msg_size`` on). The one exception is a single traffic frame of this size or
more (about 6,400 interfaces at ~160 bytes a row), which is never split: see ``Topic.publish``."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One traffic frame as kept in the history ring, encoded once: ``json`` as viewers of
    every row get it, and ``rows``, where each row lies in its encoding, from which the frame a
    filter lets through is spliced (``Rows.splice``), live or from the ring alike.

    ``rows.text`` is ``json`` itself, unless the frame came encoded from elsewhere (cluster
    mode) in bytes other than this process's encoding of it. No parsed form is kept: a ring of
    a 2,000-interface router held about 0.5 GB of dicts at 300 frames.
    """

    seq: int
    ts: float
    json: bytes
    rows: Rows

    @classmethod
    def encode(
        cls, data: dict[str, object], json: bytes | None = None, previous: Frame | None = None
    ) -> Frame:
        """The frame of a traffic message ``data`` (``seq``: int, ``ts``: float; else
        ``TypeError``), encoded once, with where each row lies (``gateway.core.rows.encode``).

        ``json``: the encoding viewers of every row get, when it came from elsewhere (the same
        message, possibly encoded by another orjson); else this process's. ``previous``: the
        frame before it, whose row layout (and filters' selections) this one shares while the
        interface set is the same.
        """
        seq, ts = data.get("seq"), data.get("ts")
        if type(seq) is not int or type(ts) is not float:
            raise TypeError("not a traffic frame: no int seq or float ts")
        rows = encode(data, None if previous is None else previous.rows.layout)
        if json is None or json == rows.text:
            json = rows.text
        return cls(seq, ts, json, rows)


def backfill_start(
    ring: Sequence[Frame],
    since: int | None,
    frames: int | None,
    seconds: float | None,
    now: float,
) -> tuple[int, bool]:
    """Which frames of ``ring`` (oldest first) a subscriber gets: ``(index of the first, reset)``.

    Always a tail of the ring (possibly empty: the index is then ``len(ring)``): the frames after
    ``since`` when given, of which only the last ``frames`` (a count; 0 for none) and only those
    made in the last ``seconds`` before ``now`` (Unix time, against each frame's ``ts``), when
    given. ``reset`` is true when ``since`` cannot be served (older than the ring, or unknown);
    the subscriber then gets the ring, as limited by ``frames`` and ``seconds``.
    """
    count = len(ring)
    start, reset = 0, False
    if since is not None:
        if not ring:
            reset = since != 0
        elif since > ring[-1].seq or since < ring[0].seq - 1:
            # Older than the ring (or from before a restart): everything we have, marked reset.
            reset = True
        else:
            start = count - _tail(ring, lambda f: f.seq > since)
    if frames is not None:
        start = max(start, count - frames)
    if seconds is not None:
        cutoff = now - seconds
        start = max(start, count - _tail(ring, lambda f: f.ts >= cutoff))
    return start, reset


def _tail(ring: Sequence[Frame], keep: Callable[[Frame], bool]) -> int:
    """How many frames at the end of ``ring`` satisfy ``keep``, counted back from the newest."""
    n = 0
    for frame in reversed(ring):
        if not keep(frame):
            break
        n += 1
    return n


def history_messages(
    router: str,
    reset: bool,
    frames: Sequence[bytes],
    limit: int = MESSAGE_LIMIT,
    *,
    source: Source = DEFAULT_SOURCE,
) -> list[TextMessage]:
    """The ``history`` messages carrying ``frames`` (encoded traffic frames of ``router``'s
    ``source``, oldest first), each with a JSON payload smaller than ``limit`` bytes (before
    any compression), to be framed plain or deflated (``TextMessage``).

    Each message is ``{"type":"history","router","source","reset","more","frames":[...]}``;
    ``more`` is true on every message but the last, and ``reset`` is the same on all. Frames
    stay in order and are never split: one that does not fit under ``limit`` by itself travels
    alone (and that message is larger than ``limit``). No frames gives one message with an
    empty list. The frames are spliced in as they are, never decoded and encoded again.
    """
    open_more, open_last = (
        orjson.dumps(
            {"type": "history", "router": router, "source": source, "reset": reset, "more": more}
        )[:-1]
        + b',"frames":['
        for more in (True, False)
    )
    close = b"]}"
    # Sized with the longer opening ("false"), so a group fits whichever message it ends up in.
    room = limit - len(open_last) - len(close)
    groups: list[list[bytes]] = []
    group: list[bytes] = []
    size = 0
    for frame in frames:
        extra = len(frame) + (1 if group else 0)  # a comma between frames
        if group and size + extra >= room:
            groups.append(group)
            group, size, extra = [], 0, len(frame)
        group.append(frame)
        size += extra
    groups.append(group)
    last = len(groups) - 1
    return [_splice(open_last if i == last else open_more, g, close) for i, g in enumerate(groups)]


def _splice(head: bytes, parts: list[bytes], tail: bytes) -> TextMessage:
    """The message ``head + b",".join(parts) + tail``, in pieces: each frame of it copies the
    parts once (never joined first, then copied again)."""
    pieces = [head]
    for i, part in enumerate(parts):
        if i:
            pieces.append(b",")
        pieces.append(part)
    pieces.append(tail)
    return TextMessage(*pieces)
