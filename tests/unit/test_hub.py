"""The hub: frames built once, fanned out as the same bytes, slow viewers cut off."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.core.frames import InterfaceFilter
from gateway.hub import (
    BEHIND_BYTES,
    BEHIND_SECONDS,
    SKIP_BYTES,
    Hub,
    Sink,
    Topic,
    ws_text_frame,
)


class FakeTransport:
    """Records writes; ``backlog`` pretends that much is still unsent."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.backlog = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return self.closing

    def messages(self) -> list[Any]:
        return [orjson.loads(_payload(w)) for w in self.writes]


def _payload(frame: bytes) -> bytes:
    n = frame[1]
    if n < 126:
        return frame[2:]
    if n == 126:
        return frame[4:]
    return frame[10:]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


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


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, "8100"),
        (125, "817d"),
        (126, "817e007e"),
        (65535, "817effff"),
        (65536, "817f0000000000010000"),
    ],
)
def test_text_frame_header_follows_rfc6455(size: int, header: str) -> None:
    """Prebuilt frames are final, unmasked text frames with the RFC 6455 length forms."""
    frame = ws_text_frame(b"x" * size)
    assert frame[: len(header) // 2].hex() == header
    assert len(frame) == len(header) // 2 + size


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


def test_viewer_behind_by_bytes_is_cut_off_once() -> None:
    """A viewer with 1 MiB unsent is reported behind once and gets nothing more."""
    calls: list[int] = []
    t = FakeTransport()
    sink = Sink(t, lambda: calls.append(1), clock=Clock())
    t.backlog = BEHIND_BYTES
    assert not sink.write(b"status", droppable=False)
    assert not sink.write(b"status", droppable=False)
    assert calls == [1]


def test_viewer_that_does_not_drain_for_ten_seconds_is_behind() -> None:
    """Unsent data that does not drain for 10 s marks the viewer behind."""
    clock = Clock()
    calls: list[int] = []
    t = FakeTransport()
    sink = Sink(t, lambda: calls.append(1), clock=clock)
    t.backlog = 10
    assert sink.write(b"a")
    clock.now = BEHIND_SECONDS
    assert sink.write(b"b")
    clock.now = BEHIND_SECONDS + 0.1
    assert not sink.write(b"c")
    assert calls == [1]


def test_draining_resets_the_stall_timer() -> None:
    """A viewer whose socket drains in between is never behind, however long it runs."""
    clock = Clock()
    t = FakeTransport()
    sink = Sink(t, lambda: None, clock=clock)
    for step in range(100):
        clock.now = step * 5.0
        t.backlog = 10 if step % 2 else 0
        assert sink.write(b"x")


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


def test_big_backfill_on_a_slow_link_is_not_a_stall() -> None:
    """A history larger than 1 MiB that keeps draining does not get its viewer cut off."""
    clock = Clock()
    t = FakeTransport()
    sink = Sink(t, lambda: None, clock=clock)
    history = b"h" * (5 * BEHIND_BYTES)
    assert sink.write(history, backfill=True)
    # The viewer reads 100 KiB a second; live frames keep coming once a second.
    for second in range(1, 40):
        clock.now = float(second)
        t.backlog = max(0, len(history) - second * 100 * 1024)
        assert sink.write(b"live frame", droppable=True) or t.backlog > SKIP_BYTES
        assert not sink.behind


def test_a_viewer_that_stops_reading_after_a_backfill_is_behind() -> None:
    """Once the backfill stops draining for 10 s the viewer is behind all the same."""
    clock = Clock()
    t = FakeTransport()
    sink = Sink(t, lambda: None, clock=clock)
    sink.write(b"h" * (3 * BEHIND_BYTES), backfill=True)
    t.backlog = 2 * BEHIND_BYTES
    for second in range(1, 13):
        clock.now = float(second)
        sink.write(b"live frame", droppable=True)
    assert sink.behind


class RaisingTransport(FakeTransport):
    """A transport whose write raises while ``fault`` is set (a bug below the hub)."""

    def __init__(self) -> None:
        super().__init__()
        self.fault = True

    def write(self, data: bytes) -> None:
        if self.fault:
            raise RuntimeError("write failed")
        super().write(data)


def test_heartbeat_reaches_every_viewer_past_one_that_raises() -> None:
    """One viewer whose write raises costs no other viewer its heartbeat; the error surfaces."""
    hub = Hub(["r"], 3, clock=Clock())
    broken = RaisingTransport()
    hub.sinks[Sink(broken, lambda: None)] = None
    fine = [FakeTransport() for _ in range(3)]
    for t in fine:
        hub.sinks[Sink(t, lambda: None)] = None
    with pytest.raises(RuntimeError, match="write failed"):
        hub.heartbeat(1000.0)
    assert all(len(t.writes) == 1 for t in fine)
    broken.fault = False
    hub.heartbeat(1001.0)
    assert len(broken.writes) == 1
