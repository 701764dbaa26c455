"""The sources a router serves besides its interfaces, and PPP sessions: what the poller asks for
and how their rows are read.

A *source* is one table of the router that viewers watch, polled with one request per tick
while watched (README, "Sources"): ``interfaces`` (``gateway.core.model``), ``queues`` (simple
queues) and ``hotspot`` (hotspot users logged in). PPP sessions (``/ppp/active``) are not a
source: they are read now and then and joined into the rows of the others
(``gateway.core.sessions``).

Rows reach us as the router's text (every value a ``str``, see ``gateway.routeros.ExactApi``).
The readers here are tolerant of what a router may leave out: an absent field is ``None`` (an
absent flag ``False``), never an error. What they cannot read (a counter that is not a number,
a flag that is not a flag word, a value some client already converted) raises
:class:`gateway.core.model.RowError` naming the field, and the poller skips that row. Formats
(``gateway/emulator/customers.py`` cites their sources): paired values are ``upload/download``
from the customer's side as plain integers (``bytes=45666/172388``, ``max-limit=0/0`` for
unlimited); durations are ``1w2d3h4m5s`` (RouterOS 6.x and 7), or ``6w6d18:33:07`` on older
routers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Generic, Literal, NamedTuple, TypeVar

from gateway.core.model import PROPLIST, RowError

__all__ = [
    "COMMANDS",
    "DEFAULT_SOURCE",
    "HOTSPOT_PROPLIST",
    "PPP_SERVICES",
    "PROPLISTS",
    "QUEUE_PROPLIST",
    "SESSIONS_COMMAND",
    "SESSION_PROPLIST",
    "SOURCES",
    "Counters",
    "HotspotSample",
    "PppSession",
    "QueueSample",
    "Reading",
    "Source",
    "parse_duration",
    "parse_hotspot_row",
    "parse_queue_row",
    "parse_session_row",
    "ppp_interface",
]

Source = Literal["interfaces", "queues", "hotspot"]
"""A table of the router that viewers watch (``"source"`` in a subscribe; a frame's row key)."""

SOURCES: Final[tuple[Source, ...]] = ("interfaces", "queues", "hotspot")
"""Every source, in the order a tick polls them."""

DEFAULT_SOURCE: Final[Source] = "interfaces"
"""The source of a subscription that names none (the only one before sources existed)."""

QUEUE_PROPLIST: Final[tuple[str, ...]] = (
    ".id",
    "name",
    "target",
    "parent",
    "comment",
    "dynamic",
    "disabled",
    "max-limit",
    "bytes",
    "packets",
)
"""What the poller asks ``/queue/simple/print`` for. Not ``rate``/``packet-rate``: the router
averages those over its own window, while frames carry counter deltas over the gateway's
interval, as for interfaces; nor ``limit-at`` (the plan a customer pays for is ``max-limit``)."""

HOTSPOT_PROPLIST: Final[tuple[str, ...]] = (
    ".id",
    "server",
    "user",
    "address",
    "mac-address",
    "uptime",
    "bytes-in",
    "bytes-out",
    "packets-in",
    "packets-out",
    "comment",
)
"""What the poller asks ``/ip/hotspot/active/print`` for."""

SESSION_PROPLIST: Final[tuple[str, ...]] = (
    ".id",
    "name",
    "service",
    "caller-id",
    "address",
    "uptime",
)
"""What the poller asks ``/ppp/active/print`` for (PPP sessions have no counters there: their
traffic is their interface's and queue's)."""

COMMANDS: Final[Mapping[Source, str]] = {
    "interfaces": "/interface/print",
    "queues": "/queue/simple/print",
    "hotspot": "/ip/hotspot/active/print",
}
"""The command each source is polled with (one request per tick while watched)."""

PROPLISTS: Final[Mapping[Source, tuple[str, ...]]] = {
    "interfaces": PROPLIST,
    "queues": QUEUE_PROPLIST,
    "hotspot": HOTSPOT_PROPLIST,
}
"""The ``=.proplist=`` of each source's command."""

SESSIONS_COMMAND: Final = "/ppp/active/print"
"""The command PPP sessions are read with."""

PPP_SERVICES: Final = frozenset({"pppoe", "l2tp", "pptp", "sstp", "ovpn"})
"""The PPP services whose server interfaces RouterOS names ``<SERVICE-USER>``."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Reading(Generic[T]):
    """One poll of one source: its rows in the router's order, read at ``at`` (monotonic
    seconds, only ever compared with another reading's)."""

    at: float
    rows: tuple[T, ...]


class Counters(NamedTuple):
    """A row's cumulative counters from the customer's side: bytes and packets it sent (up)
    and received (down)."""

    up_bytes: int
    down_bytes: int
    up_packets: int
    down_packets: int


class QueueSample(NamedTuple):
    """One row of ``/queue/simple/print`` as the poller reads it.

    ``max_up``/``max_down``: the plan (``max-limit``) in bits/s, None when unlimited (``0``) or
    not sent. ``counters``: None when the router sent no ``bytes`` or ``packets``. ``parent``:
    None for ``none``. ``target``: as sent (comma-separated addresses or interfaces).
    """

    id: str
    name: str
    target: str | None
    parent: str | None
    comment: str | None
    dynamic: bool
    disabled: bool
    max_up: int | None
    max_down: int | None
    counters: Counters | None


class HotspotSample(NamedTuple):
    """One row of ``/ip/hotspot/active/print``: a user logged in. ``uptime`` in seconds (None
    when absent or unreadable); ``counters`` up = ``bytes-in`` (what the user sent), None when
    the router sent none."""

    id: str
    user: str
    server: str | None
    address: str | None
    mac: str | None
    uptime: int | None
    comment: str | None
    counters: Counters | None


class PppSession(NamedTuple):
    """One row of ``/ppp/active/print``: a PPP customer logged in. ``uptime`` in seconds as the
    router reported it (None when absent or unreadable)."""

    id: str
    user: str
    service: str | None
    caller_id: str | None
    address: str | None
    uptime: int | None


def ppp_interface(service: str | None, user: str) -> str | None:
    """The name RouterOS gives the server interface of a PPP session: ``<pppoe-alice>`` for the
    ``pppoe`` session of ``alice``; None for a service that has none of that form."""
    if service not in PPP_SERVICES:
        return None
    return f"<{service}-{user}>"


_TRUE: Final = frozenset({"true", "yes"})
_FALSE: Final = frozenset({"false", "no"})
_DIGITS: Final = re.compile(r"[0-9]+")
# RouterOS 6.x and 7: "1w2d3h4m5s" with zero parts left out (and "250ms" below a second);
# older: "6w6d18:33:07" or "18:33:07".
_UNITS: Final = re.compile(
    r"(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m(?!s))?"
    r"(?:([0-9]+)s)?(?:([0-9]+)ms)?"
)
_CLOCK: Final = re.compile(r"(?:([0-9]+)w)?(?:([0-9]+)d)?([0-9]+):([0-9]{2}):([0-9]{2})")


def parse_duration(text: str | None) -> int | None:
    """Whole seconds of a RouterOS duration (``1w2d3h4m5s``, ``3m``, ``0s``, ``250ms``,
    ``6w6d18:33:07``, ``18:33:07``); None for None, an empty text or anything else."""
    if not text:
        return None
    match = _UNITS.fullmatch(text)
    if match is not None and any(match.groups()):
        weeks, days, hours, minutes, secs, _ = (int(g) if g else 0 for g in match.groups())
    else:
        match = _CLOCK.fullmatch(text)
        if match is None:
            return None
        weeks, days, hours, minutes, secs = (int(g) if g else 0 for g in match.groups())
    return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + secs


def _text(row: Mapping[str, str], field: str) -> str | None:
    """The field's text as sent; None when absent or empty."""
    value: object = row.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    raise RowError(field, value, "text")


def _flag(row: Mapping[str, str], field: str) -> bool:
    value: object = row.get(field, "false")
    if isinstance(value, str):
        word = value.lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise RowError(field, value, "true/false/yes/no")


def _number(value: str) -> int | None:
    """A non-negative integer of ASCII digits, or None (also for more digits than ``int``
    reads: no counter is that long)."""
    if not _DIGITS.fullmatch(value):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _pair(row: Mapping[str, str], field: str) -> tuple[int, int] | None:
    """An ``upload/download`` pair of non-negative integers; None when absent. Raises RowError
    for anything else (a counter that cannot be read makes the row unreadable)."""
    value: object = row.get(field)
    if value is None:
        return None
    if isinstance(value, str):
        up, slash, down = value.partition("/")
        first, second = _number(up), _number(down)
        if slash and first is not None and second is not None:
            return first, second
    raise RowError(field, value, "a pair of non-negative integers, upload/download")


def _counter(row: Mapping[str, str], field: str) -> int | None:
    value: object = row.get(field)
    if value is None:
        return None
    if isinstance(value, str):
        number = _number(value)
        if number is not None:
            return number
    raise RowError(field, value, "a non-negative integer counter")


def _limit(row: Mapping[str, str]) -> tuple[int | None, int | None]:
    """The plan from ``max-limit``: bits/s each way, None for ``0`` (unlimited). A value that is
    not a pair of integers leaves the plan unknown (None) rather than the row unread: the
    counters, and so the rates, do not depend on it."""
    value: object = row.get("max-limit")
    if isinstance(value, str):
        up, slash, down = value.partition("/")
        first, second = _number(up), _number(down)
        if slash and first is not None and second is not None:
            return first or None, second or None
        return None, None
    if value is None:
        return None, None
    raise RowError("max-limit", value, "text")


# Flag words as routers write them, for the common case; others go the long way.
_FLAGS: Final[dict[object, bool]] = {"true": True, "yes": True, "false": False, "no": False}


def parse_queue_row(row: Mapping[str, str]) -> QueueSample | None:
    """A simple queue from its row, or None for a row without ``.id`` or ``name``.

    Raises RowError (naming the field and value) for counters that are not ``up/down`` pairs of
    integers, flags that are not flag words and values that are not text.
    """
    # The common case in one go (a big router has thousands of queues per tick): text where
    # text is due, flags as routers write them, pairs of ASCII digits. Anything else is read
    # field by field, which raises the error that names it.
    get = row.get
    row_id, name = get(".id"), get("name")
    target, parent, comment = get("target"), get("parent"), get("comment")
    dynamic, disabled = get("dynamic", "false"), get("disabled", "false")
    traffic, packets, limit = get("bytes"), get("packets"), get("max-limit")
    if (
        type(row_id) is str
        and type(name) is str
        and row_id
        and name
        and (target is None or type(target) is str)
        and (parent is None or type(parent) is str)
        and (comment is None or type(comment) is str)
        and type(dynamic) is str
        and type(disabled) is str
        and dynamic in _FLAGS
        and disabled in _FLAGS
        and type(traffic) is str
        and type(packets) is str
        and type(limit) is str
    ):
        up, slash, down = traffic.partition("/")
        up_packets, slash_packets, down_packets = packets.partition("/")
        max_up, slash_limit, max_down = limit.partition("/")
        digits = up + down + up_packets + down_packets + max_up + max_down
        if (
            slash
            and slash_packets
            and slash_limit
            and up.isdigit()
            and down.isdigit()
            and up_packets.isdigit()
            and down_packets.isdigit()
            and max_up.isdigit()
            and max_down.isdigit()
            and digits.isascii()
        ):
            try:
                return QueueSample(
                    row_id,
                    name,
                    target or None,
                    None if not parent or parent == "none" else parent,
                    comment or None,
                    _FLAGS[dynamic],
                    _FLAGS[disabled],
                    int(max_up) or None,
                    int(max_down) or None,
                    Counters(int(up), int(down), int(up_packets), int(down_packets)),
                )
            except ValueError:
                pass  # more digits than int() reads: the long way says which field
    return _parse_queue_slowly(row)


def _parse_queue_slowly(row: Mapping[str, str]) -> QueueSample | None:
    """:func:`parse_queue_row`, field by field."""
    row_id, name = _text(row, ".id"), _text(row, "name")
    if row_id is None or name is None:
        return None
    parent = _text(row, "parent")
    traffic = _pair(row, "bytes")
    packets = _pair(row, "packets")
    max_up, max_down = _limit(row)
    return QueueSample(
        row_id,
        name,
        _text(row, "target"),
        None if parent == "none" else parent,
        _text(row, "comment"),
        _flag(row, "dynamic"),
        _flag(row, "disabled"),
        max_up,
        max_down,
        None
        if traffic is None or packets is None
        else Counters(traffic[0], traffic[1], packets[0], packets[1]),
    )


def parse_hotspot_row(row: Mapping[str, str]) -> HotspotSample | None:
    """A hotspot user from its row, or None for a row without ``.id`` or ``user``.

    ``bytes-in``/``packets-in`` (what the user sent) are the up counters. Raises RowError for a
    counter that is not an integer and for values that are not text.
    """
    row_id, user = _text(row, ".id"), _text(row, "user")
    if row_id is None or user is None:
        return None
    counts = [
        _counter(row, field) for field in ("bytes-in", "bytes-out", "packets-in", "packets-out")
    ]
    return HotspotSample(
        row_id,
        user,
        _text(row, "server"),
        _text(row, "address"),
        _text(row, "mac-address"),
        parse_duration(_text(row, "uptime")),
        _text(row, "comment"),
        None if None in counts else Counters(*counts),  # type: ignore[arg-type]
    )


def parse_session_row(row: Mapping[str, str]) -> PppSession | None:
    """A PPP session from its row, or None for a row without ``.id`` or ``name``. Raises
    RowError for values that are not text."""
    row_id, user = _text(row, ".id"), _text(row, "name")
    if row_id is None or user is None:
        return None
    return PppSession(
        row_id,
        user,
        _text(row, "service"),
        _text(row, "caller-id"),
        _text(row, "address"),
        parse_duration(_text(row, "uptime")),
    )
