"""Rates from counter deltas over monotonic time.

RouterOS counters are cumulative. A counter that goes down was reset (reboot, ``reset-counters``)
or belongs to a different interface; it is never a wrap: RouterOS keeps 64-bit counters, which
no link wraps between two polls, and adding ``2**32`` or ``2**64`` to a reset would draw a spike
of exabits on every dashboard. So a decrease means "no rate this tick", and the current sample
becomes the new baseline by being the next tick's ``prev``.
"""

from __future__ import annotations

import math

from gateway.core.model import InterfaceRate, InterfaceSample, Sample

__all__ = ["compute_rates"]

_NO_RATES: tuple[None, None, None, None] = (None, None, None, None)


def compute_rates(prev: Sample | None, cur: Sample) -> tuple[InterfaceRate, ...]:
    """Rates of every interface of ``cur``, in ``cur``'s order.

    ``rx_bps``/``tx_bps`` are bytes * 8 per second and ``rx_pps``/``tx_pps`` packets per second
    over ``cur.at - prev.at``. All four rates of an interface are ``None`` when:

    - there is no ``prev`` (first poll after connecting);
    - the interface's ``.id`` is not in ``prev`` (a new interface, or a PPPoE customer that
      re-dialed and got a new dynamic interface under the same name: matching by name would
      subtract another interface's counters);
    - any of its four counters decreased (reset or reboot; one direction going down makes the
      whole baseline suspect, so the other direction is not trusted either);
    - the interval is not a positive finite number (a clock fault, or two samples at once).

    A rate is never negative, infinite or NaN.
    """
    if prev is None:
        return tuple(_rate(interface, _NO_RATES) for interface in cur.interfaces)
    dt = cur.at - prev.at
    # `not dt > 0` also catches NaN; an infinite dt would give meaningless zeros.
    if not (dt > 0 and math.isfinite(dt)):
        return tuple(_rate(interface, _NO_RATES) for interface in cur.interfaces)
    baseline = {interface.id: interface for interface in prev.interfaces}
    return tuple(
        _rate(interface, _rates(baseline.get(interface.id), interface, dt))
        for interface in cur.interfaces
    )


def _rates(
    old: InterfaceSample | None, new: InterfaceSample, dt: float
) -> tuple[float | None, float | None, float | None, float | None]:
    if old is None:
        return _NO_RATES
    deltas = (
        new.rx_byte - old.rx_byte,
        new.tx_byte - old.tx_byte,
        new.rx_packet - old.rx_packet,
        new.tx_packet - old.tx_packet,
    )
    if any(delta < 0 for delta in deltas):
        return _NO_RATES
    rx_bytes, tx_bytes, rx_packets, tx_packets = deltas
    try:
        rates = (rx_bytes * 8 / dt, tx_bytes * 8 / dt, rx_packets / dt, tx_packets / dt)
    except OverflowError:
        # A delta too large for a float: only a corrupt reply gets here, and it has no rate.
        return _NO_RATES
    # A tiny dt can still push a huge delta to inf; inf is not valid JSON and not a rate.
    if not all(math.isfinite(rate) for rate in rates):
        return _NO_RATES
    return rates


def _rate(
    interface: InterfaceSample,
    rates: tuple[float | None, float | None, float | None, float | None],
) -> InterfaceRate:
    rx_bps, tx_bps, rx_pps, tx_pps = rates
    return InterfaceRate(
        id=interface.id,
        name=interface.name,
        type=interface.type,
        running=interface.running,
        disabled=interface.disabled,
        rx_bps=rx_bps,
        tx_bps=tx_bps,
        rx_pps=rx_pps,
        tx_pps=tx_pps,
    )
