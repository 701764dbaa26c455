"""Cluster mode's pure rules: key names, the lease lifetime, the seq rule, stream entries, the
order of statuses."""

from __future__ import annotations

import pytest

from gateway.core.cluster import (
    STATUS_SLACK,
    Entry,
    EntryError,
    StatusMark,
    StoredStatus,
    entry_args,
    entry_id,
    follows,
    lease_ttl_ms,
    parse_entry,
    parse_status_at,
    replica_id,
    router_keys,
    status_at,
    status_mark,
    status_shown,
    stream_maxlen,
    supersedes,
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
    placed = Entry("status", b'{"type":"status"}', 1764377000.25, 8)
    for entry in (traffic, status, placed):
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


def test_statuses_are_ordered_by_place_among_the_frames_then_by_stream_entry() -> None:
    """A status before a later frame comes after one before an earlier frame, whatever their
    entry ids (a takeover's, in a Redis that restarted with a clock behind); at the same place,
    the later entry comes after."""
    assert entry_id(b"1764377000123-4") == (1764377000123, 4)
    early, late = status_mark(41, b"1764377999000-0"), status_mark(42, "1764377000000-0")
    assert early is not None
    assert late is not None
    assert early < late
    assert StatusMark(42, (5, 0)) < StatusMark(42, (5, 1)) < StatusMark(42, (6, 0))
    assert status_mark(None, b"1-0") is None  # a status of a version that gives no place


def test_a_status_place_survives_the_meta_field_and_a_bad_one_is_no_place() -> None:
    """The ``status_at`` field reads back as the mark it was written from; anything else there
    reads as no place (the status is shown as it comes), and a bad entry id is refused."""
    mark = StatusMark(1764377000500, (1764377000501, 2))
    assert parse_status_at(status_at(mark).encode()) == mark
    for value in (None, b"", b"x 1-0", b"5", b"5 1-x", b"5 -1"):
        assert parse_status_at(value) is None
    with pytest.raises(EntryError, match="is not <ms>-<n>"):
        entry_id(b"17643")


def test_only_a_later_status_replaces_the_one_kept_and_an_unmarked_one_always_does() -> None:
    """The newest status Redis gave is kept: an older or equal mark leaves it, a later one or
    one from a replica that gives no mark (shown as it comes) replaces it."""
    kept = StoredStatus(b"{}", StatusMark(42, (5, 0)))
    assert supersedes(None, kept)
    assert supersedes(kept, StoredStatus(b"{}", StatusMark(42, (5, 1))))
    assert not supersedes(kept, StoredStatus(b"{}", StatusMark(41, (9, 0))))
    assert not supersedes(kept, kept)
    assert supersedes(kept, StoredStatus(b"{}", None))
    assert supersedes(StoredStatus(b"{}", None), kept)


def test_a_status_is_shown_only_after_the_last_one_shown_or_as_that_one_again() -> None:
    """Viewers never get an older status after a newer one: a mark follows the last one shown
    when it is above it (or equal, unless strict); no mark, or nothing shown yet, follows."""
    shown = StatusMark(42, (5, 0))
    assert follows(shown, StatusMark(43, (1, 0)), strict=True)
    assert not follows(shown, StatusMark(41, (9, 0)), strict=False)
    assert not follows(shown, shown, strict=True)
    assert follows(shown, shown, strict=False)
    assert follows(None, shown, strict=True)
    assert follows(shown, None, strict=True)


def test_a_status_from_redis_shows_on_its_own_sources_topic_only() -> None:
    """A status from Redis is shown as the message it carries when it names the router and the
    stream's source (none named: interfaces); anything else is skipped, saying why."""
    served = ("interfaces", "queues")
    status = status_shown(b'{"router":"r1","state":"up"}', "r1", "interfaces", served)
    assert status == {"router": "r1", "state": "up"}
    queues = b'{"router":"r1","state":"up","source":"queues"}'
    assert status_shown(queues, "r1", "queues", served)["source"] == "queues"
    refused = [
        (b"not json", "interfaces", "that is not one"),
        (b'["r1"]', "interfaces", "that is not one"),
        (b'{"router":"r2","state":"up"}', "interfaces", "that is not one"),
        (b'{"router":"r1","source":"hotspot"}', "hotspot", "does not serve"),
        (b'{"router":"r1","source":["queues"]}', "queues", "does not serve"),
        (queues, "interfaces", "another source"),
    ]
    for data, source, why in refused:
        with pytest.raises(EntryError, match=why):
            status_shown(data, "r1", source, served)
