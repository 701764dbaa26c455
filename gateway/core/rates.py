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
        return tuple(_no_rates(interface) for interface in cur.interfaces)
    dt = cur.at - prev.at
    # `not dt > 0` also catches NaN; an infinite dt would give meaningless zeros.
    if not (dt > 0 and math.isfinite(dt)):
        return tuple(_no_rates(interface) for interface in cur.interfaces)
    baseline = {interface.id: interface for interface in prev.interfaces}.get
    isfinite = math.isfinite
    rates: list[InterfaceRate] = []
    add = rates.append
    # Inlined: this loop runs once per interface per poll, thousands of times on a big router.
    for new in cur.interfaces:
        old = baseline(new.id)
        if old is not None:
            rx_bytes = new.rx_byte - old.rx_byte
            tx_bytes = new.tx_byte - old.tx_byte
            rx_packets = new.rx_packet - old.rx_packet
            tx_packets = new.tx_packet - old.tx_packet
            if rx_bytes >= 0 and tx_bytes >= 0 and rx_packets >= 0 and tx_packets >= 0:
                try:
                    rx_bps = rx_bytes * 8 / dt
                    tx_bps = tx_bytes * 8 / dt
                    rx_pps = rx_packets / dt
                    tx_pps = tx_packets / dt
                except OverflowError:
                    # A delta too large for a float: only a corrupt reply gets here; no rate.
                    pass
                else:
                    # A tiny dt can still push a huge delta to inf: not valid JSON, not a rate.
                    if (
                        isfinite(rx_bps)
                        and isfinite(tx_bps)
                        and isfinite(rx_pps)
                        and isfinite(tx_pps)
                    ):
                        add(
                            InterfaceRate(
                                new.id,
                                new.name,
                                new.type,
                                new.running,
                                new.disabled,
                                rx_bps,
                                tx_bps,
                                rx_pps,
                                tx_pps,
                            )
                        )
                        continue
        add(_no_rates(new))
    return tuple(rates)


def _no_rates(interface: InterfaceSample) -> InterfaceRate:
    return InterfaceRate(
        interface.id,
        interface.name,
        interface.type,
        interface.running,
        interface.disabled,
        None,
        None,
        None,
        None,
    )
