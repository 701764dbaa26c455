"""Limits as arithmetic: buckets refill at their rate up to their burst, counts stop at their
limit, memory stays bounded whatever keys a client invents."""

from __future__ import annotations

import pytest

from gateway.core.address import client_address, networks, parse_address
from gateway.core.limits import Counts, KeyedBuckets, address_key, refill


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    """Tokens come back at the rate, never beyond the burst, never from a clock gone back."""
    assert refill(0.0, 10.0, 10.5, 4.0, 5.0) == 2.0
    assert refill(3.0, 10.0, 100.0, 4.0, 5.0) == 5.0
    assert refill(1.0, 10.0, 9.0, 4.0, 5.0) == 1.0


def test_keyed_buckets_allow_a_burst_then_the_rate() -> None:
    """A new address may open burst connections at once, then one per 1/rate seconds."""
    buckets = KeyedBuckets(rate=2.0, burst=3)
    assert [buckets.take("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert buckets.take("b", 0.0)  # another address has its own bucket
    assert not buckets.take("a", 0.4)
    assert buckets.take("a", 0.6)
    assert not buckets.take("a", 0.6)


def test_keyed_buckets_stay_bounded_and_forget_quiet_addresses_first() -> None:
    """A client inventing addresses cannot grow the table past its capacity; an address that
    is being limited is remembered over those that went quiet (refilled)."""
    buckets = KeyedBuckets(rate=0.1, burst=2, capacity=3)
    assert [buckets.take("busy", 0.0) for _ in range(3)] == [True, True, False]
    buckets.take("q1", 0.0)
    buckets.take("q2", 0.0)
    # 15 s later q1 and q2 are full again (quiet), busy has 1.5 tokens: a new address
    # pushes out the quiet ones, and busy still has only what it earned.
    assert buckets.take("new", 15.0)
    assert len(buckets) == 2
    assert [buckets.take("busy", 15.0) for _ in range(2)] == [True, False]
    for n in range(100):
        buckets.take(f"x{n}", 15.0)
        assert len(buckets) <= 3


def test_a_zero_rate_is_no_limit() -> None:
    """handshakes_per_second = 0 turns the limit off."""
    buckets = KeyedBuckets(rate=0.0, burst=1)
    assert all(buckets.take("a", 0.0) for _ in range(1000))
    assert len(buckets) == 0


def test_counts_stop_at_the_limit_and_forget_keys_at_zero() -> None:
    """Open connections per key, at most the limit; 0 is no limit; released keys cost nothing."""
    counts = Counts(limit=2)
    assert [counts.acquire("s") for _ in range(3)] == [True, True, False]
    counts.release("s")
    assert counts.acquire("s")
    counts.release("s")
    counts.release("s")
    assert counts.held("s") == 0
    assert len(counts) == 0
    unlimited = Counts(limit=0)
    assert all(unlimited.acquire("s") for _ in range(500))


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_an_ipv6_client_counts_by_its_64(address: str, key: str) -> None:
    """Addresses of one IPv6 /64 (one subscriber's network) share one limit."""
    assert address_key(address) == key


TRUSTED = networks(["10.0.0.0/8", "2001:db8:ffff::/48"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # No proxy trusted, or not from one: the header is anyone's to write, ignored.
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        # Through one trusted proxy: the address it saw.
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        # A client that writes its own header gets the proxy's addition believed, not its own.
        ("10.0.0.2", ["1.2.3.4, 198.51.100.1"], "198.51.100.1"),
        # Two trusted proxies in a chain, over two headers.
        ("10.0.0.2", ["198.51.100.1, 10.1.1.1", "10.2.2.2"], "198.51.100.1"),
        # Every hop trusted: the leftmost.
        ("10.0.0.2", ["10.9.9.9"], "10.9.9.9"),
        # A hop that does not parse stops the walk at the trusted hop to its right.
        ("10.0.0.2", ["198.51.100.1, garbage, 10.3.3.3"], "10.3.3.3"),
        # No header from a trusted proxy: the proxy itself.
        ("10.0.0.2", [], "10.0.0.2"),
        # Ports and brackets as some proxies write them; IPv6.
        ("10.0.0.2", ["198.51.100.1:5555"], "198.51.100.1"),
        ("2001:db8:ffff::5", ["[2001:db8::77]:443"], "2001:db8::77"),
        ("::ffff:10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
    ],
)
def test_the_client_address_believes_only_trusted_proxies(
    peer: str, forwarded: list[str], client: str
) -> None:
    """X-Forwarded-For counts only as far as the chain of trusted proxies reaches."""
    assert client_address(peer, forwarded, TRUSTED) == client


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    """The default: no header is believed."""
    assert client_address("10.0.0.2", ["198.51.100.1"], ()) == "10.0.0.2"
    assert parse_address("[::1") is None
