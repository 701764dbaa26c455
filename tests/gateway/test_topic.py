"""A topic: frames built once and fanned out as the same bytes; status, history, then live."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
import pytest

from gateway.core.filters import InterfaceFilter
from gateway.core.frames import filter_traffic, traffic_frame
from gateway.core.model import InterfaceRate
from gateway.history import MESSAGE_LIMIT, Frame
from gateway.hub import Hub
from gateway.sink import BEHIND_BYTES, SKIP_BYTES, Sink
from gateway.topic import Topic
from tests.support.fakes import (
    BufferingTransport,
    Clock,
    DeflateTransport,
    FakeTransport,
    history_chunks,
    payload,
)


def traffic(seq: int, names: tuple[str, ...] = ("ether1", "<pppoe-alice>")) -> dict[str, object]:
    return {
        "type": "traffic",
        "v": 1,
        "router": "r",
        "seq": seq,
        "ts": 1000.0 + seq,
        "interval": 1.0,
        "stale": False,
        "interfaces": [{"name": n, "rx_bps": 1.0} for n in names],
    }


def test_one_encode_per_tick_and_same_bytes_for_everyone() -> None:
    """Every subscriber with the same filter gets the very same bytes; one encode per tick."""
    topic = Topic("r", history=10)
    transports = [FakeTransport() for _ in range(5)]
    for t in transports:
        topic.subscribe(Sink(t, lambda: None), InterfaceFilter.all())
    before = topic.encodes
    assert topic.publish(traffic(1)) == 5
    assert topic.encodes - before == 1
    frames = [t.writes[-1] for t in transports]
    assert all(f is frames[0] for f in frames)


def test_each_distinct_filter_is_encoded_once() -> None:
    """Filtered subscribers cost one encode per distinct filter, not one per subscriber."""
    topic = Topic("r", history=10)
    pppoe = [FakeTransport() for _ in range(3)]
    for t in pppoe:
        topic.subscribe(Sink(t, lambda: None), InterfaceFilter.of(["<pppoe-*>"]))
    topic.subscribe(Sink(FakeTransport(), lambda: None), InterfaceFilter.all())
    before = topic.encodes
    topic.publish(traffic(1))
    assert topic.encodes - before == 2
    names = [i["name"] for i in pppoe[0].messages()[-1]["interfaces"]]
    assert names == ["<pppoe-alice>"]


def test_subscribe_sends_status_then_history_then_live() -> None:
    """A new subscriber gets the status, the history, then live frames, none twice."""
    topic = Topic("r", history=3)
    topic.publish_status({"type": "status", "router": "r", "state": "up"})
    for seq in range(1, 6):
        topic.publish(traffic(seq))
    t = FakeTransport()
    topic.subscribe(Sink(t, lambda: None), InterfaceFilter.all())
    topic.publish(traffic(6))
    kinds = [m["type"] for m in t.messages()]
    assert kinds == ["status", "history", "traffic"]
    history = t.messages()[1]
    assert [f["seq"] for f in history["frames"]] == [3, 4, 5]
    assert t.messages()[2]["seq"] == 6


def test_a_filtered_viewer_that_came_before_any_frame_is_told_every_status() -> None:
    """A customer that subscribed while the router had never answered sees it go down and come
    back up (statuses), then its frames."""
    topic = Topic("r", history=3)
    early = FakeTransport()
    topic.subscribe(Sink(early, lambda: None), InterfaceFilter.of(["<pppoe-alice>"]))
    topic.publish_status({"type": "status", "router": "r", "state": "down", "error": "refused"})
    topic.publish_status({"type": "status", "router": "r", "state": "up", "error": None})
    topic.publish(traffic(1))
    shown = [(m["type"], m.get("state")) for m in early.messages() if m["type"] != "history"]
    assert shown == [("status", "down"), ("status", "up"), ("traffic", None)]


def test_a_customer_is_not_told_of_a_new_error_text_it_cannot_see() -> None:
    """While the router stays down, a new reason reaches the NOC's viewers; a customer's viewer
    (shown "the router is unavailable" whatever the reason) gets no second, identical status."""
    topic = Topic("r", history=3)
    noc, customer, packed = FakeTransport(), FakeTransport(), DeflateTransport()
    for transport, sink_class in ((noc, Sink), (customer, Sink), (packed, DeflateSink)):
        sink = sink_class(transport, lambda: None)
        sink.restricted = transport is not noc
        topic.subscribe(sink, InterfaceFilter.of(["ether1"]))

    def status(state: str, error: str | None) -> dict[str, object]:
        return {"type": "status", "router": "r", "state": state, "error": error, "since": 5.0}

    for error in ("connection closed by the router", "connection refused"):
        topic.publish_status(status("down", error))
    topic.publish_status(status("up", None))
    statuses = [m for m in noc.messages() if m["type"] == "status"]
    assert [m["error"] for m in statuses] == [
        "connection closed by the router",
        "connection refused",
        None,
    ]
    for shown in (customer.messages(), [json.loads(text) for _, text in packed.frames()]):
        assert [(m["state"], m["error"]) for m in shown if m["type"] == "status"] == [
            ("down", "the router is unavailable"),
            ("up", None),
        ]
    late = FakeTransport()
    sink = Sink(late, lambda: None)
    sink.restricted = True
    topic.publish_status(status("down", "no route to host"))
    topic.subscribe(sink, InterfaceFilter.of(["ether1"]))
    assert late.messages()[0]["error"] == "the router is unavailable"


def test_in_cluster_mode_a_subscribe_replays_the_status_in_order_with_its_history() -> None:
    """Cluster mode: a subscriber joining after a status that came after the latest frame (a
    takeover's, before its first frame, whose seq jumps) gets the status in force at that
    frame, the history, then the new status, each once (a restricted viewer, their public
    forms); one more frame, and a subscribe is as always (status, history)."""
    topic = Topic("r", history=3)
    topic.status_in_order = True
    up: dict[str, object] = {"type": "status", "router": "r", "state": "up", "since": 1.0}
    down: dict[str, object] = {**up, "state": "down", "error": "10.0.0.1:8728: timed out"}
    topic.publish_status(up)
    for seq in range(1, 4):
        topic.publish(traffic(seq))
    topic.publish_status(down)
    t, restricted = FakeTransport(), FakeTransport()
    topic.subscribe(Sink(t, lambda: None), InterfaceFilter.all())
    sink = Sink(restricted, lambda: None)
    sink.restricted = True
    topic.subscribe(sink, InterfaceFilter.all())
    topic.publish(traffic(1000))
    assert [(m["type"], m.get("state")) for m in t.messages()] == [
        ("status", "up"),
        ("history", None),
        ("status", "down"),
        ("traffic", None),
    ]
    assert t.messages()[2] == down
    shown = [m for m in restricted.messages() if m["type"] == "status"]
    assert [m["state"] for m in shown] == ["up", "down"]
    assert "10.0.0.1" not in json.dumps(shown)
    # A resume with nothing to replay, and a subscribe after the next frame: status first.
    later = FakeTransport()
    topic.subscribe(Sink(later, lambda: None), InterfaceFilter.all())
    assert [m["type"] for m in later.messages()] == ["status", "history"]
    assert later.messages()[0] == down


@pytest.mark.parametrize(
    ("since", "seqs", "reset"),
    [
        (4, [5], False),
        (2, [3, 4, 5], False),
        (5, [], False),
        (1, [3, 4, 5], True),
        (99, [3, 4, 5], True),
    ],
)
def test_resume_since(since: int, seqs: list[int], reset: bool) -> None:
    """Resume sends only frames after ``since``; older than the ring (or unknown) is a reset."""
    topic = Topic("r", history=3)
    for seq in range(1, 6):
        topic.publish(traffic(seq))
    t = FakeTransport()
    topic.subscribe(Sink(t, lambda: None), InterfaceFilter.all(), since)
    history = t.messages()[0]
    assert [f["seq"] for f in history["frames"]] == seqs
    assert history["reset"] is reset


def test_backed_up_viewer_skips_frames_latest_wins() -> None:
    """While a viewer's socket is backed up, live frames for it are skipped, not queued."""
    topic = Topic("r", history=3)
    t = FakeTransport()
    sink = Sink(t, lambda: None, clock=Clock())
    topic.subscribe(sink, InterfaceFilter.all())
    t.backlog = SKIP_BYTES + 1024
    topic.publish(traffic(1))
    assert sink.dropped == 1
    t.backlog = 0
    topic.publish(traffic(2))
    assert t.messages()[-1]["seq"] == 2


def test_skipped_frames_are_counted_per_topic() -> None:
    """Frames skipped for backed-up viewers add up in the topic's total, and only those."""
    topic = Topic("r", history=3)
    backed_up = [FakeTransport() for _ in range(3)]
    sinks = [Sink(t, lambda: None, clock=Clock()) for t in backed_up]
    for sink in sinks:
        topic.subscribe(sink, InterfaceFilter.all())
    topic.subscribe(Sink(FakeTransport(), lambda: None), InterfaceFilter.of(["ether*"]))
    closing = FakeTransport()
    topic.subscribe(Sink(closing, lambda: None), InterfaceFilter.all())
    closing.closing = True  # gone, not backed up: nothing is skipped for it
    for t in backed_up:
        t.backlog = SKIP_BYTES + 1024
    assert topic.publish(traffic(1)) == 1
    assert topic.publish(traffic(2)) == 1
    assert topic.frames_dropped == 6 == sum(s.dropped for s in sinks)
    for t in backed_up:
        t.backlog = 0
    assert topic.publish(traffic(3)) == 4
    assert topic.frames_dropped == 6


def test_unsubscribing_during_publish_is_safe() -> None:
    """A viewer cut off in the middle of a fan-out does not disturb the others."""
    topic = Topic("r", history=3)
    good = FakeTransport()
    slow = FakeTransport()

    def cut_off() -> None:
        topic.unsubscribe(slow_sink)

    slow_sink = Sink(slow, cut_off, clock=Clock())
    topic.subscribe(slow_sink, InterfaceFilter.all())
    slow.backlog = BEHIND_BYTES
    topic.subscribe(Sink(good, lambda: None), InterfaceFilter.all())
    topic.publish(traffic(1))
    assert good.messages()[-1]["seq"] == 1
    assert topic.viewers == 1


def test_a_viewer_already_behind_is_not_subscribed() -> None:
    """A viewer cut off on an earlier message does not join the topic."""
    topic = Topic("r", history=3)
    t = FakeTransport()
    sink = Sink(t, lambda: None, clock=Clock())
    t.backlog = BEHIND_BYTES
    sink.write(b"error frame")
    topic.subscribe(sink, InterfaceFilter.all())
    assert topic.viewers == 0


# -- history in several messages, and a subscriber asking for less ---------------------------


def big_frame(seq: int, customers: int = 300, router: str = "isp") -> dict[str, object]:
    """A real traffic frame of a router with ``customers`` PPPoE interfaces and 8 ports."""
    rates = [
        InterfaceRate(f"*{i:X}", f"ether{i}", "ether", True, False, 1e9 + seq, 1e8, 1e5, 1e4)
        for i in range(1, 9)
    ] + [
        InterfaceRate(
            f"*{0x100000 + i:X}",
            f"<pppoe-user{i:04d}>",
            "pppoe-in",
            True,
            False,
            12345678.9 + seq,
            2345678.1,
            1234.5,
            567.8,
        )
        for i in range(customers)
    ]
    return traffic_frame(router, seq, 1_764_377_000.0 + seq, 1.0, False, rates)


def full_topic(ring: int = 300, **kw: Any) -> Topic:
    topic = Topic("isp", history=ring, **kw)
    for seq in range(1, ring + 1):
        topic.publish(big_frame(seq))
    return topic


def histories(t: FakeTransport) -> list[Any]:
    return [m for m in t.messages() if m["type"] == "history"]


def merged(t: FakeTransport) -> list[Any]:
    """The frames of every history message, in order."""
    return [frame for m in histories(t) for frame in m["frames"]]


def check_chunks(t: FakeTransport, router: str = "isp", reset: bool = False) -> list[Any]:
    """Every history message under the limit and marked; returns them."""
    chunks = histories(t)
    assert chunks, "no history message"
    assert [m["more"] for m in chunks] == [True] * (len(chunks) - 1) + [False]
    for m in chunks:
        assert list(m) == ["type", "router", "source", "reset", "more", "frames"]
        assert m["router"] == router
        assert m["reset"] is reset
    for write in t.writes:
        assert len(payload(write)) < MESSAGE_LIMIT
    return chunks


def test_a_full_ring_of_a_big_router_arrives_in_messages_under_1_mib() -> None:
    """300 frames of 300 customers: status, history in several marked messages, then live."""
    topic = full_topic()
    topic.publish_status({"type": "status", "router": "isp", "state": "up"})
    t = FakeTransport()
    topic.subscribe(Sink(t, lambda: None), InterfaceFilter.all())
    topic.publish(big_frame(301))
    kinds = [m["type"] for m in t.messages()]
    chunks = check_chunks(t)
    assert len(chunks) > 10
    assert kinds == ["status"] + ["history"] * len(chunks) + ["traffic"]
    assert [f["seq"] for f in merged(t)] == list(range(1, 301))
    assert merged(t) == [orjson.loads(orjson.dumps(big_frame(seq))) for seq in range(1, 301)]
    assert t.messages()[-1]["seq"] == 301


@pytest.mark.parametrize(
    ("count", "seqs"),
    [(0, []), (1, [10]), (4, [7, 8, 9, 10]), (10, list(range(1, 11))), (99, list(range(1, 11)))],
)
def test_a_subscriber_asks_for_the_last_frames(count: int, seqs: list[int]) -> None:
    """``history: N`` backfills only the newest N frames (0: none), then live frames."""
    topic = Topic("r", history=10)
    for seq in range(1, 11):
        topic.publish(traffic(seq))
    t = FakeTransport()
    topic.subscribe(Sink(t, lambda: None), InterfaceFilter.all(), frames=count)
    topic.publish(traffic(11))
    check_chunks(t, router="r")
    assert [f["seq"] for f in merged(t)] == seqs
    assert t.messages()[-1]["seq"] == 11


@pytest.mark.parametrize(
    ("seconds", "seqs"),
    [
        (0.0, []),
        (0.5, [10]),
        (3.0, [8, 9, 10]),
        (3.5, [7, 8, 9, 10]),
        (9.5, list(range(1, 11))),
        (1e9, list(range(1, 11))),
    ],
)
def test_a_subscriber_asks_for_the_last_seconds(seconds: float, seqs: list[int]) -> None:
    """``history_seconds: S`` backfills only the frames made in the last S seconds."""
    wall = Clock()
    wall.now = 1010.5  # traffic(seq) was made at 1000 + seq
    topic = Topic("r", history=10, wall=wall)
    for seq in range(1, 11):
        topic.publish(traffic(seq))
    t = FakeTransport()
    topic.subscribe(Sink(t, lambda: None), InterfaceFilter.all(), seconds=seconds)
    check_chunks(t, router="r")
    assert [f["seq"] for f in merged(t)] == seqs


@pytest.mark.parametrize(
    ("since", "count", "seconds", "seqs", "reset"),
    [
        (5, 2, None, [9, 10], False),
        (8, 5, None, [9, 10], False),
        (5, None, 3.0, [8, 9, 10], False),
        (5, 4, 3.0, [8, 9, 10], False),
        (1, 3, None, [10, 11, 12], True),
        (99, 0, None, [], True),
    ],
)
def test_limits_combine_with_since(
    since: int, count: int | None, seconds: float | None, seqs: list[int], reset: bool
) -> None:
    """With ``since`` and a limit, a resume gets the newer frames within the limit."""
    wall = Clock()
    wall.now = 1010.5
    topic = Topic("r", history=10, wall=wall)
    for seq in range(1, 11 if count is None or not reset else 13):
        topic.publish(traffic(seq))
    t = FakeTransport()
    topic.subscribe(
        Sink(t, lambda: None), InterfaceFilter.all(), since, frames=count, seconds=seconds
    )
    check_chunks(t, router="r", reset=reset)
    assert [f["seq"] for f in merged(t)] == seqs


@pytest.mark.parametrize("globs", [["<pppoe-user00*>"], ["ether1", "<pppoe-user0299>"], ["x"]])
def test_a_filtered_history_is_the_full_history_filtered(globs: list[str]) -> None:
    """A filtered subscriber's backfill is exactly each frame filtered, in messages under 1 MiB."""
    topic = full_topic()
    flt = InterfaceFilter.of(globs)
    full, filtered = FakeTransport(), FakeTransport()
    topic.subscribe(Sink(full, lambda: None), InterfaceFilter.all())
    topic.subscribe(Sink(filtered, lambda: None), flt)
    check_chunks(full)
    check_chunks(filtered)
    assert merged(filtered) == [filter_traffic(f, flt) for f in merged(full)]


def test_subscribers_of_one_tick_share_the_encoded_history() -> None:
    """A burst of subscribers costs one encoding of the history, and the next frame renews it."""
    topic = full_topic(ring=20)
    first, second = FakeTransport(), FakeTransport()
    topic.subscribe(Sink(first, lambda: None), InterfaceFilter.all())
    topic.subscribe(Sink(second, lambda: None), InterfaceFilter.all())
    assert first.writes
    assert all(a is b for a, b in zip(first.writes, second.writes, strict=True))
    topic.publish(big_frame(21))
    third = FakeTransport()
    topic.subscribe(Sink(third, lambda: None), InterfaceFilter.all())
    assert [f["seq"] for f in merged(third)] == list(range(2, 22))
    # A different request is its own encoding, and the heartbeat frees what was kept.
    fourth = FakeTransport()
    topic.subscribe(Sink(fourth, lambda: None), InterfaceFilter.all(), frames=1)
    assert [f["seq"] for f in merged(fourth)] == [21]
    assert topic._chunk_cache
    hub = Hub([], history=1)
    hub.topics["isp"] = topic
    hub.heartbeat(0.0)
    assert not topic._chunk_cache


def test_a_backfill_of_many_messages_on_a_slow_link_is_not_a_stall() -> None:
    """A 15 MB history in many messages, drained at 1 MB/s, never gets its viewer cut off."""
    clock = Clock()
    topic = full_topic()
    t = BufferingTransport()
    sink = Sink(t, lambda: None, clock=clock)
    topic.subscribe(sink, InterfaceFilter.all())
    assert len(histories(t)) > 10
    assert topic.viewers == 1
    for second in range(1, 30):
        clock.now = float(second)
        t.drain(1_000_000)
        topic.publish(big_frame(300 + second))
        assert not sink.behind
    assert t.backlog < BEHIND_BYTES


def test_a_viewer_that_stops_reading_a_many_message_backfill_is_behind() -> None:
    """A viewer that takes nothing of its backfill for 10 s is cut off all the same."""
    clock = Clock()
    calls: list[int] = []
    topic = full_topic()
    t = BufferingTransport()
    sink = Sink(t, lambda: calls.append(1), clock=clock)
    topic.subscribe(sink, InterfaceFilter.all())
    for second in range(1, 13):
        clock.now = float(second)
        topic.publish(big_frame(300 + second))
    assert sink.behind
    assert calls == [1]


def test_a_frame_over_the_limit_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """A router whose one poll is over 1 MiB is named in one warning, not one per tick."""
    topic = Topic("huge", history=3)
    caplog.set_level(logging.WARNING, logger="gateway.topic")
    for seq in range(1, 4):
        topic.publish(big_frame(seq, customers=7000, router="huge"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "huge" in warnings[0]
    assert "interfaces" in warnings[0]


# -- per-customer fan-out: rows encoded once, frames spliced per selection --------------------


def churning_frames(count: int) -> list[dict[str, object]]:
    """Frames of a router whose customers come and go: every third frame one leaves, one new
    one arrives (as a PPPoE reconnect does), and the ports stay."""
    frames = []
    customers = [f"<pppoe-c{i}>" for i in range(12)]
    for seq in range(1, count + 1):
        if seq % 3 == 0:
            customers = [*customers[1:], f"<pppoe-c{11 + seq}>"]
        names = ("ether1", "ether2 [WAN]", *customers)
        frames.append(traffic(seq, names))
    return frames


CUSTOMER_FILTERS = [
    InterfaceFilter.of(["<pppoe-c3>"]),
    InterfaceFilter.of(["<pppoe-c14>"]),
    InterfaceFilter.of(["<pppoe-c3>", "<pppoe-c20>"]),
    InterfaceFilter.of(["<pppoe-*>"]),
    InterfaceFilter.of(["ether*"]),
    InterfaceFilter.of(["ether2 [[]WAN]"]),
    InterfaceFilter.of(["<pppoe-c1*>"]).intersect(InterfaceFilter.of(["*4>", "*5>"])),
    InterfaceFilter.of([]),
]


def test_filtered_viewers_get_the_filtered_frame_byte_for_byte_through_churn() -> None:
    """Every filtered viewer receives exactly orjson.dumps(filter_traffic(frame, filter)),
    tick after tick, while customers come and go."""
    topic = Topic("r", history=50)
    transports = [FakeTransport() for _ in CUSTOMER_FILTERS]
    for t, flt in zip(transports, CUSTOMER_FILTERS, strict=True):
        topic.subscribe(Sink(t, lambda: None), flt)
    frames = churning_frames(20)
    for frame in frames:
        topic.publish(frame)
    for t, flt in zip(transports, CUSTOMER_FILTERS, strict=True):
        live = [p for op, p in t.frames()[1:]]  # after the (empty) history
        assert live == [orjson.dumps(filter_traffic(f, flt)) for f in frames]


@pytest.mark.parametrize("since", [None, 0, 7, 19])
def test_a_filtered_backfill_or_resume_is_exact_across_churn(since: int | None) -> None:
    """A filtered viewer's history (or resume) is the very bytes it would have had live."""
    frames = churning_frames(25)
    topic = Topic("r", history=20)
    for frame in frames:
        topic.publish(frame)
    ring = frames[-20:]
    for flt in CUSTOMER_FILTERS:
        t = FakeTransport()
        topic.subscribe(Sink(t, lambda: None), flt, since)
        reset = since is not None and since < ring[0]["seq"] - 1  # type: ignore[operator]
        kept = [f for f in ring if since is None or reset or f["seq"] > since]  # type: ignore[operator]
        expected = history_chunks("r", reset, [orjson.dumps(filter_traffic(f, flt)) for f in kept])
        assert t.writes == expected


def test_a_filter_selects_its_rows_once_per_interface_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ticks with the same interfaces reuse each filter's selection; churn selects again."""
    calls: list[InterfaceFilter] = []
    original = InterfaceFilter.select

    def counting(self: InterfaceFilter, *args: Any) -> tuple[int, ...]:
        calls.append(self)
        return original(self, *args)

    monkeypatch.setattr(InterfaceFilter, "select", counting)
    topic = Topic("r", history=5)
    for flt in CUSTOMER_FILTERS[:3]:
        topic.subscribe(Sink(FakeTransport(), lambda: None), flt)
    frames = churning_frames(5)  # frame 3 changes the interface set
    for frame in frames[:2]:
        topic.publish(frame)
    assert len(calls) == 3
    topic.publish(frames[2])
    topic.publish(frames[3])
    assert len(calls) == 6


def test_viewers_whose_filters_select_the_same_rows_share_one_frame() -> None:
    """Two different filters letting the same interfaces through cost one frame, shared."""
    topic = Topic("r", history=5)
    exact, glob = FakeTransport(), FakeTransport()
    topic.subscribe(Sink(exact, lambda: None), InterfaceFilter.of(["<pppoe-alice>"]))
    topic.subscribe(Sink(glob, lambda: None), InterfaceFilter.of(["<pppoe-a*>"]))
    before = topic.encodes
    topic.publish(traffic(1))
    assert topic.encodes - before == 2  # the frame, and one splice for both filters
    assert exact.writes[-1] is glob.writes[-1]


def test_a_frame_encoded_elsewhere_reaches_every_kind_of_viewer_right() -> None:
    """A cluster frame goes as it came to viewers of every row; filtered viewers get this
    process's encoding of their rows, as they did when the frame was decoded and filtered."""
    data = traffic(7, ("ether1", "<pppoe-alice>", "<pppoe-bob>"))
    foreign = json.dumps(data).encode()  # another encoder: spaces after separators
    assert foreign != orjson.dumps(data)
    topic = Topic("r", history=5)
    everything, alice = FakeTransport(), FakeTransport()
    topic.subscribe(Sink(everything, lambda: None), InterfaceFilter.all())
    flt = InterfaceFilter.of(["<pppoe-alice>"])
    topic.subscribe(Sink(alice, lambda: None), flt)
    assert topic.publish_frame(Frame.encode(orjson.loads(foreign), foreign)) == 2
    assert everything.frames()[-1][1] == foreign
    assert alice.frames()[-1][1] == orjson.dumps(filter_traffic(data, flt))
    latest = topic.latest
    assert latest is not None
    assert topic.frame_data(latest, InterfaceFilter.all()) == data
    assert topic.frame_data(latest, flt) == filter_traffic(data, flt)


# -- compress once, send to all (permessage-deflate) -------------------------------------------


class DeflateSink(Sink):
    """A sink whose connection agreed to permessage-deflate (as ``ws.DeflateViewer``)."""

    __slots__ = ()
    deflate = True


def test_viewers_that_agreed_to_deflate_share_one_compressed_frame() -> None:
    """Compressed viewers of one filter get the same compressed bytes, deflated once per tick;
    plain viewers on the same topic get plain frames with the same message."""
    topic = Topic("isp", history=5)
    packed = [DeflateTransport() for _ in range(3)]
    plain = [FakeTransport() for _ in range(2)]
    customers = [DeflateTransport() for _ in range(2)]
    alice = DeflateTransport()
    for t in packed:
        topic.subscribe(DeflateSink(t, lambda: None), InterfaceFilter.all())
    for other in plain:
        topic.subscribe(Sink(other, lambda: None), InterfaceFilter.all())
    for t in customers:
        topic.subscribe(DeflateSink(t, lambda: None), InterfaceFilter.of(["<pppoe-*>"]))
    topic.subscribe(DeflateSink(alice, lambda: None), InterfaceFilter.of(["<pppoe-user0007>"]))
    for seq in (1, 2):
        before = topic.deflates
        frame = big_frame(seq)
        topic.publish(frame)
        assert topic.deflates - before == 2  # the whole frame and the customers' frame
        assert all(t.writes[-1] is packed[0].writes[-1] for t in packed)
        assert packed[0].writes[-1][0] == 0xC1  # final, RSV1 (compressed), text
        assert plain[0].writes[-1][0] == 0x81
        assert payload(plain[0].writes[-1]) == packed[0].frames()[-1][1] == orjson.dumps(frame)
        assert len(packed[0].writes[-1]) * 5 < len(plain[0].writes[-1])
        assert customers[0].writes[-1] is customers[1].writes[-1]
        customer_frame = filter_traffic(frame, InterfaceFilter.of(["<pppoe-*>"]))
        assert customers[0].frames()[-1][1] == orjson.dumps(customer_frame)
        # One interface is too short to be worth deflating: it goes plain to everyone.
        assert alice.writes[-1][0] == 0x81


def test_nothing_is_deflated_for_a_topic_without_such_viewers() -> None:
    """A topic whose viewers all take plain frames never pays for a deflate."""
    topic = Topic("isp", history=5)
    topic.subscribe(Sink(FakeTransport(), lambda: None), InterfaceFilter.all())
    topic.subscribe(Sink(FakeTransport(), lambda: None), InterfaceFilter.of(["<pppoe-*>"]))
    topic.publish_status({"type": "status", "router": "isp", "state": "up", "pad": "x" * 600})
    for seq in range(1, 4):
        topic.publish(big_frame(seq))
    assert topic.deflates == 0


def test_a_compressed_viewer_gets_its_status_and_history_compressed_and_shared() -> None:
    """Status, then history messages (each under 1 MiB inflated), then live frames, all
    compressed; a second such subscriber in the same tick costs no deflate."""
    topic = full_topic()
    topic.publish_status({"type": "status", "router": "isp", "state": "up", "error": None})
    first, second, plain = DeflateTransport(), DeflateTransport(), FakeTransport()
    topic.subscribe(DeflateSink(first, lambda: None), InterfaceFilter.all())
    deflates = topic.deflates
    topic.subscribe(DeflateSink(second, lambda: None), InterfaceFilter.all())
    assert topic.deflates == deflates
    assert all(a is b for a, b in zip(first.writes, second.writes, strict=True))
    topic.subscribe(Sink(plain, lambda: None), InterfaceFilter.all())
    topic.publish(big_frame(301))
    assert [op for op, _ in first.frames()] == [op for op, _ in plain.frames()]
    assert first.messages() == plain.messages()
    chunks = first.writes[1:-1]
    assert len(chunks) > 10
    assert all(chunk[0] == 0xC1 for chunk in chunks)
    assert all(len(p) < MESSAGE_LIMIT for _, p in first.frames())
    assert sum(map(len, first.writes)) * 5 < sum(map(len, plain.writes))


def test_only_the_current_interface_set_remembers_selections() -> None:
    """Layouts replaced by churn keep nothing per filter (a ring of them would otherwise hold
    every viewer's selection once per interface set); backfills over them keep nothing either."""
    topic = Topic("r", history=20)
    for flt in CUSTOMER_FILTERS:
        topic.subscribe(Sink(FakeTransport(), lambda: None), flt)
    for frame in churning_frames(20):
        topic.publish(frame)
    latest = topic.latest
    assert latest is not None
    current = latest.rows.layout
    older = {f.rows.layout for f in topic.history} - {current}
    assert len(older) >= 5
    assert current.remembered == len(CUSTOMER_FILTERS)
    assert all(layout.remembered == 0 for layout in older)
    for flt in CUSTOMER_FILTERS:
        topic.subscribe(
            Sink(FakeTransport(), lambda: None), flt.intersect(InterfaceFilter.of(["*"]))
        )
    assert all(layout.remembered == 0 for layout in older)


def test_viewers_joining_and_leaving_through_churn_get_exactly_their_frames() -> None:
    """Viewers subscribe and unsubscribe between ticks while customers come and go: each gets,
    while subscribed, exactly its filter's frame of every tick, and nothing after leaving."""
    topic = Topic("r", history=3)
    frames = churning_frames(24)
    viewers: list[tuple[FakeTransport, Sink, InterfaceFilter, int]] = []
    left: dict[Sink, int] = {}
    for i, frame in enumerate(frames):
        if i % 4 == 0:  # someone joins, with each filter in turn, compressed or not
            flt = CUSTOMER_FILTERS[(i // 4) % len(CUSTOMER_FILTERS)]
            for kind in (Sink, DeflateSink):
                t = DeflateTransport() if kind is DeflateSink else FakeTransport()
                sink = kind(t, lambda: None)
                topic.subscribe(sink, flt, frames=0)
                viewers.append((t, sink, flt, i))
        if i % 6 == 5:  # someone leaves
            _, sink, _, _ = viewers[i // 6]
            assert topic.unsubscribe(sink)
            left[sink] = i
        topic.publish(frame)
    assert topic.viewers == len(viewers) - len(left)
    for t, sink, flt, joined in viewers:
        assert (sink in topic) is (sink not in left)
        until = left.get(sink, len(frames))
        live = [p for _, p in t.frames()[1:]]  # after the (empty) history
        assert live == [orjson.dumps(filter_traffic(f, flt)) for f in frames[joined:until]]
