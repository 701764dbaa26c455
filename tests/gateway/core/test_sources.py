"""Reading simple queues, hotspot users and PPP sessions: the router's text, tolerantly."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.model import RowError
from gateway.core.sources import (
    HOTSPOT_PROPLIST,
    QUEUE_PROPLIST,
    SESSION_PROPLIST,
    Counters,
    HotspotSample,
    PppSession,
    QueueSample,
    _parse_queue_slowly,
    parse_duration,
    parse_hotspot_row,
    parse_queue_row,
    parse_session_row,
    ppp_interface,
)
from gateway.emulator.device import Device, DeviceConfig

# A row as a collector captured it from a real router (see gateway/emulator/customers.py).
REAL_QUEUE: dict[str, str] = {
    ".id": "*1",
    "name": "queue1",
    "target": "192.168.88.10/32",
    "parent": "none",
    "packet-marks": "",
    "priority": "8/8",
    "queue": "default-small/default-small",
    "limit-at": "0/0",
    "max-limit": "1000000000/1000000000",
    "burst-limit": "0/0",
    "burst-threshold": "0/0",
    "burst-time": "0s/0s",
    "bucket-size": "0.1/0.1",
    "bytes": "45666/172388",
    "total-bytes": "0",
    "packets": "406/297",
    "total-packets": "0",
    "rate": "17424/62464",
    "packet-rate": "4/8",
    "invalid": "false",
    "dynamic": "false",
    "disabled": "false",
}


def test_a_real_queue_row_reads_as_the_customer_sees_it() -> None:
    """A captured queue row gives its plan and its counters, upload first."""
    assert parse_queue_row(REAL_QUEUE) == QueueSample(
        id="*1",
        name="queue1",
        target="192.168.88.10/32",
        parent=None,
        comment=None,
        dynamic=False,
        disabled=False,
        max_up=1_000_000_000,
        max_down=1_000_000_000,
        counters=Counters(45666, 172388, 406, 297),
    )


def test_unlimited_plan_is_none_each_way() -> None:
    """max-limit 0 means unlimited: no plan, in either direction."""
    sample = parse_queue_row({**REAL_QUEUE, "max-limit": "0/20000000"})
    assert sample is not None
    assert (sample.max_up, sample.max_down) == (None, 20_000_000)


@pytest.mark.parametrize("value", ["10M/50M", "abc", "5", ""])
def test_an_unreadable_plan_is_unknown_not_an_error(value: str) -> None:
    """A max-limit the reader does not understand leaves the plan unknown; the row still reads."""
    sample = parse_queue_row({**REAL_QUEUE, "max-limit": value})
    assert sample is not None
    assert (sample.max_up, sample.max_down) == (None, None)
    assert sample.counters == Counters(45666, 172388, 406, 297)


def test_queue_with_parent_comment_and_dynamic_flag() -> None:
    """A child queue names its parent; comments and flags are read as sent."""
    sample = parse_queue_row(
        {
            **REAL_QUEUE,
            "parent": "building-7",
            "comment": "CID-100042 Müller",
            "dynamic": "true",
            "disabled": "yes",
        }
    )
    assert sample is not None
    assert (sample.parent, sample.comment, sample.dynamic, sample.disabled) == (
        "building-7",
        "CID-100042 Müller",
        True,
        True,
    )


def test_absent_fields_read_as_none_never_an_error() -> None:
    """A queue row with only its id and name reads, its other fields unknown."""
    assert parse_queue_row({".id": "*7", "name": "q"}) == QueueSample(
        "*7", "q", None, None, None, False, False, None, None, None
    )


@pytest.mark.parametrize("row", [{"name": "q"}, {".id": "*1"}, {".id": "", "name": "q"}, {}])
def test_queue_row_without_id_or_name_is_skipped(row: dict[str, str]) -> None:
    """A row that names no queue yields nothing instead of an error."""
    assert parse_queue_row(row) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("bytes", "12/x"), ("bytes", "12"), ("packets", "-1/2"), ("dynamic", "maybe"), ("name", 5)],
)
def test_unreadable_queue_field_names_the_field(field: str, value: Any) -> None:
    """A counter pair or flag that cannot be read makes the row unreadable, naming the field."""
    with pytest.raises(RowError) as caught:
        parse_queue_row({**REAL_QUEUE, field: value})
    assert caught.value.field == field


def test_emulated_queues_read_and_use_only_the_proplist() -> None:
    """Every emulated queue (static, PPPoE, hotspot) reads from its proplist fields alone."""
    device = Device(DeviceConfig(queues=12, pppoe=3, hotspot=2), clock=lambda: 50.0)
    rows = [device.queue_row(queue) for queue in device.queues.values()]
    assert len(rows) == 17
    for full in rows:
        only = {k: v for k, v in full.items() if k in QUEUE_PROPLIST}
        assert parse_queue_row(only) == parse_queue_row(full) is not None


HOTSPOT_ROW: dict[str, str] = {
    ".id": "*5",
    "server": "hotspot1",
    "user": "guest0007",
    "address": "10.5.50.8",
    "mac-address": "3C:2E:FF:00:00:07",
    "login-by": "cookie",
    "uptime": "30m30s",
    "idle-time": "0s",
    "session-time-left": "29m30s",
    "keepalive-timeout": "2m",
    "bytes-in": "1200",
    "bytes-out": "56000",
    "packets-in": "12",
    "packets-out": "40",
    "radius": "false",
    "comment": "room 12",
}


def test_hotspot_row_reads_with_bytes_in_as_upload() -> None:
    """What the user sent (bytes-in) is its upload; the uptime is seconds."""
    assert parse_hotspot_row(HOTSPOT_ROW) == HotspotSample(
        id="*5",
        user="guest0007",
        server="hotspot1",
        address="10.5.50.8",
        mac="3C:2E:FF:00:00:07",
        uptime=1830,
        comment="room 12",
        counters=Counters(1200, 56000, 12, 40),
    )


def test_hotspot_row_without_counters_has_none() -> None:
    """A router that sends no byte counters (no capture exists) gives a row without counters."""
    row = {k: v for k, v in HOTSPOT_ROW.items() if not k.startswith(("bytes", "packets"))}
    sample = parse_hotspot_row(row)
    assert sample is not None
    assert sample.counters is None


@pytest.mark.parametrize("row", [{"user": "u"}, {".id": "*1"}, {".id": "*1", "name": "u"}])
def test_hotspot_row_without_id_or_user_is_skipped(row: dict[str, str]) -> None:
    """A hotspot row that names no user yields nothing."""
    assert parse_hotspot_row(row) is None


def test_hotspot_bad_counter_names_the_field() -> None:
    """A byte counter that is not a number makes the row unreadable, naming the field."""
    with pytest.raises(RowError, match="bytes-out"):
        parse_hotspot_row({**HOTSPOT_ROW, "bytes-out": "1.5k"})


def test_emulated_hotspot_users_read_from_the_proplist() -> None:
    """Every emulated hotspot user reads from its proplist fields alone."""
    device = Device(DeviceConfig(hotspot=6), clock=lambda: 50.0)
    for session in device.hotspot_active.values():
        full = device.hotspot_active_row(session)
        only = {k: v for k, v in full.items() if k in HOTSPOT_PROPLIST}
        assert parse_hotspot_row(only) == parse_hotspot_row(full) is not None


def test_ppp_session_row() -> None:
    """A PPP session gives its user, service, caller id, address and uptime in seconds."""
    row = {
        ".id": "*1A",
        "name": "alice",
        "service": "pppoe",
        "caller-id": "48:A9:8A:00:00:01",
        "address": "100.64.0.2",
        "uptime": "1w2d3h4m5s",
        "encoding": "",
        "session-id": "0x81000001",
        "limit-bytes-in": "0",
        "limit-bytes-out": "0",
        "radius": "false",
    }
    assert parse_session_row(row) == PppSession(
        "*1A", "alice", "pppoe", "48:A9:8A:00:00:01", "100.64.0.2", 788645
    )
    only = {k: v for k, v in row.items() if k in SESSION_PROPLIST}
    assert parse_session_row(only) == parse_session_row(row)


def test_ppp_session_without_name_is_skipped() -> None:
    """A session row without a user name yields nothing."""
    assert parse_session_row({".id": "*1", "service": "pppoe"}) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1w2d3h4m5s", 788645),
        ("3m", 180),
        ("0s", 0),
        ("45s", 45),
        ("2d", 172800),
        ("1h250ms", 3600),
        ("250ms", 0),
        ("6w6d18:33:07", 4213987),
        ("18:33:07", 66787),
        ("00:00:00", 0),
    ],
)
def test_durations_in_every_form_routers_print(text: str, seconds: int) -> None:
    """RouterOS durations, new and old forms, read as whole seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", [None, "", "soon", "1x", "-5s", "5", "1:2:3"])
def test_unreadable_durations_are_none(text: str | None) -> None:
    """A duration that is absent or unreadable is unknown, never an error."""
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("service", "user", "name"),
    [("pppoe", "alice", "<pppoe-alice>"), ("l2tp", "b", "<l2tp-b>"), ("async", "c", None)],
)
def test_ppp_interface_names(service: str, user: str, name: str | None) -> None:
    """A PPP server interface is named <SERVICE-USER>; other services have none."""
    assert ppp_interface(service, user) == name


WORDS = [
    *("true", "false", "yes", "no", "TRUE", "", " ", "none", "0/0", "1/2", "12/x", "/", "5"),
    *("18446744073709551615/1", "\u0663/1", "1/\uff11", "-1/2", "10M/50M", "9" * 5000 + "/1"),
]
VALUES = st.one_of(
    st.sampled_from(WORDS), st.text(max_size=5), st.sampled_from([5, True, None, 1.5])
)


@st.composite
def queue_rows(draw: st.DrawFn) -> dict[str, Any]:
    """A real queue row with a few fields changed to any value, and a few left out."""
    fields = [*QUEUE_PROPLIST, "rate"]
    changed = draw(st.lists(st.sampled_from(fields), max_size=3, unique=True))
    dropped = draw(st.lists(st.sampled_from(fields), max_size=2, unique=True))
    row: dict[str, Any] = {**REAL_QUEUE, **{field: draw(VALUES) for field in changed}}
    return {field: value for field, value in row.items() if field not in dropped}


def outcome(parse: Any, row: dict[str, Any]) -> object:
    try:
        return parse(row)
    except RowError as exc:
        return ("RowError", exc.field, repr(exc.value))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=queue_rows())
def test_queue_rows_read_as_the_field_by_field_reader_reads_them(row: dict[str, Any]) -> None:
    """Every queue row, odd values included, reads the same through the quick path as field
    by field: the same sample, or the same error naming the same field."""
    assert outcome(parse_queue_row, row) == outcome(_parse_queue_slowly, row)
