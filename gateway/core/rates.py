"""Rates from counter deltas over monotonic time.

RouterOS counters are cumulative. A counter that goes down was reset (reboot, ``reset-counters``)
or belongs to a different interface; it is never a wrap: RouterOS keeps 64-bit counters, which
no link wraps between two polls, and adding ``2**32`` or ``2**64`` to a reset would draw a spike
of exabits on every dashboard. So a decrease means "no rate this tick", and the current sample
becomes the new baseline by being the next tick's ``prev``.
"""

from __future__ import annotations

import math
from typing import Final

from gateway.core.model import InterfaceRate, InterfaceSample, Sample
from gateway.core.sources import Counters, HotspotSample, QueueSample, Reading

__all__ = [
    "NO_RATES",
    "Rates",
    "compute_hotspot_rates",
    "compute_queue_rates",
    "compute_rates",
    "counter_rates",
]


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
                                new.comment,
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
        interface.comment,
    )


Rates = tuple[float | None, float | None, float | None, float | None]
"""Up bits/s, down bits/s, up packets/s, down packets/s of one row (customer's side)."""

NO_RATES: Final[Rates] = (None, None, None, None)


def counter_rates(old: Counters | None, new: Counters | None, dt: float) -> Rates:
    """The four rates between two readings of one row's counters, ``dt`` seconds apart.

    :data:`NO_RATES` when either reading has no counters, when any counter went down (a reset),
    when ``dt`` is not a positive finite number, or when a rate would not be finite. The rule
    of :func:`compute_rates`, for rows with ``up``/``down`` counters.
    """
    if old is None or new is None or not (dt > 0 and math.isfinite(dt)):
        return NO_RATES
    up = new.up_bytes - old.up_bytes
    down = new.down_bytes - old.down_bytes
    up_packets = new.up_packets - old.up_packets
    down_packets = new.down_packets - old.down_packets
    if up < 0 or down < 0 or up_packets < 0 or down_packets < 0:
        return NO_RATES
    try:
        rates = (up * 8 / dt, down * 8 / dt, up_packets / dt, down_packets / dt)
    except OverflowError:
        return NO_RATES
    if not all(math.isfinite(rate) for rate in rates):
        return NO_RATES
    return rates


def compute_queue_rates(
    prev: Reading[QueueSample] | None, cur: Reading[QueueSample]
) -> tuple[Rates, ...]:
    """The rates of every queue of ``cur``, in its order (see :func:`counter_rates`).

    Queues are matched by ``.id``: a dynamic queue that came back (a customer re-dialed or
    logged in again) has a new one, so it starts over with no rates.
    """
    if prev is None:
        return tuple(NO_RATES for _ in cur.rows)
    dt = cur.at - prev.at
    baseline = {queue.id: queue.counters for queue in prev.rows}.get
    return tuple(counter_rates(baseline(queue.id), queue.counters, dt) for queue in cur.rows)


def compute_hotspot_rates(
    prev: Reading[HotspotSample] | None, cur: Reading[HotspotSample]
) -> tuple[Rates, ...]:
    """The rates of every hotspot user of ``cur``, in its order (see :func:`counter_rates`).

    Matched by ``.id`` (a user who logs in again gets a new one; two devices of one user are
    two rows); a row whose ``uptime`` went down is a new login too, whatever its ``.id``.
    """
    if prev is None:
        return tuple(NO_RATES for _ in cur.rows)
    dt = cur.at - prev.at
    baseline = {user.id: user for user in prev.rows}.get
    rates: list[Rates] = []
    for user in cur.rows:
        old = baseline(user.id)
        if old is None or (
            old.uptime is not None and user.uptime is not None and user.uptime < old.uptime
        ):
            rates.append(NO_RATES)
        else:
            rates.append(counter_rates(old.counters, user.counters, dt))
    return tuple(rates)
