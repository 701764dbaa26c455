"""How a router's poller and its lease meet in cluster mode, seen from the poller's side.

``Gate`` is the poller's demand (``gateway.poller.Wanted``): poll while the lease says so, and
which sources. ``PollerState`` is what the lease reads of its poller. (The lease is the
poller's publisher as well: ``gateway.poller_status.Publisher``.) The lease is
``gateway.cluster_lease.RouterLease``; the gate reads it through ``Leased``, so this module
does not import it.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from gateway.core.model import RouterState
from gateway.demand import RouterDemand

__all__ = ["Gate", "Leased", "PollerState"]


class PollerState(Protocol):
    """What the lease reads of its router's poller (``gateway.poller.Poller``)."""

    state: RouterState
    error: str | None
    since: float

    def statuses(self) -> list[dict[str, object]]:
        """The current status message of every source."""
        ...


class Leased(Protocol):
    """What the gate reads of its router's lease (``gateway.cluster_lease.RouterLease``)."""

    @property
    def polling(self) -> bool:
        """Whether this replica's poller should poll the router now."""
        ...

    @property
    def role(self) -> str:
        """``idle``, ``holder`` or ``local``."""
        ...

    @property
    def wanted_anywhere(self) -> frozenset[str]:
        """The sources some replica wants (a holder polls them)."""
        ...

    @property
    def demand(self) -> RouterDemand:
        """This replica's demand for the router's sources."""
        ...


class Gate:
    """The poller's demand in cluster mode: poll while this replica holds the lease (and it has
    not run out) or polls for itself while Redis is away; each tick, the sources some replica
    wants (a holder) or this replica's viewers want (polling for itself). ``woken`` is the
    poller's own event, set when polling becomes wanted; the poller clears it."""

    __slots__ = ("_lease", "woken")

    def __init__(self, lease: Leased) -> None:
        self._lease = lease
        self.woken = asyncio.Event()

    def wanted(self) -> bool:
        return self._lease.polling

    def wants(self, source: str) -> bool:
        lease = self._lease
        if not lease.polling:
            return False
        if lease.role == "holder" and source in lease.wanted_anywhere:
            return True
        return lease.demand.wants(source)
