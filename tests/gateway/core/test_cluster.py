"""Cluster mode's pure rules: key names, the lease lifetime, the seq rule, stream entries."""

from __future__ import annotations

import pytest

from gateway.core.cluster import (
    STATUS_SLACK,
    Entry,
    EntryError,
    entry_args,
    lease_ttl_ms,
    parse_entry,
    replica_id,
    router_keys,
    stream_maxlen,
    takeover_seq,
)


def test_every_key_of_a_router_shares_the_prefix_as_hash_tag() -> None:
    """A router's lease, demand, stream and meta keys start with {prefix}:<router>: one slot."""
    keys = router_keys("noc:gw", "core-1")
    assert keys.lease == "{noc:gw}:core-1:lease"
    assert keys.demand == "{noc:gw}:core-1:demand"
    assert keys.stream == "{noc:gw}:core-1:stream"
    assert keys.meta == "{noc:gw}:core-1:meta"
    assert router_keys("noc:gw", "edge").lease != keys.lease


def test_the_lease_outlives_two_intervals_and_a_timed_out_poll() -> None:
    """The lease TTL is 2 x interval + timeout in milliseconds, never rounded down."""
    assert lease_ttl_ms(1.0, 3.0) == 5000
    assert lease_ttl_ms(0.25, 1.0) == 1500
    assert lease_ttl_ms(0.0011, 0.0001) == 3  # 2.3 ms, rounded up


def test_the_stream_keeps_the_history_and_room_for_status_messages() -> None:
    """A stream trimmed to its length still holds ``history`` frames beside status messages."""
    assert stream_maxlen(300) == 300 + STATUS_SLACK


@pytest.mark.parametrize(
    ("stream", "latest", "now", "expected"),
    [
        (None, None, 1_764_377_000_000, 1_764_377_000_000),  # nothing before: the clock
        (1_764_377_000_041, None, 1_764_377_000_000, 1_764_377_000_042),  # stream ahead of clock
        (500, None, 1_764_377_000_000, 1_764_377_000_000),  # an old stream: the clock
        (500, 1_764_377_009_999, 1_764_377_000_000, 1_764_377_010_000),  # viewers saw more here
        (1_764_377_010_003, 1_764_377_009_999, 0, 1_764_377_010_004),
    ],
)
def test_a_takeover_continues_above_everything_seen_and_the_clock(
    stream: int | None, latest: int | None, now: int, expected: int
) -> None:
    """A new holder's first seq is above the stream's last, above what this replica's viewers
    saw, and at least the time in milliseconds."""
    assert takeover_seq(stream, latest, now) == expected


def test_a_replica_id_names_host_and_process_in_a_log_safe_form() -> None:
    """The replica id shows the host (odd characters replaced), the pid and the suffix."""
    assert replica_id("gateway-7d9f-x2", 1, "a1b2c3") == "gateway-7d9f-x2-1-a1b2c3"
    assert replica_id("bad host\n{x}", 42, "ff") == "bad-host--x--42-ff"
    assert replica_id("", 42, "ff") == "gateway-42-ff"


def test_entries_survive_their_trip_through_script_arguments_and_stream_fields() -> None:
    """What a holder appends is what every reader gets back, bytes for bytes."""
    traffic = Entry("traffic", b'{"type":"traffic","seq":7}', 1764377000.512, 7)
    status = Entry("status", b'{"type":"status"}', 1764377000.25)
    for entry in (traffic, status):
        kind, data, published, seq = entry_args(entry)
        fields = {b"type": kind.encode(), b"data": data, b"t": published.encode()}
        if seq:
            fields[b"seq"] = seq.encode()
        assert parse_entry(fields) == entry


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({b"type": b"other", b"data": b"{}", b"t": b"1"}, "neither traffic nor status"),
        ({b"type": b"status", b"t": b"1"}, "without data"),
        ({b"type": b"status", b"data": b"{}", b"t": b"soon"}, "time b'soon' is not a number"),
        ({b"type": b"status", b"data": b"{}", b"t": b"nan"}, "not finite"),
        ({b"type": b"traffic", b"data": b"{}", b"t": b"1"}, "seq b'' is not"),
        ({b"type": b"traffic", b"data": b"{}", b"t": b"1", b"seq": b"-3"}, "seq b'-3' is not"),
    ],
)
def test_an_entry_this_version_cannot_read_is_refused_naming_the_field(
    fields: dict[bytes, bytes], complaint: str
) -> None:
    """A malformed entry raises EntryError saying which field is wrong."""
    with pytest.raises(EntryError, match=complaint):
        parse_entry(fields)
