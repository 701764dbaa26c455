"""PPP sessions joined into interface and queue rows: who is behind ``<pppoe-alice>``.

Pure: readings and times come in as arguments. The poller reads ``/ppp/active`` now and then
(:meth:`SessionBook.due`), hands the sessions to :meth:`SessionBook.update`, and asks the book,
row by row, for the session of each PPP interface and queue it publishes.

The join (README, "Sources", "PPP sessions"):

- a PPP server interface is named ``<SERVICE-USER>`` (:func:`gateway.core.sources.ppp_interface`);
  its session is the one of that service and user;
- a queue's is the session whose interface the queue is named after (a profile's dynamic queue
  ``<pppoe-alice>``) or lists in its ``target``, else the session whose address its ``target``
  lists (a static queue of a customer with a fixed address).

A re-dial gives the customer a new interface and queue (new ``.id``s) and a new session, which
the book does not know until ``/ppp/active`` is read again: a PPP row is joined only to the
session read while that row existed. So each PPP row is *bound* in the first tick after a
read (its ``.id`` and the session found, or none); later, a row whose ``.id`` differs from its
binding, or that has none, is joined to nothing and makes the book :attr:`~SessionBook.wanting`,
which brings the next read forward (bounded: see :meth:`SessionBook.due`). A PPP row that had no
session when it was bound (a PPPoE server binding of a customer who is offline) stays without
one and asks for nothing, so it never makes the book read every tick.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.core.sources import PPP_SERVICES, PppSession, ppp_interface

__all__ = ["Session", "SessionBook", "SessionView", "is_ppp_name", "session_of"]

Session = dict[str, object]
"""A session as frames carry it: ``{"user","service","caller_id","address","since"}``, made once
per read of ``/ppp/active`` and shared by every row and frame joined to it until the next read
(it does not change from tick to tick: ``since`` is when the session began)."""


def is_ppp_name(name: str) -> bool:
    """Whether ``name`` has the form of a PPP server interface, ``<SERVICE-USER>``."""
    if len(name) < 4 or name[0] != "<" or name[-1] != ">":
        return False
    service, dash, user = name[1:-1].partition("-")
    return bool(dash) and bool(user) and service in PPP_SERVICES


def session_of(session: PppSession, wall: float) -> Session:
    """``session`` as frames carry it, read at ``wall`` (Unix seconds): ``since`` is the Unix
    time it began, whole seconds (None when the router gave no uptime)."""
    return {
        "user": session.user,
        "service": session.service,
        "caller_id": session.caller_id,
        "address": session.address,
        "since": None if session.uptime is None else round(wall - session.uptime),
    }


class SessionBook:
    """The PPP sessions of one router as last read, and the rows bound to them.

    Owned by the router's poller (one task): no locks. :meth:`update` replaces everything after
    each read; :meth:`view` gives the joins for one source's rows.
    """

    __slots__ = ("_bound", "_by_address", "_by_interface", "_fresh", "read_at", "wanting")

    def __init__(self) -> None:
        # Monotonic time of the last read of /ppp/active (None: never read since the poller
        # started its run, or since forget()).
        self.read_at: float | None = None
        # Sessions (as frames carry them) by their interface's name ("<pppoe-alice>") and by
        # address.
        self._by_interface: dict[str, Session] = {}
        self._by_address: dict[str, Session] = {}
        # Per source, row name -> (row .id, the session it was joined to, or None), for PPP
        # rows, set in the first tick after each read and cleared by the next read.
        self._bound: dict[str, dict[str, tuple[str, Session | None]]] = {}
        # True from a read until the end of the tick it was made in (rows seen then are bound).
        self._fresh = False
        # True when a PPP row came up that the last read does not cover (a customer who dialed
        # in or re-dialed since): the next read is wanted sooner. Cleared by each read.
        self.wanting = False

    def forget(self) -> None:
        """Drop every session and binding (the poller stopped, or lost its router session):
        the next run starts with a read."""
        self.read_at = None
        self._by_interface.clear()
        self._by_address.clear()
        self._bound.clear()
        self._fresh = False
        self.wanting = False

    def due(self, now: float, interval: float, sessions_interval: float) -> bool:
        """Whether to read ``/ppp/active`` at the start of the tick beginning at ``now``.

        Yes when it was never read, when ``sessions_interval`` seconds have passed since the
        last read, or when the book is :attr:`wanting` and ``max(interval, sessions_interval /
        10)`` seconds have passed: a burst of re-dials costs one read every few seconds, not
        one per tick.
        """
        if self.read_at is None:
            return True
        since = now - self.read_at
        if since >= sessions_interval:
            return True
        return self.wanting and since >= max(interval, sessions_interval / 10)

    def update(self, sessions: Iterable[PppSession], at: float, wall: float) -> None:
        """The sessions of a read made at ``at`` (monotonic seconds; ``wall``: the same moment
        in Unix seconds)."""
        by_interface: dict[str, Session] = {}
        by_address: dict[str, Session] = {}
        for session in sessions:
            made = session_of(session, wall)
            interface = ppp_interface(session.service, session.user)
            if interface is not None:
                # Two sessions of one name (RouterOS then names the second interface
                # <pppoe-alice-1>): the interface named <pppoe-alice> is the first's.
                by_interface.setdefault(interface, made)
            if session.address:
                by_address.setdefault(session.address, made)
        self._by_interface = by_interface
        self._by_address = by_address
        self._bound = {"interfaces": {}, "queues": {}}
        self.read_at = at
        self._fresh = True
        self.wanting = False

    def view(self) -> SessionView:
        """The joins of one source's rows."""
        return SessionView(self)

    def end_tick(self) -> None:
        """The tick of the last read is over: PPP rows not bound by now are new (see the module
        docstring)."""
        self._fresh = False


class SessionView:
    """The joins of one source's reading: ``interface(...)`` and ``queue(...)`` per row."""

    __slots__ = ("_book", "_interfaces", "_queues")

    def __init__(self, book: SessionBook) -> None:
        self._book = book
        self._interfaces = book._bound.get("interfaces")
        self._queues = book._bound.get("queues")

    def interface(self, name: str, row_id: str) -> Session | None:
        """The session of the interface ``name`` (``.id`` ``row_id``), or None."""
        # The common case first (a big router asks this for thousands of rows a tick): a row
        # bound at the last read, with the same .id.
        bound = self._interfaces
        binding = None if bound is None else bound.get(name)
        if binding is not None and binding[0] == row_id:
            return binding[1]
        if not is_ppp_name(name):
            return None
        return self._bound("interfaces", name, row_id, self._book._by_interface.get(name))

    def queue(self, name: str, target: str | None, row_id: str) -> Session | None:
        """The session of the queue ``name`` with ``target`` (``.id`` ``row_id``), or None."""
        bound = self._queues
        binding = None if bound is None else bound.get(name)
        if binding is not None and binding[0] == row_id:
            return binding[1]
        book = self._book
        if is_ppp_name(name):
            return self._bound("queues", name, row_id, book._by_interface.get(name))
        if not target:
            return None
        for entry in target.split(","):
            if is_ppp_name(entry):
                return self._bound("queues", name, row_id, book._by_interface.get(entry))
        for entry in target.split(","):
            address = entry[:-3] if entry.endswith("/32") else entry
            session = book._by_address.get(address)
            if session is not None:
                return session
        return None

    def _bound(self, source: str, name: str, row_id: str, found: Session | None) -> Session | None:
        book = self._book
        bound = book._bound.get(source)
        binding = None if bound is None else bound.get(name)
        if binding is None:
            if not book._fresh or bound is None:
                book.wanting = True  # a PPP row the last read does not cover
                return None
            bound[name] = (row_id, found)
            return found
        book.wanting = True  # re-dialed since the read: its session is not known yet
        return None
