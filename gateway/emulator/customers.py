"""Where an ISP's router sees its customers: simple queues, PPP sessions and hotspot users.

Pure: counters move only when the device counts traffic into them, rates only when the device
asks a queue to measure, and rows are built from the objects, the clock's present and the
router's version. Directions are the customer's: *upload* is what the customer sends (an
interface's ``rx`` on its link), *download* what it receives (``tx``).

What the rows look like, and where that comes from:

- ``/queue/simple/print``: MikroTik's "Queues" page, section Simple Queue
  (https://help.mikrotik.com/docs/spaces/ROS/pages/328088/Queues): ``target`` is addresses or an
  interface, paired values are ``upload/download`` from the target's side, ``max-limit`` and
  ``limit-at`` in bits/s with ``0`` for unlimited, queues are matched in list order (the first
  match wins). The attribute set and its values over the API follow real routers: REST rows in
  terraform-provider-routeros ``routeros/resource_queue_simple.go`` (v7: ``bucket-size=0.1/0.1``,
  ``total-*`` single values, ``packet-marks=""``), a traffic collector's sample row
  (``bytes=45666/172388``, ``rate=17424/62464``, ``max-limit=1000000000/1000000000``), and
  tik4net's integration test ``Queue/QueueRatePairTest.cs``, measured on RouterOS 7.24 over the
  binary API (``max-limit=1000000/2000000``, ``rate=0/0``; the CLI's ``1M/2M`` and ``0bps`` are
  never sent over the API). The order of attributes is tik4net's ``QueueSimple.cs`` (the API's
  print order); clients must not rely on it.
- ``/ppp/active/print``: "PPP AAA" page (https://help.mikrotik.com/docs/display/ROS/PPP+AAA) and
  the Active Users properties of the older manual (wiki Manual:PPP_AAA, as tik4net's
  ``Ppp/PppActive.cs`` lists them): ``name`` (the user), ``service``, ``caller-id`` (for PPPoE
  the MAC the client connected from), ``address``, ``uptime``, ``encoding``, ``session-id``,
  ``limit-bytes-in``/``limit-bytes-out``, ``radius``. The old manual also lists ``bytes`` and
  ``packets``; samples of v7 rows have none, and neither does the emulator (clients read the
  ``<pppoe-USER>`` interface's counters). A PPP profile with
  a ``rate-limit`` makes the router add a dynamic simple queue named like the interface
  (``<pppoe-USER>``, target that interface), which comes and goes with the session; where the
  router puts it in the queue list is an inference (here: after the static queues).
- ``/ip/hotspot/active/print``: "HotSpot" page (https://help.mikrotik.com/docs/x/sgDcCw; its setup
  example serves 10.5.50.0/24 from server ``hotspot1``, as here) and the RouterOS manual's user
  properties: ``bytes-in`` is "the amount of bytes received from the user", ``bytes-out`` "sent to
  the user" (packets likewise). A user profile with a ``rate-limit`` adds a dynamic queue
  ``<hotspot-USER>`` targeting the user's address. **No binary-API capture of this menu was found**:
  the byte and packet fields are printed as plain decimal integers, as every other counter is
  over the API, and ``session-time-left`` only when the user has a time limit; a client should
  read them tolerantly (absent fields included).

Durations (``uptime``, ``idle-time``, ``session-time-left``) use the v6/v7 form ``1w2d3h4m5s``
with zero parts left out (``gateway.emulator.version.format_duration``); only routers older than
v6 printed ``6w6d18:33:07``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from gateway.emulator.interface import RX_PACKET_SIZE, TX_PACKET_SIZE, Counts, Traffic
from gateway.emulator.version import Version, format_duration

__all__ = [
    "HOTSPOT_SERVER",
    "PLANS",
    "RATE_WINDOW",
    "HotspotSession",
    "Meter",
    "PppSession",
    "Queue",
    "customer_address",
    "customer_mac",
    "hotspot_active_row",
    "ppp_active_row",
    "queue_row",
]

RATE_WINDOW: Final = 1.0
"""Seconds over which the router averages a queue's ``rate`` and ``packet-rate``: each print
shows the average over the last window that ended (a new queue shows ``0/0`` until one has)."""

PLANS: Final[tuple[tuple[int, int], ...]] = (
    (2_000_000, 10_000_000),
    (5_000_000, 20_000_000),
    (10_000_000, 50_000_000),
    (20_000_000, 100_000_000),
    (50_000_000, 200_000_000),
)
"""Plans an access ISP sells, as ``max-limit`` (upload, download) in bits/s."""

HOTSPOT_SERVER: Final = "hotspot1"
"""The hotspot server's name, as ``/ip hotspot setup`` calls the first one."""

_ZERO: Final = Counts(0, 0, 0, 0)


def customer_address(prefix: str, index: int, *, first_subnet: int = 0) -> str:
    """The ``index``-th customer's address (from 1) in a /16 such as ``"100.64"``, from the /24
    ``first_subnet`` on: ``.0.2``, ``.0.3`` ... ``.0.254``, then ``.1.2`` and so on (``.1`` of
    each /24 is the router's)."""
    n = index - 1
    return f"{prefix}.{first_subnet + n // 253}.{n % 253 + 2}"


def customer_mac(oui: str, index: int) -> str:
    """A customer device's MAC, uppercase as RouterOS prints it: the vendor's ``oui`` (three
    bytes like ``"48:A9:8A"``) then the index in three bytes."""
    return oui + ":" + ":".join(f"{(index >> s) & 0xFF:02X}" for s in (16, 8, 0))


@dataclass(slots=True)
class Meter:
    """Bytes and packets one customer moved, both ways, with fractions carried between steps.

    Packets follow bytes at the sizes interfaces use (upload as an interface's rx, download as
    its tx), so a queue on an interface and one with traffic of its own count alike.
    """

    up_bytes: int = 0
    down_bytes: int = 0
    up_packets: int = 0
    down_packets: int = 0
    carry: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])

    def add(self, up_bytes: float, down_bytes: float) -> Counts:
        """Count traffic of this customer's own; returns the whole increments."""
        c = self.carry
        c[0] += up_bytes
        c[1] += down_bytes
        c[2] += up_bytes / RX_PACKET_SIZE
        c[3] += down_bytes / TX_PACKET_SIZE
        whole = Counts(int(c[0]), int(c[1]), int(c[2]), int(c[3]))
        self.carry = [v - w for v, w in zip(c, whole, strict=True)]
        self.count(whole)
        return whole

    def count(self, counts: Counts) -> None:
        """Count exactly these whole bytes and packets (rx = upload, tx = download)."""
        self.up_bytes += counts.rx_bytes
        self.down_bytes += counts.tx_bytes
        self.up_packets += counts.rx_packets
        self.down_packets += counts.tx_packets

    def counts(self) -> Counts:
        return Counts(self.up_bytes, self.down_bytes, self.up_packets, self.down_packets)

    def reset(self) -> None:
        self.up_bytes = self.down_bytes = self.up_packets = self.down_packets = 0
        self.carry = [0.0, 0.0, 0.0, 0.0]


@dataclass(slots=True)
class Queue:
    """One row of ``/queue/simple``. ``number`` is the numeric part of ``.id``.

    ``max_limit`` is (upload, download) in bits/s, 0 meaning unlimited. ``traffic`` drives the
    counters of a queue with a target of its own (a static customer's address); a queue on a
    PPPoE interface or for a hotspot user has None and counts what the device hands it.
    ``rate`` and ``packet_rate`` are the router's own figures (see ``measure``).
    """

    number: int
    name: str
    target: str
    max_limit: tuple[int, int]
    traffic: Traffic | None = None
    comment: str | None = None
    dynamic: bool = False
    disabled: bool = False
    meter: Meter = field(default_factory=Meter)
    rate: tuple[int, int] = (0, 0)
    packet_rate: tuple[int, int] = (0, 0)
    # The measuring window that is running: when it began (monotonic seconds), and the
    # counters then. Moved by measure(); restarted by reset_counters().
    window_start: float = 0.0
    window_counts: Counts = _ZERO

    @property
    def id(self) -> str:
        return f"*{self.number:X}"

    def measure(self, now: float) -> None:
        """Close the running window if it is ``RATE_WINDOW`` long or more: ``rate`` (bits/s) and
        ``packet-rate`` (packets/s) become its averages, and a new window begins at ``now``."""
        elapsed = now - self.window_start
        if elapsed < RATE_WINDOW:
            return
        c, w = self.meter.counts(), self.window_counts
        self.rate = (
            round((c.rx_bytes - w.rx_bytes) * 8 / elapsed),
            round((c.tx_bytes - w.tx_bytes) * 8 / elapsed),
        )
        self.packet_rate = (
            round((c.rx_packets - w.rx_packets) / elapsed),
            round((c.tx_packets - w.tx_packets) / elapsed),
        )
        self.window_start, self.window_counts = now, c

    def reset_counters(self, now: float) -> None:
        """``/queue simple reset-counters``: bytes, packets and rates from zero."""
        self.meter.reset()
        self.rate = self.packet_rate = (0, 0)
        self.window_start, self.window_counts = now, _ZERO


def _pair(values: tuple[int, int]) -> str:
    return f"{values[0]}/{values[1]}"


def queue_row(queue: Queue, version: Version) -> dict[str, str]:
    """All attributes of one simple queue as ``/queue/simple/print`` shows them over the API.

    Paired values are ``upload/download`` plain integers (bits/s for limits and rates); the
    ``total-*`` statistics belong to the queue's global-total part, unused here, so they are 0.
    ``bucket-size`` only on v7 [inferred: seen in v7 captures only]. ``comment`` only when set.
    """
    m = queue.meter
    row = {
        ".id": queue.id,
        "name": queue.name,
        "target": queue.target,
        "parent": "none",
        "packet-marks": "",
        "priority": "8/8",
        "queue": "default-small/default-small",
        "limit-at": "0/0",
        "max-limit": _pair(queue.max_limit),
        "burst-limit": "0/0",
        "burst-threshold": "0/0",
        "burst-time": "0s/0s",
    }
    if version.major >= 7:
        row["bucket-size"] = "0.1/0.1"
    row.update(
        {
            "bytes": f"{m.up_bytes}/{m.down_bytes}",
            "total-bytes": "0",
            "packets": f"{m.up_packets}/{m.down_packets}",
            "total-packets": "0",
            "dropped": "0/0",
            "total-dropped": "0",
            "rate": _pair(queue.rate),
            "total-rate": "0",
            "packet-rate": _pair(queue.packet_rate),
            "total-packet-rate": "0",
            "queued-packets": "0/0",
            "total-queued-packets": "0",
            "queued-bytes": "0/0",
            "total-queued-bytes": "0",
            "invalid": "false",
            "dynamic": "true" if queue.dynamic else "false",
            "disabled": "true" if queue.disabled else "false",
        }
    )
    if queue.comment:
        row["comment"] = queue.comment
    return row


@dataclass(frozen=True, slots=True)
class PppSession:
    """One row of ``/ppp/active``: a PPPoE customer logged in since ``since`` (monotonic)."""

    number: int
    name: str
    caller_id: str
    address: str
    session_id: int
    since: float

    @property
    def id(self) -> str:
        return f"*{self.number:X}"


def ppp_active_row(session: PppSession, now: float) -> dict[str, str]:
    """All attributes of one PPP session as ``/ppp/active/print`` shows them at ``now``."""
    return {
        ".id": session.id,
        "name": session.name,
        "service": "pppoe",
        "caller-id": session.caller_id,
        "address": session.address,
        "uptime": format_duration(now - session.since),
        "encoding": "",
        "session-id": f"0x{session.session_id:08X}",
        "limit-bytes-in": "0",
        "limit-bytes-out": "0",
        "radius": "false",
    }


@dataclass(slots=True)
class HotspotSession:
    """One row of ``/ip/hotspot/active``: a user logged in since ``since`` (monotonic).

    ``traffic`` is the user's (rx = what the user sends); ``time_limit`` (seconds) is a
    voucher's ``limit-uptime``, shown as ``session-time-left``.
    """

    number: int
    user: str
    address: str
    mac: str
    since: float
    traffic: Traffic
    login_by: str = "http-chap"
    time_limit: float | None = None
    comment: str | None = None
    meter: Meter = field(default_factory=Meter)

    @property
    def id(self) -> str:
        return f"*{self.number:X}"


def hotspot_active_row(session: HotspotSession, now: float) -> dict[str, str]:
    """All attributes of one hotspot user as ``/ip/hotspot/active/print`` shows them at ``now``.

    ``bytes-in``/``packets-in`` are what the user sent, ``-out`` what it received. A user who
    moves no traffic has been idle since login.
    """
    m = session.meter
    uptime = now - session.since
    idle = session.traffic.rx_bps <= 0 and session.traffic.tx_bps <= 0
    row = {
        ".id": session.id,
        "server": HOTSPOT_SERVER,
        "user": session.user,
        "address": session.address,
        "mac-address": session.mac,
        "login-by": session.login_by,
        "uptime": format_duration(uptime),
        "idle-time": format_duration(uptime if idle else 0),
    }
    if session.time_limit is not None:
        row["session-time-left"] = format_duration(max(0.0, session.time_limit - uptime))
    row.update(
        {
            "keepalive-timeout": "2m",
            "bytes-in": str(m.up_bytes),
            "bytes-out": str(m.down_bytes),
            "packets-in": str(m.up_packets),
            "packets-out": str(m.down_packets),
            "radius": "false",
        }
    )
    if session.comment:
        row["comment"] = session.comment
    return row
