"""The emulated router's state: its interfaces, its customers (simple queues, PPP sessions,
hotspot users), counters that advance on a clock, PPPoE and hotspot churn, reboots and the
operator's actions.

Pure: no sockets, no asyncio. Time is read from an injected clock, so tests can drive it by hand.
Counters are integrated lazily: ``advance()`` (called before any read) adds the traffic of the
time elapsed since the previous call, so a print of 2,000 interfaces costs one pass over them.
The configuration (``DeviceConfig``, ``sized_config``) is ``gateway.emulator.config``,
importable from here too; one interface, its traffic and its printed row are
``gateway.emulator.interface``; queues, PPP sessions and hotspot users
``gateway.emulator.customers``; the version and its formats ``gateway.emulator.version``.

A PPPoE customer online is three things that come and go together, as on a real access router:
its ``<pppoe-USER>`` interface, its ``/ppp/active`` row and (when ``pppoe_queues``: its PPP
profile has a rate limit) a dynamic simple queue ``<pppoe-USER>`` targeting that interface. The
queue counts exactly the bytes and packets its interface counts while both exist (upload = the
interface's rx, download = its tx), so a client can check one against the other; each has its
own reset (``/interface reset-counters`` leaves the queue alone). A hotspot user logged in is a
``/ip/hotspot/active`` row and a dynamic queue ``<hotspot-USER>`` that counts what the row
counts. Static queues (``queues``) are customers with an address of their own and a plan; their
traffic is their own, not part of any interface's counters.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from gateway.emulator.config import (
    DEFAULT_VERSION,
    DeviceConfig,
    NamedInterface,
    non_ascii_customer,
    non_ascii_name,
    port_mac,
    sized_config,
)
from gateway.emulator.customers import (
    PLANS,
    HotspotSession,
    PppSession,
    Queue,
    customer_address,
    customer_mac,
    hotspot_active_row,
    ppp_active_row,
    queue_row,
)
from gateway.emulator.interface import Interface, Traffic, interface_row, monitor_row
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

# Vendor prefixes of customer devices: PPPoE CPEs (MikroTik's), hotspot phones and laptops.
PPPOE_OUI: Final = "48:A9:8A"
HOTSPOT_OUI: Final = "3C:2E:FF"

# Where customers' addresses come from: the PPPoE pool (shared address space), static customers
# with a queue of their own, and the hotspot network of MikroTik's setup example (10.5.50.0/24).
PPPOE_POOL: Final = "100.64"
STATIC_NET: Final = "10.20"
HOTSPOT_NET: Final = "10.5"

# A hotspot voucher's time limit: every third user logs in with one.
VOUCHER_TIME: Final = 3600.0

# RouterOS PPPoE session ids print as 0x81xxxxxx.
_SESSION_ID_BASE: Final = 0x81000000


@dataclass(slots=True)
class PppoeSession:
    """A dial-up customer: online (with an interface, a ``/ppp/active`` row and, when queued, a
    dynamic queue) or offline, until ``until``. ``index`` (from 1) picks its address and MAC,
    ``plan`` its queue's ``max-limit`` (upload, download bits/s); both outlive a re-dial."""

    login: str
    interface: Interface | None
    until: float
    index: int = 1
    plan: tuple[int, int] = PLANS[0]
    ppp: PppSession | None = None
    queue: Queue | None = None


@dataclass(slots=True)
class HotspotUser:
    """A hotspot customer: logged in (``session``, and its dynamic ``queue``) or out, until
    ``until``. ``time_limit`` is a voucher's limit per login (seconds), None for none."""

    login: str
    index: int
    plan: tuple[int, int]
    until: float
    time_limit: float | None = None
    session: HotspotSession | None = None
    queue: Queue | None = None


class Device:
    """The router: its interfaces, customers, counters, uptime, churn and identity."""

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
        # Customers draw from a generator of their own, so the interfaces (and their traffic)
        # are the same whether a device has customers or not.
        self._crng = random.Random(f"customers-{self.config.seed}")
        # Each table numbers its own .ids; dynamic entries always get fresh ones.
        self._next_queue = 1
        self._next_ppp = 1
        self._next_hotspot = 1
        self._next_session_id = 1
        # /queue/simple in list order (static queues first), /ppp/active and /ip/hotspot/active,
        # each by .id.
        self.queues: dict[str, Queue] = {}
        self.ppp_active: dict[str, PppSession] = {}
        self.hotspot_active: dict[str, HotspotSession] = {}
        self.hotspot_users: list[HotspotUser] = []
        # The dynamic queue on each PPPoE interface, by interface .id: it counts what the
        # interface counts. Entries leave with the interface.
        self._queue_of: dict[str, Queue] = {}
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
        now = self._clock()
        self._build_queues(now)
        for i in range(cfg.pppoe):
            plan = PLANS[self._crng.randrange(len(PLANS))]
            session = PppoeSession(f"user{i + 1:04d}", None, now, index=i + 1, plan=plan)
            self._dial(session, now, first=True)
            self.sessions.append(session)
        for i in range(cfg.hotspot):
            voucher = VOUCHER_TIME if i % 3 == 2 else None
            plan = PLANS[self._crng.randrange(2)]
            user = HotspotUser(f"guest{i + 1:04d}", i + 1, plan, now, time_limit=voucher)
            self._log_in(user, now, first=True)
            self.hotspot_users.append(user)

    def _new_queue(
        self,
        name: str,
        target: str,
        plan: tuple[int, int],
        now: float,
        *,
        traffic: Traffic | None = None,
        comment: str | None = None,
        dynamic: bool = False,
        disabled: bool = False,
    ) -> Queue:
        queue = Queue(
            self._next_queue,
            name,
            target,
            plan,
            traffic,
            comment=comment,
            dynamic=dynamic,
            disabled=disabled,
            window_start=now,
        )
        self._next_queue += 1
        self.queues[queue.id] = queue
        return queue

    def _customer_traffic(self, plan: tuple[int, int], idle_chance: float) -> Traffic:
        """A customer's traffic (rx = upload): a share of its plan's download, a tenth to a
        third of that up; 30 Mbit/s down on an unlimited plan."""
        rng = self._crng
        seed = rng.randrange(1 << 30)
        if rng.random() < idle_chance:
            return Traffic(0.0, 0.0, seed=seed)
        down = (plan[1] or 30_000_000) * (0.05 + 0.6 * rng.random())
        return Traffic(down * (0.1 + 0.2 * rng.random()), down, seed=seed)

    def _build_queues(self, now: float) -> None:
        """Static plan queues: every tenth customer unlimited (accounting only), every 25th
        suspended (disabled); the first comment carries a non-ASCII name when it can."""
        non_ascii = non_ascii_customer(self.config.encoding)
        for i in range(1, self.config.queues + 1):
            plan = (0, 0) if i % 10 == 0 else PLANS[self._crng.randrange(len(PLANS))]
            comment = f"CID-{100000 + i}"
            if i == 1 and non_ascii is not None:
                comment += f" {non_ascii}"
            suspended = i % 25 == 0
            if suspended:
                comment += " suspended"
            self._new_queue(
                f"cust{i:04d}",
                customer_address(STATIC_NET, i) + "/32",
                plan,
                now,
                traffic=self._customer_traffic(plan, idle_chance=0.2),
                comment=comment,
                disabled=suspended,
            )

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
        """The customer dials in: a new interface, PPP session and queue, all with new ids."""
        shape = self._traffic(25.0, idle_chance=0.3)
        iface = self._new(
            f"<pppoe-{session.login}>",
            "pppoe-in",
            # The customer downloads more than it uploads: rx (from the customer) is the small side.
            Traffic(shape.tx_bps, shape.rx_bps, seed=shape.seed),
            mtu=1480,
            actual_mtu=1480,
            dynamic=True,
            last_link_up=self._wall(),
        )
        session.interface = iface
        session.until = now + self._session_length()
        self.interfaces[iface.id] = iface
        ppp = PppSession(
            self._next_ppp,
            session.login,
            customer_mac(PPPOE_OUI, session.index),
            customer_address(PPPOE_POOL, session.index),
            _SESSION_ID_BASE + self._next_session_id,
            now,
        )
        self._next_ppp += 1
        self._next_session_id += 1
        session.ppp = ppp
        self.ppp_active[ppp.id] = ppp
        if self.config.pppoe_queues:
            queue = self._new_queue(iface.name, iface.name, session.plan, now, dynamic=True)
            session.queue = queue
            self._queue_of[iface.id] = queue

    def _hang_up(self, session: PppoeSession) -> None:
        """The customer's interface, PPP session and dynamic queue disappear together."""
        if session.interface is not None:
            del self.interfaces[session.interface.id]
            self._queue_of.pop(session.interface.id, None)
        if session.ppp is not None:
            del self.ppp_active[session.ppp.id]
        if session.queue is not None:
            del self.queues[session.queue.id]
        session.interface = session.ppp = session.queue = None

    def _hotspot_length(self, user: HotspotUser) -> float:
        length = math.inf
        if self.config.hotspot_session > 0:
            length = self._crng.expovariate(1 / self.config.hotspot_session)
        if user.time_limit is not None:
            length = min(length, user.time_limit)
        return length

    def _log_in(self, user: HotspotUser, now: float, *, first: bool = False) -> None:
        """The user logs in (later logins by the cookie the first one left): a new active entry
        and a new dynamic queue, counters from zero."""
        session = HotspotSession(
            self._next_hotspot,
            user.login,
            customer_address(HOTSPOT_NET, user.index, first_subnet=50),
            customer_mac(HOTSPOT_OUI, user.index),
            now,
            self._customer_traffic(user.plan, idle_chance=0.25),
            login_by="http-chap" if first else "cookie",
            time_limit=user.time_limit,
        )
        self._next_hotspot += 1
        user.session = session
        user.until = now + self._hotspot_length(user)
        self.hotspot_active[session.id] = session
        user.queue = self._new_queue(
            f"<hotspot-{user.login}>", f"{session.address}/32", user.plan, now, dynamic=True
        )

    def _log_out(self, user: HotspotUser) -> None:
        if user.session is not None:
            del self.hotspot_active[user.session.id]
        if user.queue is not None:
            del self.queues[user.queue.id]
        user.session = user.queue = None

    # -- time ---------------------------------------------------------------------------------

    def advance(self) -> None:
        """Bring counters and the PPPoE population up to the clock's present."""
        now = self._clock()
        dt = now - self._last
        if dt <= 0:
            return
        self._last = now
        wall = self._wall()
        queue_of = self._queue_of
        for iface in self.interfaces.values():
            if iface.moving:
                t = iface.traffic
                f = t.factor(wall) * dt / 8
                if f:
                    counted = iface.add(t.rx_bps * f, t.tx_bps * f)
                    queue = queue_of.get(iface.id)
                    if queue is not None and not queue.disabled:
                        queue.meter.count(counted)
        for queue in self.queues.values():
            own = queue.traffic
            if own is not None and not queue.disabled:
                f = own.factor(wall) * dt / 8
                queue.meter.add(own.rx_bps * f, own.tx_bps * f)
        for user in self.hotspot_users:
            session = user.session
            if session is not None:
                used = session.traffic
                f = used.factor(wall) * dt / 8
                counted = session.meter.add(used.rx_bps * f, used.tx_bps * f)
                if user.queue is not None and not user.queue.disabled:
                    user.queue.meter.count(counted)
        self._churn(now)
        for queue in self.queues.values():
            queue.measure(now)

    def _churn(self, now: float) -> None:
        for session in self.sessions:
            if now < session.until:
                continue
            if session.interface is not None:
                # The customer hangs up: the interface, PPP session and queue disappear.
                self._hang_up(session)
                session.until = now + self.config.pppoe_redial * (0.5 + self._rng.random())
            else:
                self._dial(session, now)
        for user in self.hotspot_users:
            if now < user.until:
                continue
            if user.session is not None:
                self._log_out(user)
                user.until = now + self.config.hotspot_relogin * (0.5 + self._crng.random())
            else:
                self._log_in(user, now)

    @property
    def uptime(self) -> float:
        return self._clock() - self._boot

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
        self._queue_of.clear()
        self.ppp_active.clear()
        self.hotspot_active.clear()
        for queue in list(self.queues.values()):
            if queue.dynamic:
                del self.queues[queue.id]
            else:
                queue.reset_counters(now)
        for session in self.sessions:
            session.interface = session.ppp = session.queue = None
            self._dial(session, now)
        for user in self.hotspot_users:
            user.session = user.queue = None
            self._log_in(user, now)

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
        for session in self.sessions:
            if session.login == login and session.interface is not None:
                self._hang_up(session)
                session.until = self._clock() + self.config.pppoe_redial
                return True
        return False

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
        for user in self.hotspot_users:
            if user.login == login and user.session is not None:
                self._log_out(user)
                user.until = self._clock() + self.config.hotspot_relogin
                return True
        return False

    def remove_hotspot_active(self, active_id: str) -> bool:
        """``/ip hotspot active remove``: log out the user with that ``.id``."""
        session = self.hotspot_active.get(active_id)
        return session is not None and self.logout_hotspot(session.user)

    def find_queue(self, name_or_id: str) -> Queue:
        """A simple queue by name or ``.id``; KeyError if there is none."""
        if name_or_id in self.queues:
            return self.queues[name_or_id]
        for queue in self.queues.values():
            if queue.name == name_or_id:
                return queue
        raise KeyError(name_or_id)

    def set_queue_traffic(
        self, name: str, up_bps: float, down_bps: float, *, steady: bool = True
    ) -> None:
        """Give one queue's customer a fixed rate (bits/s, the customer's upload and download).

        A ``<pppoe-...>`` queue's traffic is its interface's (rx = up), a ``<hotspot-...>``
        queue's its user's; both change with it. KeyError for an unknown queue.
        """
        self.advance()
        queue = self.find_queue(name)
        for session in self.sessions:
            if session.queue is queue and session.interface is not None:
                iface = session.interface
                iface.traffic = Traffic(up_bps, down_bps, steady=steady, seed=iface.traffic.seed)
                return
        for user in self.hotspot_users:
            if user.queue is queue and user.session is not None:
                self._set_user_traffic(user.session, up_bps, down_bps, steady)
                return
        seed = queue.traffic.seed if queue.traffic is not None else queue.number
        queue.traffic = Traffic(up_bps, down_bps, steady=steady, seed=seed)

    def set_hotspot_traffic(
        self, login: str, up_bps: float, down_bps: float, *, steady: bool = True
    ) -> None:
        """Give one logged-in hotspot user a fixed rate (bits/s); KeyError when it is not."""
        self.advance()
        for user in self.hotspot_users:
            if user.login == login and user.session is not None:
                self._set_user_traffic(user.session, up_bps, down_bps, steady)
                return
        raise KeyError(login)

    @staticmethod
    def _set_user_traffic(
        session: HotspotSession, up_bps: float, down_bps: float, steady: bool
    ) -> None:
        seed = session.traffic.seed
        session.traffic = Traffic(up_bps, down_bps, steady=steady, seed=seed)

    def set_queue_disabled(self, name: str, disabled: bool) -> None:
        """Disable a queue (its counters stop: traffic no longer passes it) or enable it."""
        self.advance()
        self.find_queue(name).disabled = disabled

    def reset_queue_counters(self, name: str | None = None) -> int:
        """``/queue simple reset-counters`` (one queue by name or ``.id``) or
        ``reset-counters-all``; returns how many. Interface counters are left alone."""
        self.advance()
        now = self._clock()
        hit = [q for q in self.queues.values() if name is None or name in (q.name, q.id)]
        for queue in hit:
            queue.reset_counters(now)
        return len(hit)

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
