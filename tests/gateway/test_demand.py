"""Demand: a router is polled while someone watches it, and for the linger after, never longer."""

from __future__ import annotations

from gateway.core.filters import InterfaceFilter
from gateway.demand import Demand
from gateway.sink import BEHIND_BYTES, Sink
from gateway.topic import Topic
from tests.support.fakes import Clock, FakeTransport


def test_nobody_watching_is_no_demand() -> None:
    """A router nobody subscribed to or read is not polled, and its poller is not woken."""
    demand = Demand(10.0, Clock())
    assert not demand.wanted()
    assert not demand.woken.is_set()


def test_a_subscriber_wakes_the_poller_and_demand_lingers_after_it_leaves() -> None:
    """Polling starts with the first subscriber and goes on ``linger`` seconds past the last."""
    clock = Clock()
    demand = Demand(10.0, clock)
    demand.join()
    assert demand.woken.is_set()
    clock.now = 100.0
    assert demand.wanted()  # read while subscribed: the linger counts from here
    demand.leave()
    clock.now = 109.9
    assert demand.wanted()
    clock.now = 110.0
    assert not demand.wanted()


def test_a_rest_read_is_demand_for_the_linger() -> None:
    """A REST read wakes the poller and keeps the router polled for ``linger`` seconds."""
    clock = Clock(50.0)
    demand = Demand(10.0, clock)
    demand.touch()
    assert demand.woken.is_set()
    clock.now = 59.9
    assert demand.wanted()
    clock.now = 60.0
    assert not demand.wanted()


def test_a_topic_counts_its_subscribers_in_its_demand() -> None:
    """Subscribing to a topic is demand for its router; unsubscribing gives it up."""
    topic = Topic("r", history=3, demand=Demand(0.0, Clock()))
    sink = Sink(FakeTransport())
    topic.subscribe(sink, InterfaceFilter.all())
    assert topic.demand.woken.is_set()
    assert topic.demand.wanted()
    assert topic.viewers == topic.demand.subscribers == 1
    topic.subscribe(sink, InterfaceFilter.of(["ether*"]))  # a new filter: still one subscriber
    assert topic.demand.subscribers == 1
    assert topic.unsubscribe(sink)
    assert not topic.unsubscribe(sink)
    assert topic.demand.subscribers == 0
    assert not topic.demand.wanted()


def test_a_viewer_cut_off_while_subscribing_is_no_demand() -> None:
    """A viewer already behind (closing) does not keep its router polled."""
    topic = Topic("r", history=3, demand=Demand(0.0, Clock()))
    t = FakeTransport()
    t.backlog = BEHIND_BYTES
    sink = Sink(t, lambda: None, clock=Clock())
    sink.write(b"error frame")
    assert topic.subscribe(sink, InterfaceFilter.all()) is False
    assert topic.demand.subscribers == 0
    assert not topic.demand.woken.is_set()
