"""The emulated router's state: its interfaces, counters that advance on a clock, PPPoE churn,
reboots and the operator's actions.

Pure: no sockets, no asyncio. Time is read from an injected clock, so tests can drive it by hand.
Counters are integrated lazily: ``advance()`` (called before any read) adds the traffic of the
time elapsed since the previous call, so a print of 2,000 interfaces costs one pass over them.
One interface, its traffic and its printed row are ``gateway.emulator.interface``; the version
and its formats ``gateway.emulator.version``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from gateway.emulator.interface import Interface, Traffic, interface_row, monitor_row
from gateway.emulator.version import Version, format_date, format_duration

__all__ = [
    "DEFAULT_VERSION",
    "Clock",
    "Device",
    "DeviceConfig",
    "Interface",
    "NamedInterface",
    "PppoeSession",
    "Version",
    "sized_config",
]

Clock = Callable[[], float]

DEFAULT_VERSION: Final = Version(7, 18, 2)
"""The version a device acts as unless its configuration says otherwise."""


@dataclass(slots=True)
class PppoeSession:
    """A dial-up customer: online (with an interface) or offline, until ``until``."""

    login: str
    interface: Interface | None
    until: float


@dataclass(frozen=True, slots=True)
class NamedInterface:
    """One interface with a chosen name (and optionally a chosen ``.id``), for a test or a demo.

    ``name`` is the text the router stores; on the wire it is encoded in the device's
    ``encoding``, and a lone surrogate (U+DC80 to U+DCFF) stands for one raw byte (so a name can
    carry bytes that are not valid in any encoding). ``number`` is the numeric part of ``.id``
    (``4`` is ``*4``); None takes the next free one. It carries a steady 1 Mbit/s down and
    0.5 Mbit/s up until ``Device.set_traffic`` says otherwise.
    """

    name: str
    type: str = "ether"
    number: int | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """What the router looks like. Counts are the numbers of interfaces of each kind."""

    version: Version = DEFAULT_VERSION
    identity: str = "MikroTik"
    ethernet: int = 8
    sfp: int = 1
    vlans: int = 0
    bridge: bool = True
    pppoe: int = 0
    # Mean PPPoE session length and re-dial gap, in seconds (0 = customers never drop).
    pppoe_session: float = 600.0
    pppoe_redial: float = 5.0
    # Text encoding of names on the wire; a name that suits it carries non-ASCII characters.
    encoding: str = "utf-8"
    non_ascii_name: bool = True
    seed: int = 1
    board: str = "CCR2004-1G-12S+2XS"
    # Interfaces named one by one, after the generated ones (and ``lo``), before PPPoE customers.
    named: tuple[NamedInterface, ...] = ()


# Names with characters outside ASCII, as Winbox users type them; the first that the configured
# encoding can carry is used.
_NON_ASCII_NAMES: Final = ("ether-café", "ether-офис", "ether-łódź", "ether-東京")


def _non_ascii_name(encoding: str) -> str | None:
    """The first of those names the encoding can carry; None when it carries none (ASCII)."""
    for name in _NON_ASCII_NAMES:
        try:
            name.encode(encoding)
        except UnicodeEncodeError:
            continue
        return name
    return None


def _mac(n: int) -> str:
    return "48:8F:5A:" + ":".join(f"{(n >> s) & 0xFF:02X}" for s in (16, 8, 0))


class Device:
    """The router: its interfaces, counters, uptime, PPPoE population and identity."""

    def __init__(
        self,
        config: DeviceConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        self.config = config or DeviceConfig()
        self._clock = clock
        self._wall = wall
        self._rng = random.Random(self.config.seed)
        # Next .id number for a new interface; dynamic interfaces always get a fresh one.
        self._next_number = 1
        self.interfaces: dict[str, Interface] = {}
        self.sessions: list[PppoeSession] = []
        self._boot = clock()
        self._last = self._boot
        self._build()

    # -- construction -------------------------------------------------------------------------

    def _new(self, name: str, type_: str, traffic: Traffic, **kw: object) -> Interface:
        iface = Interface(self._next_number, name, type_, traffic, **kw)  # type: ignore[arg-type]
        self._next_number += 1
        return iface

    def _traffic(self, peak_mbps: float, idle_chance: float = 0.0) -> Traffic:
        if self._rng.random() < idle_chance:
            return Traffic(0.0, 0.0, seed=self._rng.randrange(1 << 30))
        rx = peak_mbps * 1e6 * (0.2 + 0.8 * self._rng.random())
        # Access links download more than they upload.
        return Traffic(rx, rx * (0.1 + 0.4 * self._rng.random()), seed=self._rng.randrange(1 << 30))

    def _build(self) -> None:
        cfg = self.config
        now_wall = self._wall()
        for i in range(1, cfg.ethernet + 1):
            name = f"ether{i}"
            up = i <= max(1, cfg.ethernet - 1)  # the last port has no cable
            iface = self._new(
                name,
                "ether",
                self._traffic(400.0 if i == 1 else 60.0, idle_chance=0.15 if i > 1 else 0.0),
                l2mtu=1514,
                max_l2mtu=9214,
                mac=_mac(self._next_number),
                default_name=name,
                running=up,
                slave=cfg.bridge and 2 <= i <= 4,
            )
            if up:
                iface.last_link_up = now_wall
            self.interfaces[iface.id] = iface
        for i in range(1, cfg.sfp + 1):
            name = f"sfp-sfpplus{i}"
            # SFP+ ports are type "ether" on a real router.
            iface = self._new(
                name,
                "ether",
                self._traffic(2000.0),
                l2mtu=1514,
                max_l2mtu=10218,
                mac=_mac(self._next_number),
                default_name=name,
                last_link_up=now_wall,
                comment="uplink",
            )
            self.interfaces[iface.id] = iface
        if cfg.bridge:
            iface = self._new(
                "bridge",
                "bridge",
                self._traffic(80.0),
                mtu="auto",
                l2mtu=1514,
                mac=_mac(self._next_number),
                last_link_up=now_wall,
            )
            self.interfaces[iface.id] = iface
        for i in range(cfg.vlans):
            iface = self._new(
                f"vlan{100 + i}",
                "vlan",
                self._traffic(50.0, idle_chance=0.2),
                l2mtu=1510,
                mac=_mac(self._next_number),
                last_link_up=now_wall,
            )
            self.interfaces[iface.id] = iface
        non_ascii = _non_ascii_name(cfg.encoding) if cfg.non_ascii_name else None
        if non_ascii is not None:
            iface = self._new(
                non_ascii,
                "vlan",
                self._traffic(20.0),
                l2mtu=1510,
                mac=_mac(self._next_number),
                last_link_up=now_wall,
                comment=non_ascii.replace("ether-", "office "),
            )
            self.interfaces[iface.id] = iface
        if cfg.version.has_loopback:
            lo = self._new(
                "lo",
                "loopback",
                Traffic(2000.0, 2000.0, seed=7),
                mtu=65536,
                actual_mtu=65536,
                mac="00:00:00:00:00:00",
                last_link_up=now_wall,
            )
            self.interfaces[lo.id] = lo
        for spec in cfg.named:
            self._add_named(spec, now_wall)
        now = self._clock()
        for i in range(cfg.pppoe):
            session = PppoeSession(f"user{i + 1:04d}", None, now)
            self._dial(session, now, first=True)
            self.sessions.append(session)

    def _add_named(self, spec: NamedInterface, now_wall: float) -> None:
        number = self._next_number if spec.number is None else spec.number
        if number < 1 or f"*{number:X}" in self.interfaces:
            raise ValueError(f"interface {spec.name!r}: .id *{number:X} is taken or invalid")
        iface = Interface(
            number,
            spec.name,
            spec.type,
            Traffic(1e6, 5e5, steady=True, seed=number),
            comment=spec.comment,
            last_link_up=now_wall,
        )
        self._next_number = max(self._next_number, number + 1)
        self.interfaces[iface.id] = iface

    def _session_length(self) -> float:
        if self.config.pppoe_session <= 0:
            return math.inf
        return self._rng.expovariate(1 / self.config.pppoe_session)

    def _dial(self, session: PppoeSession, now: float, *, first: bool = False) -> None:
        iface = self._new(
            f"<pppoe-{session.login}>",
            "pppoe-in",
            self._traffic(25.0, idle_chance=0.3),
            mtu=1480,
            actual_mtu=1480,
            dynamic=True,
            last_link_up=self._wall(),
        )
        session.interface = iface
        session.until = now + self._session_length()
        self.interfaces[iface.id] = iface

    # -- time ---------------------------------------------------------------------------------

    def advance(self) -> None:
        """Bring counters and the PPPoE population up to the clock's present."""
        now = self._clock()
        dt = now - self._last
        if dt <= 0:
            return
        self._last = now
        wall = self._wall()
        for iface in self.interfaces.values():
            if iface.moving:
                t = iface.traffic
                f = t.factor(wall) * dt / 8
                if f:
                    iface.add(t.rx_bps * f, t.tx_bps * f)
        self._churn(now)

    def _churn(self, now: float) -> None:
        for session in self.sessions:
            if now < session.until:
                continue
            if session.interface is not None:
                # The customer hangs up: the dynamic interface disappears with its counters.
                del self.interfaces[session.interface.id]
                session.interface = None
                session.until = now + self.config.pppoe_redial * (0.5 + self._rng.random())
            else:
                self._dial(session, now)

    @property
    def uptime(self) -> float:
        return self._clock() - self._boot

    # -- operator actions ---------------------------------------------------------------------

    def reboot(self) -> None:
        """Every counter and the uptime restart; PPPoE customers dial in again with new ids."""
        self.advance()
        now = self._clock()
        self._boot = now
        wall = self._wall()
        for iface in list(self.interfaces.values()):
            if iface.dynamic:
                del self.interfaces[iface.id]
                continue
            iface.reset_counters()
            iface.last_link_down = None
            iface.last_link_up = wall if iface.running else None
        for session in self.sessions:
            session.interface = None
            self._dial(session, now)

    def reset_counters(self, name: str | None = None) -> int:
        """``/interface reset-counters`` (one name) or ``reset-counters-all``; returns how many."""
        self.advance()
        hit = [i for i in self.interfaces.values() if name is None or i.name == name]
        for iface in hit:
            iface.reset_counters()
        return len(hit)

    def drop_pppoe(self, login: str) -> bool:
        """Hang up one customer now (it re-dials later with a new ``.id``)."""
        self.advance()
        for session in self.sessions:
            if session.login == login and session.interface is not None:
                del self.interfaces[session.interface.id]
                session.interface = None
                session.until = self._clock() + self.config.pppoe_redial
                return True
        return False

    def set_running(self, name: str, running: bool) -> None:
        """Plug or unplug a cable: a link going down counts in ``link-downs``."""
        self.advance()
        iface = self.find(name)
        if iface.running == running:
            return
        iface.running = running
        if running:
            iface.last_link_up = self._wall()
        else:
            iface.link_downs += 1
            iface.last_link_down = self._wall()

    def set_disabled(self, name: str, disabled: bool) -> None:
        self.advance()
        self.find(name).disabled = disabled

    def set_traffic(self, name: str, rx_bps: float, tx_bps: float, *, steady: bool = True) -> None:
        """Give one interface a fixed rate (for tests that check computed rates)."""
        self.advance()
        iface = self.find(name)
        iface.traffic = Traffic(rx_bps, tx_bps, steady=steady, seed=iface.traffic.seed)

    def add_traffic(self, name: str, rx_bytes: int, tx_bytes: int) -> None:
        """Count exact bytes on an interface at once."""
        self.advance()
        self.find(name).add(rx_bytes, tx_bytes)

    def find(self, name_or_id: str) -> Interface:
        """An interface by name or ``.id``; KeyError if there is none."""
        if name_or_id in self.interfaces:
            return self.interfaces[name_or_id]
        for iface in self.interfaces.values():
            if iface.name == name_or_id:
                return iface
        raise KeyError(name_or_id)

    def iter_interfaces(self) -> Iterator[Interface]:
        return iter(self.interfaces.values())

    # -- printing -----------------------------------------------------------------------------

    def interface_row(self, iface: Interface) -> dict[str, str]:
        """All attributes of one interface as the API prints them (see ``interface_row``)."""
        return interface_row(iface, self.config.version)

    def monitor_row(self, iface: Interface) -> dict[str, str]:
        """One ``monitor-traffic`` row: the current rates as plain integers."""
        return monitor_row(iface, self._wall())

    def resource_row(self) -> dict[str, str]:
        """``/system/resource/print`` in the router's version's attribute order."""
        v = self.config.version
        build = 1_700_000_000.0 if v.major == 7 else 1_612_788_513.0
        build_time = (
            format_date(build, v)
            if v.iso_dates
            else time.strftime("%b/%d/%Y %H:%M:%S", time.gmtime(build))
        )
        row = {
            "uptime": format_duration(self.uptime),
            "version": f"{v} ({v.channel})",
            "build-time": build_time,
        }
        if v.major == 7:
            row["factory-software"] = "7.1"
        load = int(3 + 4 * len(self.interfaces) / 500 + self._rng.random() * 5)
        row.update(
            {
                "free-memory": str(1_037_193_216 - 4096 * len(self.interfaces)),
                "total-memory": "1073741824",
                "cpu": "ARM64" if v.major == 7 else "tilegx",
                "cpu-count": "4",
                "cpu-frequency": "1700",
                "cpu-load": str(min(load, 100)),
                "free-hdd-space": "96575488",
                "total-hdd-space": "134217728",
                "write-sect-since-reboot": "6296",
                "write-sect-total": "88231",
                "architecture-name": "arm64" if v.major == 7 else "tile",
                "board-name": self.config.board,
                "platform": "MikroTik",
            }
        )
        return row


def sized_config(interfaces: int = 8, pppoe: int = 0, **kw: object) -> DeviceConfig:
    """A device with exactly ``interfaces`` static rows (plus ``lo`` on v7) and ``pppoe`` customers.

    The mix is what a real box has: Ethernet ports first (up to 24), one SFP+ uplink and a bridge
    once there are a few ports, one interface with a non-ASCII name, VLANs for the rest.
    """
    if interfaces < 1:
        raise ValueError("a router has at least one interface")
    sfp = 1 if interfaces >= 4 else 0
    bridge = interfaces >= 3
    # Popped whatever the size, so it never reaches DeviceConfig twice. When the encoding carries
    # no non-ASCII name (ASCII), that row goes to the ports and VLANs, so the count stays exact.
    wanted = bool(kw.pop("non_ascii_name", True))
    encoding = str(kw.get("encoding", DeviceConfig().encoding))
    non_ascii = interfaces >= 6 and wanted and _non_ascii_name(encoding) is not None
    rest = interfaces - sfp - int(bridge) - int(non_ascii)
    ethernet = min(rest, 24)
    return DeviceConfig(
        ethernet=ethernet,
        sfp=sfp,
        bridge=bridge,
        vlans=rest - ethernet,
        pppoe=pppoe,
        non_ascii_name=non_ascii,
        **kw,  # type: ignore[arg-type]
    )
