"""What the poller reads from a router, and the rates derived from it.

RouterOS answers ``/interface/print`` with one row per interface. Rows reach us as the router's
text, every value a ``str`` exactly as sent (``gateway.routeros.ExactApi``): an interface named
``1234``, ``no`` or ``1e3`` keeps that name, and the parser, which knows each field, reads
``running=true`` as a flag and ``rx-byte=123`` as a counter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

__all__ = [
    "PROPLIST",
    "InterfaceRate",
    "InterfaceSample",
    "RouterState",
    "RowError",
    "Sample",
    "parse_interface_row",
]

RouterState = Literal["connecting", "up", "down", "idle"]
"""A router's state as viewers see it (the ``state`` of a ``status`` frame).

``connecting``: a connection is being opened; ``up``: the last poll succeeded; ``down``: the last
attempt failed and the poller is backing off; ``idle``: nobody watches, so nobody polls.
"""

PROPLIST: Final[tuple[str, ...]] = (
    ".id",
    "name",
    "type",
    "running",
    "disabled",
    "rx-byte",
    "tx-byte",
    "rx-packet",
    "tx-packet",
    "comment",
)
"""The only fields the poller asks for, with ``=.proplist=``.

MikroTik asks API clients to name the fields they need: the router then skips computing the
others, and one short reply covers every interface.
"""

_COUNTERS: Final = ("rx-byte", "tx-byte", "rx-packet", "tx-packet")

# Digits only: no sign, no spaces, no underscores (which int() would accept). Leading zeros are
# still a counter.
_DECIMAL: Final = re.compile(r"[0-9]+")

_TRUE_WORDS: Final = frozenset({"true", "yes"})
_FALSE_WORDS: Final = frozenset({"false", "no"})
# The flag words as routers write them (lower case), for the common case; others go the long way.
_FLAGS: Final[dict[object, bool]] = {"true": True, "yes": True, "false": False, "no": False}


class RowError(ValueError):
    """A row from the router has a field that cannot be read (a counter that is not a number).

    ``field`` is the RouterOS field name and ``value`` the value as received, so the poller can
    log what the router sent.
    """

    def __init__(self, field: str, value: object, expected: str) -> None:
        super().__init__(f"{field}: expected {expected}, got {value!r}")
        self.field = field
        self.value = value


class InterfaceSample(NamedTuple):
    """One row of ``/interface/print`` as the poller reads it.

    ``id`` is RouterOS's ``.id`` (``*1``, ``*1A3``): stable for the life of an interface and
    never reused by a different one, unlike ``name``, which a re-dialed PPPoE customer keeps
    while getting a fresh interface with fresh counters. Counters are the router's cumulative
    totals since boot or the last ``reset-counters``.

    A named tuple, not a frozen dataclass: a big router makes thousands of these per poll, and
    a tuple is built in a quarter of the time. Immutable all the same.
    """

    id: str
    name: str
    type: str
    running: bool
    disabled: bool
    rx_byte: int
    tx_byte: int
    rx_packet: int
    tx_packet: int
    # Last, with a default: the interface's comment, None when it has none (most have none).
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """One poll of one router: every interface it reported, in the router's order.

    ``at`` is a monotonic time in seconds (never wall-clock time, which steps under NTP and would
    turn into absurd rates); it is only ever compared with another sample's ``at``.
    """

    at: float
    interfaces: tuple[InterfaceSample, ...]


class InterfaceRate(NamedTuple):
    """One interface's rates over the last poll interval.

    Rates are bits per second and packets per second. A rate is ``None`` where it is not defined:
    the first sample of an interface, or the tick after its counters were reset. A named tuple
    for the same reason as :class:`InterfaceSample`.
    """

    id: str
    name: str
    type: str
    running: bool
    disabled: bool
    rx_bps: float | None
    tx_bps: float | None
    rx_pps: float | None
    tx_pps: float | None
    comment: str | None = None


def parse_interface_row(row: Mapping[str, str]) -> InterfaceSample | None:
    """Turn one reply row (attribute -> the router's text) into a sample, or ``None`` for a row
    that names no interface.

    - ``.id`` or ``name`` missing: ``None`` (the caller skips the row; RouterOS only sends such
      rows when the proplist is wrong, and one odd row must not cost the whole poll).
    - ``name``, ``type``, ``.id``: the text as sent, never converted (``"007"``, ``"yes"``,
      ``" x "`` stay so). A missing ``type`` is ``""``.
    - ``comment``: the text as sent; missing or empty is ``None``.
    - ``running``, ``disabled``: the words true/false/yes/no in any case; missing is ``False``.
    - counters: a string of decimal digits (leading zeros allowed); missing is 0.

    Raises :class:`RowError`, naming the field and the value, for a flag or counter that is not
    one of those, and for a value that is not text at all (a client that converted it, so its
    original text is unknown: better a clear error than a wrong name shown to a viewer).
    """
    get = row.get
    row_id = get(".id")
    name = get("name")
    if row_id is None or name is None:
        return None
    # The common case in one go: text where text is due, flags as routers write them, counters
    # of ASCII digits. Anything else (or a value that is not text) is read field by field below,
    # which raises the error that names it.
    kind = get("type", "")
    running = get("running", "false")
    disabled = get("disabled", "false")
    rx_byte = get("rx-byte", "0")
    tx_byte = get("tx-byte", "0")
    rx_packet = get("rx-packet", "0")
    tx_packet = get("tx-packet", "0")
    comment = get("comment", "")
    if (
        type(comment) is str
        and type(row_id) is str
        and type(name) is str
        and type(kind) is str
        and type(running) is str
        and type(disabled) is str
        and running in _FLAGS
        and disabled in _FLAGS
        and type(rx_byte) is str
        and type(tx_byte) is str
        and type(rx_packet) is str
        and type(tx_packet) is str
        and rx_byte.isdigit()
        and tx_byte.isdigit()
        and rx_packet.isdigit()
        and tx_packet.isdigit()
        and (rx_byte + tx_byte + rx_packet + tx_packet).isascii()
    ):
        try:
            return InterfaceSample(
                row_id,
                name,
                kind,
                _FLAGS[running],
                _FLAGS[disabled],
                int(rx_byte),
                int(tx_byte),
                int(rx_packet),
                int(tx_packet),
                comment or None,
            )
        except ValueError:
            pass  # a counter with more digits than int() reads: named below
    return _parse_slowly(row)


def _parse_slowly(row: Mapping[str, str]) -> InterfaceSample:
    """:func:`parse_interface_row` of a row that has ``.id`` and ``name``, field by field."""
    rx_byte, tx_byte, rx_packet, tx_packet = (_counter(row, field) for field in _COUNTERS)
    return InterfaceSample(
        id=_text(row, ".id"),
        name=_text(row, "name"),
        type=_text(row, "type"),
        running=_flag(row, "running"),
        disabled=_flag(row, "disabled"),
        rx_byte=rx_byte,
        tx_byte=tx_byte,
        rx_packet=rx_packet,
        tx_packet=tx_packet,
        comment=_text(row, "comment") or None,
    )


def _text(row: Mapping[str, str], field: str) -> str:
    value: object = row.get(field, "")
    if isinstance(value, str):
        return value
    raise RowError(field, value, "text")


def _flag(row: Mapping[str, str], field: str) -> bool:
    value: object = row.get(field, "false")
    if isinstance(value, str):
        word = value.lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise RowError(field, value, "true/false/yes/no")


def _counter(row: Mapping[str, str], field: str) -> int:
    value: object = row.get(field, "0")
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        try:
            return int(value)
        except ValueError:
            # More digits than Python converts by default (sys.get_int_max_str_digits): no real
            # counter is that long, and the error must say which field it was.
            pass
    raise RowError(field, value, "a non-negative integer counter")
