"""The hub: every connected viewer, and the heartbeat that keeps idle ones alive or drops them."""

from __future__ import annotations

import pytest

from gateway.core.filters import InterfaceFilter
from gateway.hub import Hub
from gateway.sink import Sink
from tests.support.fakes import Clock, FakeTransport, RaisingTransport


def test_heartbeat_reaches_every_viewer_past_one_that_raises() -> None:
    """One viewer whose write raises costs no other viewer its heartbeat; the error surfaces."""
    hub = Hub(["r"], 3, clock=Clock())
    broken = RaisingTransport()
    hub.connect(Sink(broken, lambda: None))
    fine = [FakeTransport() for _ in range(3)]
    for t in fine:
        hub.connect(Sink(t, lambda: None))
    with pytest.raises(RuntimeError, match="write failed"):
        hub.heartbeat(1000.0)
    assert all(len(t.writes) == 1 for t in fine)
    broken.fault = False
    hub.heartbeat(1001.0)
    assert len(broken.writes) == 1


def traffic(seq: int) -> dict[str, object]:
    return {"type": "traffic", "router": "r", "seq": seq, "ts": 1000.0 + seq, "interfaces": []}


def test_only_viewers_not_fed_in_the_last_half_period_are_pinged() -> None:
    """Frames within the last half period stand in for the heartbeat; older ones do not."""
    clock = Clock(100.0)
    hub = Hub(["r"], 3, clock=clock)
    fed, stale, idle = FakeTransport(), FakeTransport(), FakeTransport()
    sinks = [Sink(t, lambda: None) for t in (fed, stale, idle)]
    for sink in sinks:
        hub.connect(sink)
    hub.topics["r"].subscribe(sinks[1], InterfaceFilter.all())
    clock.now = 110.0  # exactly half of the 20 s period
    hub.topics["r"].publish(traffic(1))
    hub.topics["r"].unsubscribe(sinks[1])
    hub.topics["r"].subscribe(sinks[0], InterfaceFilter.all())
    clock.now = 110.001
    hub.topics["r"].publish(traffic(2))
    clock.now = 120.0
    hub.heartbeat(5000.0)
    assert [m["type"] for m in fed.messages()] == ["history", "traffic"]
    assert [op for op, _ in stale.frames()] == [0x1, 0x1, 0x9, 0x1]  # ..., ping, heartbeat
    assert [op for op, _ in idle.frames()] == [0x9, 0x1]
    assert idle.messages() == [{"type": "heartbeat", "ts": 5000.0}]
    assert [s.awaiting_pong for s in sinks] == [False, True, True]


def test_a_viewer_silent_for_a_whole_period_is_dropped_once() -> None:
    """A ping still unanswered at the next beat drops the viewer, once, and it gets nothing more."""
    dead: list[str] = []
    hub = Hub(["r"], 3, clock=Clock())
    t = FakeTransport()
    hub.connect(Sink(t, lambda: dead.append("behind"), on_dead=lambda: dead.append("dead")))
    hub.heartbeat(1.0)
    hub.heartbeat(2.0)
    hub.heartbeat(3.0)
    assert dead == ["dead"]
    assert len(t.writes) == 1


def test_disconnected_viewers_get_no_heartbeat() -> None:
    """A viewer whose connection ended is out of the hub: counted out, never written to."""
    hub = Hub(["r"], 3, clock=Clock())
    t = FakeTransport()
    sink = Sink(t, lambda: None)
    hub.connect(sink)
    assert (hub.connections, hub.connected()) == (1, [sink])
    hub.disconnect(sink)
    hub.disconnect(sink)
    hub.heartbeat(1.0)
    assert (hub.connections, t.writes) == (0, [])
