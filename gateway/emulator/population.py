"""The customers of an emulated router over time: static plan queues, PPPoE customers dialing in
and hanging up, hotspot users logging in and out, their churn and the operator's actions on them.

Pure: no clock of its own. The device hands it the present (``now``, monotonic seconds; ``wall``,
epoch seconds) and the seconds elapsed since its previous step, and owns the interfaces: a PPPoE
customer's interface is made and dropped through the two callables ``Population`` is given.
Queues, PPP sessions, hotspot sessions and their rows are ``gateway.emulator.customers``.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from gateway.emulator.config import DeviceConfig, non_ascii_customer
from gateway.emulator.customers import (
    PLANS,
    HotspotSession,
    PppSession,
    Queue,
    customer_address,
    customer_mac,
)
from gateway.emulator.interface import Interface, Traffic

__all__ = ["HotspotUser", "Population", "PppoeSession"]

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


class Population:
    """The router's customers and the tables they fill: ``/queue/simple``, ``/ppp/active`` and
    ``/ip/hotspot/active``.

    ``rng`` is the device's own generator: PPPoE interfaces' traffic, session lengths and re-dial
    gaps draw from it, so a seed gives the router it always gave. ``add_link(login)`` returns a
    new ``<pppoe-login>`` interface, already in the device's table; ``drop_link(iface)`` takes
    one out of it. The device calls ``populate`` once, when it is built.
    """

    def __init__(
        self,
        config: DeviceConfig,
        rng: random.Random,
        *,
        add_link: Callable[[str], Interface],
        drop_link: Callable[[Interface], None],
    ) -> None:
        self.config = config
        self._rng = rng
        self._add_link = add_link
        self._drop_link = drop_link
        self.sessions: list[PppoeSession] = []
        # Customers draw from a generator of their own, so the interfaces (and their traffic)
        # are the same whether a device has customers or not.
        self._crng = random.Random(f"customers-{config.seed}")
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
        # interface counts (the device hands it those counts). Entries leave with the interface.
        self.queue_of: dict[str, Queue] = {}

    # -- construction -------------------------------------------------------------------------

    def populate(self, now: float) -> None:
        """The customers a new router has at ``now``: static queues, then PPPoE customers dialed
        in, then hotspot users logged in."""
        cfg = self.config
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
        """A customer's traffic (rx = upload), within its plan: its queue shapes it to
        ``max-limit``, so it stays under the plan in each direction at every moment. On an
        unlimited plan a base of up to 30 Mbit/s down and a tenth to a third of that up."""
        rng = self._crng
        seed = rng.randrange(1 << 30)
        if rng.random() < idle_chance:
            return Traffic(0.0, 0.0, seed=seed)
        if plan[1]:
            # A burst at the evening peak is 3x the base rate (Traffic.factor): a base under a
            # third of the plan keeps every moment under max-limit.
            down = plan[1] * (0.05 + 0.28 * rng.random())
            up = plan[0] * (0.03 + 0.3 * rng.random())
        else:
            down = 30_000_000 * (0.05 + 0.6 * rng.random())
            up = down * (0.1 + 0.2 * rng.random())
        return Traffic(up, down, seed=seed)

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

    # -- PPPoE customers and hotspot users coming and going -----------------------------------

    def _session_length(self) -> float:
        if self.config.pppoe_session <= 0:
            return math.inf
        return self._rng.expovariate(1 / self.config.pppoe_session)

    def _dial(self, session: PppoeSession, now: float, *, first: bool = False) -> None:
        """The customer dials in: a new interface, PPP session and queue, all with new ids."""
        iface = self._add_link(session.login)
        # The PPP profile's rate limit shapes the customer's link to its plan.
        iface.traffic = self._customer_traffic(session.plan, idle_chance=0.3)
        session.interface = iface
        session.until = now + self._session_length()
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
            self.queue_of[iface.id] = queue

    def _hang_up(self, session: PppoeSession) -> None:
        """The customer's interface, PPP session and dynamic queue disappear together."""
        if session.interface is not None:
            self._drop_link(session.interface)
            self.queue_of.pop(session.interface.id, None)
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

    def advance(self, now: float, wall: float, dt: float) -> None:
        """Count the ``dt`` seconds up to ``now`` of the customers' own traffic (static queues,
        hotspot users; shaped by the ``wall`` time of day), let customers come and go, and let
        every queue measure its rate. PPPoE customers' traffic is their interfaces': the device
        counts it into ``queue_of`` before this step."""
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

    def reboot(self, now: float) -> None:
        """The router restarted at ``now`` (it has already dropped its dynamic interfaces):
        static queues count from zero, every PPPoE customer dials in and every hotspot user logs
        in again, all with new ids."""
        self.queue_of.clear()
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

    # -- operator actions ---------------------------------------------------------------------

    def drop_pppoe(self, login: str, now: float) -> bool:
        """Hang up one customer at ``now``; False when it is not online."""
        for session in self.sessions:
            if session.login == login and session.interface is not None:
                self._hang_up(session)
                session.until = now + self.config.pppoe_redial
                return True
        return False

    def logout_hotspot(self, login: str, now: float) -> bool:
        """Log one hotspot user out at ``now``; False when it is not logged in."""
        for user in self.hotspot_users:
            if user.login == login and user.session is not None:
                self._log_out(user)
                user.until = now + self.config.hotspot_relogin
                return True
        return False

    def find_queue(self, name_or_id: str) -> Queue:
        """A simple queue by name or ``.id``; KeyError if there is none."""
        if name_or_id in self.queues:
            return self.queues[name_or_id]
        for queue in self.queues.values():
            if queue.name == name_or_id:
                return queue
        raise KeyError(name_or_id)

    def set_queue_traffic(self, name: str, up_bps: float, down_bps: float, steady: bool) -> None:
        """Give one queue's customer a fixed rate (bits/s); KeyError for an unknown queue."""
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

    def set_hotspot_traffic(self, login: str, up_bps: float, down_bps: float, steady: bool) -> None:
        """Give one logged-in hotspot user a fixed rate (bits/s); KeyError when it is not."""
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

    def reset_queue_counters(self, name: str | None, now: float) -> int:
        """Reset one queue (by name or ``.id``) or all (None) at ``now``; returns how many."""
        hit = [q for q in self.queues.values() if name is None or name in (q.name, q.id)]
        for queue in hit:
            queue.reset_counters(now)
        return len(hit)
