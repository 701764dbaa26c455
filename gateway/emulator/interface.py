"""One emulated interface: its counters, the traffic that moves them, and how the API prints it.

Pure: counters advance only when :meth:`Interface.add` is called (the device does, from its
clock), and the rows are built from the interface and the router's version alone.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from gateway.emulator.version import Version, format_date

__all__ = [
    "RX_PACKET_SIZE",
    "TX_PACKET_SIZE",
    "Counts",
    "Interface",
    "Traffic",
    "interface_row",
    "monitor_row",
]

# Typical Ethernet mix: most bytes ride in large packets, acknowledgements are small.
RX_PACKET_SIZE: Final = 900
TX_PACKET_SIZE: Final = 420


class Counts(NamedTuple):
    """Whole bytes and packets counted in one step: ``rx`` into the router from the link, ``tx``
    out of it (for a customer's link: rx is the customer's upload, tx its download)."""

    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int


@dataclass(slots=True)
class Traffic:
    """How busy a link is: a base rate shaped by the time of day and random bursts.

    ``steady`` turns the shaping off, so tests can count on exact byte deltas.
    """

    rx_bps: float
    tx_bps: float
    steady: bool = False
    # Seeds the burst pattern so every link bursts at its own moments.
    seed: int = 0
    # The last five-second slot drawn and its burst factor: seeding a generator is most of the
    # cost of a tick on a big router, and a slot is asked for again and again.
    _slot: int = field(default=-1, repr=False, compare=False)
    _burst: float = field(default=1.0, repr=False, compare=False)

    def factor(self, wall: float) -> float:
        if self.steady:
            return 1.0
        hour = (wall % 86400) / 3600
        # Evening peak around 21:00, trough around 05:00 (ISP access traffic).
        daily = 0.55 + 0.45 * math.cos((hour - 21) / 24 * 2 * math.pi)
        # A burst lasts five seconds; one slot in seven bursts at 1.5x to 3x.
        slot = int(wall // 5)
        if slot != self._slot:
            rng = random.Random(slot * 1_000_003 + self.seed)
            bursting = rng.random() < 1 / 7
            self._burst = 1.5 + rng.random() * 1.5 if bursting else 0.8 + rng.random() * 0.4
            self._slot = slot
        return daily * self._burst


@dataclass(slots=True)
class Interface:
    """One row of ``/interface``. ``number`` is the numeric part of ``.id`` (``*1A`` is 0x1A)."""

    number: int
    name: str
    type: str
    traffic: Traffic
    mtu: int | str = 1500
    actual_mtu: int = 1500
    l2mtu: int | None = None
    max_l2mtu: int | None = None
    mac: str | None = None
    default_name: str | None = None
    dynamic: bool = False
    disabled: bool = False
    running: bool = True
    slave: bool = False
    comment: str | None = None
    rx_byte: int = 0
    tx_byte: int = 0
    rx_packet: int = 0
    tx_packet: int = 0
    link_downs: int = 0
    last_link_up: float | None = None
    last_link_down: float | None = None
    # Fractional bytes/packets carried between advances, so slow links still count up.
    carry: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])

    @property
    def id(self) -> str:
        return f"*{self.number:X}"

    @property
    def moving(self) -> bool:
        return self.running and not self.disabled

    def add(self, rx_bytes: float, tx_bytes: float) -> Counts:
        """Count traffic; packets follow bytes at a typical packet size.

        Returns what the counters grew by (whole bytes and packets, rx then tx), so a simple queue
        on this interface can count exactly the same traffic.
        """
        c = self.carry
        c[0] += rx_bytes
        c[1] += tx_bytes
        c[2] += rx_bytes / RX_PACKET_SIZE
        c[3] += tx_bytes / TX_PACKET_SIZE
        whole = Counts(int(c[0]), int(c[1]), int(c[2]), int(c[3]))
        self.rx_byte += whole.rx_bytes
        self.tx_byte += whole.tx_bytes
        self.rx_packet += whole.rx_packets
        self.tx_packet += whole.tx_packets
        self.carry = [v - w for v, w in zip(c, whole, strict=True)]
        return whole

    def reset_counters(self) -> None:
        self.rx_byte = self.tx_byte = self.rx_packet = self.tx_packet = 0
        self.link_downs = 0
        self.carry = [0.0, 0.0, 0.0, 0.0]


def interface_row(iface: Interface, version: Version) -> dict[str, str]:
    """All attributes of one interface as ``/interface/print`` shows them, absent ones left out,
    in the router's order; dates in ``version``'s format."""
    row: dict[str, str] = {".id": iface.id, "name": iface.name}
    if iface.default_name:
        row["default-name"] = iface.default_name
    row["type"] = iface.type
    row["mtu"] = str(iface.mtu)
    row["actual-mtu"] = str(iface.actual_mtu)
    if iface.l2mtu is not None:
        row["l2mtu"] = str(iface.l2mtu)
    if iface.max_l2mtu is not None:
        row["max-l2mtu"] = str(iface.max_l2mtu)
    if iface.mac is not None:
        row["mac-address"] = iface.mac
    if iface.last_link_down is not None:
        row["last-link-down-time"] = format_date(iface.last_link_down, version)
    if iface.last_link_up is not None:
        row["last-link-up-time"] = format_date(iface.last_link_up, version)
    row["link-downs"] = str(iface.link_downs)
    row["rx-byte"] = str(iface.rx_byte)
    row["tx-byte"] = str(iface.tx_byte)
    row["rx-packet"] = str(iface.rx_packet)
    row["tx-packet"] = str(iface.tx_packet)
    row["rx-drop"] = "0"
    row["tx-drop"] = "0"
    row["tx-queue-drop"] = "0"
    row["rx-error"] = "0"
    row["tx-error"] = "0"
    # Fast-path counters: on these boards everything is fast-pathed on the way in.
    row["fp-rx-byte"] = str(iface.rx_byte)
    row["fp-tx-byte"] = "0"
    row["fp-rx-packet"] = str(iface.rx_packet)
    row["fp-tx-packet"] = "0"
    if iface.dynamic:
        row["dynamic"] = "true"
    if iface.slave:
        row["slave"] = "true"
    row["running"] = "true" if iface.running and not iface.disabled else "false"
    row["disabled"] = "true" if iface.disabled else "false"
    if iface.comment:
        row["comment"] = iface.comment
    return row


def monitor_row(iface: Interface, wall: float) -> dict[str, str]:
    """One ``/interface/monitor-traffic`` row: the rates at wall-clock time ``wall`` as plain
    integers (bits and packets per second)."""
    rx = tx = 0.0
    if iface.moving:
        f = iface.traffic.factor(wall)
        rx, tx = iface.traffic.rx_bps * f, iface.traffic.tx_bps * f
    rx_pps = int(rx / 8 / RX_PACKET_SIZE)
    tx_pps = int(tx / 8 / TX_PACKET_SIZE)
    return {
        "name": iface.name,
        "rx-packets-per-second": str(rx_pps),
        "rx-bits-per-second": str(int(rx)),
        "fp-rx-packets-per-second": str(rx_pps),
        "fp-rx-bits-per-second": str(int(rx)),
        "rx-drops-per-second": "0",
        "rx-errors-per-second": "0",
        "tx-packets-per-second": str(tx_pps),
        "tx-bits-per-second": str(int(tx)),
        "fp-tx-packets-per-second": "0",
        "fp-tx-bits-per-second": "0",
        "tx-drops-per-second": "0",
        "tx-queue-drops-per-second": "0",
        "tx-errors-per-second": "0",
    }
