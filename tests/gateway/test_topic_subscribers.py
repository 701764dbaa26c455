"""A topic's subscriber registry: viewers filed by the rows they get, one bucket per selection."""

from __future__ import annotations

from gateway.core.filters import InterfaceFilter
from gateway.core.rows import Layout
from gateway.sink import Sink
from gateway.topic_subscribers import Subscribers
from tests.support.fakes import FakeTransport


def test_viewers_of_the_same_rows_share_a_bucket_until_they_narrow_or_leave() -> None:
    """Two filters that select the same rows put their viewers in one bucket (one frame for
    both); narrowing moves a viewer to its new rows' bucket, and a bucket goes with its last
    member; a whole-router viewer narrowed becomes a filtered one."""
    layout = Layout(("ether1", "<pppoe-alice>", "<pppoe-bob>"))
    subscribers = Subscribers()
    alice, alice_too, everyone = (Sink(FakeTransport(), lambda: None) for _ in range(3))
    subscribers.join(alice, InterfaceFilter.of(["<pppoe-alice>"]))
    subscribers.join(alice_too, InterfaceFilter.of(["<pppoe-al*>"]))
    subscribers.join(everyone, InterfaceFilter.all())
    assert subscribers.buckets == {}  # no frame yet: nothing selected
    subscribers.rebucket(layout)
    assert [list(b.plain) for b in subscribers.buckets.values()] == [[alice, alice_too]]
    assert list(subscribers.every.plain) == [everyone]

    assert subscribers.narrow(alice_too, InterfaceFilter.of(["<pppoe-*>"]))  # still only alice
    assert [list(b.plain) for b in subscribers.buckets.values()] == [[alice, alice_too]]
    assert subscribers.narrow(everyone, InterfaceFilter.of(["<pppoe-bob>"]))
    assert not subscribers.every
    assert [list(b.plain) for b in subscribers.buckets.values()] == [[alice, alice_too], [everyone]]

    assert subscribers.leave(everyone)
    assert not subscribers.leave(everyone)
    assert not subscribers.narrow(everyone, InterfaceFilter.all())
    assert everyone not in subscribers
    assert subscribers.leave(alice)
    assert subscribers.leave(alice_too)
    assert subscribers.buckets == {}
    assert alice not in subscribers
