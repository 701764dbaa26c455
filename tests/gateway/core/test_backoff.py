"""Reconnect delays: capped exponential growth, full jitter, reset, and the auth floor."""

from __future__ import annotations

import random

import pytest

from gateway.core.backoff import AUTH_FAILURE_MIN_DELAY, Backoff, auth_failure_delay


def test_ceiling_doubles_then_caps() -> None:
    """With the largest draw, delays go 0.5, 1, 2, 4 ... and stop growing at the cap."""
    backoff = Backoff(0.5, 30.0, random=lambda: 1.0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


def test_delays_stay_within_zero_and_the_ceiling() -> None:
    """Every delay lies between 0 and min(cap, initial * factor ** attempt)."""
    backoff = Backoff(0.5, 20.0, factor=3.0, random=random.Random(7).random)
    for attempt in range(50):
        delay = backoff.next_delay()
        assert 0.0 <= delay <= min(20.0, 0.5 * 3.0**attempt)


def test_full_jitter_spreads_delays() -> None:
    """Many clients retrying at the same attempt spread over the whole range, not one instant."""
    rng = random.Random(42)
    delays = []
    for _ in range(1000):
        backoff = Backoff(1.0, 8.0, random=rng.random)
        for _ in range(3):
            backoff.next_delay()
        delays.append(backoff.next_delay())
    assert min(delays) < 0.5
    assert max(delays) > 7.5
    assert 3.5 < sum(delays) / len(delays) < 4.5


def test_same_seed_same_delays() -> None:
    """A seeded generator gives reproducible delays."""
    first = Backoff(0.5, 30.0, random=random.Random(1).random)
    second = Backoff(0.5, 30.0, random=random.Random(1).random)
    assert [first.next_delay() for _ in range(5)] == [second.next_delay() for _ in range(5)]


def test_attempt_counts_and_reset_starts_over() -> None:
    """After a good poll the next failure waits as briefly as the first one did."""
    backoff = Backoff(0.5, 30.0, random=lambda: 1.0)
    assert backoff.attempt == 0
    for _ in range(4):
        backoff.next_delay()
    assert backoff.attempt == 4
    backoff.reset()
    assert backoff.attempt == 0
    assert backoff.next_delay() == 0.5


def test_long_outage_does_not_overflow() -> None:
    """After thousands of failures the delay is still the cap, not an overflow error."""
    backoff = Backoff(0.5, 30.0, random=lambda: 1.0)
    for _ in range(5000):
        delay = backoff.next_delay()
    assert delay == 30.0


@pytest.mark.parametrize(
    ("initial", "maximum", "factor"),
    [(0.0, 1.0, 2.0), (-1.0, 1.0, 2.0), (2.0, 1.0, 2.0), (1.0, 2.0, 0.5), (1.0, float("inf"), 2.0)],
)
def test_nonsense_parameters_are_refused(initial: float, maximum: float, factor: float) -> None:
    """A backoff that could spin or never retry is refused at construction."""
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial, maximum, factor)


def test_default_random_gives_delays_in_range() -> None:
    """Without an injected generator the delays still stay in range."""
    backoff = Backoff(0.5, 30.0)
    assert all(0.0 <= backoff.next_delay() <= 30.0 for _ in range(20))


def test_bad_credentials_wait_at_least_a_minute() -> None:
    """After a refused login the gateway tries again no sooner than a minute later."""
    assert AUTH_FAILURE_MIN_DELAY == 60.0
    assert auth_failure_delay(0.0) == 60.0
    assert auth_failure_delay(12.5) == 60.0
    assert auth_failure_delay(90.0) == 90.0
