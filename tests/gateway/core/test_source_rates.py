"""Queue and hotspot rates from counter deltas, and the frames that carry them."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from gateway.core.filters import InterfaceFilter
from gateway.core.frames import filter_traffic, hotspot_frame, queue_frame, rows_of
from gateway.core.rates import (
    NO_RATES,
    compute_hotspot_rates,
    compute_queue_rates,
    counter_rates,
)
from gateway.core.rows import encode
from gateway.core.sessions import SessionBook
from gateway.core.sources import Counters, HotspotSample, PppSession, QueueSample, Reading

ZERO = Counters(0, 0, 0, 0)


def queue(
    queue_id: str = "*1",
    name: str = "cust0001",
    counters: Counters | None = ZERO,
    plan: tuple[int | None, int | None] = (10_000_000, 50_000_000),
    **kw: Any,
) -> QueueSample:
    fields: dict[str, Any] = {
        "target": "10.20.0.2/32",
        "parent": None,
        "comment": None,
        "dynamic": False,
        "disabled": False,
        **kw,
    }
    return QueueSample(
        queue_id,
        name,
        fields["target"],
        fields["parent"],
        fields["comment"],
        fields["dynamic"],
        fields["disabled"],
        plan[0],
        plan[1],
        counters,
    )


def user(
    user_id: str = "*1", login: str = "guest", counters: Counters | None = None, uptime: int = 60
) -> HotspotSample:
    return HotspotSample(
        user_id,
        login,
        "hotspot1",
        "10.5.50.2",
        "3C:2E:FF:00:00:01",
        uptime,
        None,
        counters if counters is not None else Counters(0, 0, 0, 0),
    )


def test_queue_rates_are_the_customers_up_and_down() -> None:
    """Bytes and packets a queue counted over two seconds become its four rates."""
    prev = Reading(10.0, (queue(counters=Counters(1000, 2000, 10, 20)),))
    cur = Reading(12.0, (queue(counters=Counters(251000, 1002000, 210, 1020)),))
    assert compute_queue_rates(prev, cur) == ((1_000_000.0, 4_000_000.0, 100.0, 500.0),)


def test_first_queue_reading_has_no_rates() -> None:
    """Without a previous reading there is nothing to subtract: every rate is unknown."""
    cur = Reading(1.0, (queue(), queue("*2", "b")))
    assert compute_queue_rates(None, cur) == (NO_RATES, NO_RATES)


def test_a_queue_that_came_back_with_a_new_id_starts_over() -> None:
    """A dynamic queue recreated under the same name (a re-dial) is not subtracted from the old."""
    prev = Reading(0.0, (queue("*1", "<pppoe-a>", Counters(900, 900, 9, 9)),))
    cur = Reading(1.0, (queue("*9", "<pppoe-a>", Counters(1000, 1000, 10, 10)),))
    assert compute_queue_rates(prev, cur) == (NO_RATES,)


@pytest.mark.parametrize("index", range(4))
def test_any_queue_counter_going_down_is_a_reset(index: int) -> None:
    """reset-counters on a queue gives no rate for that tick, never a negative or wrapped one."""
    before = [100, 100, 100, 100]
    after = [200, 200, 200, 200]
    after[index] = 5
    prev = Reading(0.0, (queue(counters=Counters(*before)),))
    cur = Reading(1.0, (queue(counters=Counters(*after)),))
    assert compute_queue_rates(prev, cur) == (NO_RATES,)


def test_a_queue_without_counters_has_no_rates() -> None:
    """A row without bytes or packets cannot be measured: unknown rates, not zero."""
    prev = Reading(0.0, (queue(counters=None),))
    cur = Reading(1.0, (queue(counters=Counters(5, 5, 5, 5)),))
    assert compute_queue_rates(prev, cur) == (NO_RATES,)


@pytest.mark.parametrize("dt", [0.0, -1.0, math.nan, math.inf])
def test_no_rates_over_a_bad_interval(dt: float) -> None:
    """Two readings at once, or a clock fault, give unknown rates."""
    old, new = Counters(0, 0, 0, 0), Counters(8, 8, 8, 8)
    assert counter_rates(old, new, dt) == NO_RATES


def test_hotspot_rates_and_relogin_resets() -> None:
    """A hotspot user's rates come from its counters; logging in again (new id, or an uptime
    that went down with the same id) starts over."""
    prev = Reading(
        0.0,
        (
            user("*1", "a", Counters(0, 0, 0, 0), uptime=100),
            user("*2", "b", Counters(0, 0, 0, 0), uptime=100),
            user("*3", "c", Counters(0, 0, 0, 0), uptime=100),
        ),
    )
    cur = Reading(
        0.5,
        (
            user("*1", "a", Counters(500, 1000, 5, 10), uptime=101),
            user("*2", "b", Counters(500, 1000, 5, 10), uptime=3),
            user("*9", "c", Counters(500, 1000, 5, 10), uptime=1),
        ),
    )
    assert compute_hotspot_rates(prev, cur) == (
        (8000.0, 16000.0, 10.0, 20.0),
        NO_RATES,
        NO_RATES,
    )


def test_two_devices_of_one_user_are_measured_apart() -> None:
    """Two logins of one user (two ids) each keep their own rates."""
    prev = Reading(0.0, (user("*1", "a"), user("*2", "a")))
    cur = Reading(
        1.0, (user("*1", "a", Counters(125, 0, 1, 0)), user("*2", "a", Counters(250, 0, 2, 0)))
    )
    assert [rates[0] for rates in compute_hotspot_rates(prev, cur)] == [1000.0, 2000.0]


def test_queue_frame_rows_plan_and_utilisation() -> None:
    """A queue row carries its rates, its plan and the percentage of the plan each way, in the
    documented key order; an unlimited plan has no utilisation."""
    reading = Reading(
        0.0,
        (
            queue("*1", "cust0001", comment="CID-100001", parent="building-7"),
            queue("*2", "cust0010", plan=(None, None)),
        ),
    )
    rates = ((2_500_000.0, 10_000_000.04, 300.0, 900.0), (1_000.0, 2_000.0, 1.0, 2.0))
    frame = queue_frame("isp", 7, 1.5, 1.0, False, reading, rates)
    assert list(frame) == [
        *("type", "v", "router", "source", "seq", "ts", "interval", "stale", "queues")
    ]
    assert frame["source"] == "queues"
    first, second = rows_of(frame)
    assert first == {
        "id": "*1",
        "name": "cust0001",
        "target": "10.20.0.2/32",
        "parent": "building-7",
        "comment": "CID-100001",
        "dynamic": False,
        "disabled": False,
        "up_bps": 2_500_000.0,
        "down_bps": 10_000_000.0,
        "up_pps": 300.0,
        "down_pps": 900.0,
        "max_up_bps": 10_000_000,
        "max_down_bps": 50_000_000,
        "util_up": 25.0,
        "util_down": 20.0,
    }
    assert isinstance(first, dict)
    assert list(first) == [
        *("id", "name", "target", "parent", "comment", "dynamic", "disabled", "up_bps"),
        *("down_bps", "up_pps", "down_pps", "max_up_bps", "max_down_bps", "util_up"),
        "util_down",
    ]
    assert isinstance(second, dict)
    assert "comment" not in second
    assert "parent" not in second
    assert (second["max_up_bps"], second["util_up"], second["util_down"]) == (None, None, None)


def test_queue_frame_without_rates_has_no_utilisation() -> None:
    """The first frame of a queue (no rates yet) has null rates and null utilisation."""
    frame = queue_frame("isp", 1, 0.0, 1.0, False, Reading(0.0, (queue(),)), (NO_RATES,))
    [row] = rows_of(frame)
    assert isinstance(row, dict)
    assert [row[k] for k in ("up_bps", "down_bps", "util_up", "util_down")] == [None] * 4


def test_utilisation_may_pass_a_hundred() -> None:
    """A burst above the plan shows above 100 percent, not clamped."""
    rates = ((12_000_000.0, 0.0, 0.0, 0.0),)
    frame = queue_frame("isp", 1, 0.0, 1.0, False, Reading(0.0, (queue(),)), rates)
    [row] = rows_of(frame)
    assert isinstance(row, dict)
    assert row["util_up"] == 120.0


def test_queue_frame_joins_ppp_sessions() -> None:
    """A PPPoE customer's dynamic queue, and a static queue on a session's address, carry the
    session; other queues do not."""
    book = SessionBook()
    book.update(
        [
            PppSession("*A", "alice", "pppoe", "48:A9:8A:00:00:01", "100.64.0.2", 100),
            PppSession("*B", "bob", "pppoe", "48:A9:8A:00:00:02", "10.20.0.43", 50),
        ],
        at=10.0,
        wall=1_764_377_010.0,
    )
    reading = Reading(
        12.0,
        (
            queue("*1", "<pppoe-alice>", target="<pppoe-alice>", dynamic=True),
            queue("*2", "cust0042", target="10.20.0.43/32"),
            queue("*3", "cust0043", target="10.20.0.44/32"),
        ),
    )
    frame = queue_frame("isp", 1, 0.0, 1.0, False, reading, (NO_RATES,) * 3, book.view())
    alice, bob, other = rows_of(frame)
    assert isinstance(alice, dict)
    assert isinstance(bob, dict)
    assert isinstance(other, dict)
    assert alice["session"] == {
        "user": "alice",
        "service": "pppoe",
        "caller_id": "48:A9:8A:00:00:01",
        "address": "100.64.0.2",
        "since": 1_764_376_910,
    }
    assert list(alice)[-1] == "session"
    assert isinstance(bob["session"], dict)
    assert bob["session"]["user"] == "bob"
    assert "session" not in other


def test_hotspot_frame_rows() -> None:
    """A hotspot row names the user as its name, and carries server, address, MAC, uptime and
    the user's rates, up being what it sent."""
    reading = Reading(0.0, (user("*5", "guest0007", uptime=1830),))
    frame = hotspot_frame("isp", 3, 1.0, 1.0, False, reading, ((8.0, 16.0, 1.0, 2.0),))
    assert frame["source"] == "hotspot"
    [row] = rows_of(frame)
    assert row == {
        "id": "*5",
        "name": "guest0007",
        "server": "hotspot1",
        "address": "10.5.50.2",
        "mac": "3C:2E:FF:00:00:01",
        "uptime": 1830,
        "up_bps": 8.0,
        "down_bps": 16.0,
        "up_pps": 1.0,
        "down_pps": 2.0,
    }


def test_filters_apply_to_the_rows_of_the_frames_source() -> None:
    """A name filter keeps the queues (or hotspot users) it names, live and in a history."""
    reading = Reading(0.0, (queue("*1", "cust0001"), queue("*2", "cust0002")))
    frame = queue_frame("isp", 1, 0.0, 1.0, False, reading, (NO_RATES, NO_RATES))
    only = InterfaceFilter.of(["cust0002"])
    kept = filter_traffic(frame, only)
    assert [row["name"] for row in rows_of(kept) if isinstance(row, dict)] == ["cust0002"]
    assert "interfaces" not in kept
    spliced = encode(frame)
    assert spliced.splice(spliced.layout.select(only)) == orjson.dumps(kept)
    users = Reading(0.0, (user("*1", "alice"), user("*2", "bob")))
    hotspot = hotspot_frame("isp", 1, 0.0, 1.0, False, users, (NO_RATES, NO_RATES))
    kept = filter_traffic(hotspot, InterfaceFilter.of(["bob"]))
    assert [row["name"] for row in rows_of(kept) if isinstance(row, dict)] == ["bob"]


def test_rows_of_a_frame_from_before_sources() -> None:
    """A frame without a source (an older gateway's) holds interfaces."""
    assert rows_of({"type": "traffic", "interfaces": [1]}) == [1]
    with pytest.raises(TypeError):
        rows_of({"type": "traffic", "source": "queues", "interfaces": []})
