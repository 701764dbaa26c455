"""The emulated router's state: its interfaces, counters that advance on a clock, reboots, the
operator's actions and the rows the API prints. Its customers (simple queues, PPP sessions,
hotspot users) and how they come and go are ``gateway.emulator.population``; a PPPoE
customer's ``<pppoe-USER>`` interface is made and dropped here, for it.

Pure: no sockets, no asyncio. Time is read from an injected clock, so tests can drive it by hand.
Counters are integrated lazily: ``advance()`` (called before any read) adds the traffic of the
time elapsed since the previous call, so a print of 2,000 interfaces costs one pass over them.
The configuration (``DeviceConfig``, ``sized_config``, importable from here too) is
``gateway.emulator.config``; one interface, its traffic and its printed row
``gateway.emulator.interface``; queues, PPP sessions and hotspot users and their rows
``gateway.emulator.customers``; the version and its formats ``gateway.emulator.version``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

from gateway.emulator.config import (
    DEFAULT_VERSION,
    DeviceConfig,
    NamedInterface,
    non_ascii_name,
    port_mac,
    sized_config,
)
from gateway.emulator.customers import (
    HotspotSession,
    PppSession,
    Queue,
    hotspot_active_row,
    ppp_active_row,
    queue_row,
)
from gateway.emulator.interface import Interface, Traffic, interface_row, monitor_row
from gateway.emulator.population import HotspotUser, Population, PppoeSession
from gateway.emulator.version import Version, format_date, format_duration

__all__ = [
    "DEFAULT_VERSION",
    "Clock",
    "Device",
    "DeviceConfig",
    "HotspotUser",
    "Interface",
    "NamedInterface",
    "PppoeSession",
    "Version",
    "sized_config",
]

Clock = Callable[[], float]


class Device:
    """The router: its interfaces, counters, uptime, identity and customers (``population``)."""

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
        # The customers and their tables; a PPPoE customer's interface is made and dropped here.
        self.population = Population(
            self.config,
            self._rng,
            add_link=self._add_pppoe_interface,
            drop_link=self._remove_interface,
        )
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
                mac=port_mac(self._next_number),
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
                mac=port_mac(self._next_number),
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
                mac=port_mac(self._next_number),
                last_link_up=now_wall,
            )
            self.interfaces[iface.id] = iface
        for i in range(cfg.vlans):
            iface = self._new(
                f"vlan{100 + i}",
                "vlan",
                self._traffic(50.0, idle_chance=0.2),
                l2mtu=1510,
                mac=port_mac(self._next_number),
                last_link_up=now_wall,
            )
            self.interfaces[iface.id] = iface
        non_ascii = non_ascii_name(cfg.encoding) if cfg.non_ascii_name else None
        if non_ascii is not None:
            iface = self._new(
                non_ascii,
                "vlan",
                self._traffic(20.0),
                l2mtu=1510,
                mac=port_mac(self._next_number),
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
        self.population.populate(self._clock())

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

    def _add_pppoe_interface(self, login: str) -> Interface:
        """A customer dialed in: its new ``<pppoe-login>`` interface, in the table."""
        shape = self._traffic(25.0, idle_chance=0.3)
        iface = self._new(
            f"<pppoe-{login}>",
            "pppoe-in",
            # The customer downloads more than it uploads: rx (from the customer) is the small side.
            Traffic(shape.tx_bps, shape.rx_bps, seed=shape.seed),
            mtu=1480,
            actual_mtu=1480,
            dynamic=True,
            last_link_up=self._wall(),
        )
        self.interfaces[iface.id] = iface
        return iface

    def _remove_interface(self, iface: Interface) -> None:
        del self.interfaces[iface.id]

    # -- time ---------------------------------------------------------------------------------

    def advance(self) -> None:
        """Bring counters and the customers up to the clock's present."""
        now = self._clock()
        dt = now - self._last
        if dt <= 0:
            return
        self._last = now
        wall = self._wall()
        queue_of = self.population.queue_of
        for iface in self.interfaces.values():
            if iface.moving:
                t = iface.traffic
                f = t.factor(wall) * dt / 8
                if f:
                    counted = iface.add(t.rx_bps * f, t.tx_bps * f)
                    queue = queue_of.get(iface.id)
                    if queue is not None and not queue.disabled:
                        queue.meter.count(counted)
        self.population.advance(now, wall, dt)

    @property
    def uptime(self) -> float:
        return self._clock() - self._boot

    # -- the customers' tables (``population`` owns them) -------------------------------------

    @property
    def sessions(self) -> list[PppoeSession]:
        """The PPPoE customers, online or not."""
        return self.population.sessions

    @property
    def hotspot_users(self) -> list[HotspotUser]:
        """The hotspot users, logged in or not."""
        return self.population.hotspot_users

    @property
    def queues(self) -> dict[str, Queue]:
        """``/queue/simple`` by ``.id``, in list order (static queues first)."""
        return self.population.queues

    @property
    def ppp_active(self) -> dict[str, PppSession]:
        """``/ppp/active`` by ``.id``."""
        return self.population.ppp_active

    @property
    def hotspot_active(self) -> dict[str, HotspotSession]:
        """``/ip/hotspot/active`` by ``.id``."""
        return self.population.hotspot_active

    # -- operator actions ---------------------------------------------------------------------

    def reboot(self) -> None:
        """Every counter and the uptime restart; PPPoE customers dial in again and hotspot users
        log in again, all with new ids."""
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
        self.population.reboot(now)

    def reset_counters(self, name: str | None = None) -> int:
        """``/interface reset-counters`` (one name) or ``reset-counters-all``; returns how many."""
        self.advance()
        hit = [i for i in self.interfaces.values() if name is None or i.name == name]
        for iface in hit:
            iface.reset_counters()
        return len(hit)

    def drop_pppoe(self, login: str) -> bool:
        """Hang up one customer now (it re-dials ``pppoe_redial`` seconds later, with new ids
        for its interface, PPP session and queue); False when it is not online."""
        self.advance()
        return self.population.drop_pppoe(login, self._clock())

    def remove_ppp_active(self, ppp_id: str) -> bool:
        """``/ppp active remove``: disconnect the session with that ``.id`` (the customer
        re-dials as after ``drop_pppoe``); False when there is none."""
        self.advance()
        for session in self.sessions:
            if session.ppp is not None and session.ppp.id == ppp_id:
                return self.drop_pppoe(session.login)
        return False

    def logout_hotspot(self, login: str) -> bool:
        """Log one hotspot user out now (it logs in again ``hotspot_relogin`` seconds later,
        with a new ``.id`` and counters from zero); False when it is not logged in."""
        self.advance()
        return self.population.logout_hotspot(login, self._clock())

    def remove_hotspot_active(self, active_id: str) -> bool:
        """``/ip hotspot active remove``: log out the user with that ``.id``."""
        session = self.hotspot_active.get(active_id)
        return session is not None and self.logout_hotspot(session.user)

    def find_queue(self, name_or_id: str) -> Queue:
        """A simple queue by name or ``.id``; KeyError if there is none."""
        return self.population.find_queue(name_or_id)

    def set_queue_traffic(
        self, name: str, up_bps: float, down_bps: float, *, steady: bool = True
    ) -> None:
        """Give one queue's customer a fixed rate (bits/s, the customer's upload and download).

        A ``<pppoe-...>`` queue's traffic is its interface's (rx = up), a ``<hotspot-...>``
        queue's its user's; both change with it. KeyError for an unknown queue.
        """
        self.advance()
        self.population.set_queue_traffic(name, up_bps, down_bps, steady)

    def set_hotspot_traffic(
        self, login: str, up_bps: float, down_bps: float, *, steady: bool = True
    ) -> None:
        """Give one logged-in hotspot user a fixed rate (bits/s); KeyError when it is not."""
        self.advance()
        self.population.set_hotspot_traffic(login, up_bps, down_bps, steady)

    def set_queue_disabled(self, name: str, disabled: bool) -> None:
        """Disable a queue (its counters stop: traffic no longer passes it) or enable it."""
        self.advance()
        self.find_queue(name).disabled = disabled

    def reset_queue_counters(self, name: str | None = None) -> int:
        """``/queue simple reset-counters`` (one queue by name or ``.id``) or
        ``reset-counters-all``; returns how many. Interface counters are left alone."""
        self.advance()
        return self.population.reset_queue_counters(name, self._clock())

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

    def queue_row(self, queue: Queue) -> dict[str, str]:
        """All attributes of one simple queue as the API prints them (see ``queue_row``)."""
        return queue_row(queue, self.config.version)

    def ppp_active_row(self, session: PppSession) -> dict[str, str]:
        """One ``/ppp/active`` row, its uptime at the clock's present."""
        return ppp_active_row(session, self._clock())

    def hotspot_active_row(self, session: HotspotSession) -> dict[str, str]:
        """One ``/ip/hotspot/active`` row, its uptime at the clock's present."""
        return hotspot_active_row(session, self._clock())

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
