"""Reading ``/interface/print`` rows: every value the router's text, exactly as sent."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core.model import PROPLIST, InterfaceSample, RowError, parse_interface_row
from gateway.emulator.device import Device, sized_config


def test_typical_row_becomes_a_sample() -> None:
    """A row of the router's text becomes a sample with the same numbers and flags."""
    row = {
        ".id": "*1",
        "name": "ether1",
        "type": "ether",
        "running": "true",
        "disabled": "false",
        "rx-byte": "123456789",
        "tx-byte": "987654321",
        "rx-packet": "1000",
        "tx-packet": "2000",
    }
    assert parse_interface_row(row) == InterfaceSample(
        id="*1",
        name="ether1",
        type="ether",
        running=True,
        disabled=False,
        rx_byte=123456789,
        tx_byte=987654321,
        rx_packet=1000,
        tx_packet=2000,
    )


@pytest.mark.parametrize(
    "text",
    ["1234", "007", "0", "-1", "1e3", "yes", "no", "true", "False", " x ", " ", "", "None"],
)
def test_text_fields_are_kept_exactly(text: str) -> None:
    """A name or type that looks like a number, a boolean or blank is shown exactly as sent."""
    sample = parse_interface_row({".id": "*2", "name": text, "type": text})
    assert sample is not None
    assert (sample.name, sample.type) == (text, text)


@pytest.mark.parametrize(("field", "value"), [("name", 1234), ("type", True), (".id", 7)])
def test_a_converted_text_field_is_an_error_not_a_guess(field: str, value: object) -> None:
    """A text field that some client already converted is reported, never shown as a guess."""
    row: dict[str, object] = {".id": "*2", "name": "ether1", "type": "ether", field: value}
    with pytest.raises(RowError) as caught:
        parse_interface_row(row)  # type: ignore[arg-type]  # what a converting client sends
    assert caught.value.field == field


def test_unrelated_fields_are_ignored() -> None:
    """Fields outside the proplist (mtu=auto) do not disturb the sample."""
    sample = parse_interface_row(
        {".id": "*4", "name": "bridge", "mtu": "auto", "comment": "42", "rx-byte": "5"}
    )
    assert sample is not None
    assert sample.rx_byte == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("yes", True), ("TRUE", True), ("false", False), ("no", False)],
)
def test_boolean_words_are_read(text: str, expected: bool) -> None:
    """Running and disabled flags sent as words read as booleans."""
    sample = parse_interface_row({".id": "*1", "name": "e", "running": text, "disabled": text})
    assert sample is not None
    assert (sample.running, sample.disabled) == (expected, expected)


def test_missing_flags_and_counters_default() -> None:
    """A row without flags or counters reads as not running, enabled, all counters zero."""
    sample = parse_interface_row({".id": "*9", "name": "wlan1"})
    assert sample == InterfaceSample("*9", "wlan1", "", False, False, 0, 0, 0, 0)


def test_counter_with_leading_zeros_is_a_number() -> None:
    """A counter with leading zeros ("007") still counts."""
    sample = parse_interface_row({".id": "*1", "name": "e", "rx-byte": "007", "tx-byte": "12"})
    assert sample is not None
    assert (sample.rx_byte, sample.tx_byte) == (7, 12)


def test_counters_near_two_to_the_64_are_kept_exactly() -> None:
    """64-bit counters keep every digit."""
    sample = parse_interface_row({".id": "*1", "name": "e", "rx-byte": str(2**64 - 1)})
    assert sample is not None
    assert sample.rx_byte == 2**64 - 1


@pytest.mark.parametrize("row", [{"name": "ether1"}, {".id": "*1"}, {}])
def test_row_without_id_or_name_is_skipped(row: dict[str, str]) -> None:
    """A row that names no interface yields nothing instead of an error."""
    assert parse_interface_row(row) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rx-byte", "12abc"),
        ("tx-byte", "-5"),
        ("rx-packet", "+1"),
        ("tx-packet", "yes"),
        ("rx-packet", 5),
        ("rx-byte", "1.5"),
        ("tx-byte", " 12"),
    ],
)
def test_bad_counter_names_the_field(field: str, value: object) -> None:
    """A counter that is not a non-negative integer is reported with its field and value."""
    with pytest.raises(RowError) as caught:
        parse_interface_row({".id": "*1", "name": "e", field: value})  # type: ignore[dict-item]
    assert caught.value.field == field
    assert caught.value.value == value
    assert field in str(caught.value)
    assert repr(value) in str(caught.value)


def test_bad_flag_names_the_field() -> None:
    """A running flag that is not a boolean word is reported with its field."""
    with pytest.raises(RowError, match="running"):
        parse_interface_row({".id": "*1", "name": "e", "running": "maybe"})


def test_row_error_is_a_value_error() -> None:
    """Callers that catch ValueError also catch a bad row."""
    assert issubclass(RowError, ValueError)


class ReadLog(dict[str, str]):
    """A row that records which of its fields the parser looks at."""

    def __init__(self, row: dict[str, str]) -> None:
        super().__init__(row)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def emulator_rows() -> list[dict[str, str]]:
    """Every attribute of every interface, as the emulator prints them after a minute of traffic
    (one interface disabled, PPPoE customers online)."""
    now = [100.0]
    device = Device(sized_config(8, pppoe=3), clock=lambda: now[0], wall=lambda: 1.7e9 + now[0])
    now[0] += 60.0
    device.set_disabled("ether2", True)
    return [device.interface_row(iface) for iface in device.iter_interfaces()]


def test_parser_reads_only_the_fields_the_poller_asks_for() -> None:
    """The parser looks at exactly the PROPLIST fields of full rows, so the proplist is enough."""
    for full in emulator_rows():
        row = ReadLog(full)
        assert len(row) > len(PROPLIST)
        parse_interface_row(row)
        assert row.read == set(PROPLIST), full["name"]
        # An interface without a comment has no comment field at all.
        only = {field: full[field] for field in PROPLIST if field in full}
        assert parse_interface_row(only) == parse_interface_row(full)


@pytest.mark.parametrize("field", PROPLIST)
def test_parser_needs_every_field_the_poller_asks_for(field: str) -> None:
    """Leaving out any one PROPLIST field changes what the parser makes of some row."""
    changed = []
    for full in emulator_rows():
        only = {name: value for name, value in full.items() if name in PROPLIST}
        without = {name: value for name, value in only.items() if name != field}
        changed.append(parse_interface_row(without) != parse_interface_row(only))
    assert any(changed)


@pytest.mark.parametrize(("text", "expected"), [("uplink", "uplink"), ("", None), (" 42 ", " 42 ")])
def test_comment_is_kept_as_sent_and_empty_is_none(text: str, expected: str | None) -> None:
    """An interface's comment is its text exactly; an empty comment is no comment."""
    sample = parse_interface_row({".id": "*1", "name": "e", "comment": text})
    assert sample is not None
    assert sample.comment == expected


def test_missing_comment_is_none() -> None:
    """An interface without a comment has None, not an empty text."""
    sample = parse_interface_row({".id": "*1", "name": "e"})
    assert sample is not None
    assert sample.comment is None
