"""Row parsing, rates and frames give exactly what the plain, field-by-field code gives.

The plain code below is what the gateway ran before these paths were made fast (one function
call per field, one object per step), with the interface's comment since rows carry it; the
fast paths must agree with it on every input: the same samples, the same errors naming the same
field, the same rates and the same frame.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.frames import traffic_frame
from gateway.core.model import (
    PROPLIST,
    InterfaceRate,
    InterfaceSample,
    RowError,
    Sample,
    parse_interface_row,
)
from gateway.core.rates import compute_rates

# -- the plain code ------------------------------------------------------------------------------

_DECIMAL: Final = re.compile(r"[0-9]+")


def plain_row(row: Mapping[str, object]) -> InterfaceSample | None:
    if row.get(".id") is None or row.get("name") is None:
        return None

    def text(field: str) -> str:
        value = row.get(field, "")
        if isinstance(value, str):
            return value
        raise RowError(field, value, "text")

    def flag(field: str) -> bool:
        value = row.get(field, "false")
        if isinstance(value, str):
            if value.lower() in ("true", "yes"):
                return True
            if value.lower() in ("false", "no"):
                return False
        raise RowError(field, value, "true/false/yes/no")

    def counter(field: str) -> int:
        value = row.get(field, "0")
        if isinstance(value, str) and _DECIMAL.fullmatch(value):
            try:
                return int(value)
            except ValueError:
                pass
        raise RowError(field, value, "a non-negative integer counter")

    rx_byte, tx_byte, rx_packet, tx_packet = (
        counter(field) for field in ("rx-byte", "tx-byte", "rx-packet", "tx-packet")
    )
    return InterfaceSample(
        text(".id"),
        text("name"),
        text("type"),
        flag("running"),
        flag("disabled"),
        rx_byte,
        tx_byte,
        rx_packet,
        tx_packet,
        text("comment") or None,
    )


def plain_rates(prev: Sample | None, cur: Sample) -> list[InterfaceRate]:
    def rated(new: InterfaceSample, rates: tuple[float | None, ...]) -> InterfaceRate:
        rx_bps, tx_bps, rx_pps, tx_pps = rates
        return InterfaceRate(
            new.id,
            new.name,
            new.type,
            new.running,
            new.disabled,
            rx_bps,
            tx_bps,
            rx_pps,
            tx_pps,
            new.comment,
        )

    none = (None, None, None, None)
    if prev is None:
        return [rated(new, none) for new in cur.interfaces]
    dt = cur.at - prev.at
    if not (dt > 0 and math.isfinite(dt)):
        return [rated(new, none) for new in cur.interfaces]
    baseline = {old.id: old for old in prev.interfaces}
    result = []
    for new in cur.interfaces:
        old = baseline.get(new.id)
        rates: tuple[float | None, ...] = none
        if old is not None:
            deltas = (
                new.rx_byte - old.rx_byte,
                new.tx_byte - old.tx_byte,
                new.rx_packet - old.rx_packet,
                new.tx_packet - old.tx_packet,
            )
            if all(delta >= 0 for delta in deltas):
                try:
                    values = (
                        deltas[0] * 8 / dt,
                        deltas[1] * 8 / dt,
                        deltas[2] / dt,
                        deltas[3] / dt,
                    )
                except OverflowError:
                    values = None
                if values is not None and all(math.isfinite(v) for v in values):
                    rates = values
        result.append(rated(new, rates))
    return result


def plain_interfaces(rates: list[InterfaceRate]) -> list[dict[str, object]]:
    def rounded(rate: float | None) -> float | None:
        return None if rate is None else round(rate, 1)

    return [
        {
            "id": rate.id,
            "name": rate.name,
            "type": rate.type,
            "running": rate.running,
            "disabled": rate.disabled,
            "rx_bps": rounded(rate.rx_bps),
            "tx_bps": rounded(rate.tx_bps),
            "rx_pps": rounded(rate.rx_pps),
            "tx_pps": rounded(rate.tx_pps),
            **({} if rate.comment is None else {"comment": rate.comment}),
        }
        for rate in rates
    ]


# -- generated rows ------------------------------------------------------------------------------

# Flag words in other cases, digits that int() reads but a router never sends (Arabic-Indic,
# superscript, full-width), signs, spaces, underscores, exponents.
WORDS: Final = [
    *("true", "false", "yes", "no", "TRUE", "No", "ja", "", " "),
    *("0", "007", "12", "18446744073709551615", "-1", "+1", "1_000", " 12", "1.5", "1e3"),
    *("\u0663", "\u00b2", "\uff11\uff12", "ether1", "<pppoe-nu\u00f1ez>"),
]
VALUES: Final = st.one_of(
    st.sampled_from(WORDS),
    st.text(max_size=6),
    st.integers(0, 20).map(str),
    st.just("9" * 5000),
    st.sampled_from([5, True, None, 1.5]),
)


VALID: Final = {
    ".id": "*1",
    "name": "ether1",
    "type": "ether",
    "running": "true",
    "disabled": "false",
    "rx-byte": "1",
    "tx-byte": "2",
    "rx-packet": "3",
    "tx-packet": "4",
}


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    """A valid row with a few fields changed to any value, and a few left out."""
    fields = [*PROPLIST, "mtu"]
    changed = draw(st.lists(st.sampled_from(fields), max_size=3, unique=True))
    dropped = draw(st.lists(st.sampled_from(fields), max_size=2, unique=True))
    row: dict[str, Any] = {**VALID, **{field: draw(VALUES) for field in changed}}
    return {field: value for field, value in row.items() if field not in dropped}


def outcome_of(row: Mapping[str, Any], parse: Any) -> object:
    try:
        return parse(row)
    except RowError as exc:
        return ("RowError", exc.field, repr(exc.value), str(exc))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=rows())
def test_rows_parse_as_the_plain_code_parses_them(row: dict[str, Any]) -> None:
    """Every row, odd values and converted ones included, reads as before: the same sample or
    the same error naming the same field and value."""
    assert outcome_of(row, parse_interface_row) == outcome_of(row, plain_row)


COUNTERS: Final = st.one_of(
    st.integers(0, 2**64), st.integers(0, 10**400), st.sampled_from([0, 1, 2**53, 2**64 - 1])
)
TIMES: Final = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, 1.000001, 5e-324, 1e300]),
)


@st.composite
def samples(draw: st.DrawFn) -> Sample:
    ids = draw(st.lists(st.sampled_from(["*1", "*2", "*3", "*4"]), max_size=4, unique=True))
    interfaces = tuple(
        InterfaceSample(
            interface_id,
            draw(st.sampled_from(["ether1", "<pppoe-a>", ""])),
            "ether",
            draw(st.booleans()),
            draw(st.booleans()),
            draw(COUNTERS),
            draw(COUNTERS),
            draw(COUNTERS),
            draw(COUNTERS),
            draw(st.sampled_from([None, "uplink", "CID-100001"])),
        )
        for interface_id in ids
    )
    return Sample(draw(TIMES), interfaces)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prev=st.none() | samples(), cur=samples())
def test_rates_and_frames_are_those_of_the_plain_code(prev: Sample | None, cur: Sample) -> None:
    """Rates and the frame built from them are exactly as before, to the byte on the wire."""
    rates = compute_rates(prev, cur)
    assert list(rates) == plain_rates(prev, cur)
    frame = traffic_frame("r", 7, 1.5, 1.0, False, rates)
    plain = plain_interfaces(plain_rates(prev, cur))
    assert frame["interfaces"] == plain
    assert orjson.dumps(frame["interfaces"]) == orjson.dumps(plain)
