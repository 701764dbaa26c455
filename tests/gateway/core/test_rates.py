"""Rates from counter deltas: exact values, resets, re-dials, and never a bogus number."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from gateway.core.model import InterfaceRate, InterfaceSample, Sample
from gateway.core.rates import compute_rates


def iface(
    interface_id: str = "*1",
    name: str = "ether1",
    rx_byte: int = 0,
    tx_byte: int = 0,
    rx_packet: int = 0,
    tx_packet: int = 0,
) -> InterfaceSample:
    return InterfaceSample(
        interface_id, name, "ether", True, False, rx_byte, tx_byte, rx_packet, tx_packet
    )


def sample(at: float, *interfaces: InterfaceSample) -> Sample:
    return Sample(at=at, interfaces=interfaces)


def rates_of(rate: InterfaceRate) -> tuple[float | None, ...]:
    return (rate.rx_bps, rate.tx_bps, rate.rx_pps, rate.tx_pps)


NO_RATES = (None, None, None, None)


def test_known_deltas_give_exact_rates() -> None:
    """1000 bytes and 10 packets in 2 s show as 4000 bit/s and 5 packets/s."""
    prev = sample(10.0, iface(rx_byte=1000, tx_byte=5000, rx_packet=10, tx_packet=20))
    cur = sample(12.0, iface(rx_byte=2000, tx_byte=5500, rx_packet=20, tx_packet=21))
    (rate,) = compute_rates(prev, cur)
    assert rates_of(rate) == (4000.0, 2000.0, 5.0, 0.5)


def test_rates_keep_interface_details_and_current_order() -> None:
    """Rates come out in the order of the current poll, with names and flags from it."""
    prev = sample(0.0, iface("*1", "ether1"), iface("*2", "ether2"))
    renamed = InterfaceSample("*2", "uplink", "vlan", False, True, 0, 0, 0, 0)
    cur = sample(1.0, renamed, iface("*1", "ether1"))
    first, second = compute_rates(prev, cur)
    assert (first.id, first.name, first.type, first.running, first.disabled) == (
        "*2",
        "uplink",
        "vlan",
        False,
        True,
    )
    assert second.id == "*1"


def test_first_poll_has_no_rates() -> None:
    """Right after connecting there is nothing to compare with: every rate is null."""
    (rate,) = compute_rates(None, sample(5.0, iface(rx_byte=100)))
    assert rates_of(rate) == NO_RATES


def test_reboot_gives_no_rate_then_recovers() -> None:
    """After a reboot the chart shows a gap for one tick, then correct rates, never a spike."""
    before = sample(1.0, iface(rx_byte=10_000_000, tx_byte=9_000_000, rx_packet=900, tx_packet=800))
    rebooted = sample(2.0, iface(rx_byte=1_000, tx_byte=2_000, rx_packet=1, tx_packet=2))
    after = sample(3.0, iface(rx_byte=2_000, tx_byte=4_000, rx_packet=3, tx_packet=6))
    (gap,) = compute_rates(before, rebooted)
    (recovered,) = compute_rates(rebooted, after)
    assert rates_of(gap) == NO_RATES
    assert rates_of(recovered) == (8000.0, 16000.0, 2.0, 4.0)


def test_reset_counters_to_zero_gives_no_rate() -> None:
    """`/interface reset-counters` shows as a gap, not as a 2**64 wrap."""
    before = sample(1.0, iface(rx_byte=500, tx_byte=500, rx_packet=5, tx_packet=5))
    reset = sample(2.0, iface())
    (rate,) = compute_rates(before, reset)
    assert rates_of(rate) == NO_RATES


def test_one_counter_going_down_voids_all_four_rates() -> None:
    """If only one direction went down, the other direction is not trusted either."""
    before = sample(1.0, iface(rx_byte=500, tx_byte=500, rx_packet=5, tx_packet=5))
    after = sample(2.0, iface(rx_byte=600, tx_byte=400, rx_packet=6, tx_packet=6))
    (rate,) = compute_rates(before, after)
    assert rates_of(rate) == NO_RATES


def test_pppoe_redial_with_same_name_is_a_new_interface() -> None:
    """A re-dialed PPPoE customer (same name, new .id) gets no rate, then correct rates."""
    old = iface("*A1", "<pppoe-alice>", rx_byte=9_000_000, tx_byte=9_000_000)
    new = iface("*B7", "<pppoe-alice>", rx_byte=9_500_000, tx_byte=9_500_000)
    later = iface("*B7", "<pppoe-alice>", rx_byte=9_500_125, tx_byte=9_500_250)
    (redial,) = compute_rates(sample(1.0, old), sample(2.0, new))
    (steady,) = compute_rates(sample(2.0, new), sample(3.0, later))
    assert rates_of(redial) == NO_RATES
    assert (steady.rx_bps, steady.tx_bps) == (1000.0, 2000.0)


def test_new_interface_has_no_rate_while_others_do() -> None:
    """An interface that just appeared shows null while the existing ones keep their rates."""
    prev = sample(1.0, iface("*1", rx_byte=0))
    cur = sample(2.0, iface("*1", rx_byte=100), iface("*2", "ether2", rx_byte=100))
    existing, appeared = compute_rates(prev, cur)
    assert existing.rx_bps == 800.0
    assert rates_of(appeared) == NO_RATES


def test_vanished_interface_is_simply_gone() -> None:
    """An interface missing from the current poll is not reported."""
    prev = sample(1.0, iface("*1"), iface("*2", "ether2"))
    assert [rate.id for rate in compute_rates(prev, sample(2.0, iface("*1")))] == ["*1"]


def test_non_positive_interval_gives_no_rate() -> None:
    """Two samples at the same instant, or out of order, never divide by zero."""
    prev = sample(5.0, iface(rx_byte=0))
    for at in (5.0, 4.0):
        (rate,) = compute_rates(prev, sample(at, iface(rx_byte=100)))
        assert rates_of(rate) == NO_RATES


def test_idle_interface_has_zero_rates() -> None:
    """Unchanged counters show as 0, not null."""
    same = iface(rx_byte=7, tx_byte=7, rx_packet=7, tx_packet=7)
    (rate,) = compute_rates(sample(1.0, same), sample(2.0, same))
    assert rates_of(rate) == (0.0, 0.0, 0.0, 0.0)


def test_counters_near_two_to_the_64_give_exact_rates() -> None:
    """Counters close to 2**64 still give exact rates (no float rounding of the totals)."""
    base = 2**64 - 10_000_000
    prev = sample(100.0, iface(rx_byte=base, tx_byte=base, rx_packet=base, tx_packet=base))
    cur = sample(
        101.0,
        iface(rx_byte=base + 1_250_000, tx_byte=base + 1, rx_packet=base + 1000, tx_packet=base),
    )
    (rate,) = compute_rates(prev, cur)
    assert rates_of(rate) == (10_000_000.0, 8.0, 1000.0, 0.0)


def test_absurd_delta_over_tiny_interval_gives_no_rate() -> None:
    """A delta that would overflow a float gives null, never inf."""
    prev = sample(0.0, iface())
    cur = sample(5e-324, iface(rx_byte=2**64))
    (rate,) = compute_rates(prev, cur)
    assert rates_of(rate) == NO_RATES


counters = st.integers(min_value=0, max_value=2**80)
times = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def samples(draw: st.DrawFn) -> Sample:
    ids = draw(st.lists(st.sampled_from(["*1", "*2", "*3"]), max_size=3, unique=True))
    interfaces = tuple(
        InterfaceSample(
            interface_id,
            "e",
            "ether",
            True,
            False,
            draw(counters),
            draw(counters),
            draw(counters),
            draw(counters),
        )
        for interface_id in ids
    )
    return Sample(at=draw(times), interfaces=interfaces)


@given(prev=st.none() | samples(), cur=samples())
def test_rates_are_never_negative_or_infinite(prev: Sample | None, cur: Sample) -> None:
    """Whatever the router sends, every rate is null or a finite non-negative number."""
    result = compute_rates(prev, cur)
    assert [rate.id for rate in result] == [interface.id for interface in cur.interfaces]
    for rate in result:
        values = rates_of(rate)
        assert all(value is None for value in values) or all(
            value is not None and math.isfinite(value) and value >= 0 for value in values
        )
